"""The columns of the test matrix: one per client surface, each driven by its official SDK (``openai``,
``anthropic``, ``google-genai``), each answering in neutral terms (``Answer``, ``ToolAnswer``) so one test
can check every surface against every provider. Each column also checks that an error reached it in its
own shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import anthropic
import openai
import orjson
import pytest
from anthropic.types import ToolParam
from google import genai
from google.genai import errors, types
from openai.types.chat import ChatCompletionFunctionToolParam

from tests.helpers.gateway import Gateway
from tests.matrix.rows import PNG, PNG_B64

KEY = "sk-cross-matrix-key-0001"
QUESTION = "Say bonjour"
SCHEMA: dict[str, object] = {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                             "required": ["city"]}


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    finish: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    call_id: str
    name: str
    arguments: Any
    finish: str
    pieces: tuple[str, ...] | None  # the argument pieces as streamed to the client (None: not streamed)


@dataclass(frozen=True, slots=True)
class Failure:
    """An error as the SDK raised it: HTTP status and its message; ``code`` is relaygate's code when the
    surface carries one."""

    status: int
    message: str
    code: str | None


class Column(Protocol):
    name: str  # the client's dialect
    surface: str  # the usage record's ``surface``
    finish: str  # a plain answer's finish reason, in the client's words
    tool_finish: str
    streams_tool_arguments: bool  # the surface can carry a call's arguments in pieces

    def text(self, model: str, *, stream: bool, rid: str, image: bool = False) -> Answer: ...

    def tool_call(self, model: str, *, stream: bool, rid: str) -> ToolAnswer: ...

    def refused(self, model: str, *, rid: str) -> Failure:
        """Asks, expecting a 4xx; checks the error is in the surface's shape."""
        ...

    def cut(self, model: str, *, rid: str) -> tuple[str, Failure]:
        """Streams, expecting the stream to end in an error; the text received before it and the error."""
        ...


def _headers(rid: str) -> dict[str, str]:
    return {"X-Request-Id": rid}


OPENAI_TOOL: ChatCompletionFunctionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city", "parameters": SCHEMA}}


