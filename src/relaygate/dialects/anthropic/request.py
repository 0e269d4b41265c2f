"""Anthropic Messages requests to and from the neutral core (pure functions)."""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import (
    ChatRequest,
    Message,
    Part,
    Reasoning,
    ResponseFormatKind,
    Role,
    Sampling,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
    extras_of,
    json_text,
    make_extras,
)
from relaygate.core.media import urls_to_fetch
from relaygate.core.reasoning import DYNAMIC_BUDGET, budget_within
from relaygate.core.wire import as_dict, as_int, as_list, as_number, as_str, leftovers, merge_missing
from relaygate.dialects.anthropic.blocks import blocks_in, content_out
from relaygate.dialects.anthropic.shared import D

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when the source has none (Anthropic requires it); with thinking, added to the budget."""
MIN_THINKING_BUDGET = 1024  # Anthropic refuses smaller budgets

_REQUEST_FIELDS = frozenset({"model", "max_tokens", "messages", "system", "stream", "temperature", "top_p", "top_k",
                             "stop_sequences", "metadata", "tools", "tool_choice", "thinking"})
_TOOL_FIELDS = frozenset({"name", "description", "input_schema"})
_CHOICE_IN = {"auto": ToolChoiceMode.AUTO, "any": ToolChoiceMode.REQUIRED, "tool": ToolChoiceMode.TOOL,
              "none": ToolChoiceMode.NONE}
_CHOICE_OUT = {mode: word for word, mode in _CHOICE_IN.items()}
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
JSON_SCHEMA_INSTRUCTION = "Respond with a single valid JSON value that conforms to this JSON Schema, and nothing else:"


# -- in ----------------------------------------------------------------------------------------------

def _messages_in(raw_messages: Any) -> list[Message]:
    """A user turn's ``tool_result`` blocks become a TOOL message, the rest of the turn a USER one."""
    messages: list[Message] = []
    for raw in as_list(raw_messages):
        raw = as_dict(raw)
        parts = blocks_in(raw.get("content"))
        extras = make_extras(D, leftovers(raw, frozenset({"role", "content"})))
        if raw.get("role") == "assistant":
            messages.append(Message(Role.ASSISTANT, tuple(parts), extras))
            continue
        results = tuple(p for p in parts if isinstance(p, ToolResultPart))
        rest = tuple(p for p in parts if not isinstance(p, ToolResultPart))
        if results:
            messages.append(Message(Role.TOOL, results))
        if rest or not results:
            messages.append(Message(Role.USER, rest, extras))
    return messages


def _system_in(raw: Any) -> tuple[TextPart, ...]:
    return tuple(p for p in blocks_in(raw) if isinstance(p, TextPart)) if raw else ()


def _tools_in(raw: Any) -> tuple[tuple[Tool, ...], list[Any]]:
    tools: list[Tool] = []
    server: list[Any] = []
    for tool in as_list(raw):
        tool = as_dict(tool)
        if tool.get("type") not in (None, "custom"):
            server.append(tool)  # web_search, bash, text_editor...: Anthropic runs them
            continue
        extras = make_extras(D, leftovers(tool, _TOOL_FIELDS))
        tools.append(Tool(str(tool.get("name") or ""), as_str(tool.get("description")),
                          as_dict(tool.get("input_schema")) or None, extras))
    return tuple(tools), server


def _tool_choice_in(raw: Any) -> ToolChoice | None:
    raw = as_dict(raw)
    mode = _CHOICE_IN.get(str(raw.get("type")))
    if mode is None:
        return None
    disable = raw.get("disable_parallel_tool_use")
    return ToolChoice(mode, as_str(raw.get("name")), disable if isinstance(disable, bool) else None)


def _thinking_in(raw: Any) -> Reasoning | None:
    raw = as_dict(raw)
    if raw.get("type") == "enabled":
        return Reasoning(budget_tokens=as_int(raw.get("budget_tokens")), include_thoughts=True)
    if raw.get("type") == "disabled":
        return Reasoning(budget_tokens=0)
    return None


