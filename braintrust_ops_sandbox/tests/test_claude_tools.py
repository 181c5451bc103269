"""The sandbox refuses tool definitions the way Anthropic's Messages API does: 400 invalid_request_error."""

import copy

import anthropic
import pytest

from braintrust_ops.taggable_tags import TaggableTag
from braintrust_ops.tagging_prompt import TOOL_NAME, build_tool
from braintrust_ops_sandbox import ANTHROPIC_KEY
from braintrust_ops_sandbox.claude_tools import InvalidTools, check_request

TAGS = [TaggableTag(name=name, meaning=f"{name} turns") for name in ("halacha", "translation", "sources")]


def send(sandbox, tool: dict, tool_choice: dict | None = None):
    claude = anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=sandbox.url, max_retries=0)
    return claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        system="Tag this turn.",
        messages=[{"role": "user", "content": "Is it permitted to cook on Shabbat?"}],
        tools=[tool],
        tool_choice=tool_choice or {"type": "tool", "name": tool["name"]},
    )


def refusal(sandbox, tool: dict, tool_choice: dict | None = None) -> str:
    """The error message of the 400 the request gets (and no model call counted)."""
    with pytest.raises(anthropic.BadRequestError) as raised:
        send(sandbox, tool, tool_choice)
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    return raised.value.body["error"]["message"]


def strict_tool() -> dict:
    return copy.deepcopy(build_tool(TAGS, strict=True))


def tags_schema(tool: dict) -> dict:
    return tool["input_schema"]["properties"]["tags"]


# --- the app's own tool -------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
def test_the_apps_tool_is_accepted_strict_or_not(empty_sandbox, strict):
    reply = send(empty_sandbox, build_tool(TAGS, strict=strict))
    assert (reply.content[0].name, reply.content[0].input) == (TOOL_NAME, {"tags": ["halacha"]})


# --- the broken ones ----------------------------------------------------------------------------


def test_strict_array_items_without_a_type_are_refused(empty_sandbox):
    tool = strict_tool()
    tags_schema(tool)["items"] = {"description": "one tag"}
    message = refusal(empty_sandbox, tool)
    assert "tools.0.input_schema.properties.tags.items" in message and "no 'type'" in message


def test_array_items_with_a_misspelt_type_are_not_a_valid_json_schema(empty_sandbox):
    tool = copy.deepcopy(build_tool(TAGS, strict=False))
    tags_schema(tool)["items"]["type"] = "strng"
    message = refusal(empty_sandbox, tool)
    assert "not a valid JSON Schema" in message and "properties.tags.items.type" in message


def test_items_typed_only_by_an_enum_are_accepted_even_strict(empty_sandbox):
    # What the SDK's strict transformer keeps: a schema of literals needs no "type".
    tool = strict_tool()
    del tags_schema(tool)["items"]["type"]
    assert send(empty_sandbox, tool).content[0].input == {"tags": ["halacha"]}


def test_tool_choice_naming_a_tool_not_in_tools_is_refused(empty_sandbox):
    message = refusal(empty_sandbox, strict_tool(), {"type": "tool", "name": "record_tag"})
    assert "tool_choice.name" in message and "'record_tag' is not defined" in message and TOOL_NAME in message


def test_a_strict_schema_without_additional_properties_false_is_refused(empty_sandbox):
    tool = strict_tool()
    del tool["input_schema"]["additionalProperties"]
    message = refusal(empty_sandbox, tool)
    assert "additionalProperties" in message and "strict" in message


def test_a_strict_schema_with_max_items_is_refused(empty_sandbox):
    # The non-strict schema's bounds sent with strict: true, the mistake build_tool guards against.
    tool = copy.deepcopy(build_tool(TAGS, strict=False))
    tool["strict"] = True
    message = refusal(empty_sandbox, tool)
    assert "'maxItems'" in message and "properties.tags" in message


