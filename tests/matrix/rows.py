"""The rows of the test matrix: one record per provider kind, saying how to configure its channel against
its fake, which abilities it has, and how to read what its fake received. Adding a provider is adding a
row here (and its fake in ``tests/fakes/`` when it talks to a third party); every client surface then
runs against it in ``tests/integration/test_matrix.py``."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.anthropic_upstream import TOOL_USE_ID, FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY
from tests.fakes.fake_server import FakeServer, RecordedRequest
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import TOOL_CALL_ID, FakeOpenAI
from tests.fakes.png import make_png

# Abilities, each a column set of the matrix.
TEXT, STREAM, TOOLS, TOOL_STREAM, IMAGE_IN, USAGE, ERRORS, FAULTS = (
    "text", "stream", "tools", "tool_stream", "image_in", "usage", "errors", "faults")
EVERYTHING = frozenset({TEXT, STREAM, TOOLS, TOOL_STREAM, IMAGE_IN, USAGE, ERRORS, FAULTS})

# What every fake answers by default: "Bon" "jour" "!", 11 prompt tokens and one output token per piece.
FAKE_REPLY = "Bonjour!"
FAKE_TOKENS = (11, 3)
ARGUMENTS = {"city": "Lyon"}


@dataclass(frozen=True, slots=True)
class Fakes:
    """The module's fake upstreams, one per third party."""

    openai: FakeOpenAI
    anthropic: FakeAnthropic
    gemini: FakeGemini

    def all(self) -> tuple[FakeServer[Any], ...]:
        return self.openai, self.anthropic, self.gemini


@dataclass(frozen=True, slots=True)
class Wire:
    """What a dialect's upstream request looks like: where the first user turn's parts are, what inline
    image a part holds (as its API would decode it), and which tools were offered."""

    name: str
    user_parts: Callable[[Any], list[Any]]
    image_of: Callable[[Any], tuple[str, bytes] | None]  # (media type, bytes); raises if the API would refuse
    tool_names: Callable[[Any], list[str]]