def anthropic_request_to_core(body: dict[str, Any]) -> ChatRequest:
    """A ``/v1/messages`` body as a neutral request; server tools and fields with no neutral meaning go
    to ``extras["anthropic"]``."""
    tools, server_tools = _tools_in(body.get("tools"))
    metadata = as_dict(body.get("metadata"))
    extra = leftovers(body, _REQUEST_FIELDS)
    if server_tools:
        extra["tools"] = server_tools
    if leftovers(metadata, frozenset({"user_id"})):
        extra["metadata"] = leftovers(metadata, frozenset({"user_id"}))
    reasoning = _thinking_in(body.get("thinking"))
    if body.get("thinking") is not None and reasoning is None:
        extra["thinking"] = body["thinking"]  # a newer thinking type: kept for Anthropic only
    sampling = Sampling(
        temperature=as_number(body.get("temperature")), top_p=as_number(body.get("top_p")),
        top_k=as_int(body.get("top_k")), max_tokens=as_int(body.get("max_tokens")),
        stop=tuple(str(s) for s in as_list(body.get("stop_sequences"))))
    return ChatRequest(
        model=str(body.get("model") or ""), messages=tuple(_messages_in(body.get("messages"))),
        system=_system_in(body.get("system")), tools=tools, tool_choice=_tool_choice_in(body.get("tool_choice")),
        sampling=sampling, reasoning=reasoning, stream=body.get("stream") is True,
        user=as_str(metadata.get("user_id")), extras=make_extras(D, extra))


# -- out ---------------------------------------------------------------------------------------------

def _merges_into_previous(message: Message, previous: Message | None) -> bool:
    # Anthropic wants every tool_result of a turn in the one user turn that follows it.
    return previous is not None and previous.role is Role.TOOL and message.role in (Role.TOOL, Role.USER)


