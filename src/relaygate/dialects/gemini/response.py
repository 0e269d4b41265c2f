"""Gemini generateContent responses to and from the neutral core (pure functions)."""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import ChatResponse, FinishReason, ToolCallPart, extras_of, make_extras
from relaygate.core.wire import as_dict, as_list, leftovers, merge_missing
from relaygate.dialects.gemini.parts import CallIds, parts_in, parts_out
from relaygate.dialects.gemini.shared import D, finish_in, finish_out, usage_from_gemini, usage_to_gemini

_RESPONSE_FIELDS = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId"})
_CANDIDATE_FIELDS = frozenset({"content", "finishReason"})


def first_candidate(body: dict[str, Any]) -> dict[str, Any]:
    candidates = [as_dict(c) for c in as_list(body.get("candidates"))]
    return next((c for c in candidates if c.get("index", 0) == 0), {})


def gemini_response_to_core(body: dict[str, Any]) -> ChatResponse:
    """A ``GenerateContentResponse`` (first candidate) as a neutral response. Function calls without an
    id get one made from ``responseId``. A blocked prompt (no candidates) finishes as content_filter."""
    response_id = str(body.get("responseId") or "")
    candidate = first_candidate(body)
    parts = tuple(parts_in(as_dict(candidate.get("content")).get("parts"), CallIds(response_id)))
    extra = leftovers(body, _RESPONSE_FIELDS)
    if candidate:
        reason, finish_extra = finish_in(candidate.get("finishReason"), any(isinstance(p, ToolCallPart) for p in parts))
        extra.update(finish_extra)
        if leftovers(candidate, _CANDIDATE_FIELDS):
            extra["candidate"] = leftovers(candidate, _CANDIDATE_FIELDS)
    else:
        blocked = as_dict(body.get("promptFeedback")).get("blockReason")
        reason = FinishReason.CONTENT_FILTER if blocked else FinishReason.ERROR
    return ChatResponse(id=response_id, model=str(body.get("modelVersion") or ""), parts=parts, finish=reason,
                        usage=usage_from_gemini(body.get("usageMetadata")), extras=make_extras(D, extra))


def core_response_to_gemini(resp: ChatResponse, model: str) -> dict[str, Any]:
    """A neutral response as a ``GenerateContentResponse`` for the client's ``model`` name. Thinking
    from any dialect is shown as ``thought`` parts."""
    own = dict(extras_of(resp.extras, D))
    candidate_extra = as_dict(own.pop("candidate", None))
    body: dict[str, Any] = {}
    blocked = not resp.parts and as_dict(own.get("promptFeedback")).get("blockReason")
    if not blocked:
        content = {"role": "model", "parts": parts_out(resp.parts, {}, show_thoughts=True)}
        candidate = {"content": content, "finishReason": finish_out(resp.finish, own), "index": 0}
        body["candidates"] = [merge_missing(candidate, candidate_extra)]
    if resp.usage is not None:
        body["usageMetadata"] = usage_to_gemini(resp.usage)
    body["modelVersion"] = model
    body["responseId"] = resp.id
    return merge_missing(body, {key: value for key, value in own.items() if key != "finishReason"})
