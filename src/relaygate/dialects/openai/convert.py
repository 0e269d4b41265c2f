"""OpenAI chat-completion requests to and from the neutral core.

Pure functions, no I/O. What is kept and dropped per pair: ``docs/translation.md``.
"""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import (
    ChatRequest,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    OpaquePart,
    Part,
    Reasoning,
    ResponseFormat,
    ResponseFormatKind,
    ResultContent,
    Role,
    Sampling,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
    extras_of,
    make_extras,
)
from relaygate.core.media import data_uri, decoded_text, parse_data_uri, sniff_media_type, urls_to_fetch
from relaygate.core.reasoning import effort_for_budget
from relaygate.core.wire import as_dict, as_int, as_list, as_number, as_str, leftovers, merge_missing

D = "openai"

_REQUEST_FIELDS = frozenset({
    "model", "messages", "stream", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
    "presence_penalty", "frequency_penalty", "response_format", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning_effort", "user",
})
_MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id"})

FINISH_IN = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH, "tool_calls": FinishReason.TOOL_CALLS,
             "content_filter": FinishReason.CONTENT_FILTER, "function_call": FinishReason.TOOL_CALLS}
FINISH_OUT = {FinishReason.STOP: "stop", FinishReason.LENGTH: "length", FinishReason.TOOL_CALLS: "tool_calls",
              FinishReason.CONTENT_FILTER: "content_filter", FinishReason.ERROR: "stop"}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}


# -- request: OpenAI → core --------------------------------------------------------------------------

def _image_in(part: dict[str, Any]) -> ImagePart:
    image = as_dict(part.get("image_url"))
    url = str(image.get("url") or "")
    extras = make_extras(D, leftovers(image, frozenset({"url"})))
    inline = parse_data_uri(url)
    if inline is not None:
        return ImagePart(inline.media_type, inline.data, extras=extras)
    return ImagePart(url=url or None, extras=extras)


def _file_in(part: dict[str, Any]) -> FilePart:
    file = as_dict(part.get("file"))
    inline = parse_data_uri(str(file.get("file_data") or ""))
    extras = make_extras(D, leftovers(file, frozenset({"file_data", "filename"})))
    if inline is None:
        return FilePart(filename=file.get("filename"), extras=extras)
    return FilePart(inline.media_type, inline.data, filename=file.get("filename"), extras=extras)


def _part_in(part: Any) -> Part:
    part = as_dict(part)
    kind = part.get("type")
    if kind == "text":
        return TextPart(str(part.get("text") or ""), make_extras(D, leftovers(part, frozenset({"type", "text"}))))
    if kind == "image_url":
        return _image_in(part)
    if kind == "input_audio":
        audio = as_dict(part.get("input_audio"))
        fmt = str(audio.get("format") or "wav")
        return FilePart(_AUDIO_TYPES.get(fmt, f"audio/{fmt}"), str(audio.get("data") or ""))
    if kind == "file":
        return _file_in(part)
    if kind == "refusal":
        return TextPart(str(part.get("refusal") or ""), {D: {"refusal": True}})
    return OpaquePart(D, part)


def content_in(content: Any) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    return tuple(_part_in(part) for part in as_list(content))


def tool_call_in(call: Any) -> ToolCallPart:
    call = as_dict(call)
    function = as_dict(call.get("function"))
    arguments = function.get("arguments")
    return ToolCallPart(str(call.get("id") or ""), str(function.get("name") or ""),
                        arguments if isinstance(arguments, str) else "{}")


def _message_in(raw: dict[str, Any]) -> Message:
    role = raw.get("role")
    extras = make_extras(D, leftovers(raw, _MESSAGE_FIELDS))
    if role == "tool":
        content = tuple(p for p in content_in(raw.get("content")) if isinstance(p, TextPart | ImagePart | FilePart))
        return Message(Role.TOOL, (ToolResultPart(str(raw.get("tool_call_id") or ""), content),), extras)
    if role == "assistant":
        parts = tuple(p for p in content_in(raw.get("content")) if not (isinstance(p, TextPart) and not p.text))
        calls = tuple(tool_call_in(call) for call in as_list(raw.get("tool_calls")))
        return Message(Role.ASSISTANT, parts + calls, extras)
    return Message(Role.USER, content_in(raw.get("content")), extras)


def _system_in(raw: dict[str, Any]) -> list[TextPart]:
    extra = leftovers(raw, frozenset({"role", "content"}))
    if raw.get("role") == "developer":
        extra["role"] = "developer"
    return [TextPart(p.text, make_extras(D, extra)) for p in content_in(raw.get("content")) if isinstance(p, TextPart)]


