"""The Braintrust boundary: project tags, datasets, log queries, dataset inserts.

The SDK's REST client (``braintrust.api.BraintrustOpenApiClient``) covers tags and datasets; BTQL it
does not, so that one goes through the same ``requests`` session directly. Every failure leaves this
module as one of the app's exceptions, with the endpoint and what to do in its message.
"""

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

import requests
import structlog
import urllib3
from braintrust.api import (
    BraintrustHTTPError,
    BraintrustJSONDecodeError,
    BraintrustOpenApiClient,
    BraintrustTransportError,
)

from braintrust_ops.clients.http import build_session
from braintrust_ops.exceptions import (
    AuthenticationFailed,
    InvalidReply,
    PermanentServiceError,
    ProjectNotFound,
    TransientServiceError,
)

logger = structlog.get_logger(__name__)

SERVICE = "Braintrust"
LIST_PAGE_SIZE = 100
# A listing longer than this is a loop on the server's side, not a real project.
MAX_LIST_PAGES = 1000
MAX_BODY_IN_MESSAGE = 300

T = TypeVar("T")


def _btql_time(moment: datetime) -> str:
    """A UTC ISO time made by the code, never typed by a user, so it is safe inside the query."""
    if moment.tzinfo is None:
        raise ValueError("BTQL times must be timezone-aware")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_logs_query(*, project_id: str, since: datetime, until: datetime | None, root_only: bool, limit: int) -> str:
    """The BTQL for one project's logs in [since, until). ``project_id`` must already be a canonical UUID."""
    conditions = [f"created >= '{_btql_time(since)}'"]
    if until is not None:
        conditions.append(f"created < '{_btql_time(until)}'")
    if root_only:
        conditions.append("is_root")
    return f"SELECT * FROM project_logs('{project_id}') WHERE {' AND '.join(conditions)} LIMIT {limit}"


def _is_timeout(exc: BaseException | None) -> bool:
    """Whether a transport failure was a timeout. After the last retry requests reports a read timeout
    as a ConnectionError wrapping urllib3's MaxRetryError, so look through the chain and its reason."""
    seen = 0
    while exc is not None and seen < 10:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(exc, requests.Timeout) or any(map(_is_urllib3_timeout, (exc, reason))):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _is_urllib3_timeout(error: object) -> bool:
    # urllib3 makes a refused connection a subclass of its timeout error, for old callers' sake.
    return isinstance(error, urllib3.exceptions.TimeoutError) and not isinstance(
        error, urllib3.exceptions.NewConnectionError
    )