def _messages_out(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[tuple[str, list[Part], dict[str, Any]]] = []
    previous: Message | None = None
    for message in messages:
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        if turns and _merges_into_previous(message, previous):
            turns[-1][1].extend(message.parts)
        else:
            turns.append((role, list(message.parts), dict(extras_of(message.extras, D))))
        previous = message
    out = []
    for role, parts, extra in turns:
        content = content_out(tuple(parts))
        if content:  # nothing Anthropic can take (e.g. only foreign thinking): the turn goes
            out.append({"role": role, "content": content, **extra})
    return out


def _system_out(req: ChatRequest) -> str | list[dict[str, Any]] | None:
    parts = req.system
    fmt = req.response_format
    if fmt is not None and fmt.kind is ResponseFormatKind.JSON_OBJECT:
        parts = (*parts, TextPart(JSON_OBJECT_INSTRUCTION))
    elif fmt is not None and fmt.kind is ResponseFormatKind.JSON_SCHEMA:
        parts = (*parts, TextPart(f"{JSON_SCHEMA_INSTRUCTION}\n{json_text(fmt.schema or {})}"))
    return content_out(parts) or None


def _tool_out(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = dict(tool.parameters or {"type": "object", "properties": {}})
    return {**out, **extras_of(tool.extras, D)}


def _tool_choice_out(choice: ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _CHOICE_OUT[choice.mode or ToolChoiceMode.AUTO]}
    if choice.mode is ToolChoiceMode.TOOL:
        out["name"] = choice.name
    if choice.disable_parallel is not None and choice.mode is not ToolChoiceMode.NONE:
        out["disable_parallel_tool_use"] = choice.disable_parallel
    return out


def _thinking_budget(reasoning: Reasoning, max_tokens: int | None) -> int | None:
    """0: thinking off; None: say nothing. A budget we choose (from an effort word) leaves room for
    the answer; one that does not fit ``max_tokens`` is halved to fit."""
    budget = reasoning.budget_tokens
    if budget is None or budget == DYNAMIC_BUDGET:
        if reasoning.effort is None and not reasoning.include_thoughts and budget is None:
            return None
        budget = budget_within(reasoning.effort or "medium", max_tokens)
    elif max_tokens is not None and budget >= max_tokens:
        budget = max_tokens // 2
    return None if budget is None else (max(budget, MIN_THINKING_BUDGET) if budget > 0 else 0)


def _last_turn_needs_signature(messages: tuple[Message, ...]) -> bool:
    """With thinking on, an assistant turn that called tools must start with its signed thinking block;
    history from another dialect has none, and Anthropic would refuse the request."""
    last = next((m for m in reversed(messages) if m.role is Role.ASSISTANT), None)
    if last is None or not any(isinstance(p, ToolCallPart) for p in last.parts):
        return False
    return not any(isinstance(p, ThinkingPart) and p.origin == D and p.signature for p in last.parts)


def _thinking_out(req: ChatRequest) -> tuple[dict[str, Any] | None, int]:
    """The ``thinking`` object (None to leave it out) and ``max_tokens``."""
    max_tokens = req.sampling.max_tokens
    budget = _thinking_budget(req.reasoning, max_tokens) if req.reasoning else None
    if not budget:
        return ({"type": "disabled"} if budget == 0 else None), max_tokens or DEFAULT_MAX_TOKENS
    if max_tokens is None:
        max_tokens = budget + DEFAULT_MAX_TOKENS
    if budget >= max_tokens or _last_turn_needs_signature(req.messages):
        return None, max_tokens  # max_tokens too small for Anthropic's smallest budget, or no signature
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def _sampling_out(sampling: Sampling, body: dict[str, Any], thinking: bool) -> None:
    # Anthropic's temperature tops out at 1; with thinking it must be 1, top_k unset, top_p >= 0.95.
    if sampling.temperature is not None and not thinking:
        body["temperature"] = min(max(sampling.temperature, 0.0), 1.0)
    if sampling.top_p is not None and (not thinking or sampling.top_p >= 0.95):
        body["top_p"] = sampling.top_p
    if sampling.top_k is not None and not thinking:
        body["top_k"] = sampling.top_k
    if sampling.stop:
        body["stop_sequences"] = list(sampling.stop)


def core_request_to_anthropic(req: ChatRequest) -> dict[str, Any]:
    """A neutral request as a ``/v1/messages`` body. JSON modes become a system instruction (Anthropic
    has no JSON mode); see ``docs/translation.md`` for the thinking and ``max_tokens`` rules."""
    own = dict(extras_of(req.extras, D))
    thinking, max_tokens = _thinking_out(req)
    body: dict[str, Any] = {"model": req.model, "max_tokens": max_tokens, "messages": _messages_out(req.messages)}
    system = _system_out(req)
    if system:
        body["system"] = system
    if req.stream:
        body["stream"] = True
    _sampling_out(req.sampling, body, bool(thinking and thinking["type"] == "enabled"))
    if req.tools or own.get("tools"):
        body["tools"] = [_tool_out(tool) for tool in req.tools] + list(own.pop("tools", None) or [])
    if req.tool_choice is not None and (req.tools or body.get("tools")):
        body["tool_choice"] = _tool_choice_out(req.tool_choice)
    if thinking is not None:
        body["thinking"] = thinking
    if req.user is not None or own.get("metadata"):
        body["metadata"] = {**as_dict(own.pop("metadata", None)), **({"user_id": req.user} if req.user else {})}
    return merge_missing(body, own)



def anthropic_urls_to_fetch(req: ChatRequest) -> list[str]:
    """URLs Anthropic will not read itself (it reads ``https`` images and PDFs by URL)."""
    return urls_to_fetch(req, lambda part: not (part.url or "").startswith("https://"))
