"""POST /btql as documented (docs reference/sql and reference/btql): the body's parameters, and which
page carries a cursor.

Body parameters: ``query`` (required; SQL text, pipe text or the structured JSON form), ``fmt`` (only
"json" here), ``tz_offset``, ``audit_log``, ``version`` (accepted, ignored). Any other top-level key is
ignored, as the real service does; notably ``cursor``: it is not an API parameter, the cursor travels
inside the query (SQL ``OFFSET '<cursor>'``, pipe ``cursor: '<cursor>'``, structured ``"cursor"``, the
last being what the SDK's ``ObjectFetcher._refetch`` sends). An earlier sandbox honoured a top-level
cursor, and a client built against it re-read page one forever against the real service.
"""

import re

from braintrust_ops_sandbox.btql_model import BadQuery, LogsQuery
from braintrust_ops_sandbox.btql_structured import parse_structured
from braintrust_ops_sandbox.btql_text import parse_pipe, parse_sql
from braintrust_ops_sandbox.cursors import CURSOR_SORTS, encode_log_cursor

__all__ = ["BadQuery", "LogsQuery", "next_cursor", "parse_request"]

_SQL_START = re.compile(r"^\s*SELECT\s", re.IGNORECASE)


def parse_request(body: dict) -> LogsQuery:
    if body.get("fmt", "json") != "json":
        raise BadQuery(f"fmt {body['fmt']!r} is not supported by the sandbox; use json")
    query = body.get("query")
    if isinstance(query, dict):
        return parse_structured(query)
    if isinstance(query, str) and query.strip():
        return parse_sql(query) if _SQL_START.match(query) else parse_pipe(query)
    raise BadQuery("query is required: SQL or BTQL text, or the structured query object")


def next_cursor(query: LogsQuery, rows: list[dict], *, on_last_page: bool) -> str | None:
    """The cursor a page carries. Every non-empty page does, so the end is a page with no rows (the
    SDK's loop stops on a page without a cursor); with ``on_last_page`` False a short page carries
    none, the other behaviour a client must survive. A ``created`` sort never gets one."""
    if not rows or query.sort_field not in CURSOR_SORTS:
        return None
    if not on_last_page and len(rows) < query.limit:
        return None
    return encode_log_cursor(query.sort_field, query.descending, rows[-1][query.sort_field])
