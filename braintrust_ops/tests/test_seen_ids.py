"""Row ids seen by a long read, in bounded memory (pure)."""

from braintrust_ops.seen_ids import SeenIds


def test_an_id_is_new_once_then_seen_across_the_merge_into_the_sorted_array():
    seen = SeenIds(recent_limit=4)
    ids = [f"row-{index}" for index in range(10)]
    assert all(seen.add(row_id) for row_id in ids)
    assert not any(seen.add(row_id) for row_id in ids)  # found in the set and in the merged array alike
    assert len(seen) == 10 and len(seen._sorted) == 8 and len(seen._recent) == 2


def test_ids_with_half_an_emoji_hebrew_and_digits_are_told_apart():
    seen = SeenIds()
    assert seen.add("\ud83d") and seen.add("שבת") and seen.add("123") and seen.add("0123")
    assert not seen.add("שבת")


def test_memory_is_about_eight_bytes_an_id():
    seen = SeenIds(recent_limit=1000)
    for index in range(100_000):
        seen.add(f"{index:036d}")
    assert seen._sorted.itemsize == 8 and len(seen._recent) < 1000


def test_ids_stay_remembered_across_many_merges_whatever_the_sign_of_their_hash():
    seen = SeenIds(recent_limit=4)
    ids = [f"row-{index}" for index in range(200)]  # about half of the 64-bit hashes are negative
    assert all(seen.add(row_id) for row_id in ids)
    assert not any(seen.add(row_id) for row_id in ids)
    assert len(seen) == len(ids)
