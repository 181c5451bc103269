"""The sandbox's opaque cursors: for BTQL pages, and for dataset fetch pages.

A BTQL cursor is ``sbx1.`` and URL-safe base64 of ``{"sort": <field>, "desc": <bool>, "after": <key>}``,
the sort it was issued for and the last row's key in it. Clients must treat it as opaque; the sandbox
refuses one it did not issue, or one used with another sort, as a service would refuse a stale token.
"""

import base64
import json

from braintrust_ops_sandbox.btql_model import BadQuery

PREFIX = "sbx1."
# Docs reference/sql: OFFSET takes a cursor only with a cursor-compatible sort; with `created` it cannot advance.
CURSOR_SORTS = ("_pagination_key", "_xact_id")


def _encode(position: object) -> str:
    return PREFIX + base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode(cursor: object) -> object:
    if not isinstance(cursor, str) or not cursor.startswith(PREFIX):
        raise BadQuery("cursor is not one the sandbox issued")
    try:
        return json.loads(base64.urlsafe_b64decode(cursor[len(PREFIX) :].encode()))
    except ValueError:
        raise BadQuery("cursor is not one the sandbox issued") from None


def encode_log_cursor(sort_field: str, descending: bool, after: str) -> str:
    return _encode({"sort": sort_field, "desc": descending, "after": after})


def decode_log_cursor(cursor: str, sort_field: str, descending: bool) -> str:
    """The key to continue after; the cursor must have been issued for this very sort."""
    if sort_field not in CURSOR_SORTS:
        raise BadQuery(f"a cursor cannot advance a sort by {sort_field}; sort by _pagination_key or _xact_id")
    position = _decode(cursor)
    if not (isinstance(position, dict) and isinstance(position.get("after"), str)):
        raise BadQuery("cursor is not one the sandbox issued")
    if (position.get("sort"), position.get("desc")) != (sort_field, descending):
        raise BadQuery("cursor was issued for another sort than this query's")
    return position["after"]


def encode_offset_cursor(offset: int) -> str:
    return _encode(offset)


def decode_offset_cursor(cursor: str) -> int:
    """A dataset fetch cursor: the offset of the next row."""
    position = _decode(cursor)
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise BadQuery("cursor is not one the sandbox issued")
    return position
