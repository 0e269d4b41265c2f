"""JSON Schema (OpenAI, Anthropic) to and from Gemini's Schema (an OpenAPI 3.0 subset).

Gemini refuses keywords outside its subset (``additionalProperties``, ``$schema``, ``$ref``...), so the
way in keeps only the subset: local ``$ref``s are inlined, ``type: [T, "null"]`` and ``anyOf`` with
``null`` become ``nullable``, ``const`` becomes a one-value ``enum``, unsupported ``format``s go.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.core.wire import as_dict
from relaygate.dialects.gemini.shared import snake

_KEPT = frozenset({"title", "description", "nullable", "enum", "maxItems", "minItems", "required", "minProperties",
                   "maxProperties", "minLength", "maxLength", "pattern", "example", "propertyOrdering", "default",
                   "minimum", "maximum"})
_FORMATS = frozenset({"enum", "date-time", "float", "double", "int32", "int64"})
_MAX_DEPTH = 16  # recursive $refs are cut here
_CAMEL = {snake(name): name for name in (*_KEPT, "anyOf", "minItems", "maxItems")}


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    name = ref.rsplit("/", 1)[-1]
    return {**as_dict(defs.get(name)), **{k: v for k, v in schema.items() if k != "$ref"}}


def _type_to_gemini(value: Any, out: dict[str, Any]) -> None:
    types = value if isinstance(value, list) else [value]
    if "null" in types:
        out["nullable"] = True
    rest = [str(t) for t in types if t != "null"]
    if rest:
        out["type"] = rest[0].upper()


def _any_of_to_gemini(value: Any, defs: Mapping[str, Any], depth: int, out: dict[str, Any]) -> None:
    members = [as_dict(m) for m in value] if isinstance(value, list) else []
    if any(m.get("type") == "null" for m in members):
        out["nullable"] = True
        members = [m for m in members if m.get("type") != "null"]
    if len(members) == 1:
        out.update(_to_gemini(members[0], defs, depth + 1))
    elif members:
        out["anyOf"] = [_to_gemini(m, defs, depth + 1) for m in members]


def _to_gemini(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> dict[str, Any]:
    schema = _resolve(schema, defs)
    out: dict[str, Any] = {}
    if depth > _MAX_DEPTH:
        return {"type": "OBJECT"}
    for key, value in schema.items():
        if key == "type":
            _type_to_gemini(value, out)
        elif key in ("anyOf", "oneOf"):
            _any_of_to_gemini(value, defs, depth, out)
        elif key == "properties":
            out[key] = {name: _to_gemini(as_dict(sub), defs, depth + 1) for name, sub in as_dict(value).items()}
        elif key == "items":
            out[key] = _to_gemini(as_dict(value), defs, depth + 1)
        elif key == "const":
            out["enum"] = [value]
        elif key == "format":
            if isinstance(value, str) and value in _FORMATS:
                out[key] = value
        elif key in _KEPT:
            out[key] = value
    return out


def json_schema_to_gemini(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema as a Gemini Schema (types upper-case, Gemini's canonical spelling)."""
    defs = {**as_dict(schema.get("definitions")), **as_dict(schema.get("$defs"))}
    return _to_gemini(schema, defs, 0)


def gemini_schema_to_json(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A Gemini Schema (either spelling) as a JSON Schema: types lower-case, ``nullable`` folded into
    ``type: [T, "null"]``."""
    out: dict[str, Any] = {}
    nullable = schema.get("nullable") is True
    for raw_key, value in schema.items():
        key = _CAMEL.get(raw_key, raw_key)
        if key == "type":
            out[key] = [str(value).lower(), "null"] if nullable else str(value).lower()
        elif key == "nullable":
            if "type" not in schema:
                out[key] = value
        elif key == "properties":
            out[key] = {name: gemini_schema_to_json(as_dict(sub)) for name, sub in as_dict(value).items()}
        elif key == "items":
            out[key] = gemini_schema_to_json(as_dict(value))
        elif key == "anyOf":
            out[key] = [gemini_schema_to_json(as_dict(m)) for m in value] if isinstance(value, list) else value
        else:
            out[key] = value
    return out
