"""Braintrust's OpenAPI spec (vendored in ``reference/``), for holding the sandbox to it.

Schemas are looked up by path and method, as the spec names an operation, and validated with
openapi-schema-validator's OAS 3.0 validator. The whole spec is registered as one resource, so every
``$ref`` (``#/components/schemas/...``) resolves inside it. Loaded and compiled once per process.
"""

import json
from functools import cache
from pathlib import Path

SPEC_PATH = Path(__file__).with_name("reference") / "braintrust-openapi.json"
SPEC_URI = "urn:braintrust-openapi"


@cache
def spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def _pointer(*parts: str) -> str:
    """The JSON pointer (RFC 6901) to ``parts`` in the spec; a KeyError if the spec has nothing there."""
    node = spec()
    for part in parts:
        node = node[part]
    # Path segments such as "/v1/dataset/{dataset_id}/insert" hold "/", escaped as "~1".
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def request_pointer(path: str, method: str) -> str:
    return _pointer("paths", path, method.lower(), "requestBody", "content", "application/json", "schema")


def response_pointer(path: str, method: str, status: str = "200") -> str:
    return _pointer("paths", path, method.lower(), "responses", status, "content", "application/json", "schema")


@cache
def validator(pointer: str):
    """A validator of the schema at ``pointer`` (from ``request_pointer`` / ``response_pointer``)."""
    # Imported here: a development dependency, needed only when the sandbox validates something.
    from openapi_schema_validator import OAS30Validator, oas30_format_checker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    # OpenAPI 3.0 schemas are a draft-4 dialect; registering the spec lets "#/components/..." resolve.
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT4))
    return OAS30Validator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=registry, format_checker=oas30_format_checker)


def first_error(pointer: str, instance: object) -> str | None:
    """The first way ``instance`` breaks the schema, as "<where>: <message>", or None when it conforms."""
    errors = sorted(validator(pointer).iter_errors(instance), key=lambda error: list(error.absolute_path))
    if not errors:
        return None
    where = "/".join(str(part) for part in errors[0].absolute_path) or "(the body)"
    return f"{where}: {errors[0].message}"
