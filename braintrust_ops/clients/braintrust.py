"""The Braintrust boundary: the project, its tags and datasets, log queries, dataset inserts.

The SDK's REST client (``braintrust.api.BraintrustOpenApiClient``) covers the REST endpoints; BTQL it
does not, so that one goes through the same ``requests`` session directly. Retries are the session's
alone (``clients/http.py``): one layer, whatever the endpoint. Every failure leaves this module as one
of the app's exceptions, with the endpoint, the real number of attempts and what to do in its message.
"""

import functools
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import requests
import structlog
import urllib3
from braintrust.api import (
    BraintrustHTTPError,
    BraintrustJSONDecodeError,
    BraintrustOpenApiClient,
    BraintrustTransportError,
)
from braintrust.api.types import (
    CreateExperiment,
    FetchEventsRequest,
    InsertExperimentEventRequest,
    Project,
)

from braintrust_ops.btql_query import MAX_PAGE_ROWS, logs_filter, logs_query, next_page_rows
from braintrust_ops.clients.http import GarbledReply, build_session
from braintrust_ops.conf import OpsConfig, secret_values
from braintrust_ops.exceptions import (
    AuthenticationFailed,
    InvalidReply,
    PermanentServiceError,
    ProjectNotFound,
    TransientServiceError,
)
from braintrust_ops.printable import printable
from braintrust_ops.redaction import redact_exception
from braintrust_ops.seen_ids import SeenIds

if TYPE_CHECKING:
    # The SDK exports the insert request (braintrust.api.types.InsertDatasetEventRequest) but not the
    # type of its events; only mypy reads this private path, so an SDK upgrade that moves it fails lint.
    from braintrust.api._generated.models.datasets import InsertDatasetEvent

logger = structlog.get_logger(__name__)

SERVICE = "Braintrust"
LIST_PAGE_SIZE = 100
# A listing longer than this is a loop on the server's side, not a real project.
MAX_LIST_PAGES = 1000
# The same for BTQL: the SDK stops at 10,000 iterations (logger.py, MAX_BTQL_ITERATIONS).
MAX_BTQL_PAGES = 10_000
# The first page is small: until a page has been seen, nothing says how big a row is.
FIRST_PAGE_ROWS = 100
# BTQL waits this many times HTTP_TIMEOUT_SECONDS for its answer (30 s by default: 45 s). Braintrust's BTQL
# docs give a query 30 s before the server times it out; a client giving up at the same 30 s drops the
# answer (or the server's own time-out error) as it comes, and sends the same slow query again, up to
# HTTP_MAX_RETRIES times, against a budget of about 20 BTQL requests a minute (SPEC.md).
BTQL_TIMEOUT_FACTOR = 1.5
MAX_BODY_IN_MESSAGE = 300

T = TypeVar("T")


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it (cause, else context), at most ten."""
    for _ in range(10):
        if exc is None:
            return
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_timeout(exc: BaseException | None) -> bool:
    """Whether a transport failure was a timeout, looking through the chain and urllib3's reason."""
    for error in _chain(exc):
        reason = getattr(error.args[0], "reason", None) if error.args else None
        if isinstance(error, requests.Timeout) or any(map(_is_urllib3_timeout, (error, reason))):
            return True
    return False


def _is_urllib3_timeout(error: object) -> bool:
    # urllib3 makes a refused connection a subclass of its timeout error, for old callers' sake.
    return isinstance(error, urllib3.exceptions.TimeoutError) and not isinstance(
        error, urllib3.exceptions.NewConnectionError
    )


