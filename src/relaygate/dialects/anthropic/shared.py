"""Anthropic stop reasons, usage and error types in neutral terms (shared by the converters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.core.chat import FinishReason
from relaygate.core.usage import Usage
from relaygate.core.wire import as_dict, count

D = "anthropic"

STOP_IN = {"end_turn": FinishReason.STOP, "stop_sequence": FinishReason.STOP, "max_tokens": FinishReason.LENGTH,
           "tool_use": FinishReason.TOOL_CALLS, "pause_turn": FinishReason.STOP,
           "refusal": FinishReason.CONTENT_FILTER, "model_context_window_exceeded": FinishReason.LENGTH}
STOP_OUT = {FinishReason.STOP: "end_turn", FinishReason.LENGTH: "max_tokens", FinishReason.TOOL_CALLS: "tool_use",
            FinishReason.CONTENT_FILTER: "refusal", FinishReason.ERROR: "end_turn"}

ERROR_KIND_IN = {"invalid_request_error": "invalid_request", "authentication_error": "authentication",
                 "permission_error": "permission", "not_found_error": "not_found", "rate_limit_error": "rate_limit",
                 "overloaded_error": "overloaded", "api_error": "server_error", "timeout_error": "upstream",
                 "billing_error": "quota", "request_too_large": "invalid_request"}
ERROR_KIND_OUT = {"invalid_request": "invalid_request_error", "authentication": "authentication_error",
                  "permission": "permission_error", "not_found": "not_found_error", "rate_limit": "rate_limit_error",
                  "overloaded": "overloaded_error", "quota": "billing_error", "upstream": "api_error"}


def stop_reason_in(raw: Any, stop_sequence: str | None) -> tuple[FinishReason, dict[str, Any]]:
    """The neutral reason, and the extras that keep Anthropic's own word when the neutral one loses it."""
    reason = STOP_IN.get(str(raw), FinishReason.STOP)
    canonical = "stop_sequence" if stop_sequence is not None else STOP_OUT[reason]
    return reason, ({"stop_reason": raw} if raw is not None and raw != canonical else {})


def stop_reason_out(reason: FinishReason, stop_sequence: str | None, extras: Mapping[str, Any]) -> str:
    if extras.get("stop_reason"):
        return str(extras["stop_reason"])
    return "stop_sequence" if reason is FinishReason.STOP and stop_sequence is not None else STOP_OUT[reason]


def usage_from_anthropic(raw: Any) -> Usage | None:
    """Anthropic's ``input_tokens`` excludes cache reads and writes; the neutral count includes them."""
    raw = as_dict(raw)
    if not raw:
        return None
    read, write = count(raw.get("cache_read_input_tokens")), count(raw.get("cache_creation_input_tokens"))
    return Usage(input_tokens=count(raw.get("input_tokens")) + read + write,
                 output_tokens=count(raw.get("output_tokens")), cached_input_tokens=read, cache_write_tokens=write)


def input_usage_to_anthropic(usage: Usage) -> dict[str, int]:
    fresh = max(usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens, 0)
    return {"input_tokens": fresh, "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cached_input_tokens}


def usage_to_anthropic(usage: Usage | None) -> dict[str, int]:
    usage = usage or Usage()
    return {**input_usage_to_anthropic(usage), "output_tokens": usage.output_tokens}
