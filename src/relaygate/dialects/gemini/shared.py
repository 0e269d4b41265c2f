"""Gemini field spellings, finish reasons, usage and error statuses in neutral terms."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from relaygate.core.chat import FinishReason
from relaygate.core.usage import Usage
from relaygate.core.wire import as_dict, count

D = "gemini"

_UPPER = re.compile(r"([A-Z])")

FINISH_IN = {
    "STOP": FinishReason.STOP, "MAX_TOKENS": FinishReason.LENGTH, "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER, "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER, "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER, "IMAGE_PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
}
FINISH_OUT = {FinishReason.STOP: "STOP", FinishReason.TOOL_CALLS: "STOP", FinishReason.LENGTH: "MAX_TOKENS",
              FinishReason.CONTENT_FILTER: "SAFETY", FinishReason.ERROR: "OTHER"}

ERROR_KIND_IN = {"INVALID_ARGUMENT": "invalid_request", "FAILED_PRECONDITION": "invalid_request",
                 "UNAUTHENTICATED": "authentication", "PERMISSION_DENIED": "permission", "NOT_FOUND": "not_found",
                 "RESOURCE_EXHAUSTED": "rate_limit", "UNAVAILABLE": "overloaded", "INTERNAL": "server_error",
                 "DEADLINE_EXCEEDED": "upstream"}
ERROR_KIND_OUT = {"invalid_request": (400, "INVALID_ARGUMENT"), "authentication": (401, "UNAUTHENTICATED"),
                  "permission": (403, "PERMISSION_DENIED"), "not_found": (404, "NOT_FOUND"),
                  "rate_limit": (429, "RESOURCE_EXHAUSTED"), "quota": (429, "RESOURCE_EXHAUSTED"),
                  "overloaded": (503, "UNAVAILABLE"), "upstream": (502, "UNAVAILABLE")}


def snake(name: str) -> str:
    return _UPPER.sub(r"_\1", name).lower()


def pick(obj: Mapping[str, Any], camel: str) -> Any:
    """A request field under its lowerCamelCase or its snake_case name (proto3 JSON takes both)."""
    value = obj.get(camel)
    return obj.get(snake(camel)) if value is None else value


def spellings(names: Iterable[str]) -> frozenset[str]:
    """Both spellings of each camelCase field name (for ``leftovers``)."""
    return frozenset(name for camel in names for name in (camel, snake(camel)))


def finish_in(raw: Any, has_calls: bool) -> tuple[FinishReason, dict[str, Any]]:
    """Gemini has no tool-call reason: STOP with a functionCall part is one."""
    reason = FINISH_IN.get(str(raw), FinishReason.ERROR)
    if reason is FinishReason.STOP and has_calls:
        reason = FinishReason.TOOL_CALLS
    return reason, ({"finishReason": raw} if raw is not None and raw != FINISH_OUT[reason] else {})


def finish_out(reason: FinishReason, extras: Mapping[str, Any]) -> str:
    return str(extras.get("finishReason") or FINISH_OUT[reason])


def usage_from_gemini(raw: Any) -> Usage | None:
    """Thought tokens are billed as output: output = candidates + thoughts. Cached and tool-use prompt
    tokens are part of the input."""
    raw = as_dict(raw)
    if not raw:
        return None
    thoughts = count(raw.get("thoughtsTokenCount"))
    return Usage(input_tokens=count(raw.get("promptTokenCount")) + count(raw.get("toolUsePromptTokenCount")),
                 output_tokens=count(raw.get("candidatesTokenCount")) + thoughts,
                 cached_input_tokens=count(raw.get("cachedContentTokenCount")), reasoning_tokens=thoughts)


def usage_to_gemini(usage: Usage) -> dict[str, int]:
    """Zero counts are left out, as Gemini does (the prompt and total counts always stay)."""
    out = {"promptTokenCount": usage.input_tokens,
           "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
           "totalTokenCount": usage.total_tokens, "thoughtsTokenCount": usage.reasoning_tokens,
           "cachedContentTokenCount": usage.cached_input_tokens}
    return {k: v for k, v in out.items() if v or k in ("promptTokenCount", "totalTokenCount")}


def error_in(raw: Any) -> tuple[str, str]:
    """(message, neutral kind) of an ``{"error": {...}}`` element."""
    error = as_dict(raw)
    return str(error.get("message") or "upstream error"), ERROR_KIND_IN.get(str(error.get("status")), "server_error")


def error_out(message: str, kind: str) -> dict[str, Any]:
    code, status = ERROR_KIND_OUT.get(kind, (500, "INTERNAL"))
    return {"error": {"code": code, "message": message, "status": status}}