class OpenAIColumn:
    name, surface, finish, tool_finish, streams_tool_arguments = "openai", "openai.chat", "stop", "tool_calls", True

    def __init__(self, gateway: Gateway) -> None:
        self.client = openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30)

    @staticmethod
    def messages(image: bool) -> Any:
        if not image:
            return [{"role": "user", "content": QUESTION}]
        return [{"role": "user", "content": [{"type": "text", "text": QUESTION}, {
            "type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}]}]

    def text(self, model: str, *, stream: bool, rid: str, image: bool = False) -> Answer:
        create = self.client.chat.completions.create
        messages, headers = self.messages(image), _headers(rid)
        if not stream:
            completion = create(model=model, messages=messages, extra_headers=headers)
            assert completion.usage is not None
            choice = completion.choices[0]
            return Answer(choice.message.content or "", choice.finish_reason, completion.usage.prompt_tokens,
                          completion.usage.completion_tokens)
        chunks = list(create(model=model, messages=messages, stream=True, stream_options={"include_usage": True},
                             extra_headers=headers))
        *content, usage_chunk = chunks
        assert not usage_chunk.choices and usage_chunk.usage is not None
        assert all(c.model == model for c in chunks)
        finish = content[-1].choices[0].finish_reason
        assert finish is not None
        return Answer("".join(c.choices[0].delta.content or "" for c in content), finish,
                      usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens)

    def tool_call(self, model: str, *, stream: bool, rid: str) -> ToolAnswer:
        kwargs: Any = {"model": model, "messages": self.messages(False), "tools": [OPENAI_TOOL],
                       "extra_headers": _headers(rid)}
        pieces: tuple[str, ...] | None = None
        if stream:
            with self.client.chat.completions.stream(**kwargs) as events:
                pieces = tuple(tc.function.arguments for e in events if e.type == "chunk" and e.chunk.choices
                               for tc in e.chunk.choices[0].delta.tool_calls or []
                               if tc.function and tc.function.arguments)
                completion = events.get_final_completion()
        else:
            completion = self.client.chat.completions.create(**kwargs)
        choice = completion.choices[0]
        [call] = choice.message.tool_calls or []
        assert call.type == "function"
        return ToolAnswer(call.id, call.function.name, orjson.loads(call.function.arguments),
                          str(choice.finish_reason), pieces)

    def refused(self, model: str, *, rid: str) -> Failure:
        with pytest.raises(openai.APIStatusError) as caught:
            self.client.chat.completions.create(model=model, messages=self.messages(False),
                                                extra_headers=_headers(rid))
        body: Any = caught.value.body  # the SDK gives the "error" object
        assert set(body) == {"message", "type", "param", "code"}, body
        return Failure(caught.value.status_code, body["message"], body["code"])

    def cut(self, model: str, *, rid: str) -> tuple[str, Failure]:
        received: list[str] = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in self.client.chat.completions.create(model=model, messages=self.messages(False), stream=True,
                                                             extra_headers=_headers(rid)):
                received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
        assert not isinstance(caught.value, openai.APIStatusError)  # an in-stream error, after a 200
        return "".join(received), Failure(200, caught.value.message, caught.value.code)


ANTHROPIC_TOOL: ToolParam = {"name": "get_weather", "description": "Current weather for a city",
                             "input_schema": SCHEMA}


class AnthropicColumn:
    name, surface, finish, tool_finish, streams_tool_arguments = (
        "anthropic", "anthropic.messages", "end_turn", "tool_use", True)

    def __init__(self, gateway: Gateway) -> None:
        self.client = anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30)

    @staticmethod
    def kwargs(model: str, rid: str, image: bool = False) -> Any:
        content: Any = QUESTION if not image else [
            {"type": "text", "text": QUESTION},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}]
        return {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": content}],
                "extra_headers": _headers(rid)}

    def text(self, model: str, *, stream: bool, rid: str, image: bool = False) -> Answer:
        kwargs = self.kwargs(model, rid, image)
        if stream:
            with self.client.messages.stream(**kwargs) as events:
                text = "".join(events.text_stream)
                message = events.get_final_message()
            assert message.content[0].type == "text" and message.content[0].text == text
        else:
            message = self.client.messages.create(**kwargs)
            assert len(message.content) == 1 and message.content[0].type == "text"
            text = message.content[0].text
        assert message.model == model and message.role == "assistant"
        return Answer(text, str(message.stop_reason), message.usage.input_tokens, message.usage.output_tokens)

    def tool_call(self, model: str, *, stream: bool, rid: str) -> ToolAnswer:
        kwargs = self.kwargs(model, rid) | {"tools": [ANTHROPIC_TOOL]}
        pieces: tuple[str, ...] | None = None
        if stream:
            with self.client.messages.stream(**kwargs) as events:
                pieces = tuple(e.delta.partial_json for e in events if e.type == "content_block_delta"
                               and e.delta.type == "input_json_delta" and e.delta.partial_json)
                message = events.get_final_message()
        else:
            message = self.client.messages.create(**kwargs)
        [block] = [b for b in message.content if b.type == "tool_use"]
        assert block.type == "tool_use"
        return ToolAnswer(block.id, block.name, block.input, str(message.stop_reason), pieces)

    def refused(self, model: str, *, rid: str) -> Failure:
        with pytest.raises(anthropic.APIStatusError) as caught:
            self.client.messages.create(**self.kwargs(model, rid))
        body: Any = caught.value.body
        assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}, body
        return Failure(caught.value.status_code, body["error"]["message"], body["error"].get("code"))

    def cut(self, model: str, *, rid: str) -> tuple[str, Failure]:
        received: list[str] = []
        with (pytest.raises(anthropic.APIStatusError) as caught,
              self.client.messages.stream(**self.kwargs(model, rid)) as events):
            received.extend(events.text_stream)
        body: Any = caught.value.body
        assert body["type"] == "error", body
        return "".join(received), Failure(200, body["error"]["message"], body["error"].get("code"))


GEMINI_TOOL = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city",
    parameters=types.Schema(type=types.Type.OBJECT, properties={
        "city": types.Schema(type=types.Type.STRING, description="City name")}, required=["city"]))])
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 502: "UNAVAILABLE"}


