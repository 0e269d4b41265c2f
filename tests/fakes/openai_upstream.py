"""A fake OpenAI-compatible upstream: a real HTTP server on loopback that speaks the chat wire format
of spec/openai.md §1.3 (JSON) and §1.4 (SSE) exactly, records every request it receives, and fails on
demand.

Behaviour is chosen per request, most specific first:

1. a ``"x_fake"`` object in the request body (the gateway passes unknown fields through untouched),
   with the field names of ``Behavior``;
2. the next scripted behaviour queued for the path prefix (``FakeOpenAI.script``);
3. the behaviour set for the path prefix (``FakeOpenAI.set``).

A prefix is the first path segment before ``/v1``: a channel whose ``base_url`` is ``{fake.url}/a``
reaches ``/a/v1/chat/completions``, so one server can play several upstream channels, each with its own
behaviour, and ``FakeOpenAI.requests_for("a")`` tells which channel a call reached.

Replies are deterministic: the text is ``"".join(Behavior.content)`` and usage is
``Behavior.prompt_tokens`` / ``Behavior.completion_tokens`` (default: the number of content pieces).
With ``tools`` in the request the reply is a call of the first tool with ``Behavior.tool_arguments``,
split in pieces when streamed.

``POST /v1/embeddings`` (spec §4) answers one ``tests.fakes.vectors.fake_vector`` per input (``dimensions``
values, default 8), as JSON numbers or, with ``encoding_format: "base64"``, as base64 of float32s; usage
is ``Behavior.prompt_tokens``. ``status``, ``delay_s``, ``omit_usage``, ``model`` and ``raw_body`` apply.

Images (spec §5–7): ``POST /v1/images/generations`` (JSON), ``/v1/images/edits`` and
``/v1/images/variations`` (multipart/form-data; files ``image``, repeated ``image[]``, ``mask``; an ``x_fake``
form field holds the JSON marker) answer ``{"created", "data": [...]}`` with ``n`` items, each a real PNG
(``tests.fakes.png``) of the requested size in ``Behavior.image_rgb``, whatever ``output_format`` says.
``gpt-image*`` models always answer ``b64_json`` plus the resolved ``background``/``output_format``/
``quality``/``size`` and a deterministic ``usage`` (see ``gpt_image_usage``); other models answer a ``url``
(default) that this fake serves at ``GET /files/{name}``, or ``b64_json``; dall-e-3 generations add
``revised_prompt``. Each multipart request is also parsed into an ``ImageForm`` (``FakeOpenAI.image_forms``)
so a test can check which fields and files arrived, byte for byte. ``status``, ``delay_s``, ``omit_usage``
and ``raw_body`` apply.

Azure OpenAI's paths are served too (``/{prefix}/openai/deployments/{deployment}/chat/completions``,
``/embeddings``, ``/images/generations``, ``/images/edits``), by the same handlers: the deployment and the
``api-version`` query are in the recorded request. Without ``api-version`` Azure answers 404, without an
``api-key`` header 401, and so does this fake.

Run as a script to get a standalone server::

    python -m tests.fakes.openai_upstream --port 8001
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader

from tests.fakes.fake_server import BehaviorBase, FakeServer, RecordedRequest, echo_text
from tests.fakes.png import make_png
from tests.fakes.vectors import fake_vector, to_base64

CHAT_ID = "chatcmpl-B9x2fake"
CREATED = 1741570001
FINGERPRINT = "fp_06737a9306"
TOOL_CALL_ID = "call_8xQ2"
MODELS = ("gpt-4o", "gpt-4o-mini")


@dataclass(frozen=True, slots=True)
class Behavior(BehaviorBase):
    """What the fake does with one chat request."""

    status: int = 200  # >= 400: answer with this status and an OpenAI error body
    error_message: str = "The server had an error while processing your request. Sorry about that!"
    error_type: str | None = None  # default: derived from the status
    error_code: str | None = None
    error_param: str | None = None
    echo: bool = False  # every string field of an error (and in-stream error) echoes ``echo_text``
    answer_status: int | None = None  # the HTTP status an error is sent with (200: an error in a success)
    delay_s: float = 0.0  # sleep before answering at all (slow upstream)
    chunk_delay_s: float = 0.0  # sleep between streamed events
    content: tuple[str, ...] = ("Bon", "jour", "!")
    finish_reason: str = "stop"
    prompt_tokens: int = 11
    completion_tokens: int | None = None  # None: one token per content piece
    cached_tokens: int = 0
    omit_usage: bool = False  # no usage anywhere (exercises the gateway's tokenizer fallback)
    # Streams: after this many content (or tool-argument) events, misbehave.
    cut_after: int | None = None  # stop sending and close the connection, no [DONE]
    cut_mode: str = "abort"  # abort: drop the TCP connection mid-body; eof: end the body cleanly
    malformed_after: int | None = None  # insert one chunk that is not JSON, then carry on
    error_event_after: int | None = None  # send an in-stream error event, then close
    keepalive_comment: bool = False  # send ": keep-alive" before the first event
    tool_arguments: tuple[str, ...] = ('{"city":', '"Lyon"}')
    model: str | None = None  # the model name the reply reports (default: the request's)
    # Exact bytes instead of the generated reply: a non-stream body, or a stream's events (each sent as
    # is, with the chunk delay between them; no [DONE] is added).
    raw_body: str | None = None
    raw_events: tuple[str, ...] | None = None
    # Images (spec §5–7).
    image_rgb: tuple[int, int, int] = (200, 40, 40)  # the colour of every PNG answered
    revised_prompt: str | None = None  # dall-e-3 generations; None: "A vivid rendering of: <prompt>"
    image_text_tokens: int | None = None  # gpt-image usage text_tokens; None: words in the prompt
    image_input_tokens: int = 323  # gpt-image usage image_tokens per uploaded image (edits)
    image_output_tokens: int | None = None  # gpt-image usage per image; None: by quality and size

    @property
    def text(self) -> str:
        return "".join(self.content)

    def usage(self) -> dict[str, Any]:
        completion = len(self.content) if self.completion_tokens is None else self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }



_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                404: "invalid_request_error", 429: "requests"}


def error_payload(behavior: Behavior) -> bytes:
    error_type = behavior.error_type or _ERROR_TYPES.get(behavior.status, "server_error")
    code = behavior.error_code
    if code is None and behavior.status == 401:
        code = "invalid_api_key"
    if code is None and behavior.status == 429:
        code = "rate_limit_exceeded"
    return orjson.dumps({"error": {"message": behavior.error_message, "type": error_type,
                                   "param": behavior.error_param, "code": code}})


def completion_body(request: Mapping[str, Any], behavior: Behavior) -> dict[str, Any]:
    """A non-stream ``chat.completion`` (spec §1.3)."""
    message: dict[str, Any] = {"role": "assistant", "content": behavior.text, "refusal": None, "annotations": []}
    finish = behavior.finish_reason
    tool = _first_tool_name(request)
    if tool is not None:
        message["content"] = None
        message["tool_calls"] = [{"id": TOOL_CALL_ID, "type": "function",
                                  "function": {"name": tool, "arguments": "".join(behavior.tool_arguments)}}]
        finish = "tool_calls"
    body: dict[str, Any] = {
        "id": CHAT_ID, "object": "chat.completion", "created": CREATED,
        "model": behavior.model or str(request.get("model")),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if not behavior.omit_usage:
        body["usage"] = behavior.usage()
    body["service_tier"] = "default"
    body["system_fingerprint"] = FINGERPRINT
    return body


def embeddings_body(request: Mapping[str, Any], behavior: Behavior) -> dict[str, Any]:
    """A ``list`` of ``embedding`` objects (spec §4)."""
    raw = request.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        raw = [raw]
    dimensions = request.get("dimensions") if isinstance(request.get("dimensions"), int) else None
    data = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        vector = fake_vector(item, dimensions)
        embedding: Any = to_base64(vector) if request.get("encoding_format") == "base64" else vector
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    body: dict[str, Any] = {"object": "list", "data": data, "model": behavior.model or str(request.get("model"))}
    if not behavior.omit_usage:
        body["usage"] = {"prompt_tokens": behavior.prompt_tokens, "total_tokens": behavior.prompt_tokens}
    return body


# --- images (spec §5–7) ----------------------------------------------------------------------------

IMAGES_CREATED = 1741570200
DEFAULT_IMAGE_MODEL = "dall-e-2"  # what OpenAI assumes when ``model`` is absent
DALL_E_SIZES = {"dall-e-2": ("256x256", "512x512", "1024x1024"),
                "dall-e-3": ("1024x1024", "1792x1024", "1024x1792")}
# gpt-image output tokens per image by quality: (square, other sizes), OpenAI's published table.
GPT_IMAGE_OUTPUT_TOKENS = {"low": (272, 408), "medium": (1056, 1584), "high": (4160, 6240)}
MAX_IMAGE_SIDE = 4096
IMAGE_ENDPOINTS = ("generations", "edits", "variations")


def is_gpt_image(model: str) -> bool:
    return model.startswith("gpt-image")


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart images request, as it arrived (no transfer decoding), so a test can
    tell whether the gateway passed the upload through untouched."""

    name: str  # the form field: "image", "image[]", "mask", ...
    filename: str | None
    content_type: str | None
    size: int
    sha256: str  # hex digest of ``data``
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageForm:
    """What one multipart ``/v1/images/edits`` or ``/v1/images/variations`` request carried."""

    endpoint: str  # "edits" or "variations"
    prefix: str
    fields: dict[str, str]  # the text parts; a repeated name keeps its last value
    files: tuple[UploadedFile, ...]  # in the order sent
    request: RecordedRequest  # the raw request, body included

    def files_named(self, name: str) -> list[UploadedFile]:
        return [f for f in self.files if f.name == name]

    @property
    def images(self) -> list[UploadedFile]:
        """The input images: ``image`` and ``image[]`` parts (not the mask)."""
        return [f for f in self.files if is_image_field(f.name)]