def _message_parts(body: Any) -> list[Any]:
    content = body["messages"][0]["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _openai_image(part: Any) -> tuple[str, bytes] | None:
    if part.get("type") != "image_url":
        return None
    head, _, data = part["image_url"]["url"].partition(",")
    media_type = head.removeprefix("data:").removesuffix(";base64")
    return media_type, base64.b64decode(data, validate=True)  # a data URL is standard base64


def _anthropic_image(part: Any) -> tuple[str, bytes] | None:
    if part.get("type") != "image" or part["source"]["type"] != "base64":
        return None
    return part["source"]["media_type"], base64.b64decode(part["source"]["data"], validate=True)


def _gemini_image(part: Any) -> tuple[str, bytes] | None:
    inline = part.get("inlineData") or part.get("inline_data")  # Google reads both spellings
    if inline is None:
        return None
    data = str(inline["data"])
    # Google's JSON bytes take either base64 alphabet; google-genai itself sends base64url.
    return inline.get("mimeType") or inline["mime_type"], base64.b64decode(
        data.replace("-", "+").replace("_", "/"), validate=True)


OPENAI_WIRE = Wire("openai", _message_parts, _openai_image, lambda body: [t["function"]["name"] for t in body["tools"]])
ANTHROPIC_WIRE = Wire("anthropic", _message_parts, _anthropic_image, lambda body: [t["name"] for t in body["tools"]])
GEMINI_WIRE = Wire(
    "gemini", lambda body: list(body["contents"][0]["parts"]), _gemini_image,
    lambda body: [d["name"] for t in body["tools"] for d in t["functionDeclarations"]])


@dataclass(frozen=True, slots=True)
class Provider:
    """One row: a channel kind, its model and price, its abilities, and how its fake is read."""

    kind: str  # the channel ``type``
    channel: str  # the channel's name (also its fake's path prefix)
    model: str
    price: tuple[str, str]  # USD per million input, output tokens
    abilities: frozenset[str]
    wire: Wire
    fake: Callable[[Fakes], FakeServer[Any]] | None  # None: answered in process
    received: Callable[[FakeServer[Any]], list[RecordedRequest]] = lambda fake: fake.requests
    route: Callable[[str, str, bool], tuple[str, dict[str, str]]] = lambda channel, model, stream: ("", {})
    credentials: Callable[[Mapping[str, str]], None] = lambda headers: None
    options: Mapping[str, Any] = field(default_factory=dict)
    model_map: Mapping[str, str] = field(default_factory=dict)  # client model name → upstream model name
    tokens: tuple[int, int] | None = FAKE_TOKENS  # what a plain answer reports; None: counted, not fixed
    tool_call_id: str | None = None  # the fake's call id; None: the gateway makes one up
    tool_arguments: Mapping[str, Any] = field(default_factory=lambda: ARGUMENTS)
    tool_tokens: tuple[int, int] | None = None  # what a tool call reports; None: counted, not fixed
    tool_pieces: tuple[str, ...] = ()  # the argument pieces it streams (empty: it sends a call whole)

    @property
    def failover_model(self) -> str:
        """Served by two channels of this kind: ``-flaky`` first, ``-backup`` after it."""
        return f"fo-{self.kind}"

    def reply(self, model: str, question: str) -> str:
        return FAKE_REPLY if self.fake is not None else f"Mock reply from {model}: {question}"

    def channel_config(self, fakes: Fakes, name: str, models: list[str], priority: int = 0) -> dict[str, Any]:
        config: dict[str, Any] = {"name": name, "type": self.kind, "models": models, "priority": priority}
        if self.fake is not None:
            config |= {"base_url": self.fake(fakes).channel_url(name), "api_key": UPSTREAM_KEY}
        return config | ({"options": dict(self.options)} if self.options else {})

    def channels(self, fakes: Fakes) -> list[dict[str, Any]]:
        """Its channel, and with ``faults`` a flaky and a backup channel for failover."""
        channels = [self.channel_config(fakes, self.channel, [self.model])
                    | ({"model_map": dict(self.model_map)} if self.model_map else {})]
        if FAULTS in self.abilities:
            channels += [self.channel_config(fakes, f"{self.channel}-flaky", [self.failover_model], priority=10),
                         self.channel_config(fakes, f"{self.channel}-backup", [self.failover_model])]
        return channels

    def requests(self, fakes: Fakes, channel: str | None = None) -> list[RecordedRequest]:
        """The chat requests its fake received on ``channel`` (default: its own)."""
        if self.fake is None:
            return []
        prefix = channel or self.channel
        return [r for r in self.received(self.fake(fakes)) if r.prefix == prefix]

    def behave(self, fakes: Fakes, channel: str | None = None, **behavior: Any) -> None:
        """Set its fake's behaviour (``status``, ``error_message`` and ``cut_after`` mean the same to all)."""
        assert self.fake is not None
        self.fake(fakes).set(channel or self.channel, **behavior)


def _bearer(headers: Mapping[str, str]) -> None:
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def _azure_key(headers: Mapping[str, str]) -> None:
    assert headers["api-key"] == UPSTREAM_KEY
    assert "authorization" not in headers


def _anthropic_key(headers: Mapping[str, str]) -> None:
    assert headers["x-api-key"] == UPSTREAM_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers


def _google_key(headers: Mapping[str, str]) -> None:
    assert headers["x-goog-api-key"] == UPSTREAM_KEY
    assert "authorization" not in headers


def _gemini_route(channel: str, model: str, stream: bool) -> tuple[str, dict[str, str]]:
    action = ":streamGenerateContent" if stream else ":generateContent"
    return f"/{channel}/v1beta/models/{model}{action}", {"alt": "sse"} if stream else {}


AZURE_DEPLOYMENTS = {"gpt-4.1": "prod-gpt41"}

OPENAI = Provider(
    "openai", "oa", "gpt-4o", ("2.5", "10"), EVERYTHING, OPENAI_WIRE, lambda f: f.openai, FakeOpenAI.chat_requests,
    lambda channel, model, stream: (f"/{channel}/v1/chat/completions", {}), _bearer,
    tool_call_id=TOOL_CALL_ID, tool_tokens=(11, 3), tool_pieces=('{"city":', '"Lyon"}'))
# Azure: OpenAI's format on a deployment's URL, with ``api-version`` and the key in ``api-key``
# (src/relaygate/providers/azure.py); a model not in ``deployments`` is its own deployment.
AZURE = Provider(
    "azure", "az", "gpt-4.1", ("2", "8"), EVERYTHING, OPENAI_WIRE, lambda f: f.openai, FakeOpenAI.chat_requests,
    lambda channel, model, stream: (
        f"/{channel}/openai/deployments/{AZURE_DEPLOYMENTS.get(model, model)}/chat/completions",
        {"api-version": "2024-10-21"}),
    _azure_key, options={"deployments": AZURE_DEPLOYMENTS},
    tool_call_id=TOOL_CALL_ID, tool_tokens=(11, 3), tool_pieces=('{"city":', '"Lyon"}'))
ANTHROPIC = Provider(
    "anthropic", "an", "claude-sonnet-4-20250514", ("3", "15"), EVERYTHING, ANTHROPIC_WIRE, lambda f: f.anthropic,
    FakeAnthropic.message_requests, lambda channel, model, stream: (f"/{channel}/v1/messages", {}), _anthropic_key,
    model_map={"claude-alias": "claude-sonnet-4-20250514"},
    tool_call_id=TOOL_USE_ID, tool_tokens=(11, 2), tool_pieces=('{"city": "Ly', 'on"}'))
# Gemini sends a function call whole, without an id.
GEMINI = Provider(
    "gemini", "gm", "gemini-2.5-flash", ("0.3", "2.5"), EVERYTHING - {TOOL_STREAM}, GEMINI_WIRE,
    lambda f: f.gemini, FakeGemini.generate_requests, _gemini_route, _google_key,
    model_map={"gemini-alias": "gemini-2.5-flash"}, tool_tokens=(11, 1))
# The built-in mock: no upstream to fail, so no errors or faults; it counts its own tokens.
# The built-in mock sends a tool call whole.
MOCK = Provider("mock", "mock", "mock-chat", ("1", "2"), EVERYTHING - {ERRORS, FAULTS, TOOL_STREAM}, OPENAI_WIRE, None,
                tokens=None, tool_arguments={"city": "mock"})

PROVIDERS = (OPENAI, AZURE, ANTHROPIC, GEMINI, MOCK)

# The image every ``image_in`` call sends, inline (a URL would be fetched, which is test_media_fetch's).
PNG = make_png(2, 2, (10, 200, 30))
PNG_B64 = base64.b64encode(PNG).decode()  # standard base64, as the OpenAI and Anthropic SDKs take it