class GeminiColumn:
    name, surface, finish, tool_finish, streams_tool_arguments = "gemini", "gemini.generate", "STOP", "STOP", False

    def __init__(self, gateway: Gateway) -> None:
        # Held for the module: a genai client closes its connection pool when collected.
        self.client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=gateway.url, timeout=30_000))

    @staticmethod
    def config(rid: str, **more: Any) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(http_options=types.HttpOptions(headers=_headers(rid)), **more)

    @staticmethod
    def contents(image: bool) -> Any:
        if not image:
            return QUESTION
        return [types.Content(role="user", parts=[
            types.Part(text=QUESTION), types.Part(inline_data=types.Blob(mime_type="image/png", data=PNG))])]

    def text(self, model: str, *, stream: bool, rid: str, image: bool = False) -> Answer:
        models, contents, config = self.client.models, self.contents(image), self.config(rid)
        if stream:
            chunks = list(models.generate_content_stream(model=model, contents=contents, config=config))
            text = "".join(part.text or "" for c in chunks for cand in c.candidates or []
                           for part in (cand.content.parts if cand.content else None) or [])
            last = chunks[-1]
            assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks[:-1])
        else:
            last = models.generate_content(model=model, contents=contents, config=config)
            text = last.text or ""
        assert last.candidates and last.candidates[0].finish_reason is not None
        assert last.usage_metadata is not None
        usage = last.usage_metadata
        assert usage.total_token_count == (usage.prompt_token_count or 0) + (usage.candidates_token_count or 0)
        return Answer(text, last.candidates[0].finish_reason.value, usage.prompt_token_count or 0,
                      usage.candidates_token_count or 0)

    def tool_call(self, model: str, *, stream: bool, rid: str) -> ToolAnswer:
        config = self.config(rid, tools=[GEMINI_TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(
            disable=True))
        if stream:
            chunks = list(self.client.models.generate_content_stream(model=model, contents=QUESTION, config=config))
        else:
            chunks = [self.client.models.generate_content(model=model, contents=QUESTION, config=config)]
        [call] = [call for c in chunks for call in c.function_calls or []]
        last = chunks[-1]
        assert last.candidates and last.candidates[0].finish_reason is not None
        return ToolAnswer(call.id or "", call.name or "", call.args, last.candidates[0].finish_reason.value, None)

    def refused(self, model: str, *, rid: str) -> Failure:
        with pytest.raises(errors.APIError) as caught:
            self.client.models.generate_content(model=model, contents=QUESTION, config=self.config(rid))
        error = caught.value
        assert error.status == GOOGLE_STATUS.get(error.code), (error.code, error.status)
        return Failure(error.code, error.message or "", _google_reason(error.details))

    def cut(self, model: str, *, rid: str) -> tuple[str, Failure]:
        received: list[str] = []
        with pytest.raises(errors.APIError) as caught:
            for chunk in self.client.models.generate_content_stream(model=model, contents=QUESTION,
                                                                    config=self.config(rid)):
                received.append(chunk.text or "")
        error = caught.value
        assert error.status == GOOGLE_STATUS.get(error.code), (error.code, error.status)
        return "".join(received), Failure(200, error.message or "", _google_reason(error.details))


def _google_reason(details: Any) -> str | None:
    """The ``reason`` of the error's ErrorInfo detail: where relaygate puts its code."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    infos = [d for d in error.get("details") or [] if isinstance(d, dict) and "reason" in d]
    return str(infos[0]["reason"]) if infos else None


def columns(gateway: Gateway) -> dict[str, Column]:
    return {"openai": OpenAIColumn(gateway), "anthropic": AnthropicColumn(gateway), "gemini": GeminiColumn(gateway)}


COLUMNS = ("openai", "anthropic", "gemini")