def is_image_field(name: str) -> bool:
    return name == "image" or name.startswith("image[")


async def parse_form(content_type: str, body: bytes, endpoint: str, recorded: RecordedRequest) -> ImageForm:
    """Parse a multipart body with aiohttp's reader. It reads the recorded bytes, not the request
    stream: the stream is spent on recording, and the record must keep the exact body."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), max(2**16, len(body)), loop=loop)
    stream.feed_data(body)
    stream.feed_eof()
    reader = MultipartReader({"Content-Type": content_type}, stream)
    fields: dict[str, str] = {}
    files: list[UploadedFile] = []
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue  # a nested multipart: no images API sends one
        data = bytes(await part.read())
        name = part.name or ""
        if part.filename is None:
            fields[name] = data.decode(part.get_charset("utf-8"), errors="replace")
        else:
            files.append(UploadedFile(name, part.filename, part.headers.get("Content-Type"), len(data),
                                      hashlib.sha256(data).hexdigest(), data))
    return ImageForm(endpoint, recorded.prefix, fields, tuple(files), recorded)


@dataclass(frozen=True, slots=True)
class ImageJob:
    """One images request, from a JSON body or a multipart form, with the values the reply needs."""

    endpoint: str  # "generations", "edits" or "variations"
    params: Mapping[str, Any]
    input_images: int = 0

    def text(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if isinstance(value, str) else None

    @property
    def model(self) -> str:
        return self.text("model") or DEFAULT_IMAGE_MODEL

    @property
    def streaming(self) -> bool:
        """``stream: true`` (JSON), or ``"true"`` (a form field)."""
        value = self.params.get("stream")
        return value is True or (isinstance(value, str) and value.lower() == "true")

    @property
    def n(self) -> int | None:
        """``n`` (default 1), or None when it is not an integer: forms send it as text."""
        raw = self.params.get("n", 1)
        if isinstance(raw, str) and raw.strip().isdigit():
            return int(raw)
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else None

    def size(self) -> tuple[int, int] | None:
        """The pixel size asked for (``auto`` or none: 1024x1024), or None when invalid for the model."""
        raw = self.params.get("size")
        if raw is None or raw == "auto":
            return 1024, 1024
        if not isinstance(raw, str) or (self.model in DALL_E_SIZES and raw not in DALL_E_SIZES[self.model]):
            return None
        match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", raw)
        if match is None:
            return None
        width, height = int(match[1]), int(match[2])
        return (width, height) if 0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE else None

    @property
    def quality(self) -> str:
        """gpt-image's quality as the reply reports it: ``auto`` (and anything unknown) resolves to high."""
        quality = self.text("quality")
        return quality if quality in GPT_IMAGE_OUTPUT_TOKENS else "high"


