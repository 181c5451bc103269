"""BTQL's two text forms (docs reference/sql and reference/btql), parsed into a ``LogsQuery``.

SQL:  ``SELECT * FROM project_logs('<id>') WHERE <conds> [ORDER BY <field> [ASC|DESC]] [LIMIT n]
      [OFFSET '<cursor>']``
Pipe: ``select: * | from: project_logs('<id>') | filter: <conds> | sort: <field> [asc|desc] | limit: n
      | cursor: '<cursor>'``
(pipe clauses separated by ``|`` or newlines). Conditions are joined by AND; SQL's OFFSET takes only a
cursor string from a previous page, never a row count.
"""

import re

from braintrust_ops_sandbox.btql_model import BadQuery, Condition, LogsQuery, condition, logs_query

_SQL = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<source>\w+)\s*\(\s*'(?P<project>[^']*)'\s*\)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<sort>\w+)(?:\s+(?P<dir>ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>-?\d+))?"
    r"(?:\s+OFFSET\s+'(?P<cursor>[^']*)')?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_FROM = re.compile(r"^(?P<source>\w+)\s*\(\s*'(?P<project>[^']*)'\s*\)$")
_SORT = re.compile(r"^(?P<field>\w+)(?:\s+(?P<dir>asc|desc))?$", re.IGNORECASE)
_COMPARISON = re.compile(r"^(?P<field>\w+)\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>.+)$", re.DOTALL)
_OPS = {">=": "ge", ">": "gt", "<": "lt", "<=": "le", "=": "eq"}
# Separators count only outside '...' literals; the lookahead sees an even number of quotes after them.
_OUTSIDE_QUOTES = r"(?=(?:[^']*'[^']*')*[^']*$)"
_AND = re.compile(r"\s+AND\s+" + _OUTSIDE_QUOTES, re.IGNORECASE)
_PIPE = re.compile(r"[|\n]" + _OUTSIDE_QUOTES)


def _literal(text: str) -> object:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if text.isdigit():
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise BadQuery(f"unsupported literal {text!r}")


def _conditions(text: str | None) -> list[Condition]:
    if not text:
        return []
    found = []
    for part in _AND.split(text.strip()):
        part = part.strip()
        if part.lower() == "is_root":  # a bare boolean column
            found.append(condition("is_root", "eq", True))
        elif match := _COMPARISON.match(part):
            found.append(condition(match["field"], _OPS[match["op"]], _literal(match["value"])))
        else:
            raise BadQuery(f"unsupported condition {part!r}")
    return found


def _star(select: str) -> None:
    if select.strip() != "*":
        raise BadQuery(f"unsupported select {select.strip()!r}; the sandbox answers SELECT * only")


def parse_sql(text: str) -> LogsQuery:
    match = _SQL.match(text)
    if not match:
        if re.search(r"\bOFFSET\s+\d", text, re.IGNORECASE):
            raise BadQuery("OFFSET takes a cursor string from a previous page, not a row count")
        raise BadQuery("expected SELECT * FROM project_logs('<id>') WHERE ... [ORDER BY f] [LIMIT n] [OFFSET ...]")
    _star(match["select"])
    return logs_query(
        source=match["source"].lower(),
        project_id=match["project"],
        conditions=_conditions(match["where"]),
        sort=(match["sort"], match["dir"] or "asc") if match["sort"] else None,
        limit=int(match["limit"]) if match["limit"] else None,
        cursor=match["cursor"],
    )


def parse_pipe(text: str) -> LogsQuery:
    clauses: dict[str, str] = {}
    for part in _PIPE.split(text):
        if not part.strip():
            continue
        name, colon, value = part.partition(":")
        name = name.strip().lower()
        if not colon or name not in ("select", "from", "filter", "sort", "limit", "cursor"):
            raise BadQuery(f"unsupported clause {part.strip()!r}")
        if name in clauses:
            raise BadQuery(f"clause {name!r} given twice")
        clauses[name] = value.strip()
    _star(clauses.get("select", "*"))
    source = _FROM.match(clauses.get("from", ""))
    if not source:
        raise BadQuery("expected from: project_logs('<id>')")
    sort = _SORT.match(clauses["sort"]) if "sort" in clauses else None
    if "sort" in clauses and not sort:
        raise BadQuery(f"unsupported sort {clauses['sort']!r}")
    limit = clauses.get("limit")
    if limit is not None and not re.fullmatch(r"-?\d+", limit):
        raise BadQuery(f"limit {limit!r} is not an integer")
    cursor = _literal(clauses["cursor"]) if "cursor" in clauses else None
    return logs_query(
        source=source["source"].lower(),
        project_id=source["project"],
        conditions=_conditions(clauses.get("filter")),
        sort=(sort["field"], sort["dir"] or "asc") if sort else None,
        limit=int(limit) if limit is not None else None,
        cursor=cursor,
    )
