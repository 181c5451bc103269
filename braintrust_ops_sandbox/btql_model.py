"""One BTQL query on ``project_logs``, whichever of the three forms it came in (SQL, pipe, structured).

The parsers in ``btql_text`` and ``btql_structured`` build this; ``state.query_logs`` runs it. What
the sandbox supports is the subset the app needs, checked against Braintrust's docs (reference/sql,
reference/btql) and the braintrust SDK 0.47 (``logger.py`` ``ObjectFetcher._refetch``, ``trace.py``
``_btql_cmp``); anything else is a 400 that names what is unsupported, never a silent guess.
"""

import operator
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from braintrust_ops_sandbox.constants import TIME_FORMAT

# Docs reference/sql: at most 1000 rows a page. A larger LIMIT is cut to it.
MAX_LIMIT = 1000
RANGE_FIELDS = ("created", "_xact_id", "_pagination_key")
ID_FIELDS = ("id", "root_span_id")
SORT_FIELDS = ("_pagination_key", "_xact_id", "created")
# Newest ingestion first when no sort is given: the client must not rely on any order, and an order
# that differs from ``created`` order makes the tests prove it does not.
DEFAULT_SORT = ("_pagination_key", True)
COMPARISONS = {"ge": operator.ge, "gt": operator.gt, "lt": operator.lt, "le": operator.le, "eq": operator.eq}
# Full ISO 8601 with a zone (Z or ±HH:MM), or a date alone (midnight UTC). A time without a zone is
# ambiguous, so it is refused rather than read in some zone.
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2}))?$")
_DECIMAL = re.compile(r"^\d{1,30}$")


class BadQuery(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    """``<field> <op> <value>``, the value already normalised so that comparing it with a row is exact."""

    field: str
    op: str
    value: str | int | bool

    def matches(self, row: dict) -> bool:
        actual = row.get(self.field)
        if actual is None:
            return False
        if self.field == "_xact_id":
            actual = int(actual)  # a decimal string in rows and queries; compared as a number
        return COMPARISONS[self.op](actual, self.value)


@dataclass(frozen=True)
class LogsQuery:
    project_id: str
    conditions: tuple[Condition, ...]
    sort_field: str
    descending: bool
    limit: int
    cursor: str | None


def normalise_time(value: object) -> str:
    """A time literal as the sandbox stores ``created``; stored times share one format, so comparing these
    strings compares the instants (``+02:00`` and ``Z`` forms of one instant are equal)."""
    if not isinstance(value, str) or not _TIME.match(value):
        raise BadQuery(f"time {value!r} is not ISO 8601 with Z or an offset, nor a YYYY-MM-DD date")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:  # a date alone: midnight UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def condition(field: str, op: str, value: object) -> Condition:
    if op not in COMPARISONS:
        raise BadQuery(f"unsupported operator {op!r}; the sandbox supports {', '.join(COMPARISONS)}")
    if field == "created":
        return Condition(field, op, normalise_time(value))
    if field == "_xact_id":
        decimal = isinstance(value, int) or (isinstance(value, str) and _DECIMAL.match(value))
        if isinstance(value, bool) or not decimal:
            raise BadQuery(f"_xact_id {value!r} is not a decimal transaction id")
        return Condition(field, op, int(value))
    if field == "_pagination_key" and isinstance(value, str):
        return Condition(field, op, value)
    if field in ID_FIELDS and op == "eq" and isinstance(value, str):
        return Condition(field, op, value)
    if field == "is_root" and op == "eq" and isinstance(value, bool):
        return Condition(field, op, value)
    raise BadQuery(
        f"unsupported condition {field} {op} {value!r}; the sandbox supports comparisons on "
        f"{', '.join(RANGE_FIELDS)}, equality on {', '.join(ID_FIELDS)} and is_root"
    )


def logs_query(
    *,
    source: str,
    project_id: object,
    conditions: list[Condition],
    sort: tuple[str, str] | None,
    limit: object,
    cursor: object,
) -> LogsQuery:
    """The query, checked; ``sort`` is (field, "asc" | "desc"), None for the default order."""
    if source != "project_logs":
        raise BadQuery(f"unsupported source {source!r}; the sandbox serves project_logs('<project id>') only")
    try:
        project = str(uuid.UUID(str(project_id)))
    except ValueError:
        raise BadQuery(f"project id {project_id!r} is not a UUID") from None
    # Docs reference/sql: without a range filter a project_logs query scans the whole history and can time out.
    if not any(c.field in RANGE_FIELDS or c.field in ID_FIELDS for c in conditions):
        raise BadQuery("project_logs needs a range filter on created, _xact_id or _pagination_key")
    if sort is None:
        sort_field, descending = DEFAULT_SORT
    else:
        sort_field, direction = sort[0], sort[1].lower()
        if sort_field not in SORT_FIELDS or direction not in ("asc", "desc"):
            raise BadQuery(f"unsupported sort {sort[0]} {sort[1]}; sort by {', '.join(SORT_FIELDS)}, asc or desc")
        descending = direction == "desc"
    if limit is None:
        limit = MAX_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadQuery(f"limit {limit!r} must be an integer of at least 1")
    if cursor is not None and not isinstance(cursor, str):
        raise BadQuery("cursor must be a string from a previous page")
    return LogsQuery(project, tuple(conditions), sort_field, descending, min(limit, MAX_LIMIT), cursor or None)