def image_problem(job: ImageJob) -> Behavior | None:
    """The 400 OpenAI gives an invalid images request, or None."""
    if job.endpoint != "variations" and not job.text("prompt"):
        return _bad_request("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if job.endpoint != "generations" and not job.input_images:
        return _bad_request("Missing required parameter: 'image'.", "image", "missing_required_parameter")
    n = job.n
    if n is None or not 1 <= n <= 10:
        return _bad_request(f"Invalid 'n': integer must be between 1 and 10, got {job.params.get('n')!r}.", "n",
                            "invalid_value")
    if job.model == "dall-e-3" and n != 1:
        return _bad_request("You must provide n=1 for this model.", "n", "invalid_value")
    if job.size() is None:
        return _bad_request(f"Invalid value: {job.params.get('size')!r}. Supported sizes for {job.model} are "
                            f"{', '.join(DALL_E_SIZES.get(job.model, ('WxH', 'auto')))}.", "size", "invalid_value")
    if not is_gpt_image(job.model) and job.params.get("response_format", "url") not in ("url", "b64_json"):
        return _bad_request(f"Invalid value: {job.params.get('response_format')!r}. Supported values are: 'url' and "
                            "'b64_json'.", "response_format", "invalid_value")
    return None


def _bad_request(message: str, param: str, code: str) -> Behavior:
    return Behavior(status=400, error_message=message, error_param=param, error_code=code)


def gpt_image_usage(job: ImageJob, behavior: Behavior) -> dict[str, Any]:
    """Deterministic gpt-image usage: text tokens are the prompt's words, image tokens
    ``Behavior.image_input_tokens`` per uploaded image, output tokens OpenAI's per-image count for the
    quality and shape, times ``n``."""
    text = len((job.text("prompt") or "").split()) if behavior.image_text_tokens is None \
        else behavior.image_text_tokens
    images = behavior.image_input_tokens * job.input_images
    width, height = job.size() or (1024, 1024)
    per_image = behavior.image_output_tokens
    if per_image is None:
        per_image = GPT_IMAGE_OUTPUT_TOKENS[job.quality][0 if width == height else 1]
    output = per_image * (job.n or 1)
    return {"input_tokens": text + images, "input_tokens_details": {"text_tokens": text, "image_tokens": images},
            "output_tokens": output, "total_tokens": text + images + output}


def images_body(job: ImageJob, behavior: Behavior, publish: Callable[[bytes], str]) -> dict[str, Any]:
    """The images response (spec §5) of a valid job; ``publish`` serves a PNG and returns its URL."""
    width, height = job.size() or (1024, 1024)
    png = make_png(width, height, behavior.image_rgb)
    gpt = is_gpt_image(job.model)
    as_b64 = gpt or job.params.get("response_format") == "b64_json"
    encoded = base64.b64encode(png).decode() if as_b64 else ""
    data: list[dict[str, Any]] = []
    for _ in range(job.n or 1):
        item: dict[str, Any] = {"b64_json": encoded} if as_b64 else {"url": publish(png)}
        if job.model == "dall-e-3" and job.endpoint == "generations":
            item["revised_prompt"] = behavior.revised_prompt or f"A vivid rendering of: {job.text('prompt')}"
        data.append(item)
    body: dict[str, Any] = {"created": IMAGES_CREATED, "data": data}
    if gpt:
        background = job.text("background")
        body["background"] = "opaque" if background in (None, "auto") else background
        body["output_format"] = job.text("output_format") or "png"
        body["quality"] = job.quality
        body["size"] = f"{width}x{height}"
        if not behavior.omit_usage:
            body["usage"] = gpt_image_usage(job, behavior)
    return body


def image_stream_body(job: ImageJob, behavior: Behavior) -> bytes:
    """gpt-image streaming (``stream: true``): ``partial_images`` partial events, then one completed event
    per image carrying the whole call's usage, as OpenAI's ``image_generation.*`` / ``image_edit.*``
    events; ``Behavior.cut_after`` (a number of events) ends the stream early."""
    body = images_body(job, behavior, lambda png: "")
    prefix = "image_generation" if job.endpoint == "generations" else "image_edit"
    common = {"background": body["background"], "output_format": body["output_format"], "quality": body["quality"],
              "size": body["size"], "created_at": IMAGES_CREATED}
    partials = int(str(job.params.get("partial_images", 0)) or 0)
    frames: list[bytes] = []
    for item_index, item in enumerate(body["data"]):
        for index in range(partials):
            event = {"type": f"{prefix}.partial_image", "b64_json": item["b64_json"], "partial_image_index": index,
                     **common}
            frames.append(named(f"{prefix}.partial_image", event))
        done = {"type": f"{prefix}.completed", "b64_json": item["b64_json"], **common}
        if item_index == len(body["data"]) - 1 and "usage" in body:
            done["usage"] = body["usage"]
        frames.append(named(f"{prefix}.completed", done))
    if behavior.cut_after is not None:
        frames = frames[:behavior.cut_after]
    if behavior.error_event_after is not None:
        error = orjson.loads(error_payload(behavior))["error"]
        frames = [*frames[:behavior.error_event_after], named("error", {"type": "error", "error": error})]
    return b"".join(frames)


def named(event: str, payload: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: ".encode() + orjson.dumps(payload) + b"\n\n"


def _first_tool_name(request: Mapping[str, Any]) -> str | None:
    tools = request.get("tools")
    if not isinstance(tools, list) or not tools or request.get("tool_choice") == "none":
        return None
    fn = tools[0].get("function") if isinstance(tools[0], dict) else None
    return str(fn.get("name")) if isinstance(fn, dict) and fn.get("name") else None


def _include_usage(request: Mapping[str, Any]) -> bool:
    options = request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class StreamWriter:
    """Builds the §1.4 events of one streamed reply."""

    def __init__(self, request: Mapping[str, Any], behavior: Behavior) -> None:
        self.behavior = behavior
        self.model = behavior.model or str(request.get("model"))
        self.include_usage = _include_usage(request) and not behavior.omit_usage
        self.tool = _first_tool_name(request)

    def chunk(self, choices: list[dict[str, Any]], usage: Any = None, *, usage_chunk: bool = False) -> bytes:
        body: dict[str, Any] = {"id": CHAT_ID, "object": "chat.completion.chunk", "created": CREATED,
                                "model": self.model, "system_fingerprint": FINGERPRINT, "choices": choices}
        if self.include_usage:
            body["usage"] = usage if usage_chunk else None
        return b"data: " + orjson.dumps(body) + b"\n\n"

    @staticmethod
    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def opening(self) -> bytes:
        if self.tool is not None:
            return self.chunk([self.choice({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": TOOL_CALL_ID, "type": "function",
                 "function": {"name": self.tool, "arguments": ""}}]})])
        return self.chunk([self.choice({"role": "assistant", "content": "", "refusal": None})])

    def pieces(self) -> list[bytes]:
        if self.tool is not None:
            return [self.chunk([self.choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})])
                    for piece in self.behavior.tool_arguments]
        return [self.chunk([self.choice({"content": piece})]) for piece in self.behavior.content]

    def closing(self) -> list[bytes]:
        finish = "tool_calls" if self.tool is not None else self.behavior.finish_reason
        frames = [self.chunk([self.choice({}, finish)])]
        if self.include_usage:
            frames.append(self.chunk([], self.behavior.usage(), usage_chunk=True))
        frames.append(b"data: [DONE]\n\n")
        return frames


