"""The OpenAPI 3.1 document of the admin API (served at ``GET /api/openapi.json``, without auth)."""

from __future__ import annotations

from typing import Any

from relaygate.admin.inputs import DEFAULT_PAGE, GROUPS, MAX_PAGE
from relaygate.billing.pricing import PRICE_FIELDS
from relaygate.providers.registry import known_kinds

Schema = dict[str, Any]

_DESCRIPTION = """The operator's API: client keys, upstream channels, prices and usage.

Every endpoint except `GET /api/openapi.json` (this document, served without credentials) needs the
admin credential as `Authorization: Bearer <admin key>`.

Money is exact: amounts are integer nano-dollars (`*_nano`, 1e-9 USD) and decimal USD strings
(`*_usd`); input amounts may be JSON numbers or decimal strings and must not be finer than a nano-dollar.
Every change is one transaction and reaches every instance within `snapshot_poll_s`.
Upstream keys are write-only: responses carry only `api_key_hint`.

Errors have the shape `{"error": {"message", "type", "param", "code"}}`. Codes: `missing_api_key`,
`invalid_api_key` (401); `invalid_json`, `invalid_request`, `missing_field`, `unknown_field`,
`unknown_parameter`, `invalid_type`, `invalid_value` (400); `body_too_large` (413); `not_found` (404);
`conflict` (409)."""


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _listing(item: str) -> Schema:
    return _obj({"object": {"const": "list"}, "data": {"type": "array", "items": _ref(item)}}, ("object", "data"))


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
USD_OUT: Schema = {"type": "string", "pattern": r"^-?\d+(\.\d{1,9})?$", "description": "exact decimal USD"}
USD_IN: Schema = {"oneOf": [{"type": "string"}, {"type": "number"}],
                  "description": "USD, at most 9 decimal places, not negative"}
STRINGS: Schema = {"type": "array", "items": STR}
STR_MAP: Schema = {"type": "object", "additionalProperties": STR}
UNIX_S: Schema = {"type": "integer", "minimum": 0, "description": "unix seconds"}

_KEY_INPUT: dict[str, Schema] = {
    "name": {**STR, "description": "no other key may have it (409 on create or rename)"},
    "quota_usd": {**_nullable(USD_IN), "description": "spend limit; null means unlimited"},
    "models": {**STRINGS, "minItems": 1, "default": ["*"], "description": "model name patterns (* wildcard)"},
    "ip_allow": {**STRINGS, "default": [], "description": "CIDR blocks; empty allows every address"},
    "expires_at": _nullable(UNIX_S),
    "enabled": {**BOOL, "default": True},
}

_CHANNEL_INPUT: dict[str, Schema] = {
    "name": {**STR, "description": "unique"},
    "type": {"type": "string", "enum": list(known_kinds())},
    "base_url": {"anyOf": [{**STR, "format": "uri"}, {"const": ""}],
                 "description": "an http(s) URL without query or fragment; required except for type mock, "
                                "whose channels call nothing (\"\", the default, means no URL)"},
    "api_key": {**_nullable(STR), "writeOnly": True, "description": "stored encrypted, never returned"},
    "models": {**STRINGS, "description": "model name patterns this channel serves"},
    "model_map": {**STR_MAP, "description": "client model name → upstream model name"},
    "priority": {**INT, "default": 0, "description": "higher tiers are tried first"},
    "weight": {**INT, "minimum": 0, "default": 1, "description": "share inside a tier"},
    "enabled": {**BOOL, "default": True},
    "options": {"type": "object", "description": "provider options, e.g. mock_chunk_delay_ms"},
}

_USAGE_RECORD: dict[str, Schema] = {
    "id": INT, "request_id": STR, "created_at_ms": INT, "created_at": {**STR, "format": "date-time"},
    "key_id": _nullable(INT), "key_name": _nullable(STR), "surface": STR, "model": STR,
    "upstream_model": _nullable(STR), "channel_id": _nullable(INT), "channel_name": _nullable(STR),
    "stream": BOOL, "status": INT, "end_reason": STR, "input_tokens": INT, "output_tokens": INT,
    "cached_input_tokens": INT, "cache_write_tokens": INT, "reasoning_tokens": INT, "usage_source": STR,
    "cost_nano": INT, "cost_usd": USD_OUT, "attempts": INT, "latency_ms": INT, "first_byte_ms": _nullable(INT),
    "client_ip": _nullable(STR), "error_code": _nullable(STR), "image_input_tokens": INT,
    "images": {**INT, "description": "images billed (image endpoints)"},
    "client_request_id": {**_nullable(STR), "description": "the id the client sent (X-Client-Request-Id or "
                          "X-Request-Id); request_id is relaygate's own"},
}

