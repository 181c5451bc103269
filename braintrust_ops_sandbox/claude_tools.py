"""The checks Anthropic's Messages API makes on ``tools`` and ``tool_choice`` before answering, so a
broken tool definition fails here (400 ``invalid_request_error``) as it would in production.

Sources, and what each rule rests on:

- Tool name: ``^[a-zA-Z0-9_-]{1,64}$`` (the Messages API reference, ``tools[].name``: "Must match the
  regex"; the same pattern as published in transcriptions of Anthropic's OpenAPI spec).
- ``input_schema``: a JSON Schema (draft 2020-12, per the anthropic SDK's ``ToolParam`` docstring)
  whose ``type`` is ``"object"`` (the SDK's ``InputSchemaTyped``: ``type: Required[Literal["object"]]``).
  Checked with jsonschema's ``Draft202012Validator.check_schema``.
- ``tool_choice`` ``{"type": "tool", "name": X}``: "The model will use the specified tool with
  ``tool_choice.name``" (SDK ``ToolChoiceToolParam``), so X must be one of ``tools``.
- Tool names unique within a request: the sandbox's assumption (a forced tool would be ambiguous).
- ``strict: true`` (strict tool use, https://platform.claude.com/docs/en/agents-and-tools/tool-use/strict-tool-use,
  whose supported subset is "JSON Schema limitations" in
  https://platform.claude.com/docs/en/build-with-claude/structured-outputs#json-schema-limitations):
  every object sets ``additionalProperties: false``; not supported are numerical constraints
  (``minimum``, ``maximum``, ``multipleOf``...), string constraints (``minLength``, ``maxLength``), array
  constraints beyond ``minItems`` of 0 or 1 (``maxItems``, ``uniqueItems``...), enums of complex values,
  external ``$ref`` and recursive schemas; string ``format`` only from the supported list. The anthropic
  SDK's own strict-schema transformer (``anthropic/lib/_parse/_transform.py``, ``transform_schema``)
  keeps exactly this subset and moves everything else into the description; it also refuses a
  schema that says nothing of what it is (no ``type``, ``anyOf``, ``allOf``, ``$ref``, ``const`` or
  ``enum``), which the sandbox applies to strict schemas too (so an array's ``items: {}`` is refused).
"""

import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_NAME_PATTERN = TOOL_NAME.pattern
# The string formats strict mode supports (SDK transform_schema's SupportedStringFormats; the docs' list).
STRICT_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
STRICT_UNSUPPORTED = {
    "minimum": "numerical constraints",
    "maximum": "numerical constraints",
    "exclusiveMinimum": "numerical constraints",
    "exclusiveMaximum": "numerical constraints",
    "multipleOf": "numerical constraints",
    "minLength": "string constraints",
    "maxLength": "string constraints",
    "maxItems": "array constraints beyond minItems of 0 or 1",
    "uniqueItems": "array constraints beyond minItems of 0 or 1",
    "contains": "array constraints beyond minItems of 0 or 1",
    "minContains": "array constraints beyond minItems of 0 or 1",
    "maxContains": "array constraints beyond minItems of 0 or 1",
}
# Keywords whose value is one schema, or a list or map of schemas: where the walk goes down.
_ONE_SCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SAYS_WHAT_IT_IS = ("type", "anyOf", "allOf", "$ref", "const", "enum")


class InvalidTools(ValueError):
    """The request's tools or tool_choice are not valid; the message says where and why."""


def check_request(body: dict) -> None:
    """Raise ``InvalidTools`` when ``body``'s ``tools`` or ``tool_choice`` would be refused by the real API."""
    tools = body.get("tools")
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise InvalidTools("tools: Input should be a valid list")
    names: list[str] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidTools(f"tools.{index}: Input should be a valid dictionary")
        if tool.get("type") not in (None, "custom"):
            # A server tool (web_search_..., bash_...): defined by Anthropic, not checked here.
            names.append(str(tool.get("name")))
            continue
        _check_custom_tool(tool, f"tools.{index}")
        if tool["name"] in names:
            raise InvalidTools(f"tools.{index}.name: tool names must be unique; {tool['name']!r} is repeated")
        names.append(tool["name"])
    choice = body.get("tool_choice")
    if choice is not None:
        _check_tool_choice(choice, names)


