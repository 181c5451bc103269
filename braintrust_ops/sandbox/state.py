"""What the sandbox's Braintrust holds: project tags, datasets and their rows, project logs.

Every method takes the one lock: the HTTP server answers on many threads while a test adds data.
Times are stored as the ISO strings Braintrust returns (``2026-11-24T10:00:00.000000Z``), which
sort and compare in time order as plain strings.
"""

import bisect
import copy
import json
import random
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from braintrust_ops.sandbox.constants import PROJECT_ID

MISSING_ID = ""


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_json(value: object) -> bytes:
    """UTF-8 JSON, as Braintrust sends it; a lone surrogate (no UTF-8 form) goes out as its JSON escape."""
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(value).encode()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _log_sort_key(row: dict) -> tuple[str, str]:
    return (row["created"], row.get("id") or MISSING_ID)


class SandboxState:
    def __init__(self, id_seed: int = 0):
        self._lock = threading.RLock()
        # Ids come from a seeded generator, so two sandboxes given the same data in the same order hold
        # the same ids: a run under faults can be compared row for row with a fault-free run.
        self._ids = random.Random(id_seed)
        self._tags: list[dict] = []
        self._datasets: dict[str, dict] = {}
        self._dataset_rows: dict[str, dict[str, dict]] = {}
        self._logs: list[dict] = []
        self._log_keys: list[tuple[str, str]] = []
        self._logs_sorted = True
        # Each log's JSON, encoded once when added: a benchmark measures the command, not this fake server.
        self._log_json: dict[int, bytes] = {}
        self._xact = 0

    def new_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _next_xact(self) -> str:
        self._xact += 1
        return str(1000000000000 + self._xact)

    # --- project tags ---------------------------------------------------------------------------

    def add_tag(self, name: str, description: str | None, project_id: str = PROJECT_ID, **fields) -> dict:
        tag = {
            "id": self.new_id(),
            "project_id": project_id,
            "name": name,
            "description": description,
            "color": "#3b82f6",
            "created": iso(_now()),
            "user_id": "sandbox-user",
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
            "description": description,
            "metadata": None,
            "created": iso(_now()),
            "user_id": "sandbox-user",
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
        """Upsert by ``id``, as Braintrust does: an event whose id exists replaces that row."""
        with self._lock:
            rows = self._dataset_rows[dataset_id]
            row_ids = []
            for event in events:
                row_id = str(event.get("id") or self.new_id())
                rows.pop(row_id, None)
                rows[row_id] = {
                    **copy.deepcopy(event),
                    "id": row_id,
                    "dataset_id": dataset_id,
                    "created": iso(_now()),
                    "_xact_id": self._next_xact(),
                }
                row_ids.append(row_id)
            return row_ids

    def dataset_rows(self, dataset_id: str) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(row) for row in self._dataset_rows.get(dataset_id, {}).values()]

    def dataset_rows_page(self, dataset_id: str, offset: int, limit: int) -> tuple[list[dict], bool]:
        """Rows [offset, offset + limit) and whether more follow."""
        with self._lock:
            rows = list(self._dataset_rows[dataset_id].values())
            return copy.deepcopy(rows[offset : offset + limit]), offset + limit < len(rows)

    # --- project logs ---------------------------------------------------------------------------

    def _log_row(self, fields: dict, created: datetime | None) -> dict:
        log_id = fields.pop("id", self.new_id())
        span_id = fields.pop("span_id", log_id or self.new_id())
        row = {
            "id": log_id,
            "_xact_id": self._next_xact(),
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

    def _append_logs(self, rows: list[dict]) -> None:
        encoded = {id(row): encode_json(row) for row in rows}
        with self._lock:
            self._log_json.update(encoded)
            self._logs.extend(rows)
            self._logs_sorted = False

    def add_log(self, *, created: datetime | None = None, **fields) -> dict:
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

    def clear_logs(self) -> None:
        with self._lock:
            self._logs.clear()
            self._log_json.clear()
            self._log_keys.clear()
            self._logs_sorted = True

    def log_count(self) -> int:
        with self._lock:
            return len(self._logs)

    def log_json(self, row: dict) -> bytes:
        """A row returned by ``query_logs``, as JSON."""
        return self._log_json[id(row)]

    def query_logs(
        self,
        *,
        project_id: str,
        since: str,
        until: str | None,
        root_only: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> tuple[list[dict], tuple[str, str] | None]:
        """One page of logs in (created, id) order, and the key to continue after (None on the last page)."""
        with self._lock:
            if not self._logs_sorted:
                self._logs.sort(key=_log_sort_key)
                self._log_keys = [_log_sort_key(row) for row in self._logs]
                self._logs_sorted = True
            start = bisect.bisect_right(self._log_keys, after) if after else bisect.bisect_left(self._log_keys, (since,))
            page: list[dict] = []
            for position in range(start, len(self._logs)):
                row = self._logs[position]
                if until is not None and row["created"] >= until:
                    break
                if row["project_id"] != project_id or (root_only and not row["is_root"]):
                    continue
                if len(page) == limit:
                    return page, _log_sort_key(page[-1])
                page.append(row)
            return page, None