@pytest.mark.parametrize(
    "keyword, value",
    [("minimum", 0), ("maximum", 9), ("multipleOf", 2), ("minLength", 1), ("maxLength", 10), ("uniqueItems", True)],
)
def test_strict_mode_refuses_numeric_string_and_array_constraints(keyword, value):
    schema = {"type": "object", "properties": {"x": {"type": "array", "items": {"type": "string"}}}}
    schema["additionalProperties"] = False
    target = schema["properties"]["x"] if keyword == "uniqueItems" else schema["properties"]["x"]["items"]
    if keyword in ("minimum", "maximum", "multipleOf"):
        target["type"] = "integer"
    target[keyword] = value
    tool = {"name": "t", "input_schema": schema, "strict": True}
    with pytest.raises(InvalidTools, match=keyword):
        check_request({"tools": [tool]})
    del tool["strict"]
    check_request({"tools": [tool]})  # the same schema without strict mode is fine


@pytest.mark.parametrize("min_items, ok", [(0, True), (1, True), (2, False)])
def test_strict_mode_takes_min_items_of_0_or_1_only(min_items, ok):
    tool = strict_tool()
    tags_schema(tool)["minItems"] = min_items
    if ok:
        check_request({"tools": [tool]})
    else:
        with pytest.raises(InvalidTools, match="minItems"):
            check_request({"tools": [tool]})


def test_strict_mode_refuses_recursive_and_external_refs():
    node = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "additionalProperties": False,
    }
    recursive = {"type": "object", "$defs": {"node": node}, "properties": {"root": {"$ref": "#/$defs/node"}}}
    recursive["additionalProperties"] = False
    with pytest.raises(InvalidTools, match="recursive"):
        check_request({"tools": [{"name": "tree", "input_schema": recursive, "strict": True}]})
    external = {"type": "object", "properties": {"x": {"$ref": "https://example.com/x.json"}}}
    external["additionalProperties"] = False
    with pytest.raises(InvalidTools, match="external"):
        check_request({"tools": [{"name": "ext", "input_schema": external, "strict": True}]})


def test_strict_mode_accepts_local_refs_that_do_not_recurse():
    leaf = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
    schema = {"type": "object", "$defs": {"leaf": leaf}, "properties": {"a": {"$ref": "#/$defs/leaf"}}}
    schema["additionalProperties"] = False
    check_request({"tools": [{"name": "ok", "input_schema": schema, "strict": True}]})


@pytest.mark.parametrize("name", ["record tags", "récord", "", "x" * 65, "tags.record"])
def test_a_tool_name_outside_the_documented_pattern_is_refused(empty_sandbox, name):
    tool = strict_tool()
    tool["name"] = name
    message = refusal(empty_sandbox, tool, {"type": "auto"})
    assert "tools.0.name" in message and "^[a-zA-Z0-9_-]{1,64}$" in message


def test_a_64_character_name_with_dashes_and_underscores_is_accepted(empty_sandbox):
    tool = strict_tool()
    tool["name"] = "a-b_" * 16
    assert send(empty_sandbox, tool).content[0].name == tool["name"]


@pytest.mark.parametrize("schema", [{"type": "array", "items": {"type": "string"}}, {"properties": {}}])
def test_an_input_schema_that_is_not_of_type_object_is_refused(empty_sandbox, schema):
    message = refusal(empty_sandbox, {"name": "t", "input_schema": schema})
    assert "tools.0.input_schema.type" in message and "'object'" in message


def test_two_tools_with_one_name_are_refused():
    tool = build_tool(TAGS, strict=True)
    with pytest.raises(InvalidTools, match="unique"):
        check_request({"tools": [tool, tool]})


def test_a_refused_tool_never_reaches_the_model_or_the_rate_limits(empty_sandbox):
    empty_sandbox.claude_limits.set(requests_per_minute=1)
    tool = strict_tool()
    del tool["input_schema"]["additionalProperties"]
    refusal(empty_sandbox, tool)
    assert empty_sandbox.claude_limits.accepted == 0
    assert send(empty_sandbox, strict_tool()).content[0].input == {"tags": ["halacha"]}
