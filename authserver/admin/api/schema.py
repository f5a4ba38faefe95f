"""JSON Schema (2020-12, the dialect of OpenAPI 3.1) for the admin API, and the small
validator that checks requests against the very schemas the document publishes.

Only the keywords used here are supported; :func:`check` raises ``ValueError`` for
any other, so a schema cannot say more than what is enforced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

Schema = dict[str, Any]

#: one line of text: no C0 control character and no DEL (Postgres refuses NUL; logs and
#: audit details must not be split), stated in the document so clients know
TEXT_PATTERN: Final = "^[^\\u0000-\\u001f\\u007f]*$"
_TEXT = re.compile("[^\x00-\x1f\x7f]*")
_SUPPORTED = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "enum", "minimum", "maximum", "description", "$ref",
})
MAX_ID: Final = 2**31 - 1


def text(max_length: int = 200, *, min_length: int = 0, **extra: Any) -> Schema:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, "pattern": TEXT_PATTERN, **extra}


def integer(minimum: int = 0, maximum: int = MAX_ID, **extra: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, **extra}


def boolean(**extra: Any) -> Schema:
    return {"type": "boolean", **extra}


def array(items: Schema, max_items: int = 50, **extra: Any) -> Schema:
    return {"type": "array", "items": items, "maxItems": max_items, **extra}


def nullable(schema: Schema) -> Schema:
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


def obj(properties: Mapping[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    """A closed object: a member not named here is refused (a misspelt field is an error,
    not silently ignored)."""
    return {"type": "object", "properties": dict(properties), "required": list(required),
            "additionalProperties": False, **extra}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


TIMESTAMP: Final = integer(0, 2**40, description="seconds since the epoch (RFC 7519 §2 NumericDate)")
OPTIONAL_TIMESTAMP: Final = nullable(TIMESTAMP)


def page_of(item: str) -> Schema:
    """One page of a list: ``next_offset`` is the ``offset`` of the next page, null on the last."""
    return obj({"items": {"type": "array", "items": ref(item)}, "next_offset": nullable(integer())},
               ("items", "next_offset"))


_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "integer": (int,),
}


def _is(value: object, kind: str) -> bool:
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[kind])


def enforceable(schema: Schema, components: Mapping[str, Schema], where: str = "schema") -> None:
    """Raise ``AssertionError`` unless :func:`check` enforces every keyword of ``schema``
    (called when the table is built, so a schema never promises what is not checked)."""
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise AssertionError(f"{where}: keywords the validator does not enforce: {sorted(unknown)}")
    if "pattern" in schema and schema["pattern"] != TEXT_PATTERN:
        raise AssertionError(f"{where}: only the one-line text pattern is enforced")
    if "$ref" in schema:
        enforceable(components[schema["$ref"].rsplit("/", 1)[1]], components, schema["$ref"])
    for name, item in schema.get("properties", {}).items():
        enforceable(item, components, f"{where}.{name}")
    if "items" in schema:
        enforceable(schema["items"], components, f"{where}[]")


def check(schema: Schema, value: object, where: str, components: Mapping[str, Schema]) -> None:
    """Raise ``ValueError`` with a sentence naming ``where`` when ``value`` does not
    match ``schema`` (which :func:`enforceable` accepted)."""
    if "$ref" in schema:
        check(components[schema["$ref"].rsplit("/", 1)[1]], value, where, components)
        return
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, k) for k in kinds):
            raise ValueError(f"{where} must be {' or '.join(_NAMES[k] for k in kinds)}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{where} must be one of: {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ValueError(f"{where} must not be empty" if schema["minLength"] == 1
                             else f"{where} must be at least {schema['minLength']} characters")
        if len(value) > schema.get("maxLength", len(value)):
            raise ValueError(f"{where} must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not _TEXT.fullmatch(value):
            raise ValueError(f"{where} must be one line without control characters")
    elif isinstance(value, int) and not isinstance(value, bool):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            raise ValueError(f"{where} must be between {schema['minimum']} and {schema['maximum']}")
    elif isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            raise ValueError(f"{where} must have at most {schema['maxItems']} entries")
        if len(value) < schema.get("minItems", 0):
            raise ValueError(f"{where} must have at least {schema['minItems']} entries")
        for index, item in enumerate(value):
            check(schema.get("items", {}), item, f"{where}[{index}]", components)
    elif isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise ValueError(f"{where}.{name} is required" if where != "body" else f"{name} is required")
        for name, item in value.items():
            label = name if where == "body" else f"{where}.{name}"
            if name in properties:
                check(properties[name], item, label, components)
            elif schema.get("additionalProperties", True) is False:
                raise ValueError(f"unknown field: {str(name)[:60]!r}")


_NAMES = {"object": "an object", "array": "a list", "string": "a string", "boolean": "true or false",
          "null": "null", "integer": "a whole number"}


def parse_parameter(schema: Schema, raw: str, where: str, components: Mapping[str, Schema]) -> object:
    """A path or query parameter from its text: whole numbers for integer schemas."""
    value: object = raw
    if schema.get("type") == "integer":
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
            raise ValueError(f"{where} must be a whole number")
        value = int(raw)
    check(schema, value, where, components)
    return value
