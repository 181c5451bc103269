"""Hypothesis strategies for what comes from outside: users' chat text, Braintrust's rows and ids.

Text here holds what real input holds and ordinary generators leave out: lone surrogates (half an emoji:
legal in JSON, no UTF-8 form; Hypothesis' characters() excludes them by default), NUL, backslashes,
the six characters a user types for a NUL, this app's own wrapper keys, spaces around ids.
"""

import copy

from hypothesis import strategies as st

from braintrust_ops.storable import FLOAT_KEY, OBJECT_KEY, STRING_KEY

LONE_SURROGATES = st.characters(categories=["Cs"])
WRAPPER_KEYS = [STRING_KEY, OBJECT_KEY, FLOAT_KEY]
AWKWARD = ["\x00", "\\", "\\u0000", "\\\\u0000", "\\ud83d", "\ud83d", "\udc4d", '"', " ", "\n", "]]", "שבת", "🕯️"]

characters = st.one_of(st.characters(exclude_categories=()), LONE_SURROGATES, st.sampled_from('\x00\\" ]['))
#: any text, with the awkward pieces and the wrapper keys often enough to matter
text = st.one_of(
    st.text(characters, max_size=20),
    st.lists(st.one_of(st.sampled_from([*AWKWARD, *WRAPPER_KEYS]), st.text(characters, max_size=5)), max_size=6).map(
        "".join
    ),
)
#: object keys: any text, and the wrapper keys themselves
keys = st.one_of(text, st.sampled_from(WRAPPER_KEYS))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), text)
#: any JSON value a parser gives (no NaN: JSON has none, and it is never equal to itself)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=20
)


# --- replies of another shape than the API documents -------------------------------------------------

#: any JSON value, with the text a date or a status field may hold
reply_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["", "2026-01-01T00:00:00", "2026-01-01T00:00:00+02:00", "yesterday", "0", "-1", "ended"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


def _paths(document, prefix=()) -> list[tuple]:
    """Every field and item of a JSON document, nested ones too, as the keys that lead to it."""
    keys = document.keys() if isinstance(document, dict) else range(len(document)) if isinstance(document, list) else []
    return [path for key in keys for path in [(*prefix, key), *_paths(document[key], (*prefix, key))]]


def _has(container, key) -> bool:
    if isinstance(container, list):
        return isinstance(key, int) and key < len(container)
    return isinstance(container, dict) and key in container


@st.composite
def mutated(draw, document):
    """The document with up to three of its fields or items, nested ones too, dropped or replaced by any JSON."""
    body = copy.deepcopy(document)
    for path in draw(st.lists(st.sampled_from(_paths(document)), max_size=3, unique=True)):
        parent = body
        for key in path[:-1]:
            parent = parent[key] if _has(parent, key) else None  # gone or replaced by an earlier change
        if not _has(parent, path[-1]):
            continue
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(reply_json)
    return body
