"""A fake Gemini upstream: a real HTTP server on loopback that speaks the Generative Language API of
spec/gemini.md exactly (§3 generateContent, §4.1 streamGenerateContent as a streamed JSON array, §4.2
with ``alt=sse``, §5 countTokens, §7 models, §8 errors), records every request it receives, and fails
on demand. Versions ``v1beta``, ``v1`` and ``v1alpha`` are all served.

Like the real API it wants a key (``x-goog-api-key`` or ``?key=``; none → 403 PERMISSION_DENIED, a wrong
one when ``FakeGemini(api_key=...)`` is given → 400 INVALID_ARGUMENT, as Google answers), ``contents``
in the body, and, with ``Behavior.strict_fields``, refuses unknown top-level fields and a field sent in
both spellings (camelCase and snake_case) — except the ``x_fake`` marker.

Behaviour is chosen per request, most specific first: an ``"x_fake"`` object in the request body (field
names of ``Behavior``), the next scripted behaviour for the path prefix (``FakeGemini.script``), the
behaviour set for the prefix (``FakeGemini.set``). A prefix is the first path segment before the
version: ``{fake.url}/a`` as a channel's ``base_url`` reaches ``/a/v1beta/models/...``.

Replies are deterministic: optional thought parts (``Behavior.thoughts``), then the text
(``"".join(Behavior.content)``), one streamed chunk per piece, ``finishReason`` on the last chunk. With
function declarations in the request (and a ``toolConfig`` mode other than ``NONE``) the answer is a
whole ``functionCall`` of the first function with ``Behavior.function_args``. ``usageMetadata`` is on
every chunk and cumulative; zero counts are left out, as Gemini does.

Image output (§3): when ``generationConfig.responseModalities`` holds ``IMAGE`` (and no function is
called), the answer parts are ``Behavior.image_text`` then ``Behavior.image_count`` parts ``{"inlineData":
{"mimeType": "image/png", "data": <base64 of a real PNG>}}`` (one streamed chunk each), and
``usageMetadata`` has modality details: prompt = ``prompt_tokens`` TEXT + ``IMAGE_INPUT_TOKENS`` (258) per
image ``inlineData`` part of the request; candidates = TEXT (words of the text, or ``candidates_tokens``) +
``Behavior.image_tokens`` (1290) per image. An image refusal finish reason (``IMAGE_SAFETY``,
``NO_IMAGE``...) answers a candidate with that reason and no content; ``blocked`` still gives
``promptFeedback`` and no candidates.

``:embedContent`` and ``:batchEmbedContents`` (§6) answer one ``tests.fakes.vectors.fake_vector`` of the
content's text parts (joined with "\n") per request, ``outputDimensionality`` values long (default 8),
and no usage, as Google. Each batch request must name the model of the URL; ``status``, ``delay_s``,
``strict_fields`` and ``raw_body`` apply.

Run as a script for a standalone server: ``python -m tests.fakes.gemini_upstream --port 8003``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.fake_server import BehaviorBase, FakeServer, RecordedRequest, echo_text
from tests.fakes.png import make_png
from tests.fakes.vectors import fake_vector

RESPONSE_ID = "p0fRaK2aBfake"
VERSIONS = "v1beta|v1|v1alpha"
MODELS = (("gemini-2.5-flash", "Gemini 2.5 Flash"), ("gemini-2.5-pro", "Gemini 2.5 Pro"))
_TOP_FIELDS = ("contents", "systemInstruction", "generationConfig", "safetySettings", "tools", "toolConfig",
               "cachedContent", "model", "labels")
_EMBED_FIELDS = ("model", "content", "taskType", "title", "outputDimensionality")
GENERATE_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
EMBED_METHODS = ("embedContent", "batchEmbedContents")
STATUSES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
IMAGE_INPUT_TOKENS = 258  # what Gemini counts for one image in the prompt
# Finish reasons with which an image model answers no image (and no content at all).
IMAGE_REFUSALS = ("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE",
                  "SAFETY", "PROHIBITED_CONTENT", "RECITATION")
MESSAGES = {429: "Resource has been exhausted (e.g. check quota).", 500: "An internal error has occurred.",
            503: "The model is overloaded. Please try again later.", 504: "Deadline expired before operation could "
            "complete."}


def snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


@dataclass(frozen=True, slots=True)
class Behavior(BehaviorBase):
    """What the fake does with one generateContent request."""

    status: int = 200  # >= 400: answer with this status and a Google error body
    error_message: str | None = None  # default: by status
    error_status: str | None = None  # default: by status (spec §8)
    echo: bool = False  # the message and status word of an error (and error element) echo ``echo_text``
    answer_status: int | None = None  # the HTTP status an error is sent with (200: an error in a success)
    retry_delay: str = "37s"  # RetryInfo on 429
    delay_s: float = 0.0  # sleep before answering at all
    chunk_delay_s: float = 0.0  # sleep between streamed chunks
    content: tuple[str, ...] = ("Bon", "jour", "!")
    thoughts: tuple[str, ...] = ()  # thought-summary parts first (``thought: true``)
    thought_signature: str | None = None  # on the function call (or the first text part)
    function_args: str = '{"city":"Lyon"}'  # JSON object text of the call's args
    function_call_id: str | None = None  # newer models give calls ids; most give none
    finish_reason: str = "STOP"
    blocked: str | None = None  # promptFeedback.blockReason: no candidates at all
    prompt_tokens: int = 11
    candidates_tokens: int | None = None  # None: one per answer piece
    thoughts_tokens: int | None = None  # None: one per thought piece
    cached_tokens: int = 0
    omit_usage: bool = False  # no usageMetadata anywhere
    # Streams: after this many chunks, misbehave.
    cut_after: int | None = None  # stop sending and close the connection
    cut_mode: str = "abort"  # abort: drop the TCP connection mid-body; eof: end the body cleanly
    malformed_after: int | None = None  # insert one chunk that is not JSON, then carry on
    error_event_after: int | None = None  # send an error element/event (below), then end
    error_event_code: int = 503
    crlf: bool = False  # SSE: end lines with \r\n, as Google has been seen to
    array_pretty: bool = True  # JSON-array streams: pretty-printed elements and "\n,\r\n" between, as Google
    strict_fields: bool = True  # refuse unknown top-level fields and doubly-spelled ones
    model: str | None = None  # modelVersion (default: the model of the URL)
    raw_body: str | None = None  # exact bytes instead of the generated non-stream reply
    raw_events: tuple[str, ...] | None = None  # exact stream bytes, each written as is
    # Image output (responseModalities IMAGE).
    image_text: str = "Here is your image."  # the text part before the images; "" for none
    image_count: int = 1  # inlineData parts in the answer
    image_tokens: int = 1290  # candidates tokens per image
    image_size: tuple[int, int] = (1024, 1024)  # the PNG's pixel size
    image_rgb: tuple[int, int, int] = (40, 90, 200)

    def error(self) -> dict[str, Any]:
        status = self.error_status or STATUSES.get(self.status, "INTERNAL" if self.status >= 500
                                                    else "INVALID_ARGUMENT")
        message = self.error_message or MESSAGES.get(self.status, "Request contains an invalid argument.")
        error = error_object(self.status, message, status)
        if self.status == 429:
            error["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                          "retryDelay": self.retry_delay}]
        return error


def error_object(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def function_name(request: Mapping[str, Any]) -> str | None:
    """The function the reply calls, or None (no declarations, or mode NONE)."""
    config = _pick(_pick(request, "toolConfig") or {}, "functionCallingConfig") or {}
    if isinstance(config, dict) and config.get("mode") == "NONE":
        return None
    for tool in _pick(request, "tools") or []:
        declarations = _pick(tool, "functionDeclarations") if isinstance(tool, dict) else None
        for declaration in declarations or []:
            if isinstance(declaration, dict) and declaration.get("name"):
                return str(declaration["name"])
    return None


def _pick(obj: Any, camel: str) -> Any:
    if not isinstance(obj, dict):
        return None
    value = obj.get(camel)
    return obj.get(snake(camel)) if value is None else value


class Reply:
    """The chunks of one reply; the non-stream response is them merged."""

    def __init__(self, request: Mapping[str, Any], model: str, behavior: Behavior) -> None:
        self.behavior = behavior
        self.model = behavior.model or model
        self.function = function_name(request)
        self.image = self.function is None and wants_image(request)
        self.input_images = input_images(request)

    def _answer_parts(self) -> list[dict[str, Any]]:
        b = self.behavior
        if self.function is not None:
            call: dict[str, Any] = {"name": self.function, "args": orjson.loads(b.function_args)}
            if b.function_call_id:
                call["id"] = b.function_call_id
            return [{"functionCall": call}]
        if self.image:
            return self._image_parts()
        return [{"text": piece} for piece in b.content]

    def _image_parts(self) -> list[dict[str, Any]]:
        """The text, then the images; nothing at all when the finish reason refuses the image."""
        b = self.behavior
        if b.finish_reason in IMAGE_REFUSALS:
            return []
        data = base64.b64encode(make_png(b.image_size[0], b.image_size[1], b.image_rgb)).decode()
        image = {"inlineData": {"mimeType": "image/png", "data": data}}
        return ([{"text": b.image_text}] if b.image_text else []) + [image] * b.image_count

    def _pieces(self) -> list[dict[str, Any]]:
        """One part per chunk: thoughts, then the answer; the signature on the call or the first text."""
        b = self.behavior
        answer = self._answer_parts()
        if b.thought_signature and answer:
            answer[0] = {**answer[0], "thoughtSignature": b.thought_signature}
        return [{"text": t, "thought": True} for t in b.thoughts] + answer

    def _usage(self, thoughts: int, answer: list[dict[str, Any]]) -> dict[str, Any]:
        """Usage once ``thoughts`` thought parts and the ``answer`` parts are out."""
        b = self.behavior
        thoughts = thoughts if b.thoughts_tokens is None else b.thoughts_tokens
        if self.image:
            return self._image_usage(thoughts, answer)
        tokens = len(answer) if b.candidates_tokens is None else b.candidates_tokens
        usage = {"promptTokenCount": b.prompt_tokens, "candidatesTokenCount": tokens,
                 "totalTokenCount": b.prompt_tokens + tokens + thoughts, "cachedContentTokenCount": b.cached_tokens,
                 "thoughtsTokenCount": thoughts}
        return {k: v for k, v in usage.items() if v or k in ("promptTokenCount", "totalTokenCount")}

    def _image_usage(self, thoughts: int, answer: list[dict[str, Any]]) -> dict[str, Any]:
        """Image-model usage, with the by-modality details a gateway bills images from."""
        b = self.behavior
        text = sum(len(str(p["text"]).split()) for p in answer if "text" in p)
        text = text if b.candidates_tokens is None else b.candidates_tokens
        images = b.image_tokens * sum(1 for p in answer if "inlineData" in p)
        prompt_images = IMAGE_INPUT_TOKENS * self.input_images
        prompt = b.prompt_tokens + prompt_images
        counts = {"promptTokenCount": prompt, "candidatesTokenCount": text + images,
                  "totalTokenCount": prompt + text + images + thoughts, "cachedContentTokenCount": b.cached_tokens,
                  "thoughtsTokenCount": thoughts}
        usage: dict[str, Any] = {k: v for k, v in counts.items() if v or k in ("promptTokenCount", "totalTokenCount")}
        usage["promptTokensDetails"] = _details(TEXT=b.prompt_tokens, IMAGE=prompt_images)
        candidates = _details(TEXT=text, IMAGE=images)
        if candidates:
            usage["candidatesTokensDetails"] = candidates
        return usage

    def _chunk(self, parts: list[dict[str, Any]], finish: bool, usage: dict[str, Any]) -> dict[str, Any]:
        b = self.behavior
        chunk: dict[str, Any] = {}
        if b.blocked:
            chunk["promptFeedback"] = {"blockReason": b.blocked, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}
        else:
            # An image refusal comes without content, as Gemini sends it.
            candidate: dict[str, Any] = {} if self.image and not parts else {"content": {"parts": parts,
                                                                                         "role": "model"}}
            if finish:
                candidate["finishReason"] = b.finish_reason
            candidate["index"] = 0
            chunk["candidates"] = [candidate]
        if not b.omit_usage:
            chunk["usageMetadata"] = usage
        chunk["modelVersion"] = self.model
        chunk["responseId"] = RESPONSE_ID
        return chunk

    def chunks(self) -> list[dict[str, Any]]:
        """The stream (§4): one chunk per part, usage cumulative, finishReason on the last."""
        pieces = self._pieces()
        if self.behavior.blocked or not pieces:
            return [self._chunk([], True, self._usage(0, []))]
        thoughts = 0
        answer: list[dict[str, Any]] = []
        out = []
        for i, part in enumerate(pieces):
            if part.get("thought"):
                thoughts += 1
            else:
                answer.append(part)
            out.append(self._chunk([part], i == len(pieces) - 1, self._usage(thoughts, answer)))
        return out

    def response(self) -> dict[str, Any]:
        """The non-stream response (§3): the stream's parts in one candidate, texts merged."""
        b = self.behavior
        if b.blocked:
            return self._chunk([], True, self._usage(0, []))
        parts: list[dict[str, Any]] = []
        if b.thoughts:
            parts.append({"text": "".join(b.thoughts), "thought": True})
        answer = self._answer_parts()
        if self.function is None and not self.image:
            answer = [{"text": "".join(b.content)}]
        if b.thought_signature and answer:
            answer[0] = {**answer[0], "thoughtSignature": b.thought_signature}
        thoughts = len(b.thoughts)
        return self._chunk(parts + answer, True, self._usage(thoughts, self._answer_parts()))


