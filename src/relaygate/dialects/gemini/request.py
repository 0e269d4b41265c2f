"""Gemini generateContent requests to and from the neutral core (pure functions).

The model and the stream flag live in Gemini's URL (``/models/{model}:streamGenerateContent``), not
in its body: the caller passes them in, and takes them out of the neutral request on the way out.
Requests are read in either field spelling (camelCase or snake_case) and written in camelCase.
"""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import (
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    ResponseFormatKind,
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
from relaygate.core.media import urls_to_fetch
from relaygate.core.reasoning import budget_within
from relaygate.core.wire import as_dict, as_int, as_list, as_number, as_str, leftovers, merge_missing
from relaygate.dialects.gemini.parts import SKIP_SIGNATURE, CallIds, parts_in, parts_out
from relaygate.dialects.gemini.schema import gemini_schema_to_json, json_schema_to_gemini
from relaygate.dialects.gemini.shared import D, pick, spellings

_REQUEST_FIELDS = spellings(("contents", "systemInstruction", "generationConfig", "tools", "toolConfig"))
_SAMPLING_FIELDS = spellings(("temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "seed",
                              "presencePenalty", "frequencyPenalty", "thinkingConfig"))
_FORMAT_FIELDS = spellings(("responseMimeType", "responseSchema", "responseJsonSchema"))
_DECLARATION_FIELDS = spellings(("name", "description", "parameters", "parametersJsonSchema"))
_THINKING_FIELDS = spellings(("thinkingBudget", "includeThoughts"))
_MODES_IN = {"AUTO": ToolChoiceMode.AUTO, "NONE": ToolChoiceMode.NONE, "ANY": ToolChoiceMode.REQUIRED}
_MODES_OUT = {ToolChoiceMode.AUTO: "AUTO", ToolChoiceMode.NONE: "NONE", ToolChoiceMode.REQUIRED: "ANY",
              ToolChoiceMode.TOOL: "ANY"}
_GOOGLE_HOSTED = ("https://generativelanguage.googleapis.com/", "gs://", "https://www.youtube.com/",
                  "https://youtube.com/", "https://youtu.be/")


# -- in ----------------------------------------------------------------------------------------------

def _contents_in(raw: Any) -> list[Message]:
    """``functionResponse`` parts of a user (or ``function``) turn become a TOOL message."""
    ids = CallIds()
    messages: list[Message] = []
    for content in as_list(raw):
        content = as_dict(content)
        parts = parts_in(pick(content, "parts"), ids)
        extras = make_extras(D, leftovers(content, frozenset({"role", "parts"})))
        if content.get("role") == "model":
            messages.append(Message(Role.ASSISTANT, tuple(parts), extras))
            continue
        results = tuple(p for p in parts if isinstance(p, ToolResultPart))
        rest = tuple(p for p in parts if not isinstance(p, ToolResultPart))
        if results:
            messages.append(Message(Role.TOOL, results))
        if rest or not results:
            messages.append(Message(Role.USER, rest, extras))
    return messages


def _tools_in(raw: Any) -> tuple[tuple[Tool, ...], list[Any]]:
    tools: list[Tool] = []
    others: list[Any] = []
    for entry in as_list(raw):
        declarations = pick(as_dict(entry), "functionDeclarations")
        if declarations is None:
            others.append(entry)  # googleSearch, codeExecution, urlContext: Gemini runs them
            continue
        for fn in as_list(declarations):
            fn = as_dict(fn)
            extra = leftovers(fn, _DECLARATION_FIELDS)
            json_schema = pick(fn, "parametersJsonSchema")
            if isinstance(json_schema, dict):
                extra["parametersJsonSchema"] = True
                parameters: dict[str, Any] | None = json_schema
            else:
                parameters = gemini_schema_to_json(as_dict(pick(fn, "parameters"))) or None
            tools.append(Tool(str(fn.get("name") or ""), as_str(fn.get("description")), parameters,
                              make_extras(D, extra)))
    return tuple(tools), others


def _tool_choice_in(raw: Any) -> tuple[ToolChoice | None, bool]:
    """The choice, and whether ``toolConfig`` says more than it (then it is kept whole for Gemini)."""
    config = as_dict(pick(as_dict(raw), "functionCallingConfig"))
    mode = _MODES_IN.get(str(config.get("mode")))
    names = as_list(pick(config, "allowedFunctionNames"))
    if mode is None:
        return None, bool(raw)
    if mode is ToolChoiceMode.REQUIRED and len(names) == 1:
        return ToolChoice(ToolChoiceMode.TOOL, str(names[0])), False
    return ToolChoice(mode), bool(names) or len(as_dict(raw)) > 1 or len(config) > 1


def _response_format_in(config: dict[str, Any]) -> ResponseFormat | None:
    mime = pick(config, "responseMimeType")
    json_schema = pick(config, "responseJsonSchema")
    schema = pick(config, "responseSchema")
    if mime == "text/plain" and schema is None:
        return ResponseFormat(ResponseFormatKind.TEXT)
    if mime != "application/json":
        return None
    if isinstance(json_schema, dict):
        return ResponseFormat(ResponseFormatKind.JSON_SCHEMA, json_schema, extras={D: {"responseJsonSchema": True}})
    if isinstance(schema, dict):
        return ResponseFormat(ResponseFormatKind.JSON_SCHEMA, gemini_schema_to_json(as_dict(schema)))
    return ResponseFormat(ResponseFormatKind.JSON_OBJECT)


def _reasoning_in(raw: Any) -> Reasoning | None:
    config = as_dict(raw)
    if not config:
        return None
    include = pick(config, "includeThoughts")
    level = as_str(pick(config, "thinkingLevel"))
    return Reasoning(effort=level.lower() if level else None, budget_tokens=as_int(pick(config, "thinkingBudget")),
                     include_thoughts=include if isinstance(include, bool) else None)


def _generation_in(config: dict[str, Any]) -> tuple[Sampling, dict[str, Any]]:
    sampling = Sampling(
        temperature=as_number(config.get("temperature")), top_p=as_number(pick(config, "topP")),
        top_k=as_int(pick(config, "topK")), max_tokens=as_int(pick(config, "maxOutputTokens")),
        stop=tuple(str(s) for s in as_list(pick(config, "stopSequences"))), seed=as_int(config.get("seed")),
        presence_penalty=as_number(pick(config, "presencePenalty")),
        frequency_penalty=as_number(pick(config, "frequencyPenalty")))
    extra = leftovers(config, _SAMPLING_FIELDS)
    if _response_format_in(config) is not None:
        extra = leftovers(extra, _FORMAT_FIELDS)
    thinking = leftovers(as_dict(pick(config, "thinkingConfig")), _THINKING_FIELDS)
    if thinking:
        extra["thinkingConfig"] = thinking  # thinkingLevel (also read as effort) and newer fields
    return sampling, extra


def gemini_request_to_core(body: dict[str, Any], *, model: str = "", stream: bool = False) -> ChatRequest:
    """A generateContent body (``model`` and ``stream`` from its URL) as a neutral request. Fields with
    no neutral meaning (safetySettings, cachedContent, built-in tools...) go to ``extras["gemini"]``."""
    config = as_dict(pick(body, "generationConfig"))
    sampling, generation_extra = _generation_in(config)
    tools, other_tools = _tools_in(pick(body, "tools"))
    tool_choice, keep_tool_config = _tool_choice_in(pick(body, "toolConfig"))
    extra = leftovers(body, _REQUEST_FIELDS)
    for key, value in (("generationConfig", generation_extra), ("tools", other_tools),
                       ("toolConfig", pick(body, "toolConfig") if keep_tool_config else None)):
        if value:
            extra[key] = value
    instruction = pick(body, "systemInstruction")
    system = [TextPart(instruction)] if isinstance(instruction, str) else \
        parts_in(pick(as_dict(instruction), "parts"), CallIds())
    return ChatRequest(
        model=model, messages=tuple(_contents_in(pick(body, "contents"))),
        system=tuple(p for p in system if isinstance(p, TextPart)), tools=tools, tool_choice=tool_choice,
        sampling=sampling, response_format=_response_format_in(config),
        reasoning=_reasoning_in(pick(config, "thinkingConfig")), stream=stream, extras=make_extras(D, extra))


# -- out ---------------------------------------------------------------------------------------------

def _sign_first_call(parts: list[dict[str, Any]]) -> None:
    """History from another dialect has no Gemini signatures: give the first call Google's stand-in."""
    first = next((i for i, part in enumerate(parts) if "functionCall" in part), None)
    if first is not None and "thoughtSignature" not in parts[first]:
        parts[first] = {**parts[first], "thoughtSignature": SKIP_SIGNATURE}


def _contents_out(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    names = {p.id: p.name for m in messages for p in m.parts if isinstance(p, ToolCallPart)}
    out: list[dict[str, Any]] = []
    previous: Role | None = None
    for message in messages:
        parts = parts_out(message.parts, names, show_thoughts=False)
        if message.role is Role.ASSISTANT:
            _sign_first_call(parts)
        if parts and message.role is Role.TOOL and previous is Role.TOOL and out:
            out[-1]["parts"].extend(parts)  # answers to parallel calls go in one turn
        elif parts:
            role = "model" if message.role is Role.ASSISTANT else "user"
            out.append({"role": role, "parts": parts, **extras_of(message.extras, D)})
        previous = message.role
    return out


def _declaration_out(tool: Tool) -> dict[str, Any]:
    own = dict(extras_of(tool.extras, D))
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    if own.pop("parametersJsonSchema", None):
        out["parametersJsonSchema"] = dict(tool.parameters or {})
    elif tool.parameters and (tool.parameters.get("properties") or tool.parameters.get("type") != "object"):
        out["parameters"] = json_schema_to_gemini(tool.parameters)  # Gemini refuses an empty OBJECT
    return {**out, **own}


def _tool_config_out(choice: ToolChoice) -> dict[str, Any] | None:
    if choice.mode is None:
        return None  # Gemini has no parallel-calls switch
    config: dict[str, Any] = {"mode": _MODES_OUT[choice.mode]}
    if choice.mode is ToolChoiceMode.TOOL:
        config["allowedFunctionNames"] = [choice.name]
    return {"functionCallingConfig": config}


def _format_out(fmt: ResponseFormat, config: dict[str, Any]) -> None:
    if fmt.kind is ResponseFormatKind.TEXT:
        config["responseMimeType"] = "text/plain"
        return
    config["responseMimeType"] = "application/json"
    if fmt.kind is ResponseFormatKind.JSON_SCHEMA and extras_of(fmt.extras, D).get("responseJsonSchema"):
        config["responseJsonSchema"] = dict(fmt.schema or {})
    elif fmt.kind is ResponseFormatKind.JSON_SCHEMA and fmt.schema is not None:
        config["responseSchema"] = json_schema_to_gemini(fmt.schema)


def _thinking_out(reasoning: Reasoning, extra: dict[str, Any], max_tokens: int | None) -> dict[str, Any]:
    thinking: dict[str, Any] = {}
    budget = reasoning.budget_tokens
    if budget is None and reasoning.effort is not None and pick(extra, "thinkingLevel") is None:
        budget = budget_within(reasoning.effort, max_tokens)
    if budget is not None:
        thinking["thinkingBudget"] = budget
    if reasoning.include_thoughts is not None:
        thinking["includeThoughts"] = reasoning.include_thoughts
    return {**thinking, **extra}


def _generation_out(req: ChatRequest, own: dict[str, Any]) -> dict[str, Any]:
    s = req.sampling
    config: dict[str, Any] = {}
    for key, value in (("temperature", s.temperature), ("topP", s.top_p), ("topK", s.top_k),
                       ("maxOutputTokens", s.max_tokens), ("seed", s.seed), ("presencePenalty", s.presence_penalty),
                       ("frequencyPenalty", s.frequency_penalty)):
        if value is not None:
            config[key] = value
    if s.stop:
        config["stopSequences"] = list(s.stop)
    if req.response_format is not None:
        _format_out(req.response_format, config)
    extra = dict(as_dict(own.pop("generationConfig", None)))
    thinking_extra = as_dict(extra.pop("thinkingConfig", None))
    if req.reasoning is not None or thinking_extra:
        config["thinkingConfig"] = _thinking_out(req.reasoning or Reasoning(), thinking_extra, s.max_tokens)
    return merge_missing(config, extra)


def core_request_to_gemini(req: ChatRequest) -> dict[str, Any]:
    """A neutral request as a generateContent body (model and stream go in the URL). Media given only
    by a URL Gemini cannot read must be inlined first: see :func:`gemini_urls_to_fetch`."""
    own = dict(extras_of(req.extras, D))
    body: dict[str, Any] = {"contents": _contents_out(req.messages)}
    if req.system:
        body["systemInstruction"] = {"parts": [{"text": p.text, **extras_of(p.extras, D)} for p in req.system]}
    other_tools = list(own.pop("tools", None) or [])
    if req.tools or other_tools:
        declarations = [{"functionDeclarations": [_declaration_out(t) for t in req.tools]}] if req.tools else []
        body["tools"] = declarations + other_tools
    tool_config = own.pop("toolConfig", None) or (_tool_config_out(req.tool_choice) if req.tool_choice else None)
    if tool_config:
        body["toolConfig"] = tool_config
    config = _generation_out(req, own)
    if config:
        body["generationConfig"] = config
    return merge_missing(body, own)


def _google_cannot_read(part: ImagePart | FilePart) -> bool:
    return not str(part.url or "").startswith(_GOOGLE_HOSTED)


def gemini_urls_to_fetch(req: ChatRequest) -> list[str]:
    """URLs of images and files that Gemini cannot read itself (anything but Google-hosted files and
    YouTube): the relay fetches them and calls ``core.media.inline_media`` before converting."""
    return urls_to_fetch(req, _google_cannot_read)
