"""The one shape of BTQL the sandbox understands, and its opaque cursors.

``SELECT * FROM project_logs('<uuid>') WHERE created >= '<iso>' [AND created < '<iso>'] [AND is_root] [LIMIT n]``.
Anything else is a 400, as a query Braintrust cannot parse would be.
"""

import base64
import json
import re
import uuid
from dataclasses import dataclass

MAX_LIMIT = 1000
_QUERY = re.compile(
    r"^\s*SELECT \* FROM project_logs\('(?P<project>[^']*)'\)\s+WHERE\s+(?P<where>.+?)(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SINCE = re.compile(r"^created\s*>=\s*'(?P<time>[^']+)'$", re.IGNORECASE)
_UNTIL = re.compile(r"^created\s*<\s*'(?P<time>[^']+)'$", re.IGNORECASE)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class BadQuery(ValueError):
    pass


@dataclass(frozen=True)
class LogsQuery:
    project_id: str
    since: str
    until: str | None
    root_only: bool
    limit: int


def _time(value: str) -> str:
    # The sandbox compares times as strings, so it insists on the one format the client writes.
    if not _ISO.match(value):
        raise BadQuery(f"time {value!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return value


def parse_logs_query(text: str) -> LogsQuery:
    match = _QUERY.match(text or "")
    if not match:
        raise BadQuery("expected SELECT * FROM project_logs('<id>') WHERE ...")
    try:
        project_id = str(uuid.UUID(match["project"]))
    except ValueError:
        raise BadQuery(f"project id {match['project']!r} is not a UUID") from None
    since = until = None
    root_only = False
    for condition in re.split(r"\s+AND\s+", match["where"].strip(), flags=re.IGNORECASE):
        condition = condition.strip()
        if since_match := _SINCE.match(condition):
            since = _time(since_match["time"])
        elif until_match := _UNTIL.match(condition):
            until = _time(until_match["time"])
        elif condition.lower() == "is_root":
            root_only = True
        else:
            raise BadQuery(f"unsupported condition {condition!r}")
    if since is None:
        raise BadQuery("the sandbox needs a created >= '<time>' condition")
    limit = min(int(match["limit"]), MAX_LIMIT) if match["limit"] else MAX_LIMIT
    if limit < 1:
        raise BadQuery("LIMIT must be at least 1")
    return LogsQuery(project_id=project_id, since=since, until=until, root_only=root_only, limit=limit)


def encode_cursor(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_cursor(cursor: str) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(str(cursor).encode()))
    except (ValueError, TypeError):
        raise BadQuery("cursor is not one the sandbox issued") from None


def decode_log_cursor(cursor: str) -> tuple[str, str]:
    """A BTQL cursor: the (created, id) of the last row of the previous page."""
    position = decode_cursor(cursor)
    if not (isinstance(position, list) and len(position) == 2 and all(isinstance(part, str) for part in position)):
        raise BadQuery("cursor is not one the sandbox issued")
    return position[0], position[1]


def decode_offset_cursor(cursor: str) -> int:
    """A dataset fetch cursor: the offset of the next row."""
    position = decode_cursor(cursor)
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise BadQuery("cursor is not one the sandbox issued")
    return position