# A JSON string (escapes included) or a bracket: enough to walk nesting without a recursive parser.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _row_fields(body: bytes, names: tuple[str, ...]) -> dict[str, str]:
    """The string values of ``names`` among the top-level fields of the rows in a BTQL body, found by
    walking the text with a depth count (no recursion), for a row too deep to parse."""
    found: dict[str, str] = {}
    depth, key = 0, None
    for match in _JSON_TOKEN.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth, key = depth + 1, None
        elif token in (b"]", b"}"):
            depth, key = depth - 1, None
        elif depth == 3:  # {"data": [ {row} ]}: the row's own fields are three levels in
            text = json.loads(token)
            if key is None and body[match.end() :].lstrip().startswith(b":"):
                key = text
            elif key is not None:
                if key in names:
                    found[key] = text
                key = None
    return found


def _header_cursor(response: requests.Response) -> str | None:
    return response.headers.get("x-bt-cursor") or response.headers.get("x-amz-meta-bt_cursor") or None


def _in_chain(exc: BaseException | None, kind: type) -> bool:
    return any(isinstance(error, kind) for error in _chain(exc))


class RequestTooLarge(PermanentServiceError):
    """Braintrust refused the request for its size (HTTP 413). The same bytes are refused every time, and the
    session does not retry a 413 (``clients/http.py``, ``RETRY_STATUSES``): a caller may send less, and a
    request of one row can be judged at once, without trying it again on later runs."""


class LogPages:
    """The pages of one BTQL query over a project's logs, cursor after cursor (iterate once).

    Paging as documented (SPEC.md, "BTQL paging"): the cursor goes inside the query; every non-empty
    page may carry one; the end is a page without a cursor, empty or not. An empty page that still
    carries a cursor is not the end: the SDK stops only when the cursor is missing (braintrust 0.48
    ``logger.py``, ``ObjectFetcher._refetch``: ``if not resp_json.get("cursor"): break``); the same
    cursor twice stops an endless loop. The cursor is read from the body, else from the ``x-bt-cursor``
    header, else from ``x-amz-meta-bt_cursor`` (the header in Braintrust's docs' paging example). Rows
    repeated across pages are dropped by id (``duplicates`` counts them). The page size follows the bytes
    of the pages seen (``next_page_rows``).
    """

    def __init__(self, client: "BraintrustClient", *, project_id: str, filter_: dict):
        self._client = client
        self._project_id = project_id
        self._filter = filter_
        self.duplicates = 0
        #: rows nested too deep for any JSON parser here, skipped one by one (see ``_TooDeep``)
        self.unreadable = 0
        #: their ``_xact_id``s, so an ingestion watermark still moves past them
        self.unreadable_xact_ids: list[str] = []

    def __iter__(self) -> Iterator[list[dict]]:
        client = self._client
        seen_ids = SeenIds()
        seen_cursors: set[str] = set()
        cursor = None
        limit = min(FIRST_PAGE_ROWS, client.btql_page_size)
        for _ in range(MAX_BTQL_PAGES):
            query = logs_query(project_id=self._project_id, filter_=self._filter, limit=limit, cursor=cursor)
            skipped = False
            try:
                rows, next_cursor, body_bytes = client.btql(query)
            except _TooDeep as exc:
                # One row nested past the parser's depth must not cost the page: halve the page until it
                # holds that row alone, then step over it with the cursor of its header.
                if limit > 1:
                    limit //= 2
                    continue
                if not exc.cursor:
                    raise InvalidReply(
                        "A log row is nested too deep to read, and Braintrust gave no cursor to step over it.",
                        service=SERVICE,
                    ) from None
                self.unreadable += 1
                fields = _row_fields(exc.body, ("id", "_xact_id"))
                if "_xact_id" in fields:
                    self.unreadable_xact_ids.append(fields["_xact_id"])
                logger.warning(
                    "log_row_unreadable", log_id=fields.get("id", "")[:100], reason="nested too deep to parse"
                )
                rows, next_cursor, body_bytes, skipped = [], exc.cursor, 0, True
            if not rows and not skipped and not next_cursor:
                return
            fresh = []
            for row in rows:
                row_id = row.get("id") if isinstance(row, dict) else None
                if isinstance(row_id, str) and row_id and not seen_ids.add(row_id):
                    self.duplicates += 1
                    continue
                fresh.append(row)
            if fresh:
                yield fresh
            if not next_cursor:
                return
            if next_cursor in seen_cursors:
                raise InvalidReply("Braintrust returned the same BTQL cursor twice; stopping.", service=SERVICE)
            seen_cursors.add(next_cursor)
            cursor = next_cursor
            if rows:
                limit = next_page_rows(
                    rows=len(rows),
                    body_bytes=body_bytes,
                    target_bytes=client.btql_page_bytes,
                    max_rows=client.btql_page_size,
                )
        raise InvalidReply(f"BTQL returned more than {MAX_BTQL_PAGES} pages; stopping.", service=SERVICE)


