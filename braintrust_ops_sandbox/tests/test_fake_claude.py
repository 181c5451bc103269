"""The sandbox's Claude, driven through the official anthropic SDK."""

import anthropic
import pytest

from braintrust_ops_sandbox import ANTHROPIC_KEY

MODEL = "claude-haiku-4-5"  # the app's tagging model
TAGS = ["halacha", "translation", "sources", "hebrew", "off-topic"]


def tag_tool(names: list[str], name: str = "record_tags") -> dict:
    tags = {"type": "array", "items": {"type": "string", "enum": names}}
    return {"name": name, "input_schema": {"type": "object", "properties": {"tags": tags}}}


def client(sandbox, key: str = ANTHROPIC_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=sandbox.url, max_retries=0)


def ask(sandbox, text: str, names: list[str] = TAGS, **options):
    return client(sandbox).messages.create(
        model=MODEL,
        max_tokens=256,
        system="Tag this chatbot turn.",
        tools=[tag_tool(names)],
        tool_choice={"type": "tool", "name": "record_tags"},
        messages=[{"role": "user", "content": text}],
        **options,
    )


@pytest.mark.parametrize(
    "text, tags",
    [
        ("Is it permitted to turn on a light on Shabbat?", ["halacha"]),
        ("Please translate Rashi on Genesis 1:1.", ["translation", "sources"]),
        ("מה המקור בגמרא להדלקת נרות שבת?", ["halacha", "sources", "hebrew"]),
        ("ספר לי על ספריא", ["hebrew"]),
        ("What's the WEATHER in Tel Aviv?", ["off-topic"]),
        ("Who was Maimonides?", []),
    ],
)
def test_the_forced_tool_gets_the_tags_of_the_keyword_rule(empty_sandbox, text, tags):
    reply = ask(empty_sandbox, text)
    [block] = reply.content
    assert (block.type, block.name, block.input) == ("tool_use", "record_tags", {"tags": tags})
    assert reply.stop_reason == "tool_use"


def test_tags_come_in_the_enums_order_and_stop_at_three(empty_sandbox):
    text = "Translate the Shabbat source about the weather: שלום"
    assert ask(empty_sandbox, text).content[0].input == {"tags": ["halacha", "translation", "sources"]}
    assert ask(empty_sandbox, text, names=TAGS[::-1]).content[0].input == {"tags": ["off-topic", "hebrew", "sources"]}


def test_a_tag_the_rule_does_not_know_matches_when_its_name_appears_in_the_text(empty_sandbox):
    reply = ask(empty_sandbox, "Is the Zohar part of Kabbalah?", names=["kabbalah", "mussar", "zohar"])
    assert reply.content[0].input == {"tags": ["kabbalah", "zohar"]}


def test_replies_report_positive_usage_tokens(empty_sandbox):
    usage = ask(empty_sandbox, "Hi").usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0


def test_a_wrong_key_raises_authentication_error(empty_sandbox):
    with pytest.raises(anthropic.AuthenticationError):
        client(empty_sandbox, key="sk-wrong-key-for-tests-000000").messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}]
        )


def test_scripted_replies_are_used_once_each_in_order_then_the_rule_resumes(empty_sandbox):
    for scripted in (
        {"tool_input": {"tags": ["not-in-the-enum"]}},
        {"text": "No tool."},
        {"tool_input": {}, "stop_reason": "max_tokens"},
        {"text": "Cut sho", "stop_reason": "max_tokens"},
    ):
        empty_sandbox.claude_replies.push(scripted)
    replies = [ask(empty_sandbox, "Shabbat?") for _ in range(5)]
    said = [(block.input if block.type == "tool_use" else block.text) for block in (r.content[0] for r in replies)]
    assert list(zip(said, [reply.stop_reason for reply in replies], strict=True)) == [
        ({"tags": ["not-in-the-enum"]}, "tool_use"),
        ("No tool.", "end_turn"),
        ({}, "max_tokens"),
        ("Cut sho", "max_tokens"),
        ({"tags": ["halacha"]}, "tool_use"),
    ]


def test_claude_requests_records_each_request_body_in_order(empty_sandbox):
    ask(empty_sandbox, "first")
    ask(empty_sandbox, "second", names=["x"])
    bodies = empty_sandbox.claude_requests
    assert [body["messages"][0]["content"] for body in bodies] == ["first", "second"]
    assert bodies[1]["tools"][0]["input_schema"]["properties"]["tags"]["items"]["enum"] == ["x"]
    assert bodies[0]["max_tokens"] == 256 and bodies[0]["tool_choice"] == {"type": "tool", "name": "record_tags"}


def test_a_request_without_max_tokens_raises_bad_request_error(empty_sandbox):
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client(empty_sandbox).messages.create(
            model=MODEL, max_tokens=anthropic.omit, messages=[{"role": "user", "content": "Hi"}], timeout=5
        )
