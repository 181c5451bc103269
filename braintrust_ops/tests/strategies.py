"""Hypothesis strategies for what comes from outside: users' chat text, Braintrust's rows and ids.

Text here holds what real input holds and ordinary generators leave out: lone surrogates (half an emoji:
legal in JSON, no UTF-8 form; Hypothesis' characters() excludes them by default), NUL, backslashes,
the six characters a user types for a NUL, this app's own wrapper keys, spaces around ids.
"""

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
