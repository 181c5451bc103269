import re

from braintrust_ops.models import TagBatch, TaggedLog
from braintrust_ops.provenance import tagset_fingerprint
from braintrust_ops.taggable_tags import TaggableTag

HALACHA = TaggableTag(name="halacha", meaning="questions of Jewish law")
SOURCES = TaggableTag(name="sources", meaning="where a text is found")


def test_the_same_set_in_any_order_has_the_same_fingerprint():
    assert tagset_fingerprint([HALACHA, SOURCES]) == tagset_fingerprint([SOURCES, HALACHA])


def test_an_added_retired_renamed_or_reworded_tag_changes_the_fingerprint():
    base = tagset_fingerprint([HALACHA, SOURCES])
    changed = [
        [HALACHA],
        [HALACHA, SOURCES, TaggableTag(name="translation", meaning="")],
        [HALACHA, TaggableTag(name="source", meaning=SOURCES.meaning)],
        [HALACHA, TaggableTag(name="sources", meaning="where a text is quoted")],
    ]
    assert all(tagset_fingerprint(tags) != base for tags in changed)


def test_a_name_and_meaning_cannot_be_shifted_into_each_other():
    assert tagset_fingerprint([TaggableTag(name="a b", meaning="c")]) != tagset_fingerprint(
        [TaggableTag(name="a", meaning="b c")]
    )


def test_the_fingerprint_fills_its_column_with_lowercase_hex_digits():
    """The columns that keep it are varchar(32), compared as text: a longer value would not fit, a shorter
    or upper-case one would never equal the fingerprints already stored."""
    fingerprint = tagset_fingerprint([HALACHA])
    columns = {model._meta.get_field("tagset_fingerprint").max_length for model in (TaggedLog, TagBatch)}
    assert columns == {len(fingerprint)} == {32}
    assert re.fullmatch(r"[0-9a-f]{32}", fingerprint)


def test_a_sets_fingerprint_is_the_same_from_one_release_to_the_next():
    """Stored labels carry it: were the way it is computed to change (the JSON's escaping, the hash, the
    length), every label in the database would turn stale at the upgrade, and --retag-stale would pay to
    label them all again. Change this value only with a migration that recomputes the stored ones."""
    tags = [TaggableTag(name="halacha", meaning="שאלות הלכה"), SOURCES]
    assert tagset_fingerprint(tags) == "d0aa72797cfe772bd1c37a568777bfe7"
