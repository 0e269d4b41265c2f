"""OpenAI usage objects to and from the neutral ``Usage``."""

from __future__ import annotations

from typing import Any

from relaygate.core.usage import Usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from_openai(raw: Any) -> Usage | None:
    """``{"prompt_tokens", "completion_tokens", "prompt_tokens_details": {"cached_tokens"}, ...}``.

    Also reads the Responses-style ``input_tokens``/``output_tokens`` names some upstreams send.
    Returns None when there is no usable usage object.
    """
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens", raw.get("input_tokens"))
    completion = raw.get("completion_tokens", raw.get("output_tokens"))
    if prompt is None and completion is None:
        return None
    prompt_details = raw.get("prompt_tokens_details") or raw.get("input_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or raw.get("output_tokens_details") or {}
    if not isinstance(prompt_details, dict):
        prompt_details = {}
    if not isinstance(completion_details, dict):
        completion_details = {}
    return Usage(
        input_tokens=_int(prompt),
        output_tokens=_int(completion),
        cached_input_tokens=_int(prompt_details.get("cached_tokens")),
        # DeepSeek-style and some relays report cache writes; OpenAI itself does not.
        cache_write_tokens=_int(prompt_details.get("cache_write_tokens") or raw.get("cache_creation_input_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
    )


def usage_to_openai(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
