"""A tagging request's tokens, estimated before it is sent: never fewer than a count of four characters a token
(the sandbox's, and the rule of thumb the estimate was below), whatever the text."""

import json

from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.cost_estimate import (
    FORCED_TOOL_SYSTEM_PROMPT_TOKENS,
    UNLISTED_MODEL_TOKENS,
    expected_output_tokens,
    fixed_input_tokens,
    text_tokens,
    tool_system_prompt_tokens,
)
from braintrust_ops.taggable_tags import TaggableTag
from braintrust_ops.tagging_prompt import TOOL_NAME, build_system_prompt, build_tool
from braintrust_ops.tests.strategies import text

names = st.lists(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30), max_size=8, unique=True)


def _four_characters_a_token(value: str) -> int:
    return len(value) // 4


@given(value=text)
def test_text_is_never_counted_below_four_characters_a_token(value):
    assert text_tokens(value) >= _four_characters_a_token(value)


@given(first=text, second=text)
def test_text_counted_in_parts_is_never_counted_below_the_whole(first, second):
    assert text_tokens(first) + text_tokens(second) >= text_tokens(first + second)


def test_english_is_counted_at_three_and_a_half_characters_a_token_and_hebrew_at_its_bytes():
    assert text_tokens("a" * 700) == 200
    assert text_tokens("ש" * 700) == 400  # two bytes a letter


@given(tags=names, chosen=st.data())
def test_the_expected_reply_is_never_shorter_than_a_reply_with_any_three_of_the_tags(tags, chosen):
    picked = chosen.draw(st.lists(st.sampled_from(tags), max_size=3, unique=True)) if tags else []
    reply = [{"type": "tool_use", "id": "toolu_sandbox_000001", "name": TOOL_NAME, "input": {"tags": picked}}]
    assert expected_output_tokens(tags) >= _four_characters_a_token(json.dumps(reply, ensure_ascii=False))


@given(tags=names, strict=st.booleans())
def test_a_requests_fixed_part_counts_the_system_prompt_the_tool_as_sent_and_the_tool_use_prompt(tags, strict):
    taggable = [TaggableTag(name=name, meaning=f"{name} dataset-tagging") for name in tags]
    system, tool = build_system_prompt(taggable), build_tool(taggable, strict=strict)
    fixed = fixed_input_tokens(system_prompt=system, tool=tool, model="claude-haiku-4-5")
    as_the_sandbox_counts = _four_characters_a_token(system + json.dumps([tool], ensure_ascii=False))
    assert fixed >= as_the_sandbox_counts + 588


def test_the_tool_use_prompt_is_the_documented_one_for_a_model_and_its_dated_ids():
    assert tool_system_prompt_tokens("claude-haiku-4-5") == 588
    assert tool_system_prompt_tokens("claude-haiku-4-5-20251001") == 588
    assert tool_system_prompt_tokens("claude-sonnet-4-20250514") == 315
    assert tool_system_prompt_tokens("claude-3-5-haiku-latest") == 355


@given(model=st.text(max_size=40))
def test_a_model_the_table_does_not_list_is_counted_at_the_tables_largest(model):
    tokens = tool_system_prompt_tokens(model)
    assert tokens in FORCED_TOOL_SYSTEM_PROMPT_TOKENS.values()
    if tokens != UNLISTED_MODEL_TOKENS:
        assert any(model.startswith(alias) for alias in FORCED_TOOL_SYSTEM_PROMPT_TOKENS)
