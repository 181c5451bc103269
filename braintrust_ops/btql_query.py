"""The BTQL query for a project's logs, in the structured (JSON) form the braintrust SDK itself sends.

Why this form: it is the one proven by the SDK's own use. ``ObjectFetcher._refetch`` (braintrust 0.47,
``logger.py``) pages project logs with ``{"query": {"select", "from", "cursor", "limit", **filters}}``,
the cursor *inside* the query; a top-level ``cursor`` body field is not an API parameter and the
service ignores it (docs reference/btql: the parameters are query, fmt, tz_offset, audit_log, version).
The expression shapes are the SDK's too (``braintrust/trace.py``: ``_btql_cmp`` and
``SpanFetcher._build_filter``, an ``and`` with ``children``; ``_span_filter_clauses`` compares with
``ge`` and ``le``, and the SQL docs list ``>`` and ``<`` beside them). The fields are the OpenAPI
spec's ``ProjectLogsEvent``: ``created``, ``is_root``, ``_xact_id`` ("monotonically increasing over
time") and ``_pagination_key``. No sort is sent, as the SDK sends none:
the service's default order is the one its cursors page through, and nothing here depends on order.

Values are literals inside a JSON structure, never spliced into query text, so nothing can inject.
"""

import re
from datetime import UTC, datetime
from typing import Any

#: Braintrust's largest page (docs reference/sql: at most 1000 rows a page).
MAX_PAGE_ROWS = 1000
# ASCII digits only: str.isdigit and \d take other scripts' digits too.
_DECIMAL = re.compile(r"[0-9]+")


def btql_time(moment: datetime) -> str:
    """A UTC ISO 8601 time with microseconds, as Braintrust writes ``created``; ValueError for a time UTC
    cannot hold (the first hours of year 1, given east of Greenwich)."""
    if moment.tzinfo is None:
        # A programming error (--since/--until arrive aware, naive ones taken as UTC by iso_time): the
        # wording is for a developer's traceback, and its mutants (case, None) are not behaviour.
        raise ValueError("BTQL times must be timezone-aware")  # pragma: no mutate (see above)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of the range of UTC times") from None
    # isoformat, not strftime: glibc's %Y writes the year 999 as "999", which no ISO 8601 reader takes.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def is_xact_id(value: object) -> bool:
    """Whether ``value`` is an ``_xact_id``: a string of decimal digits (OpenAPI ProjectLogsEvent:
    "monotonically increasing over time"; the BTQL filter compares it as a number)."""
    return isinstance(value, str) and _DECIMAL.fullmatch(value) is not None


def _compare(op: str, field: str, value: Any) -> dict:
    return {"op": op, "left": {"op": "ident", "name": [field]}, "right": {"op": "literal", "value": value}}


def logs_filter(
    *, since: datetime, until: datetime | None = None, after_xact_id: str | None = None, root_only: bool = True
) -> dict:
    """created in [since, until), ingested after ``after_xact_id``, root spans only when asked.

    The ``created`` lower bound is always there: a ``project_logs`` query without a range filter scans
    the whole history and can time out (docs reference/sql)."""
    conditions = [_compare("ge", "created", btql_time(since))]
    if until is not None:
        conditions.append(_compare("lt", "created", btql_time(until)))
    if after_xact_id is not None:
        if not is_xact_id(after_xact_id):
            raise ValueError(f"{after_xact_id!r} is not a decimal transaction id (_xact_id)")
        # _xact_id is "monotonically increasing over time" (OpenAPI ProjectLogsEvent): a log ingested or
        # changed after the last run has a greater one, whatever its `created` says.
        conditions.append(_compare("gt", "_xact_id", after_xact_id))
    if root_only:
        conditions.append(_compare("eq", "is_root", True))
    return {"op": "and", "children": conditions}


def logs_query(*, project_id: str, filter_: dict, limit: int, cursor: str | None) -> dict:
    """One page's query. ``project_id`` must be a canonical UUID (conf validates it)."""
    return {
        "select": [{"op": "star"}],
        "from": {
            "op": "function",
            "name": {"op": "ident", "name": ["project_logs"]},
            "args": [{"op": "literal", "value": project_id}],
        },
        "filter": filter_,
        "limit": limit,
        "cursor": cursor,
    }


def next_page_rows(*, rows: int, body_bytes: int, target_bytes: int, max_rows: int) -> int:
    """How many rows to ask for next, so a page's body stays near ``target_bytes`` whatever the row size.

    Memory follows bytes, not rows: 1000 chat rows of 40 KB each are 40 MB of JSON, several times that
    once parsed, and the backup holds two pages (the next one downloads meanwhile). The last page's
    bytes per row predict the next page's."""
    # `body_bytes <= 1` (mutmut) is equivalent in practice: one byte a page predicts a page far above
    # max_rows for any target of more than max_rows bytes (the target is megabytes).
    if rows <= 0 or body_bytes <= 0:
        return max_rows
    per_row = body_bytes / rows
    return max(1, min(max_rows, int(target_bytes / per_row)))
