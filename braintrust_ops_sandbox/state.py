"""What the sandbox's Braintrust holds: project tags, datasets and their rows, project logs.

Every method takes the one lock: the HTTP server answers on many threads while a test adds data.
Times are stored as the ISO strings Braintrust returns (``2026-11-24T10:00:00.000000Z``), which
sort and compare in time order as plain strings.

Each ingestion (a new log, a changed log, a dataset insert) takes the next transaction id: a 19-digit
decimal string like the real ones (``1000192656880881099``), strictly increasing. A log's
``_pagination_key`` is ``p`` and that number in 20 digits, so it sorts in ingestion order too.
"""

import bisect
import copy
import json
import random
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from braintrust_ops_sandbox import log_merge
from braintrust_ops_sandbox.constants import PROJECT_ID, SANDBOX_USER_ID, TIME_FORMAT
from braintrust_ops_sandbox.experiments import Experiments

if TYPE_CHECKING:
    from braintrust_ops_sandbox.btql_model import Condition, LogsQuery

# The first transaction id, shaped like a real one: 19 digits, so they all sort alike as strings too.
FIRST_XACT_ID = 1000192656880000000


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def encode_json(value: object) -> bytes:
    """UTF-8 JSON, as Braintrust sends it; a lone surrogate (no UTF-8 form) goes out as its JSON escape."""
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(value).encode()


class RawJSON:
    """A field's JSON text, served as it is: a value Python's json module could not encode or parse,
    such as an array nested a few thousand levels deep (``add_log(input=RawJSON("[" * 3000 + "]" * 3000))``)."""

    def __init__(self, text: str):
        self.text = text

    def __deepcopy__(self, memo):
        return self


def _encode_row(row: dict) -> bytes:
    raw = {key: value for key, value in row.items() if isinstance(value, RawJSON)}
    if not raw:
        return encode_json(row)
    encoded = encode_json({**row, **{key: f"\x00raw:{key}" for key in raw}})
    for key, value in raw.items():
        encoded = encoded.replace(json.dumps(f"\x00raw:{key}").encode(), value.text.encode())
    return encoded


def _now() -> datetime:
    return datetime.now(UTC)