def wants_image(request: Mapping[str, Any]) -> bool:
    """Whether ``generationConfig.responseModalities`` (either spelling) asks for images."""
    modalities = _pick(_pick(request, "generationConfig"), "responseModalities")
    return isinstance(modalities, list) and any(str(m).upper() == "IMAGE" for m in modalities)


def input_images(request: Mapping[str, Any]) -> int:
    """The image ``inlineData`` parts of the request's contents, which Gemini counts 258 tokens each."""
    count = 0
    for content in _pick(request, "contents") or []:
        for part in (content.get("parts") if isinstance(content, dict) else None) or []:
            blob = _pick(part, "inlineData")
            if isinstance(blob, dict) and str(_pick(blob, "mimeType") or "").startswith("image/"):
                count += 1
    return count


def _details(**by_modality: int) -> list[dict[str, Any]]:
    return [{"modality": modality, "tokenCount": count} for modality, count in by_modality.items() if count]


@dataclass(frozen=True, slots=True)
class StreamForm:
    """How a stream is written: SSE events or the elements of one JSON array. Each function is told
    whether nothing has been written yet."""

    content_type: str
    element: Callable[[Any, bool], bytes]
    malformed: Callable[[bool], bytes]
    closing: Callable[[bool], bytes]


class FakeGemini(FakeServer[Behavior]):
    name = "fake-gemini"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None) -> None:
        super().__init__(host, port)
        self.api_key = api_key

    def default_behavior(self) -> Behavior:
        return Behavior()

    def generate_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.rpartition(":")[2] in GENERATE_METHODS[:2]]

    def embed_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.rpartition(":")[2] in EMBED_METHODS]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for root in ("", "/{prefix}"):
            app.router.add_post(root + "/{version:" + VERSIONS + "}/models/{target}", self._post)
            app.router.add_get(root + "/{version:" + VERSIONS + "}/models", self._models)
            app.router.add_get(root + "/{version:" + VERSIONS + "}/models/{target}", self._model)
        return app

    # --- checks the real API makes ----------------------------------------------------------------

    def _refusal(self, recorded: RecordedRequest) -> web.Response | None:
        key = recorded.headers.get("x-goog-api-key") or recorded.query.get("key")
        if not key:
            return _json(403, error_object(403, "Method doesn't allow unregistered callers (callers without "
                                                "established identity). Please use API Key or other form of API "
                                                "consumer identity to call this API.", "PERMISSION_DENIED"))
        if self.api_key is not None and key != self.api_key:
            error = error_object(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
            error["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                          "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                                          "metadata": {"service": "generativelanguage.googleapis.com"}}]
            return _json(400, error)
        return None

    @staticmethod
    def _invalid_body(body: Any, behavior: Behavior) -> web.Response | None:
        if not isinstance(body, dict):
            return _json(400, error_object(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"))
        if behavior.strict_fields:
            known = {n for camel in _TOP_FIELDS for n in (camel, snake(camel))} | {"x_fake"}
            unknown = sorted(set(body) - known)
            if unknown:
                return _json(400, error_object(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                                                    "Cannot find field.", "INVALID_ARGUMENT"))
            both = [camel for camel in _TOP_FIELDS if camel != snake(camel) and camel in body and snake(camel) in body]
            if both:
                return _json(400, error_object(400, f'Invalid JSON payload received. "{both[0]}" is set twice.',
                                               "INVALID_ARGUMENT"))
        if _pick(body, "contents") is None:
            return _json(400, error_object(400, "* GenerateContentRequest.contents: contents is not specified\n",
                                           "INVALID_ARGUMENT"))
        return None

    @staticmethod
    def _invalid_embed(method: str, model: str, body: Any, behavior: Behavior) -> web.Response | None:
        if not isinstance(body, dict):
            return _json(400, error_object(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"))
        batch = method == "batchEmbedContents"
        requests = _pick(body, "requests") if batch else [body]
        if not isinstance(requests, list) or not requests:
            return _json(400, error_object(400, "* BatchEmbedContentsRequest.requests: requests is not specified\n",
                                           "INVALID_ARGUMENT"))
        known = {n for camel in _EMBED_FIELDS for n in (camel, snake(camel))}
        for i, request in enumerate(requests):
            where = f"requests[{i}]." if batch else ""
            unknown = sorted(set(request) - known - ({"x_fake"} if not batch else set()))
            if behavior.strict_fields and unknown:
                return _json(400, error_object(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}" at '
                                                    f"'{where}': Cannot find field.", "INVALID_ARGUMENT"))
            if not isinstance(_pick(request, "content"), dict):
                return _json(400, error_object(400, f"* EmbedContentRequest.{where}content: content is not "
                                                    "specified\n", "INVALID_ARGUMENT"))
            if batch and request.get("model") != f"models/{model}":
                return _json(400, error_object(400, f"* BatchEmbedContentsRequest.{where}model: unexpected model "
                                                    f"name format or mismatch with models/{model}\n",
                                               "INVALID_ARGUMENT"))
        return None

    def _embed(self, method: str, model: str, body: Any, behavior: Behavior) -> web.Response:
        invalid = self._invalid_embed(method, model, body, behavior)
        if invalid is not None:
            return invalid
        if behavior.status >= 400:
            return _json(behavior.status, behavior.error())
        if behavior.raw_body is not None:
            return web.Response(body=behavior.raw_body.encode(), content_type="application/json")
        if method == "embedContent":
            return _json(200, {"embedding": embed_values(body)})
        return _json(200, {"embeddings": [embed_values(r) for r in _pick(body, "requests")]})

    # --- handlers (on the fake's loop) -------------------------------------------------------------

    async def _post(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        model, _, method = request.match_info["target"].rpartition(":")
        if method not in GENERATE_METHODS + EMBED_METHODS or not model:
            return _json(404, error_object(404, "Method not found.", "NOT_FOUND"))
        body = _loads(recorded.body)
        behavior = self.behavior_for(recorded.prefix, body)
        if behavior.echo:
            behavior = behavior.replace(error_message=echo_text(request), error_status=echo_text(request))
        await self.pause(behavior.delay_s)
        refusal = self._refusal(recorded)
        if method in EMBED_METHODS:
            return refusal if refusal is not None else self._embed(method, model.removeprefix("models/"), body,
                                                                   behavior)
        if refusal is None and method != "countTokens":
            refusal = self._invalid_body(body, behavior)
        if refusal is not None:
            return refusal
        if method == "countTokens":
            return _json(200, {"totalTokens": behavior.prompt_tokens, "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": behavior.prompt_tokens}]})
        if behavior.status >= 400:
            return _json(behavior.answer_status or behavior.status, behavior.error())
        reply = Reply(body, model.removeprefix("models/"), behavior)
        if method == "streamGenerateContent":
            sse = recorded.query.get("alt") == "sse"
            return await (self._sse(request, reply, behavior) if sse else self._array(request, reply, behavior))
        if behavior.raw_body is not None:
            return web.Response(body=behavior.raw_body.encode(), content_type="application/json")
        return _json(200, reply.response())

    async def _models(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refusal = self._refusal(recorded)
        if refusal is not None:
            return refusal
        return _json(200, {"models": [_model_object(*m) for m in MODELS]})

    async def _model(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refusal = self._refusal(recorded)
        if refusal is not None:
            return refusal
        wanted = request.match_info["target"].removeprefix("models/")
        model = next((_model_object(*m) for m in MODELS if m[0] == wanted), None)
        if model is None:
            version = request.match_info["version"]
            return _json(404, error_object(404, f"models/{wanted} is not found for API version {version}, or is "
                                                "not supported for generateContent.", "NOT_FOUND"))
        return _json(200, model)

    async def _sse(self, request: web.Request, reply: Reply, behavior: Behavior) -> web.StreamResponse:
        end = b"\r\n\r\n" if behavior.crlf else b"\n\n"

        def event(payload: bytes) -> bytes:
            return b"data: " + payload + end

        return await self._write_stream(request, reply, behavior, StreamForm(
            "text/event-stream",
            element=lambda chunk, first: event(orjson.dumps(chunk)),
            malformed=lambda first: event(b'{"candidates": [{"content": {'),
            closing=lambda first: b""))

    async def _array(self, request: web.Request, reply: Reply, behavior: Behavior) -> web.StreamResponse:
        def element(chunk: Any, first: bool) -> bytes:
            if behavior.array_pretty:
                return (b"[" if first else b"\n,\r\n") + orjson.dumps(chunk, option=orjson.OPT_INDENT_2)
            return (b"[" if first else b",\r\n") + orjson.dumps(chunk)

        return await self._write_stream(request, reply, behavior, StreamForm(
            "application/json; charset=UTF-8", element=element,
            malformed=lambda first: (b"[" if first else b",\r\n") + b'{"candidates": [{"content": {',
            closing=lambda first: b"[]" if first else (b"\n]" if behavior.array_pretty else b"]")))

    async def _write_stream(self, request: web.Request, reply: Reply, behavior: Behavior,
                            form: StreamForm) -> web.StreamResponse:
        element, malformed, closing = form.element, form.malformed, form.closing
        response = web.StreamResponse(status=200, headers={"Content-Type": form.content_type,
                                                           "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.active_streams += 1
        first = True
        try:
            if behavior.raw_events is not None:
                for raw in behavior.raw_events:
                    await self.pause(behavior.chunk_delay_s)
                    await response.write(raw.encode())
                await response.write_eof()
                return response
            for i, chunk in enumerate(reply.chunks()):
                if behavior.cut_after is not None and i >= behavior.cut_after:
                    return await self.cut(request, response, behavior.cut_mode)
                if behavior.error_event_after is not None and i >= behavior.error_event_after:
                    code = behavior.error_event_code
                    error = error_object(code, behavior.error_message or MESSAGES.get(
                                         code, "An internal error has occurred."),
                                         behavior.error_status or STATUSES.get(code, "INTERNAL"))
                    await response.write(element(error, first) + closing(False))
                    await response.write_eof()
                    return response
                if behavior.malformed_after is not None and i == behavior.malformed_after:
                    await response.write(malformed(first))
                    first = False
                await self.pause(behavior.chunk_delay_s)
                await response.write(element(chunk, first))
                first = False
            await response.write(closing(first))
            await response.write_eof()
            self.finished_streams += 1
        except (ConnectionError, asyncio.CancelledError):
            pass  # the gateway hung up
        finally:
            self.active_streams -= 1
        return response


def embed_values(request: dict[str, Any]) -> dict[str, Any]:
    """``{"values": [...]}`` of one EmbedContentRequest: its text parts joined with a newline."""
    parts = _pick(request, "content").get("parts") or []
    text = "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    dimensions = _pick(request, "outputDimensionality")
    return {"values": fake_vector(text, dimensions if isinstance(dimensions, int) else None)}


def _model_object(model_id: str, display_name: str) -> dict[str, Any]:
    return {"name": f"models/{model_id}", "version": "001", "displayName": display_name,
            "description": f"Fake {display_name}", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"], "temperature": 1, "topP": 0.95,
            "topK": 64, "maxTemperature": 2, "thinking": True}


def _loads(body: bytes) -> Any:
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(body)
    return None


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


if __name__ == "__main__":
    FakeGemini.serve_from_command_line("A fake Gemini upstream", 8003)