_TOTALS: dict[str, Schema] = {"requests": INT, "input_tokens": INT, "output_tokens": INT,
                              "cached_input_tokens": INT, "cost_nano": INT, "cost_usd": USD_OUT}


def _schemas() -> dict[str, Schema]:
    return {
        "Error": _obj({"error": _obj({"message": STR, "type": STR, "param": _nullable(STR), "code": STR},
                                     ("message", "type", "param", "code"))}, ("error",)),
        "KeyCreate": {**_obj(_KEY_INPUT, ("name",)), "additionalProperties": False},
        "KeyUpdate": {**_obj(_KEY_INPUT), "additionalProperties": False},
        "Key": _obj({
            "id": INT, "name": STR, "hint": STR, "enabled": BOOL, "models": STRINGS, "ip_allow": STRINGS,
            "quota_nano": _nullable(INT), "quota_usd": _nullable(USD_OUT), "used_nano": INT, "used_usd": USD_OUT,
            "remaining_nano": {**_nullable(INT), "description": "quota minus used, not below 0; null: unlimited"},
            "remaining_usd": _nullable(USD_OUT), "expires_at": _nullable(UNIX_S),
            "source": {"enum": ["api", "config"]}, "created_at": UNIX_S, "updated_at": UNIX_S,
        }),
        "KeyCreated": {"allOf": [_ref("Key"), _obj({"key": {**STR, "description": "shown only this once"}},
                                                     ("key",))]},
        "ChannelCreate": {**_obj(_CHANNEL_INPUT, ("name", "type")), "additionalProperties": False},
        "ChannelUpdate": {**_obj(_CHANNEL_INPUT), "additionalProperties": False},
        "ChannelHealth": _obj({"consecutive_failures": INT, "circuit_open": BOOL}),
        "Channel": _obj({
            "id": INT, "name": STR, "type": STR, "base_url": STR, "api_key_hint": STR, "models": STRINGS,
            "model_map": STR_MAP, "priority": INT, "weight": INT, "enabled": BOOL, "options": {"type": "object"},
            "source": {"enum": ["api", "config"]}, "created_at": UNIX_S, "updated_at": UNIX_S,
            "health": {**_ref("ChannelHealth"), "description": "this process's circuit breaker state"},
        }),
        "ChannelTest": _obj({"channel_id": INT, "name": STR, "ok": BOOL, "status": _nullable(INT),
                             "latency_ms": INT, "error": {**_nullable(STR), "description": "scrubbed"}},
                            ("ok", "status", "latency_ms", "error")),
        "PriceInput": {**_obj({**{f: _nullable(USD_IN) for f in PRICE_FIELDS},
                                "per_image": {"oneOf": [USD_IN, {"type": "object", "required": ["default"],
                                                                 "additionalProperties": USD_IN},
                                                        {"type": "null"}]}}),
                       "minProperties": 1, "additionalProperties": False,
                       "description": "USD per 1M tokens (input, output, cached_input, cache_write, input_image), "
                                      "per call, or per image (one amount, or by 'size', 'size/quality', "
                                      "'*/quality' with a 'default')"},
        "Price": _obj({"model": {**STR, "description": "model name or pattern"},
                       **{f: _nullable(USD_OUT) for f in PRICE_FIELDS},
                       "per_image": _nullable({"type": "object", "additionalProperties": USD_OUT}),
                       "source": {"enum": ["api", "config"]}, "updated_at": UNIX_S}),
        "UsageRecord": _obj(_USAGE_RECORD),
        "UsagePage": _obj({"data": {"type": "array", "items": _ref("UsageRecord")}, "has_more": BOOL,
                           "next_cursor": {**_nullable(INT), "description": "pass as cursor for the next page"}},
                          ("data", "has_more", "next_cursor")),
        "UsageSummary": _obj({
            "group_by": {"type": "array", "items": {"enum": list(GROUPS)}},
            "data": {"type": "array", "items": _obj({
                "key_id": _nullable(INT), "model": STR, "channel_id": _nullable(INT),
                "day": {**STR, "format": "date", "description": "UTC day"}, **_TOTALS,
            })},
            "total": _obj(_TOTALS),
        }),
    }


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_ERRORS = {"401": _error("missing or wrong admin credential")}


