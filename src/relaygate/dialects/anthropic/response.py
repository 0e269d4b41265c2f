"""Anthropic Messages responses to and from the neutral core (pure functions)."""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import ChatResponse, Part, TextPart, ThinkingPart, extras_of, make_extras
from relaygate.core.wire import as_list, as_str, leftovers, merge_missing
from relaygate.dialects.anthropic.blocks import block_in, block_out
from relaygate.dialects.anthropic.shared import (
    D,
    stop_reason_in,
    stop_reason_out,
    usage_from_anthropic,
    usage_to_anthropic,
)

_RESPONSE_FIELDS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"})


def anthropic_response_to_core(body: dict[str, Any]) -> ChatResponse:
    """A ``message`` object as a neutral response. Usage counts cache reads and writes as input."""
    stop_sequence = as_str(body.get("stop_sequence"))
    reason, extra = stop_reason_in(body.get("stop_reason"), stop_sequence)
    return ChatResponse(
        id=str(body.get("id") or ""), model=str(body.get("model") or ""),
        parts=tuple(block_in(block) for block in as_list(body.get("content")) if isinstance(block, dict)),
        finish=reason, usage=usage_from_anthropic(body.get("usage")), stop_sequence=stop_sequence,
        extras=make_extras(D, {**leftovers(body, _RESPONSE_FIELDS), **extra}))


def _response_block(part: Part) -> dict[str, Any] | None:
    # Thinking from another dialect is still shown, unsigned (the SDKs accept an empty signature).
    if isinstance(part, ThinkingPart) and part.origin != D:
        return {"type": "thinking", "thinking": part.text, "signature": ""} if part.text else None
    if isinstance(part, TextPart) and not part.text:
        return None
    return block_out(part)


def core_response_to_anthropic(resp: ChatResponse, model: str) -> dict[str, Any]:
    """A neutral response as a ``message`` object for the client's ``model`` name."""
    own = extras_of(resp.extras, D)
    body: dict[str, Any] = {
        "id": resp.id, "type": "message", "role": "assistant", "model": model,
        "content": [block for part in resp.parts if (block := _response_block(part)) is not None],
        "stop_reason": stop_reason_out(resp.finish, resp.stop_sequence, own), "stop_sequence": resp.stop_sequence,
        "usage": usage_to_anthropic(resp.usage),
    }
    return merge_missing(body, {key: value for key, value in own.items() if key != "stop_reason"})