class SandboxState:
    def __init__(self, id_seed: int = 0):
        self._lock = threading.RLock()
        # Ids come from a seeded generator, so two sandboxes given the same data in the same order hold
        # the same ids: a run under faults can be compared row for row with a fault-free run.
        self._ids = random.Random(id_seed)
        self._tags: list[dict] = []
        self._datasets: dict[str, dict] = {}
        self._dataset_rows: dict[str, dict[str, dict]] = {}
        # In ingestion order, which is _xact_id and _pagination_key order.
        self._logs: list[_StoredLog] = []
        self._xact = FIRST_XACT_ID
        # Experiments and their events (``experiments.py``), with this state's ids and transaction ids.
        self.experiment_store = Experiments(self.new_id, self._next_xact)

    def new_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _next_xact(self) -> int:
        with self._lock:
            self._xact += 1
            return self._xact

    # --- project tags ---------------------------------------------------------------------------

    def add_tag(self, name: str, description: str | None, project_id: str = PROJECT_ID, **fields) -> dict:
        tag = {
            "id": self.new_id(),
            "project_id": project_id,
            "name": name,
            "description": description,
            "color": "#3b82f6",
            "created": iso(_now()),
            "user_id": SANDBOX_USER_ID,
            **fields,
        }
        with self._lock:
            self._tags.append(tag)
        return copy.deepcopy(tag)

    def tags(self, project_id: str | None) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(t) for t in self._tags if project_id is None or t["project_id"] == project_id]

    def clear_tags(self) -> None:
        with self._lock:
            self._tags.clear()

    # --- datasets -------------------------------------------------------------------------------

    def add_dataset(self, name: str, description: str | None, project_id: str = PROJECT_ID) -> dict:
        dataset = {
            "id": self.new_id(),
            "project_id": project_id,
            "name": name,
            # Required by the spec's Dataset; the app opens a dataset by id, never by slug.
            "url_slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dataset",
            "description": description,
            "metadata": None,
            "tags": None,
            "created": iso(_now()),
            "deleted_at": None,
            "user_id": SANDBOX_USER_ID,
        }
        with self._lock:
            self._datasets[dataset["id"]] = dataset
            self._dataset_rows[dataset["id"]] = {}
        return copy.deepcopy(dataset)

    def datasets(self, project_id: str | None) -> list[dict]:
        with self._lock:
            return [
                copy.deepcopy(d) for d in self._datasets.values() if project_id is None or d["project_id"] == project_id
            ]

    def has_dataset(self, dataset_id: str) -> bool:
        with self._lock:
            return dataset_id in self._datasets

    def delete_dataset(self, dataset_id: str) -> None:
        with self._lock:
            self._datasets.pop(dataset_id, None)
            self._dataset_rows.pop(dataset_id, None)

    def clear_datasets(self) -> None:
        with self._lock:
            self._datasets.clear()
            self._dataset_rows.clear()

    def insert_rows(self, dataset_id: str, events: list[dict]) -> list[str]:
        """Upsert by ``id``, as Braintrust does: an event whose id exists replaces that row, one with
        ``_object_delete`` deletes it. The stored
        row carries what the spec's DatasetEvent requires (project_id, span ids, _xact_id...)."""
        with self._lock:
            rows = self._dataset_rows[dataset_id]
            project_id = self._datasets[dataset_id]["project_id"]
            row_ids = []
            for event in events:
                row_id = str(event.get("id") or self.new_id())
                rows.pop(row_id, None)
                if event.get("_object_delete"):
                    # OpenAPI InsertDatasetEvent: "Pass _object_delete=true to mark the dataset event deleted.
                    # Deleted events will not show up in subsequent fetches for this dataset".
                    row_ids.append(row_id)
                    continue
                xact = self._next_xact()
                span_id = event.get("span_id") or row_id
                rows[row_id] = {
                    **copy.deepcopy(event),
                    "id": row_id,
                    "project_id": project_id,
                    "dataset_id": dataset_id,
                    "span_id": span_id,
                    "root_span_id": event.get("root_span_id") or span_id,
                    "is_root": True,
                    "created": event.get("created") or iso(_now()),
                    "_xact_id": str(xact),
                    "_pagination_key": f"p{xact:020d}",
                }
                row_ids.append(row_id)
            return row_ids

    def dataset_rows(self, dataset_id: str) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(row) for row in self._dataset_rows.get(dataset_id, {}).values()]

    def dataset_rows_page(self, dataset_id: str, offset: int, limit: int) -> tuple[list[dict], bool]:
        """Rows [offset, offset + limit), newest ``_xact_id`` first as the spec's fetch pages
        (OpenAPI FetchLimit: "from latest to earliest _xact_id"), and whether more follow."""
        with self._lock:
            # Insertion order is _xact_id order (an upsert moves the row to the end).
            rows = list(reversed(self._dataset_rows[dataset_id].values()))
            return copy.deepcopy(rows[offset : offset + limit]), offset + limit < len(rows)

    # --- experiments ----------------------------------------------------------------------------

    def experiments(self) -> list[dict]:
        """Every experiment, oldest first, each with its ``events`` (copies)."""
        return self.experiment_store.all()

    # --- project logs ---------------------------------------------------------------------------

    def _log_row(self, fields: dict, created: datetime | None) -> dict:
        """A new row without its ingestion keys; ``_ingest`` gives it those when it is stored."""
        log_id = fields.pop("id", self.new_id())
        span_id = fields.pop("span_id", log_id or self.new_id())
        row = {
            "id": log_id,
            "created": iso(created or _now()),
            "project_id": PROJECT_ID,
            "log_id": "g",
            "span_id": span_id,
            "root_span_id": span_id,
            "span_parents": None,
            "is_root": True,
            "input": None,
            "output": None,
            "expected": None,
            "error": None,
            "metadata": {},
            "tags": None,
            "scores": None,
            "metrics": {"start": (created or _now()).timestamp()},
            "context": None,
            "span_attributes": {"name": "chat_turn", "type": "task"},
            **fields,
        }
        if log_id is None:
            # A row Braintrust returned without an id: kept to test that the commands skip it.
            del row["id"]
        return row

    def _ingest(self, row: dict) -> None:
        """Store ``row`` as the newest ingestion. Call with the lock held: the keys are handed out and
        the row appended in one step, so the list stays in key order for bisection."""
        xact = self._next_xact()
        row["_xact_id"] = str(xact)
        row["_pagination_key"] = f"p{xact:020d}"
        self._logs.append(_StoredLog(row, _encode_row(row), xact))

    def _append_logs(self, rows: list[dict]) -> None:
        with self._lock:
            for row in rows:
                self._ingest(row)

    def add_log(self, *, created: datetime | None = None, **fields) -> dict:
        """One log, ingested now whatever its ``created``: an old ``created`` is a log flushed late."""
        row = self._log_row(dict(fields), created)
        self._append_logs([row])
        return copy.deepcopy(row)

    def add_logs(self, count: int, *, created: datetime | Callable[[int], datetime] | None = None, **fields) -> None:
        """Many logs at once; ``created`` may be a function of the log's index. Field values are shared, not copied."""
        rows = []
        for index in range(count):
            moment = created(index) if callable(created) else created
            rows.append(self._log_row(dict(fields), moment))
        self._append_logs(rows)

    def add_trace(
        self, input: Any, output: Any, *, created: datetime, children: int = 2, metadata: dict | None = None, **fields
    ) -> dict:
        """A root span and ``children`` child spans of one trace, as the chatbot's logging produces."""
        root = self._log_row({"input": input, "output": output, "metadata": metadata or {}, **fields}, created)
        rows = [root]
        for index in range(children):
            step = ("retrieve_sources", "generate_answer", "check_citations")[index % 3]
            rows.append(
                self._log_row(
                    {
                        "root_span_id": root["span_id"],
                        "span_parents": [root["span_id"]],
                        "is_root": False,
                        "input": {"step": step, "query": input},
                        "output": {"step": step, "ok": True},
                        "span_attributes": {"name": step, "type": "function"},
                    },
                    created + timedelta(milliseconds=50 * (index + 1)),
                )
            )
        self._append_logs(rows)
        return copy.deepcopy(root)

    def update_log(self, log_id: str, **fields) -> dict:
        """Replace these fields of log ``log_id``, as a score or comment added later does: the row is
        ingested again, with a new ``_xact_id`` and ``_pagination_key`` (OpenAPI ProjectLogsEvent: any
        change is a new transaction), so a ``_xact_id > X`` query finds it again."""
        if isinstance(fields.get("created"), datetime):
            fields["created"] = iso(fields["created"])
        with self._lock:
            position = next((i for i, log in enumerate(self._logs) if log.row.get("id") == log_id), None)
            if position is None:
                raise KeyError(f"no log {log_id!r}")
            # A new dict: a page being written out by a server thread keeps the old row and its JSON.
            row = {**self._logs.pop(position).row, **fields}
            self._ingest(row)
            return copy.deepcopy(row)

    def insert_logs(self, project_id: str, events: list[dict]) -> list[str]:
        """``POST /v1/project_logs/{project_id}/insert``: each event merged into, replacing, deleting or
        adding a log (``log_merge`` says how). A changed row is ingested again, with a new ``_xact_id``, as
        ``update_log``'s is."""
        with self._lock:
            row_ids = []
            for event in events:
                log_id = str(event.get("id") or self.new_id())
                position = next((i for i, log in enumerate(self._logs) if log.row.get("id") == log_id), None)
                stored = self._logs.pop(position).row if position is not None else None
                row_ids.append(log_id)
                if event.get("_object_delete"):
                    continue
                if stored is not None and event.get("_is_merge"):
                    row = log_merge.merged(stored, event)
                else:
                    row = self._log_row({**log_merge.replaced(event), "id": log_id}, None)
                    row["project_id"] = project_id
                self._ingest(row)
            return row_ids

    def log_feedback(self, items: list[dict]) -> None:
        """``POST /v1/project_logs/{project_id}/feedback``: each item's scores merged into its log's (OpenAPI
        FeedbackProjectLogsItem: "merged into the existing scores"), its tags united with the log's, as a merge
        unites them, its comment added to the log's comments. KeyError names an id that is no log."""
        with self._lock:
            for item in items:
                position = next((i for i, log in enumerate(self._logs) if log.row.get("id") == item["id"]), None)
                if position is None:
                    raise KeyError(item["id"])
                event: dict = {"_is_merge": True}
                if item.get("scores"):
                    event["scores"] = item["scores"]
                if item.get("tags") is not None:
                    event["tags"] = item["tags"]
                row = log_merge.merged(self._logs.pop(position).row, event)
                if item.get("comment"):
                    row["comments"] = [*(row.get("comments") or []), {"text": item["comment"]}]
                self._ingest(row)

    def clear_logs(self) -> None:
        with self._lock:
            self._logs.clear()

    def log_count(self) -> int:
        with self._lock:
            return len(self._logs)

    def logs(self) -> list[dict]:
        """Every stored log row, in ingestion order (copies)."""
        with self._lock:
            return [copy.deepcopy(log.row) for log in self._logs]

    def query_logs(self, query: "LogsQuery", after: str | None = None) -> list[tuple[dict, bytes]]:
        """One page of ``query``: (row, its JSON) pairs, continuing after the key ``after`` of the
        query's sort field. Rows are stored in ingestion order, which is both ``_xact_id`` and
        ``_pagination_key`` order, so ranges on those keys and cursors are bisections."""
        with self._lock:
            low, high = 0, len(self._logs)
            for found in query.conditions:
                if found.field in _KEYS and found.op != "eq":
                    low, high = _narrow(self._logs, found, low, high)
            if after is not None:
                key = _KEYS[query.sort_field]
                value = int(after) if query.sort_field == "_xact_id" else after
                if query.descending:
                    high = min(high, bisect.bisect_left(self._logs, value, low, high, key=key))
                else:
                    low = max(low, bisect.bisect_right(self._logs, value, low, high, key=key))
            positions = range(high - 1, low - 1, -1) if query.descending else range(low, high)
            if query.sort_field == "created":
                matched = [log for log in self._matching(query, positions, limit=None)]
                matched.sort(key=lambda log: log.row["created"], reverse=query.descending)
                return [(log.row, log.json) for log in matched[: query.limit]]
            return [(log.row, log.json) for log in self._matching(query, positions, limit=query.limit)]

    def _matching(self, query: "LogsQuery", positions: range, limit: int | None):
        found = 0
        for position in positions:
            log = self._logs[position]
            if log.row["project_id"] == query.project_id and all(c.matches(log.row) for c in query.conditions):
                yield log
                found += 1
                if found == limit:
                    return


class _StoredLog(NamedTuple):
    row: dict
    # Encoded once when stored (and again when updated): a benchmark measures the command, not this fake server.
    json: bytes
    xact: int


# The bisection key of each field whose order is the stored (ingestion) order.
_KEYS: dict[str, Callable[[_StoredLog], Any]] = {
    "_xact_id": lambda log: log.xact,
    "_pagination_key": lambda log: log.row["_pagination_key"],
}


def _narrow(logs: list[_StoredLog], found: "Condition", low: int, high: int) -> tuple[int, int]:
    """[low, high) cut to the rows a range condition on ``_xact_id`` or ``_pagination_key`` can match."""
    key, value = _KEYS[found.field], found.value
    if found.op in ("gt", "ge"):
        cut = (bisect.bisect_right if found.op == "gt" else bisect.bisect_left)(logs, value, low, high, key=key)
        return max(low, cut), high
    cut = (bisect.bisect_left if found.op == "lt" else bisect.bisect_right)(logs, value, low, high, key=key)
    return low, min(high, cut)