class BraintrustClient:
    def __init__(
        self,
        *,
        api_key: str,
        api_url: str,
        timeout: float,
        max_retries: int,
        backoff_seconds: float,
        rate_limit_budget_seconds: float = 300.0,
        btql_page_size: int = MAX_PAGE_ROWS,
        btql_page_bytes: int = 8 * 2**20,
        btql_timeout: float | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        # BTQL's own read time-out (BTQL_TIMEOUT_FACTOR says why); None: the session's.
        self.btql_timeout = btql_timeout
        self.btql_page_size = min(btql_page_size, MAX_PAGE_ROWS)
        self.btql_page_bytes = btql_page_bytes
        self._api_key = api_key
        self.session = build_session(
            timeout=timeout,
            max_retries=max_retries,
            backoff_seconds=backoff_seconds,
            rate_limit_budget=rate_limit_budget_seconds,
        )
        # Retries belong to the session, one policy for every endpoint; the SDK's own loop stays off.
        self._sdk = BraintrustOpenApiClient(
            api_key=api_key, api_url=self.api_url, session=self.session, enable_sdk_retries=False
        )

    @classmethod
    def from_config(cls, config: OpsConfig) -> "BraintrustClient":
        return cls(
            api_key=config.required("braintrust_api_key"),
            api_url=config.braintrust_api_url,
            timeout=config.http_timeout_seconds,
            max_retries=config.http_max_retries,
            backoff_seconds=config.http_backoff_seconds,
            rate_limit_budget_seconds=config.http_rate_limit_budget_seconds,
            btql_page_size=config.btql_page_size,
            btql_page_bytes=config.btql_page_bytes,
            btql_timeout=config.http_timeout_seconds * BTQL_TIMEOUT_FACTOR,
        )

    def close(self) -> None:
        self.session.close()

    # --- the project --------------------------------------------------------------------------

    def get_project(self, project_id: str) -> Project:
        """The project object. Braintrust's listings answer an unknown project with an empty list, so a
        mistyped BRAINTRUST_PROJECT_ID would otherwise look like a project with nothing to do."""
        endpoint = "GET /v1/project/{id}"
        try:
            project = self._call(endpoint, lambda: self._sdk.projects.get_project_id(project_id))
        except PermanentServiceError as exc:
            if exc.status not in (403, 404):
                raise
            raise ProjectNotFound(
                f"Braintrust has no project {project_id} that this key can read ({endpoint}: HTTP {exc.status}). "
                "Check BRAINTRUST_PROJECT_ID (the project's id, not its name) and the key's permissions.",
                service=SERVICE,
                status=exc.status,
            ) from exc
        if not isinstance(project, dict) or project.get("id") != project_id:
            raise InvalidReply(f"Braintrust's reply to {endpoint} is not project {project_id}.", service=SERVICE)
        return project

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
                functools.partial(fetch, project_id=project_id, limit=LIST_PAGE_SIZE, starting_after=starting_after),
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

    def log_pages(
        self,
        *,
        project_id: str,
        since: datetime,
        until: datetime | None = None,
        after_xact_id: str | None = None,
        root_only: bool = True,
    ) -> LogPages:
        """The project's log rows created in [since, until), and ingested after ``after_xact_id`` when
        given, page by page; see ``LogPages``."""
        filter_ = logs_filter(since=since, until=until, after_xact_id=after_xact_id, root_only=root_only)
        return LogPages(self, project_id=project_id, filter_=filter_)

    def btql(self, query: dict) -> tuple[list[dict], str | None, int]:
        """One BTQL request: (rows, the cursor for the next page or None, the body's size in bytes)."""
        endpoint = "POST /btql"
        # brainstore_realtime: the SDK always sends it (braintrust 0.48 ``logger.py``, ``ObjectFetcher._refetch``
        # sends ``"brainstore_realtime": self._internal_brainstore_realtime``, True by default), so logs just
        # ingested and not yet indexed are read too.
        body = {"query": query, "fmt": "json", "brainstore_realtime": True}
        response = self._call(endpoint, lambda: self._post_btql(body))
        try:
            reply = response.json()  # parsed once, by the session (clients/http.py, _parse_body)
        except RecursionError:
            raise _TooDeep(_header_cursor(response), response.content) from None
        except ValueError as exc:  # the session checked the body already; this is only a safety net
            raise InvalidReply(f"Braintrust's reply to {endpoint} is not JSON.", service=SERVICE) from exc
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise InvalidReply(
                f"Braintrust's reply to {endpoint} has no 'data' list; the API may have changed.", service=SERVICE
            )
        cursor = reply.get("cursor") or _header_cursor(response)
        return data, cursor, len(response.content)

    def _post_btql(self, body: dict) -> requests.Response:
        response = self.session.request(
            "POST",
            f"{self.api_url}/btql",
            json=body,
            headers={"Authorization": f"Bearer {self._api_key}"},
            read_timeout=self.btql_timeout,
        )
        if response.status_code >= 400:
            raise _HTTPStatus(response.status_code, response.text)
        return response

    # --- datasets -----------------------------------------------------------------------------

    def insert_dataset_events(self, dataset_id: str, events: list["InsertDatasetEvent"]) -> list[str]:
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
            body: FetchEventsRequest = {"limit": page_size}
            if cursor:
                body["cursor"] = cursor
            reply = self._call(
                endpoint, functools.partial(self._sdk.datasets.post_dataset_id_fetch, dataset_id, body=body)
            )
            events = reply.get("events") if isinstance(reply, dict) else None
            if not isinstance(events, list):
                raise InvalidReply(f"Braintrust's reply to {endpoint} has no 'events' list.", service=SERVICE)
            if events:
                yield events
            cursor = reply.get("cursor")
            if not cursor or not events:
                return

    # --- project logs -------------------------------------------------------------------------

    def merge_log_events(self, project_id: str, events: list[dict]) -> list[str]:
        """Merge events into the project's logs (``POST /v1/project_logs/{project_id}/insert``); return the row
        ids Braintrust confirmed. Each event carries ``_is_merge: true``: OpenAPI ``InsertProjectLogsEvent``
        deep-merges it into the row with its id, where the default would replace the whole row. The generated
        SDK has no project-logs resource (braintrust 0.47 and 0.48, ``api/_generated``), so the request goes
        through the session, as BTQL's does."""
        endpoint = "POST /v1/project_logs/{id}/insert"
        if any(event.get("_is_merge") is not True for event in events):
            raise ValueError("every write to a source log must be a merge: a plain insert replaces the row")
        reply = self._call(endpoint, lambda: self._post_json(f"/v1/project_logs/{project_id}/insert", events))
        row_ids = reply.get("row_ids") if isinstance(reply, dict) else None
        if not isinstance(row_ids, list) or len(row_ids) != len(events):
            raise InvalidReply(
                f"Braintrust did not confirm the {len(events)} log updates sent to project {project_id}.",
                service=SERVICE,
            )
        return [str(row_id) for row_id in row_ids]

    def _post_json(self, path: str, events: list[dict]) -> Any:
        response = self.session.request(
            "POST",
            f"{self.api_url}{path}",
            json={"events": events},
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        if response.status_code >= 400:
            raise _HTTPStatus(response.status_code, response.text)
        return response.json()  # parsed once, by the session (clients/http.py, _parse_body)

    # --- experiments --------------------------------------------------------------------------
    # Through the SDK's generated resource, which has all four operations in braintrust 0.47 and 0.48 alike
    # (``api/_generated/experiments.py``: post_experiment, get_experiment, post_experiment_id_insert,
    # get_experiment_id_summarize), so no request here goes through the bare session.

    def create_experiment(
        self,
        project_id: str,
        *,
        name: str,
        description: str = "",
        base_experiment_id: str | None = None,
        metadata: dict | None = None,
    ) -> dict:
        """A new experiment in the project (``POST /v1/experiment``); returns the Experiment object.

        ``ensure_new``: without it a name already taken returns that experiment "unmodified" and the events
        would join an older run's (OpenAPI ``CreateExperiment``); with it Braintrust picks "a new experiment
        with a unique name in case of a conflict", so the name to show is the reply's, not ``name``. A retry
        after a reply lost on the way back can leave one empty experiment beside the one that is used."""
        endpoint = "POST /v1/experiment"
        body: CreateExperiment = {
            "project_id": project_id,
            "name": name,
            "description": description,
            "ensure_new": True,
        }
        if base_experiment_id is not None:
            body["base_exp_id"] = base_experiment_id
        if metadata is not None:
            body["metadata"] = metadata
        experiment = self._call(endpoint, lambda: self._sdk.experiments.post_experiment(body=body))
        if not (
            isinstance(experiment, dict)
            and isinstance(experiment.get("id"), str)
            and experiment["id"]
            and isinstance(experiment.get("name"), str)
        ):
            raise InvalidReply(f"Braintrust's reply to {endpoint} is not an experiment with an id.", service=SERVICE)
        return dict(experiment)

    def list_experiments(self, project_id: str) -> list[dict]:
        """The project's experiments, every page, in the API's order: "the most recently-created experiments
        coming first" (OpenAPI ``getExperiment``)."""
        return self._list("GET /v1/experiment", self._sdk.experiments.get_experiment, project_id)

    def insert_experiment_events(self, experiment_id: str, events: list[dict]) -> list[str]:
        """Insert (upsert by ``id``) events into an experiment; return the row ids Braintrust confirmed."""
        endpoint = "POST /v1/experiment/{id}/insert"
        # The events are the caller's plain dicts; the SDK's TypedDict only describes the same JSON.
        body = cast(InsertExperimentEventRequest, {"events": events})
        reply = self._call(endpoint, lambda: self._sdk.experiments.post_experiment_id_insert(experiment_id, body=body))
        row_ids = reply.get("row_ids") if isinstance(reply, dict) else None
        if not isinstance(row_ids, list) or len(row_ids) != len(events):
            raise InvalidReply(
                f"Braintrust did not confirm the {len(events)} events sent to experiment {experiment_id}.",
                service=SERVICE,
            )
        return [str(row_id) for row_id in row_ids]

    def summarize_experiment(self, experiment_id: str, *, comparison_experiment_id: str | None = None) -> dict:
        """The experiment's summary with its scores (``GET /v1/experiment/{id}/summarize``, ``summarize_scores``
        true: without it "only the metadata will be returned"). Against ``comparison_experiment_id`` when given,
        else, as Braintrust falls back, its ``base_exp_id``, then the project's most recent experiment
        (OpenAPI ``ComparisonExperimentId``). ``scores`` and ``metrics`` are ``{}`` when the reply has none
        (both are optional and nullable in ``SummarizeExperimentResponse``)."""
        endpoint = "GET /v1/experiment/{id}/summarize"
        reply = self._call(
            endpoint,
            lambda: self._sdk.experiments.get_experiment_id_summarize(
                experiment_id, summarize_scores=True, comparison_experiment_id=comparison_experiment_id
            ),
        )
        summary = dict(reply) if isinstance(reply, dict) else None
        if summary is None or not all(
            isinstance(summary.get(key), str)
            for key in ("project_name", "experiment_name", "project_url", "experiment_url")
        ):
            raise InvalidReply(f"Braintrust's reply to {endpoint} is not an experiment summary.", service=SERVICE)
        summary["scores"] = summary.get("scores") or {}
        summary["metrics"] = summary.get("metrics") or {}
        summary["comparison_experiment_name"] = summary.get("comparison_experiment_name")
        scores, metrics = summary["scores"], summary["metrics"]
        if not (
            isinstance(scores, dict)
            and all(isinstance(item, dict) and isinstance(item.get("score"), int | float) for item in scores.values())
            and isinstance(metrics, dict)
            and isinstance(summary["comparison_experiment_name"], str | None)
        ):
            raise InvalidReply(
                f"Braintrust's reply to {endpoint} has scores, metrics or a comparison name not in the API's shape.",
                service=SERVICE,
            )
        return summary

    # --- errors -------------------------------------------------------------------------------

    def _call(self, endpoint: str, request: Callable[[], T]) -> T:
        """Run one request (the session retries it) and translate what is left into the app's errors."""
        try:
            return request()
        except (BraintrustHTTPError, _HTTPStatus) as exc:
            # A server may echo the request's Authorization header in its body: gone before anything reads it.
            redact_exception(exc, [self._api_key, *secret_values()])
            raise self._status_error(endpoint, exc.status_code, exc.response_body) from exc
        except BraintrustJSONDecodeError as exc:
            raise InvalidReply(f"Braintrust's reply to {endpoint} is not JSON.", service=SERVICE) from exc
        except (BraintrustTransportError, requests.RequestException) as exc:
            raise self._transport_error(endpoint, exc) from exc

    def _attempts(self) -> str:
        count = self.session.last_attempts().count
        return f"{count} attempt" if count == 1 else f"{count} attempts"

    def _transport_error(self, endpoint: str, exc: Exception) -> TransientServiceError:
        if _in_chain(exc, GarbledReply):
            return InvalidReply(
                f"Braintrust's reply to {endpoint} was not JSON after {self._attempts()} (a proxy's error page, "
                "or a reply cut short); try again later.",
                service=SERVICE,
            )
        if _in_chain(exc, requests.TooManyRedirects):
            # Raised by the session once the hops have used up the attempts (clients/http.py, ``send``).
            return TransientServiceError(
                f"Braintrust {endpoint} kept redirecting after {self._attempts()} ({self.api_url}), and its API "
                "documents no redirect: check BRAINTRUST_API_URL, then run again.",
                service=SERVICE,
            )
        if _in_chain(exc, requests.exceptions.ChunkedEncodingError):
            kind = "kept being cut off mid-reply"
        else:
            kind = "timed out" if _is_timeout(exc) else "could not connect"
        return TransientServiceError(
            f"Braintrust {endpoint} {kind} after {self._attempts()} ({self.api_url}). "
            "Check the network and BRAINTRUST_API_URL, then run again.",
            service=SERVICE,
        )

    def _status_error(self, endpoint: str, status: int, body: str | None) -> Exception:
        detail = printable((body or "").strip().replace("\n", " "), limit=MAX_BODY_IN_MESSAGE)
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
        if status == 429:
            attempts = self.session.last_attempts()
            return TransientServiceError(
                f"Braintrust kept rate-limiting {endpoint} (HTTP 429): waited {attempts.rate_limited_seconds:.0f}s "
                f"over {self._attempts()}, and the next wait ({attempts.refused_wait:.0f}s) would pass the "
                "BRAINTRUST_OPS_HTTP_RATE_LIMIT_BUDGET_SECONDS budget. Run again later, or raise that budget.",
                service=SERVICE,
                status=status,
            )
        if status == 413:
            return RequestTooLarge(
                f"Braintrust refused {endpoint} as too large (HTTP 413): this deployment takes smaller requests; "
                f"lower BRAINTRUST_OPS_PUSH_MAX_REQUEST_BYTES, then run again. Braintrust said: {detail}",
                service=SERVICE,
                status=status,
            )
        if status == 408 or status >= 500:
            return TransientServiceError(
                f"Braintrust {endpoint} kept failing with HTTP {status} after {self._attempts()}; "
                f"try again later. {detail}",
                service=SERVICE,
                status=status,
            )
        return PermanentServiceError(
            f"Braintrust rejected {endpoint} with HTTP {status}; {_advice(endpoint, status)} Braintrust said: {detail}",
            service=SERVICE,
            status=status,
        )


# What to do about a request Braintrust refuses for good, by route and status. The OpenAPI spec
# (reference/braintrust-openapi.json) answers 400 "The request was unacceptable, often due to missing a
# required parameter"; the only parameter of ours a user sets is the project id, a UUID (``ProjectIdParam``,
# ``ProjectIdQuery``: ``format: uuid``). A 404 on a listing or on /btql means the route itself is missing
# there: the API URL points somewhere else than a Braintrust API (EU and self-hosted ones differ, SPEC.md).
_CHECK_PROJECT = "check BRAINTRUST_PROJECT_ID (the project's id, a UUID, not its name), then run again."
_CHECK_URL = "check BRAINTRUST_API_URL (EU and self-hosted deployments have their own), then run again."
_ADVICE = {
    ("GET /v1/project/{id}", 400): _CHECK_PROJECT,
    ("GET /v1/project_tag", 400): _CHECK_PROJECT,
    ("GET /v1/dataset", 400): _CHECK_PROJECT,
    ("POST /btql", 400): "check BRAINTRUST_PROJECT_ID, then run again; if it is right, the query is this app's: "
    "report this message.",
    ("POST /v1/dataset/{id}/fetch", 400): "check BRAINTRUST_API_URL, then run again; if it is right, report this "
    "message.",
    ("POST /v1/dataset/{id}/fetch", 404): "the dataset was deleted or moved since it was listed: check the "
    "project's datasets, then run again.",
    ("POST /v1/experiment", 400): "check BRAINTRUST_PROJECT_ID (the project's id, a UUID, not its name), then run "
    "again; if it is right, report this message.",
    ("GET /v1/experiment", 400): _CHECK_PROJECT,
    # OpenAPI InsertExperimentEvent: scores are numbers between 0 and 1; an event out of shape is this app's doing.
    ("POST /v1/experiment/{id}/insert", 400): "an event is not what the API takes (a score must lie between 0 and "
    "1); run again, and if it fails the same way, report this message.",
    ("POST /v1/experiment/{id}/insert", 404): "the experiment was deleted since it was created; run again to "
    "record a new one.",
    ("GET /v1/experiment/{id}/summarize", 400): "the experiment to compare against may be gone or in another "
    "project; run again, and if it fails the same way, report this message.",
    ("GET /v1/experiment/{id}/summarize", 404): "the experiment was deleted since it was created; run again to "
    "record a new one.",
}


def _advice(endpoint: str, status: int) -> str:
    if (endpoint, status) in _ADVICE:
        return _ADVICE[endpoint, status]
    if status == 404:
        return _CHECK_URL
    return "check BRAINTRUST_PROJECT_ID and BRAINTRUST_API_URL, then run again; if both are right, report this message."


class _TooDeep(Exception):
    """A BTQL page the json module cannot parse: a row nested past its recursion limit (about 1000
    levels). ``cursor``: the page's ``x-bt-cursor`` header, which still says where the page ended."""

    def __init__(self, cursor: str | None, body: bytes):
        super().__init__("a row nested too deep to parse")
        self.cursor = cursor
        self.body = body


class _HTTPStatus(Exception):
    """An error status on the BTQL request, which does not go through the SDK."""

    def __init__(self, status_code: int, response_body: str):
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.response_body = response_body
