"""BTQL's structured (JSON) form, the one the braintrust SDK sends, parsed into a ``LogsQuery``.

Shapes from the SDK 0.47: ``logger.py`` ``ObjectFetcher._refetch`` (select/from/cursor/limit, the
cursor inside the query) and ``trace.py`` ``_btql_cmp`` / ``SpanFetcher._build_filter``
(``{"op": "ge", "left": <ident>, "right": <literal>}``, ``{"op": "and", "children": [...]}``). An
``and`` may also come as ``left``/``right``, the binary form of the same expression.
"""

from braintrust_ops_sandbox.btql_model import COMPARISONS, BadQuery, Condition, LogsQuery, condition, logs_query

KEYS = frozenset({"select", "from", "filter", "sort", "limit", "cursor"})


def _ident(node: object) -> str | None:
    """The field an ident node names, when it names a single top-level field."""
    if isinstance(node, dict) and node.get("op") == "ident":
        name = node.get("name")
        if isinstance(name, list) and len(name) == 1 and isinstance(name[0], str):
            return name[0]
    return None


def _conditions(expr: object) -> list[Condition]:
    if expr is None:
        return []
    op = expr.get("op") if isinstance(expr, dict) else None
    if op == "and":
        children = expr["children"] if "children" in expr else [expr.get("left"), expr.get("right")]
        if not isinstance(children, list) or None in children:
            raise BadQuery("an and expression needs children, or left and right")
        return [found for child in children for found in _conditions(child)]
    if op in COMPARISONS:
        field, right = _ident(expr.get("left")), expr.get("right")
        if field is None or not (isinstance(right, dict) and right.get("op") == "literal" and "value" in right):
            raise BadQuery(f"a {op} expression needs an ident on the left and a literal on the right")
        return [condition(field, op, right["value"])]
    raise BadQuery(f"unsupported expression {op!r}; the sandbox supports and, {', '.join(COMPARISONS)}")


def _source(node: object) -> tuple[str, object]:
    if isinstance(node, dict) and node.get("op") == "function":
        name, args = _ident(node.get("name")), node.get("args")
        if name and isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
            if args[0].get("op") == "literal":
                return name, args[0].get("value")
    raise BadQuery('from must be {"op": "function", "name": <ident>, "args": [<literal project id>]}')


def _sort(node: object) -> tuple[str, str] | None:
    if node is None:
        return None
    if not (isinstance(node, list) and len(node) == 1 and isinstance(node[0], dict)):
        raise BadQuery("sort must be a list of one {expr, dir}; the sandbox sorts by one field")
    field, direction = _ident(node[0].get("expr")), node[0].get("dir", "asc")
    if field is None or not isinstance(direction, str):
        raise BadQuery("sort needs an ident expr and a dir of asc or desc")
    return field, direction


def parse_structured(query: dict) -> LogsQuery:
    unknown = sorted(set(query) - KEYS)
    if unknown:
        raise BadQuery(f"unsupported query keys {unknown}; the sandbox supports {sorted(KEYS)}")
    if query.get("select", [{"op": "star"}]) != [{"op": "star"}]:
        raise BadQuery('unsupported select; the sandbox answers [{"op": "star"}] only')
    source, project_id = _source(query.get("from"))
    return logs_query(
        source=source,
        project_id=project_id,
        conditions=_conditions(query.get("filter")),
        sort=_sort(query.get("sort")),
        limit=query.get("limit"),
        cursor=query.get("cursor"),
    )