def _tools_in(body: dict[str, Any]) -> tuple[tuple[Tool, ...], list[Any]]:
    tools: list[Tool] = []
    others: list[Any] = []
    for raw in as_list(body.get("tools")):
        function = as_dict(raw).get("function")
        if as_dict(raw).get("type", "function") != "function" or not isinstance(function, dict):
            others.append(raw)
            continue
        extra = leftovers(function, frozenset({"name", "description", "parameters"}))
        parameters = function.get("parameters")
        tools.append(Tool(str(function.get("name") or ""), as_str(function.get("description")),
                          parameters if isinstance(parameters, dict) else None, make_extras(D, extra)))
    return tuple(tools), others


def _tool_choice_in(body: dict[str, Any]) -> ToolChoice | None:
    raw = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    disable = None if not isinstance(parallel, bool) else not parallel
    if isinstance(raw, str) and raw in ("auto", "none", "required"):
        return ToolChoice(ToolChoiceMode(raw), disable_parallel=disable)
    name = as_dict(as_dict(raw).get("function")).get("name")
    if isinstance(name, str):
        return ToolChoice(ToolChoiceMode.TOOL, name, disable)
    return ToolChoice(disable_parallel=disable) if disable is not None else None


def _response_format_in(raw: Any) -> ResponseFormat | None:
    raw = as_dict(raw)
    kind = raw.get("type")
    if kind == "json_schema":
        spec = as_dict(raw.get("json_schema"))
        strict = spec.get("strict")
        return ResponseFormat(ResponseFormatKind.JSON_SCHEMA, as_dict(spec.get("schema")), as_str(spec.get("name")),
                              as_str(spec.get("description")), strict if isinstance(strict, bool) else None)
    if kind in ("text", "json_object"):
        return ResponseFormat(ResponseFormatKind(kind))
    return None


def _sampling_in(body: dict[str, Any]) -> Sampling:
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(str(s) for s in as_list(stop))
    max_tokens = as_int(body.get("max_completion_tokens"))
    return Sampling(
        temperature=as_number(body.get("temperature")), top_p=as_number(body.get("top_p")),
        max_tokens=max_tokens if max_tokens is not None else as_int(body.get("max_tokens")),
        stop=stops, seed=as_int(body.get("seed")), presence_penalty=as_number(body.get("presence_penalty")),
        frequency_penalty=as_number(body.get("frequency_penalty")))


def openai_request_to_core(body: dict[str, Any]) -> ChatRequest:
    """A ``/v1/chat/completions`` body as a neutral request. ``system``/``developer`` messages anywhere
    become the system prompt; fields with no neutral meaning go to ``extras["openai"]``."""
    system: list[TextPart] = []
    messages: list[Message] = []
    for raw in as_list(body.get("messages")):
        raw = as_dict(raw)
        if raw.get("role") in ("system", "developer"):
            system.extend(_system_in(raw))
        else:
            messages.append(_message_in(raw))
    tools, other_tools = _tools_in(body)
    effort = body.get("reasoning_effort")
    extra = leftovers(body, _REQUEST_FIELDS)
    if other_tools:
        extra["tools"] = other_tools
    return ChatRequest(
        model=str(body.get("model") or ""), messages=tuple(messages), system=tuple(system), tools=tools,
        tool_choice=_tool_choice_in(body), sampling=_sampling_in(body),
        response_format=_response_format_in(body.get("response_format")),
        reasoning=Reasoning(effort=effort) if isinstance(effort, str) else None,
        stream=body.get("stream") is True, user=body.get("user") if isinstance(body.get("user"), str) else None,
        extras=make_extras(D, extra))


# -- request: core → OpenAI --------------------------------------------------------------------------

def _media_out(part: ImagePart | FilePart) -> dict[str, Any] | None:
    own = dict(extras_of(part.extras, D))
    if isinstance(part, ImagePart):
        if part.data is not None:
            url = data_uri(part.media_type or sniff_media_type(part.data) or "image/png", part.data)
        elif part.url:
            url = part.url
        else:
            return None
        return {"type": "image_url", "image_url": {"url": url, **own}}
    media_type = part.media_type or "application/octet-stream"
    if part.data is not None and media_type.startswith("text/"):  # OpenAI reads PDFs only: give it the text
        text = decoded_text(part.data)
        return {"type": "text", "text": text} if text is not None else None
    if part.data is not None and media_type in _AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": _AUDIO_FORMATS[media_type]}}
    file: dict[str, Any] = {"file_data": data_uri(media_type, part.data)} if part.data is not None else {}
    if part.filename:
        file["filename"] = part.filename
    merge_missing(file, own)
    return {"type": "file", "file": file} if ("file_data" in file or "file_id" in file) else None