class BraintrustClient:
    def __init__(
        self,
        *,
        api_key: str,
        api_url: str,
        timeout: float,
        max_retries: int,
        backoff_seconds: float,
        btql_page_size: int = 1000,
    ):
        self.api_url = api_url.rstrip("/")
        self.btql_page_size = min(btql_page_size, 1000)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._api_key = api_key
        self.session = build_session(timeout=timeout, max_retries=max_retries, backoff_seconds=backoff_seconds)
        # Retries belong to the session's urllib3 Retry, one policy for every endpoint.
        self._sdk = BraintrustOpenApiClient(
            api_key=api_key, api_url=self.api_url, session=self.session, enable_sdk_retries=False
        )

    @classmethod
    def from_config(cls, config) -> "BraintrustClient":
        return cls(
            api_key=config.braintrust_api_key,
            api_url=config.braintrust_api_url,
            timeout=config.http_timeout_seconds,
            max_retries=config.http_max_retries,
            backoff_seconds=config.http_backoff_seconds,
            btql_page_size=config.btql_page_size,
        )

    def close(self) -> None:
        self.session.close()

    # --- the project --------------------------------------------------------------------------

    def get_project(self, project_id: str) -> dict:
        """The project object. Braintrust's listings answer an unknown project with an empty list, so a
        mistyped BRAINTRUST_PROJECT_ID would otherwise look like a project with nothing to do."""
        endpoint = "GET /v1/project/{id}"

        def fetch() -> dict:
            project = self._sdk.projects.get_project_id(project_id)
            if not isinstance(project, dict) or project.get("id") != project_id:
                raise InvalidReply(f"Braintrust's reply to {endpoint} is not project {project_id}.", service=SERVICE)
            return project

        try:
            return self._call(endpoint, fetch)
        except PermanentServiceError as exc:
            if exc.status not in (403, 404):
                raise
            raise ProjectNotFound(
                f"Braintrust has no project {project_id} that this key can read ({endpoint}: HTTP {exc.status}). "
                "Check BRAINTRUST_PROJECT_ID (the project's id, not its name) and the key's permissions.",
                service=SERVICE,
                status=exc.status,
            ) from exc

    # --- listings -----------------------------------------------------------------------------

    def list_project_tags(self, project_id: str) -> list[dict]:
        return self._list("GET /v1/project_tag", self._sdk.project_tags.get_project_tag, project_id)

    def list_datasets(self, project_id: str) -> list[dict]:
        return self._list("GET /v1/dataset", self._sdk.datasets.get_dataset, project_id)

    def _list(self, endpoint: str, fetch: Callable[..., Any], project_id: str) -> list[dict]:
        objects: list[dict] = []
        starting_after = None
        for _ in range(MAX_LIST_PAGES):
            reply = self._call(
                endpoint,
                lambda: fetch(project_id=project_id, limit=LIST_PAGE_SIZE, starting_after=starting_after),
            )
            page = reply.get("objects") if isinstance(reply, dict) else None
            if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
                raise InvalidReply(
                    f"Braintrust's reply to {endpoint} has no 'objects' list; the API may have changed.",
                    service=SERVICE,
                )
            objects.extend(page)
            if len(page) < LIST_PAGE_SIZE:
                return objects
            starting_after = page[-1].get("id")
            if not starting_after:
                raise InvalidReply(f"Braintrust's reply to {endpoint} has an object without an id.", service=SERVICE)
        raise InvalidReply(f"{endpoint} returned more than {MAX_LIST_PAGES} pages; stopping.", service=SERVICE)

    # --- logs ---------------------------------------------------------------------------------

    def iter_log_pages(
        self, *, project_id: str, since: datetime, until: datetime | None = None, root_only: bool = True
    ) -> Iterator[list[dict]]:
        """Yield the project's log rows page by page (at most 1000 rows each), following every cursor."""
        query = build_logs_query(
            project_id=project_id, since=since, until=until, root_only=root_only, limit=self.btql_page_size
        )
        cursor = None
        seen_cursors = set()
        while True:
            body: dict[str, Any] = {"query": query, "fmt": "json"}
            if cursor:
                body["cursor"] = cursor
            rows, cursor = self._call("POST /btql", lambda: self._btql(body))
            if rows:
                yield rows
            if not cursor or not rows:
                return
            if cursor in seen_cursors:
                raise InvalidReply("Braintrust returned the same BTQL cursor twice; stopping.", service=SERVICE)
            seen_cursors.add(cursor)

    def _btql(self, body: dict) -> tuple[list[dict], str | None]:
        try:
            response = self.session.post(
                f"{self.api_url}/btql", json=body, headers={"Authorization": f"Bearer {self._api_key}"}
            )
        except requests.RequestException as exc:
            raise self._transport_error("POST /btql", exc) from exc
        if response.status_code >= 400:
            raise self._status_error("POST /btql", response.status_code, response.text)
        try:
            reply = response.json()
        except ValueError as exc:
            raise InvalidReply("Braintrust's reply to POST /btql is not JSON.", service=SERVICE) from exc
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise InvalidReply(
                "Braintrust's reply to POST /btql has no 'data' list; the API may have changed.", service=SERVICE
            )
        cursor = reply.get("cursor") or response.headers.get("x-bt-cursor") or None
        return data, cursor

    # --- datasets -----------------------------------------------------------------------------

    def insert_dataset_events(self, dataset_id: str, events: list[dict]) -> list[str]:
        """Insert (upsert by ``id``) events into a dataset; return the row ids Braintrust confirmed."""
        endpoint = "POST /v1/dataset/{id}/insert"
        reply = self._call(
            endpoint, lambda: self._sdk.datasets.post_dataset_id_insert(dataset_id, body={"events": events})
        )
        row_ids = reply.get("row_ids") if isinstance(reply, dict) else None
        if not isinstance(row_ids, list) or len(row_ids) != len(events):
            raise InvalidReply(
                f"Braintrust did not confirm the {len(events)} rows sent to dataset {dataset_id}.", service=SERVICE
            )
        return [str(row_id) for row_id in row_ids]

    def iter_dataset_events(self, dataset_id: str, page_size: int = 1000) -> Iterator[list[dict]]:
        endpoint = "POST /v1/dataset/{id}/fetch"
        cursor = None
        while True:
            body: dict[str, Any] = {"limit": page_size}
            if cursor:
                body["cursor"] = cursor
            reply = self._call(endpoint, lambda: self._sdk.datasets.post_dataset_id_fetch(dataset_id, body=body))
            events = reply.get("events") if isinstance(reply, dict) else None
            if not isinstance(events, list):
                raise InvalidReply(f"Braintrust's reply to {endpoint} has no 'events' list.", service=SERVICE)
            if events:
                yield events
            cursor = reply.get("cursor")
            if not cursor or not events:
                return

    # --- errors -------------------------------------------------------------------------------

    def _call(self, endpoint: str, request: Callable[[], T]) -> T:
        """Run one request, translating SDK errors. A garbled 200 (which urllib3 cannot see) gets the
        same bounded number of fresh attempts as any other transient failure."""
        for attempt in range(self.max_retries + 1):
            try:
                return request()
            except BraintrustHTTPError as exc:
                raise self._status_error(endpoint, exc.status_code, exc.response_body) from exc
            except BraintrustTransportError as exc:
                raise self._transport_error(endpoint, exc) from exc
            except (BraintrustJSONDecodeError, InvalidReply) as exc:
                if attempt >= self.max_retries:
                    if isinstance(exc, InvalidReply):
                        raise
                    raise InvalidReply(f"Braintrust's reply to {endpoint} is not JSON.", service=SERVICE) from exc
                logger.warning("braintrust_reply_garbled", endpoint=endpoint, attempt=attempt + 1)
                time.sleep(self.backoff_seconds * (2**attempt))
        raise AssertionError("unreachable")

    def _transport_error(self, endpoint: str, exc: Exception) -> TransientServiceError:
        kind = "timed out" if _is_timeout(exc) else "could not connect"
        return TransientServiceError(
            f"Braintrust {endpoint} {kind} after {self.max_retries + 1} attempts ({self.api_url}). "
            "Check the network and BRAINTRUST_API_URL, then run again.",
            service=SERVICE,
        )

    def _status_error(self, endpoint: str, status: int, body: str | None) -> Exception:
        detail = (body or "").strip().replace("\n", " ")[:MAX_BODY_IN_MESSAGE]
        if status == 401:
            return AuthenticationFailed(
                f"Braintrust refused the API key on {endpoint} (HTTP 401). Check BRAINTRUST_API_KEY.",
                service=SERVICE,
                status=status,
            )
        if status == 403:
            return AuthenticationFailed(
                f"Braintrust denied access on {endpoint} (HTTP 403): the key cannot read this project. "
                f"Check BRAINTRUST_PROJECT_ID and the key's permissions. {detail}",
                service=SERVICE,
                status=status,
            )
        if status in (408, 429) or status >= 500:
            return TransientServiceError(
                f"Braintrust {endpoint} kept failing with HTTP {status} after {self.max_retries + 1} attempts; "
                f"try again later. {detail}",
                service=SERVICE,
                status=status,
            )
        return PermanentServiceError(
            f"Braintrust rejected {endpoint} with HTTP {status}: {detail}", service=SERVICE, status=status
        )