def _check_tool_choice(choice: Any, names: list[str]) -> None:
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise InvalidTools("tool_choice: type must be one of 'auto', 'any', 'tool', 'none'")
    if choice["type"] in ("any", "tool") and not names:
        raise InvalidTools(f"tool_choice: type {choice['type']!r} needs at least one tool in tools")
    if choice["type"] == "tool" and choice.get("name") not in names:
        raise InvalidTools(
            f"tool_choice.name: tool {choice.get('name')!r} is not defined in tools "
            f"(defined: {', '.join(names) or 'none'})"
        )


def _check_custom_tool(tool: dict, where: str) -> None:
    name = tool.get("name")
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise InvalidTools(f"{where}.name: String should match pattern '{TOOL_NAME_PATTERN}' (got {name!r})")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise InvalidTools(f"{where}.input_schema: Field required: a JSON Schema object")
    if schema.get("type") != "object":
        raise InvalidTools(f"{where}.input_schema.type: Input should be 'object' (got {schema.get('type')!r})")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "".join(f".{part}" for part in exc.path)
        raise InvalidTools(f"{where}.input_schema{path}: not a valid JSON Schema: {exc.message}") from None
    strict = tool.get("strict", False)
    if not isinstance(strict, bool):
        raise InvalidTools(f"{where}.strict: Input should be a valid boolean")
    if strict:
        _check_strict_schema(schema, f"{where}.input_schema")


def _check_strict_schema(root: dict, where: str) -> None:
    for path, schema in _subschemas(root, where):
        problem = _strict_problem(schema)
        if problem is not None:
            raise InvalidTools(f"{path}: not supported with strict: true: {problem}")
    _check_refs(root, where)


def _subschemas(schema: Any, path: str) -> Iterator[tuple[str, dict]]:
    if not isinstance(schema, dict):
        return  # a boolean schema; additionalProperties: false lands here
    yield path, schema
    for key in _ONE_SCHEMA:
        if key in schema:
            yield from _subschemas(schema[key], f"{path}.{key}")
    for key in _SCHEMA_LISTS:
        for index, item in enumerate(schema.get(key) or []):
            yield from _subschemas(item, f"{path}.{key}.{index}")
    for key in _SCHEMA_MAPS:
        for name, item in (schema.get(key) or {}).items():
            yield from _subschemas(item, f"{path}.{key}.{name}")


def _strict_problem(schema: dict) -> str | None:
    for keyword, category in STRICT_UNSUPPORTED.items():
        if keyword in schema:
            return f"{keyword!r} ({category})"
    if "minItems" in schema and schema["minItems"] not in (0, 1):
        return f"'minItems' of {schema['minItems']} (array constraints beyond minItems of 0 or 1)"
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "object" in types or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return "every object must set 'additionalProperties': false"
    if "format" in schema and schema["format"] not in STRICT_STRING_FORMATS:
        return f"string format {schema['format']!r} (supported: {', '.join(sorted(STRICT_STRING_FORMATS))})"
    if any(isinstance(value, (dict, list)) for value in schema.get("enum") or []):
        return "complex types in 'enum' (only strings, numbers, booleans and null)"
    if not any(key in schema for key in _SAYS_WHAT_IT_IS):
        return "the schema has no 'type' (nor anyOf, allOf, $ref, const or enum)"
    return None


def _check_refs(root: dict, where: str) -> None:
    """External ``$ref`` and recursive schemas are not supported in strict mode."""
    refs: dict[str, list[str]] = {}  # a local target ("#/$defs/Node") -> the local refs inside it
    for _, schema in _subschemas(root, "#"):
        ref = schema.get("$ref")
        if ref is None:
            continue
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise InvalidTools(f"{where}: not supported with strict: true: external $ref {ref!r}")
    for path, schema in _subschemas(root, "#"):
        pointer = "#" + path[1:].replace(".", "/") if path != "#" else "#"
        refs[pointer] = [s["$ref"] for _, s in _subschemas(schema, path) if isinstance(s.get("$ref"), str)]

    def visit(target: str, seen: tuple[str, ...]) -> None:
        if target in seen:
            raise InvalidTools(f"{where}: not supported with strict: true: recursive schema via $ref {target!r}")
        for ref in refs.get(target, []):
            visit(ref, (*seen, target))

    for ref in {ref for found in refs.values() for ref in found}:
        visit(ref, ())
