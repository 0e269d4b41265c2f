"""The provider-neutral chat model: request, content parts, messages, response.

Every dialect converts to and from these types (``dialects/<name>/``), so that translating between N
dialects takes 2N pure converters. The types hold what at least two dialects can say; what only one
dialect can say travels in ``extras`` (keyed by dialect name) or in an :class:`OpaquePart`, and
converters to other dialects ignore it. ``docs/translation.md`` lists what each pair keeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

import orjson

from relaygate.core.usage import Usage

Extras: TypeAlias = Mapping[str, Mapping[str, Any]]
"""Dialect-specific fields with no neutral meaning, keyed by dialect name (``"openai"``,
``"anthropic"``, ``"gemini"``). A converter reads and writes only its own dialect's entry."""


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # a message of tool results only


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image, inline (``data``: base64 without a ``data:`` prefix, plus ``media_type``) or by ``url``.

    A converter never fetches a URL: see ``core.media`` for listing the URLs a target cannot take and
    for substituting fetched bytes.
    """

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FilePart:
    """A non-image input (a PDF, a text document, audio), inline or by ``url``; same contract as images."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    filename: str | None = None
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """A call the assistant made. ``arguments`` is JSON text (OpenAI's form); see :func:`json_object`."""

    id: str
    name: str
    arguments: str = "{}"
    extras: Extras = field(default_factory=dict)


ResultContent: TypeAlias = TextPart | ImagePart | FilePart


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """The answer to a tool call. ``name`` is the called tool's name when the source said it."""

    call_id: str
    content: tuple[ResultContent, ...] = ()
    is_error: bool = False
    name: str | None = None
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ThinkingPart:
    """Model reasoning shown to the caller. ``signature`` is opaque and valid only for ``origin``, the
    dialect that produced it; converters to another dialect drop foreign signatures."""

    text: str = ""
    signature: str | None = None
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class RedactedThinkingPart:
    data: str
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class OpaquePart:
    """A content block only ``origin`` understands (server tool results, executable code...), kept
    whole for that dialect and dropped by converters to any other."""

    origin: str
    data: Mapping[str, Any]


Part: TypeAlias = (
    TextPart | ImagePart | FilePart | ToolCallPart | ToolResultPart | ThinkingPart | RedactedThinkingPart | OpaquePart
)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[Part, ...]
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    extras: Extras = field(default_factory=dict)


class ToolChoiceMode(StrEnum):
    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"
    TOOL = "tool"  # the one named tool


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``mode`` None: the dialect's default (auto when there are tools) with only the parallel flag set."""

    mode: ToolChoiceMode | None = None
    name: str | None = None
    disable_parallel: bool | None = None


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


class ResponseFormatKind(StrEnum):
    TEXT = "text"
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: ResponseFormatKind
    schema: Mapping[str, Any] | None = None  # JSON Schema, for JSON_SCHEMA
    name: str | None = None
    description: str | None = None
    strict: bool | None = None
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reasoning:
    """``effort``: ``minimal``/``low``/``medium``/``high`` (OpenAI's words). ``budget_tokens``: 0 turns
    thinking off, -1 lets the model decide (Gemini's dynamic budget). ``include_thoughts``: whether the
    caller wants the thinking shown."""

    effort: str | None = None
    budget_tokens: int | None = None
    include_thoughts: bool | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    system: tuple[TextPart, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    sampling: Sampling = Sampling()
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    user: str | None = None  # an opaque end-user id (OpenAI ``user``, Anthropic ``metadata.user_id``)
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChatResponse:
    id: str
    model: str
    parts: tuple[Part, ...]
    finish: FinishReason
    usage: Usage | None = None
    stop_sequence: str | None = None  # the stop sequence that ended the turn, when the source said
    created: int | None = None  # Unix seconds
    extras: Extras = field(default_factory=dict)


# -- helpers shared by every dialect ----------------------------------------------------------------

SYNTHETIC_ID_PREFIX = "call_rg_"
"""Tool-call ids the gateway made up because the source had none (Gemini may send none). A converter
to a dialect whose ids are optional leaves them out."""

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def synthetic_call_id(*parts: object) -> str:
    """A deterministic id, safe for every dialect (``^[A-Za-z0-9_-]+$``)."""
    return SYNTHETIC_ID_PREFIX + _ID_UNSAFE.sub("", "_".join(str(p) for p in parts))


def is_synthetic_call_id(call_id: str) -> bool:
    return call_id.startswith(SYNTHETIC_ID_PREFIX)


def json_text(value: Any) -> str:
    """Compact JSON text (tool-call arguments, tool results)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an int past 64 bits, a non-string key: what stdlib json still writes
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def json_object(text: str) -> dict[str, Any]:
    """Tool-call arguments as an object, for dialects that want one. Text that is not a JSON object
    (a model's broken output) becomes ``{}``: no dialect can carry it as an object."""
    try:
        value = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def extras_of(extras: Extras, dialect: str) -> Mapping[str, Any]:
    """This dialect's entry of ``extras`` (empty when absent)."""
    return extras.get(dialect) or {}


def make_extras(dialect: str, values: Mapping[str, Any]) -> Extras:
    """``{dialect: values}`` without the Nones, or no extras at all when nothing is left."""
    kept = {key: value for key, value in values.items() if value is not None}
    return {dialect: kept} if kept else {}