def _part_out(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        if extras_of(part.extras, D).get("refusal"):
            return {"type": "refusal", "refusal": part.text}
        return {"type": "text", "text": part.text, **extras_of(part.extras, D)}
    if isinstance(part, ImagePart | FilePart):
        return _media_out(part)
    if isinstance(part, OpaquePart) and part.origin == D:
        return dict(part.data)
    return None


def _content_out(parts: tuple[Part, ...] | tuple[ResultContent, ...]) -> str | list[dict[str, Any]]:
    """A part list, or a bare string when it comes to one plain text part."""
    out = [item for part in parts if (item := _part_out(part)) is not None]
    if len(out) == 1 and out[0].keys() == {"type", "text"} and out[0]["type"] == "text":
        return str(out[0]["text"])
    return out


def tool_call_out(call: ToolCallPart) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _assistant_out(message: Message) -> dict[str, Any]:
    texts = tuple(p for p in message.parts if isinstance(p, TextPart | OpaquePart) and _part_out(p) is not None)
    calls = [tool_call_out(p) for p in message.parts if isinstance(p, ToolCallPart)]
    content = _content_out(texts) if texts else None
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_results_out(message: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for result in message.parts:
        if not isinstance(result, ToolResultPart):
            continue
        texts = tuple(p for p in result.content if isinstance(p, TextPart))
        media.extend(m for p in result.content if isinstance(p, ImagePart | FilePart) and (m := _media_out(p)))
        tool = {"role": "tool", "tool_call_id": result.call_id, "content": _content_out(texts) if texts else ""}
        out.append(merge_missing(tool, extras_of(message.extras, D)))
    if media:  # tool messages take text only: the images follow in a user turn
        out.append({"role": "user", "content": media})
    return out


def _message_out(message: Message) -> list[dict[str, Any]]:
    if message.role is Role.TOOL:
        return _tool_results_out(message)
    if message.role is Role.ASSISTANT:
        out = _assistant_out(message)
        if out["content"] is None and "tool_calls" not in out and not extras_of(message.extras, D):
            return []  # only thinking: OpenAI has nowhere to put it
    else:
        content = _content_out(message.parts)
        if not content:
            return []
        out = {"role": "user", "content": content}
    return [merge_missing(out, extras_of(message.extras, D))]


def _system_out(part: TextPart) -> dict[str, Any]:
    own = dict(extras_of(part.extras, D))
    return {"role": own.pop("role", "system"), "content": part.text, **own}


def _tool_out(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = dict(tool.parameters)
    return {"type": "function", "function": merge_missing(function, extras_of(tool.extras, D))}


def _tool_choice_out(choice: ToolChoice, body: dict[str, Any]) -> None:
    if choice.mode is ToolChoiceMode.TOOL:
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice.mode is not None:
        body["tool_choice"] = choice.mode.value
    if choice.disable_parallel is not None:
        body["parallel_tool_calls"] = not choice.disable_parallel


def _response_format_out(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.kind is not ResponseFormatKind.JSON_SCHEMA:
        return {"type": fmt.kind.value}
    spec: dict[str, Any] = {"name": fmt.name or "response"}
    if fmt.description is not None:
        spec["description"] = fmt.description
    spec["schema"] = dict(fmt.schema or {})
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


def _effort_out(reasoning: Reasoning) -> str | None:
    if reasoning.effort is not None:
        return reasoning.effort
    return effort_for_budget(reasoning.budget_tokens) if reasoning.budget_tokens is not None else None


def _sampling_out(req: ChatRequest, body: dict[str, Any], effort: str | None) -> None:
    s = req.sampling
    if s.max_tokens is not None:  # reasoning models refuse max_tokens; others all take it
        body["max_completion_tokens" if effort else "max_tokens"] = s.max_tokens
    for key, value in (("temperature", s.temperature), ("top_p", s.top_p), ("seed", s.seed),
                       ("presence_penalty", s.presence_penalty), ("frequency_penalty", s.frequency_penalty)):
        if value is not None:
            body[key] = value
    if s.stop:
        body["stop"] = list(s.stop)


def core_request_to_openai(req: ChatRequest) -> dict[str, Any]:
    """A neutral request as a ``/v1/chat/completions`` body (``stream_options`` is the relay's edit)."""
    own = extras_of(req.extras, D)
    messages = [_system_out(part) for part in req.system]
    for message in req.messages:
        messages.extend(_message_out(message))
    body: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.stream:
        body["stream"] = True
    effort = _effort_out(req.reasoning) if req.reasoning else None
    _sampling_out(req, body, effort)
    if req.tools or own.get("tools"):
        body["tools"] = [_tool_out(tool) for tool in req.tools] + list(own.get("tools") or [])
    if req.tool_choice is not None:
        _tool_choice_out(req.tool_choice, body)
    if req.response_format is not None:
        body["response_format"] = _response_format_out(req.response_format)
    if effort:
        body["reasoning_effort"] = effort
    if req.user is not None:
        body["user"] = req.user
    return merge_missing(body, own)


def openai_urls_to_fetch(req: ChatRequest) -> list[str]:
    """URLs of files (not images: OpenAI reads image URLs) that must be inlined first: OpenAI takes
    file contents only as data."""
    return urls_to_fetch(req, lambda part: isinstance(part, FilePart))