def _op(summary: str, schema: Schema | None, *, status: str = "200", body: str | None = None,
        params: list[Schema] | None = None, errors: tuple[str, ...] = ()) -> Schema:
    op: Schema = {"summary": summary, "responses": {
        status: {"description": "success", "content": {"application/json": {"schema": schema}}}, **_ERRORS,
    }}
    descriptions = {"400": "invalid input", "404": "no such item", "409": "name already used"}
    for code in (*errors, *(("400",) if body else ())):
        op["responses"][code] = _error(descriptions[code])
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    return op


def _param(name: str, where: str, schema: Schema, description: str = "") -> Schema:
    param: Schema = {"name": name, "in": where, "schema": schema, "required": where == "path"}
    if description:
        param["description"] = description
    return param


_ID = _param("id", "path", {"type": "integer", "minimum": 1})
_PATTERN = _param("pattern", "path", STR, "model name or pattern (may contain * and /)")
_FILTERS = [
    _param("key_id", "query", INT), _param("model", "query", STR), _param("channel_id", "query", INT),
    _param("end_reason", "query", STR), _param("request_id", "query", STR, "relaygate's id (X-Request-Id)"),
    _param("client_request_id", "query", STR, "the id the client sent (X-Client-Request-Id)"),
    _param("since", "query", STR, "inclusive; unix seconds or ISO-8601 (UTC when no zone)"),
    _param("until", "query", STR, "exclusive; unix seconds or ISO-8601 (UTC when no zone)"),
]
_PAGE = [
    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}),
    _param("cursor", "query", {"type": "integer", "minimum": 1}, "next_cursor of the previous page"),
]
_GROUP_BY = _param("group_by", "query", STR, f"comma-separated subset of {', '.join(GROUPS)}")


def _paths() -> dict[str, Schema]:
    return {
        "/api/openapi.json": {"get": {"summary": "This document (no credential needed)", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1 document"}}}},
        "/api/keys": {
            "post": _op("Create a client key (the key is returned only here)", _ref("KeyCreated"),
                        status="201", body="KeyCreate", errors=("409",)),
            "get": _op("List client keys (hints only)", _listing("Key")),
        },
        "/api/keys/{id}": {
            "parameters": [_ID],
            "get": _op("A client key with its quota, spend and remaining balance", _ref("Key"), errors=("404",)),
            "patch": _op("Change a client key", _ref("Key"), body="KeyUpdate", errors=("404", "409")),
        },
        "/api/keys/{id}/disable": {"parameters": [_ID], "post": _op("Disable a client key", _ref("Key"),
                                                                    errors=("404",))},
        "/api/channels": {
            "post": _op("Create an upstream channel", _ref("Channel"), status="201", body="ChannelCreate",
                        errors=("409",)),
            "get": _op("List channels with their health", _listing("Channel")),
        },
        "/api/channels/{id}": {
            "parameters": [_ID],
            "get": _op("A channel with its health", _ref("Channel"), errors=("404",)),
            "patch": _op("Change a channel", _ref("Channel"), body="ChannelUpdate", errors=("404", "409")),
        },
        "/api/channels/{id}/disable": {"parameters": [_ID], "post": _op("Disable a channel", _ref("Channel"),
                                                                        errors=("404",))},
        "/api/channels/{id}/test": {"parameters": [_ID], "post": _op(
            "Send the channel's cheapest upstream request (models list) and report the outcome",
            _ref("ChannelTest"), errors=("404",))},
        "/api/prices": {"get": _op("List prices", _listing("Price"))},
        "/api/prices/{pattern}": {
            "parameters": [_PATTERN],
            "put": _op("Create or replace the price of a model or pattern", _ref("Price"), body="PriceInput"),
            "delete": _op("Remove a price", _obj({"model": STR, "deleted": BOOL}), errors=("404",)),
        },
        "/api/usage": {"get": _op("Usage records, newest first", _ref("UsagePage"), params=_FILTERS + _PAGE,
                                  errors=("400",))},
        "/api/usage/summary": {"get": _op("Usage totals, grouped", _ref("UsageSummary"),
                                          params=[*_FILTERS, _GROUP_BY], errors=("400",))},
        "/api/usage/{request_id}": {"get": _op(
            "The usage record of one request", _ref("UsageRecord"),
            params=[_param("request_id", "path", STR)], errors=("404",))},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "relaygate admin API", "version": "1", "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"adminKey": []}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"adminKey": {"type": "http", "scheme": "bearer",
                                             "description": "the admin credential (RELAYGATE_ADMIN_KEY)"}},
        },
    }