class FakeOpenAI(FakeServer[Behavior]):
    """The fake upstream. ``start()`` serves it from a background thread with its own event loop."""

    name = "fake-openai"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._forms: list[ImageForm] = []
        self._files: dict[str, bytes] = {}  # served at /files/{name}; kept across reset(), like real URLs
        self._file_ids = itertools.count(1)

    def default_behavior(self) -> Behavior:
        return Behavior()

    # --- control (from the test's thread) --------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._forms.clear()

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def embeddings_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def image_requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        """Requests to ``/v1/images/{endpoint}`` or Azure's ``.../images/{endpoint}`` (any of generations,
        edits, variations when None)."""
        endings = tuple(f"/images/{e}" for e in (IMAGE_ENDPOINTS if endpoint is None else (endpoint,)))
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(endings)]

    def image_forms(self, endpoint: str | None = None) -> list[ImageForm]:
        """The parsed multipart requests to ``/v1/images/edits`` and ``/variations``, in arrival order
        (including those the fake refused)."""
        with self._lock:
            return [f for f in self._forms if endpoint is None or f.endpoint == endpoint]

    def file_requests(self) -> list[RecordedRequest]:
        """Downloads of image URLs this fake handed out (``GET /files/{name}``)."""
        return [r for r in self.requests if r.method == "GET" and r.path.startswith("/files/")]

    def published_files(self) -> dict[str, bytes]:
        """URL -> PNG of every image URL answered so far (until ``forget_files``)."""
        with self._lock:
            return {f"{self.url}/files/{name}": png for name, png in self._files.items()}

    def forget_files(self) -> None:
        """Make every image URL answered so far 404, as OpenAI's do after an hour."""
        with self._lock:
            self._files.clear()

    def clear_requests(self) -> None:
        super().clear_requests()
        with self._lock:
            self._forms.clear()

    # --- serving ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/{prefix}/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/{prefix}/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/{prefix}/v1/models", self._models)
        for root in ("", "/{prefix}"):
            app.router.add_post(root + "/v1/images/generations", self._image_generations)
            app.router.add_post(root + "/v1/images/edits", self._image_form)
            app.router.add_post(root + "/v1/images/variations", self._image_form)
        app.router.add_get("/files/{name}", self._file)
        self._add_azure_routes(app)
        return app

    def _add_azure_routes(self, app: web.Application) -> None:
        """Azure OpenAI's deployment paths (``/openai/deployments/{deployment}/<operation>``), served by
        the same handlers; the deployment is recorded in the path. As Azure does, a call without
        ``api-version`` is 404 and one without an ``api-key`` header is 401, so a channel that sent
        OpenAI's URL or header would not get an answer."""
        operations = {"chat/completions": self._chat, "embeddings": self._embeddings,
                      "images/generations": self._image_generations, "images/edits": self._image_form}
        for root in ("", "/{prefix}"):
            for operation, handler in operations.items():
                app.router.add_post(f"{root}/openai/deployments/{{deployment}}/{operation}",
                                    _azure_checked(self, handler))

    # --- handlers (on the fake's loop) -----------------------------------------------------------

    async def _json_call(self, request: web.Request) -> tuple[Any, Behavior]:
        """Record a JSON request, choose its behaviour (echoing when asked) and wait its delay; the body is
        None when it is not JSON."""
        recorded = await self.record(request)
        try:
            body = recorded.json()
        except orjson.JSONDecodeError:
            body = None
        behavior = _echoed(self.behavior_for(recorded.prefix, body), request)
        await self.pause(behavior.delay_s)
        return body, behavior

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        data = [{"id": m, "object": "model", "created": 1721172741, "owned_by": "system"} for m in MODELS]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, behavior = await self._json_call(request)
        headers = {"x-request-id": "req_upstream_fake", "openai-version": "2020-10-01",
                   "openai-processing-ms": "12"}
        if not isinstance(body, dict):
            bad = Behavior(status=400, error_message="We could not parse the JSON body of your request.")
            return web.Response(status=400, body=error_payload(bad), content_type="application/json", headers=headers)
        if behavior.status < 400 and body.get("stream") is True and behavior.raw_events is not None:
            return await self._raw_stream(request, behavior, headers)
        if behavior.status < 400 and body.get("stream") is True:
            return await self._stream(request, body, behavior, headers)
        return _answer(behavior, headers, lambda: completion_body(body, behavior))

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body, behavior = await self._json_call(request)
        headers = {"x-request-id": "req_upstream_fake", "openai-version": "2020-10-01"}
        if not isinstance(body, dict) or body.get("input") is None:
            bad = Behavior(status=400, error_message="'input' is a required property", error_param="input")
            return web.Response(status=400, body=error_payload(bad), content_type="application/json", headers=headers)
        return _answer(behavior, headers, lambda: embeddings_body(body, behavior))

    async def _image_generations(self, request: web.Request) -> web.StreamResponse:
        body, behavior = await self._json_call(request)
        if not isinstance(body, dict):
            bad = Behavior(status=400, error_message="We could not parse the JSON body of your request.")
            return _json_response(400, error_payload(bad))
        return self._image_reply(ImageJob("generations", body), behavior)

    async def _image_form(self, request: web.Request) -> web.StreamResponse:
        """Edits and variations: multipart/form-data, parsed from the recorded body."""
        recorded = await self.record(request)
        endpoint = request.path.rpartition("/")[2]
        content_type = request.headers.get("Content-Type", "")
        multipart = content_type.lower().startswith("multipart/form-data")
        form: ImageForm | None = None
        if multipart:
            with contextlib.suppress(ValueError, AssertionError, RuntimeError):
                form = await parse_form(content_type, recorded.body, endpoint, recorded)
        if form is not None:
            with self._lock:
                self._forms.append(form)
        marker = _loads_marker(form.fields.get("x_fake")) if form is not None else None
        behavior = _echoed(self.behavior_for(recorded.prefix, {"x_fake": marker}), request)
        await self.pause(behavior.delay_s)
        if form is None:
            message = ("We could not parse the multipart/form-data body of your request." if multipart else
                       f"Invalid Content-Type header ({content_type or 'none'}), expected multipart/form-data.")
            return _json_response(400, error_payload(Behavior(status=400, error_message=message)))
        images = sum(1 for f in form.files if is_image_field(f.name))
        params = {k: v for k, v in form.fields.items() if k != "x_fake"}
        return self._image_reply(ImageJob(endpoint, params, images), behavior)

    def _image_reply(self, job: ImageJob, behavior: Behavior) -> web.Response:
        """Checks in OpenAI's order (bad request, then the behaviour's failure), then the images response
        (or, for ``stream`` on a gpt-image model, its SSE events)."""
        problem = image_problem(job)
        if problem is not None:
            return _json_response(400, error_payload(problem))
        if behavior.status >= 400:
            return _json_response(behavior.answer_status or behavior.status, error_payload(behavior))
        if behavior.raw_body is not None:
            return _json_response(200, behavior.raw_body.encode())
        if job.streaming and is_gpt_image(job.model):
            return web.Response(body=image_stream_body(job, behavior), content_type="text/event-stream")
        return _json_response(200, orjson.dumps(images_body(job, behavior, self._publish)))

    def _publish(self, png: bytes) -> str:
        with self._lock:
            name = f"img-{next(self._file_ids)}.png"
            self._files[name] = png
        return f"{self.url}/files/{name}"

    async def _file(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        with self._lock:
            png = self._files.get(request.match_info["name"])
        if png is None:
            return web.Response(status=404, text="The specified blob does not exist.")
        return web.Response(body=png, content_type="image/png")

    async def _stream(self, request: web.Request, body: dict[str, Any], behavior: Behavior,
                      headers: dict[str, str]) -> web.StreamResponse:
        writer = StreamWriter(body, behavior)
        response = web.StreamResponse(status=200, headers={
            **headers, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.active_streams += 1
        try:
            if behavior.keepalive_comment:
                await response.write(b": keep-alive\n\n")
            await response.write(writer.opening())
            for i, piece in enumerate(writer.pieces()):
                if behavior.cut_after is not None and i >= behavior.cut_after:
                    return await self.cut(request, response, behavior.cut_mode)
                if behavior.error_event_after is not None and i >= behavior.error_event_after:
                    await response.write(b"data: " + error_payload(behavior) + b"\n\n")
                    await response.write_eof()
                    return response
                if behavior.malformed_after is not None and i == behavior.malformed_after:
                    await response.write(b'data: {"id": "chatcmpl-broken", "choices": [\n\n')
                await self.pause(behavior.chunk_delay_s)
                await response.write(piece)
            for frame in writer.closing():
                await self.pause(behavior.chunk_delay_s)
                await response.write(frame)
            await response.write_eof()
            self.finished_streams += 1
        except (ConnectionError, asyncio.CancelledError):
            pass  # the gateway hung up
        finally:
            self.active_streams -= 1
        return response

    async def _raw_stream(self, request: web.Request, behavior: Behavior,
                          headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={
            **headers, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for event in behavior.raw_events or ():
                await self.pause(behavior.chunk_delay_s)
                await response.write(event.encode())
            await response.write_eof()
        return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _azure_checked(fake: FakeOpenAI, handler: Handler) -> Handler:
    """``handler`` behind Azure's own refusals (recorded, so a test sees what was sent)."""
    async def checked(request: web.Request) -> web.StreamResponse:
        if "api-version" not in request.query:
            await fake.record(request)
            return _json_response(404, orjson.dumps({"error": {"code": "404", "message": "Resource not found"}}))
        if not request.headers.get("api-key"):
            await fake.record(request)
            return _json_response(401, orjson.dumps({"error": {"code": "401", "message": (
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your "
                "resource.")}}))
        return await handler(request)
    return checked


def _echoed(behavior: Behavior, request: web.Request) -> Behavior:
    """With ``echo``: the error's every string field says what ``echo_text`` says."""
    if not behavior.echo:
        return behavior
    text = echo_text(request)
    return behavior.replace(error_message=text, error_type=text, error_param=text, error_code=text)


_HEADERS = {"x-request-id": "req_upstream_fake", "openai-version": "2020-10-01", "openai-processing-ms": "12"}


def _answer(behavior: Behavior, headers: dict[str, str], make: Callable[[], dict[str, Any]]) -> web.Response:
    """A JSON call's answer: the behaviour's error, its raw body, or ``make()``."""
    if behavior.status >= 400:
        return web.Response(status=behavior.answer_status or behavior.status, body=error_payload(behavior),
                            content_type="application/json", headers=headers)
    body = behavior.raw_body.encode() if behavior.raw_body is not None else orjson.dumps(make())
    return web.Response(body=body, content_type="application/json", headers=headers)


def _json_response(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json", headers=_HEADERS)


def _loads_marker(text: str | None) -> Any:
    """The ``x_fake`` form field of a multipart request: JSON text, or None."""
    if text is None:
        return None
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(text)
    return None


if __name__ == "__main__":
    FakeOpenAI.serve_from_command_line("A fake OpenAI-compatible upstream", 8001)
