"""OpenAI chat-completion responses (non-stream) to and from the neutral core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.core.chat import (
    ChatResponse,
    FinishReason,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    extras_of,
    make_extras,
)
from relaygate.core.wire import as_dict, as_int, as_list, leftovers, merge_missing
from relaygate.dialects.openai.convert import FINISH_IN, FINISH_OUT, D, content_in, tool_call_in, tool_call_out
from relaygate.dialects.openai.usage import usage_from_openai, usage_to_openai

_RESPONSE_FIELDS = frozenset({"id", "object", "created", "model", "choices", "usage"})


def openai_response_to_core(body: dict[str, Any]) -> ChatResponse:
    """A ``chat.completion`` object (first choice) as a neutral response."""
    choice = next((as_dict(c) for c in as_list(body.get("choices")) if as_dict(c).get("index", 0) == 0), {})
    message = as_dict(choice.get("message"))
    parts: list[Part] = []
    if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        parts.append(ThinkingPart(message["reasoning_content"]))  # DeepSeek-style extension
    parts.extend(p for p in content_in(message.get("content")) if not (isinstance(p, TextPart) and not p.text))
    if isinstance(message.get("refusal"), str):
        parts.append(TextPart(message["refusal"], {D: {"refusal": True}}))
    parts.extend(tool_call_in(call) for call in as_list(message.get("tool_calls")))
    reason = choice.get("finish_reason")
    extra = leftovers(body, _RESPONSE_FIELDS)
    if reason not in FINISH_OUT.values():  # function_call, or a relay's own word
        extra["finish_reason"] = reason
    return ChatResponse(
        id=str(body.get("id") or ""), model=str(body.get("model") or ""), parts=tuple(parts),
        finish=FINISH_IN.get(str(reason), FinishReason.STOP), usage=usage_from_openai(body.get("usage")),
        created=as_int(body.get("created")), extras=make_extras(D, extra))


def finish_out(reason: FinishReason, extras: Mapping[str, Any]) -> str:
    return str(extras.get("finish_reason") or FINISH_OUT[reason])


def core_response_to_openai(resp: ChatResponse, model: str, *, created: int | None = None) -> dict[str, Any]:
    """A neutral response as a ``chat.completion`` object for the client's ``model`` name, stamped
    ``created`` (the caller's clock; else the source's time, else 0). Thinking text is shown as
    ``message.reasoning_content`` (the DeepSeek-style extension OpenAI SDKs ignore)."""
    own = extras_of(resp.extras, D)
    texts = [p for p in resp.parts if isinstance(p, TextPart)]
    refusal = "".join(p.text for p in texts if extras_of(p.extras, D).get("refusal")) or None
    content = "".join(p.text for p in texts if not extras_of(p.extras, D).get("refusal"))
    calls = [tool_call_out(p) for p in resp.parts if isinstance(p, ToolCallPart)]
    message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls or refusal else ""),
                               "refusal": refusal, "annotations": []}
    thinking = "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart))
    if thinking:
        message["reasoning_content"] = thinking
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_out(resp.finish, own)}
    body: dict[str, Any] = {"id": resp.id, "object": "chat.completion", "created": created or resp.created or 0,
                            "model": model, "choices": [choice]}
    if resp.usage is not None:
        body["usage"] = usage_to_openai(resp.usage)
    return merge_missing(body, {k: v for k, v in own.items() if k != "finish_reason"})
