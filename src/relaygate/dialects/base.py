"""What the relay needs from a wire dialect, in one typed shape.

A ``Dialect`` is a format's pure converters (to and from the neutral ``core`` model), its stream
framing in both directions, its passthrough tap and its error rendering, so that ``relay/`` works with
any pair of client and upstream formats without naming either, or any wire framing.
"""

from __future__ import annotations

from typing import Any, Protocol

from relaygate.core.chat import ChatRequest, ChatResponse
from relaygate.core.embeddings import EmbeddingsRequest, EmbeddingsResponse
from relaygate.core.stream import StreamEvent
from relaygate.core.usage import Usage
from relaygate.errors import GatewayError, UpstreamRejected
from relaygate.scrub import Scrubber


class StreamDecoder(Protocol):
    """Upstream stream payloads (parsed JSON) → core events."""

    def feed(self, payload: dict[str, Any]) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class StreamEncoder(Protocol):
    """Core events → outbound ``(event name | None, payload)`` pairs."""

    def feed(self, event: StreamEvent) -> list[tuple[str | None, dict[str, Any]]]: ...


class Framing(Protocol):
    """Outbound stream bytes for one call. ``terminal`` says which event is the dialect's last one
    (held back until the usage record is committed); ``end`` is what follows it."""

    def frame(self, name: str | None, payload: dict[str, Any]) -> bytes: ...

    def terminal(self, name: str | None, payload: dict[str, Any]) -> bool: ...

    def end(self) -> bytes: ...


class PassthroughTap(Protocol):
    """Forwards an upstream stream of the client's own dialect, noting what the meter needs.

    Nothing it holds grows with the stream's length: it keeps a running token count, not the text.
    ``usage``, once reported, never goes back to None."""

    error: dict[str, Any] | None
    events: int

    @property
    def usage(self) -> Usage | None:
        """The upstream's usage, what the meter bills (None: it reported none, the running count is billed)."""

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    @property
    def completed(self) -> bool: ...

    def produced_tokens(self) -> int:
        """The offline count of the generated text (text, thinking, tool names and arguments) in the
        vocabulary of the model the tap was made for; meaningful only while ``usage`` is None (counting
        stops once the upstream reports usage, which is then what the meter bills)."""
        ...

    def final_frame(self) -> bytes: ...

    def error_frame(self, error: GatewayError, request_id: str) -> bytes:
        """A gateway error as the client's in-stream error event (the stream's last)."""
        ...


class StreamReader(Protocol):
    """An upstream stream of one dialect, bytes in, core events out: the dialect's wire framing (SSE
    today, AWS event-stream or JSON arrays tomorrow) and its decoder behind one object, so that the relay
    never parses frames. Holds nothing that grows with the stream beyond one unfinished frame (bounded:
    past its bound ``feed`` raises ``core.stream.StreamFrameTooLarge``)."""

    events: int  # upstream events decoded so far (a stream that carried any delivered something)

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """The core events that the frames completed by ``chunk`` stand for; none after the dialect's
        own end-of-stream event."""
        ...

    def finish(self) -> list[StreamEvent]:
        """At the connection's end: the events of an unterminated last frame, then the decoder's close."""
        ...


class Dialect(Protocol):
    """A chat wire format as the relay sees it: one implementation per ``dialects/<name>/`` folder
    (``adapter.py``), registered in ``dialects/registry.py``. Methods are pure (no I/O, no settings);
    the relay calls them for the client's dialect and for the channel's, and names neither."""

    name: str  # the registry's name of the format ("openai", "anthropic", "gemini")

    # --- requests ---------------------------------------------------------------------------------

    def request_to_core(self, body: dict[str, Any], model: str, stream: bool) -> ChatRequest:
        """A client's parsed body (``model``: the URL's or the body's model name) in the core model;
        raises ``InvalidRequest`` for what cannot be understood."""
        ...

    def request_from_core(self, req: ChatRequest) -> dict[str, Any]:
        """The upstream body for a translated request (streams ask for usage where the format can)."""
        ...

    def passthrough_body(self, body: dict[str, Any], raw: bytes, upstream_model: str, stream: bool,
                         client_wants_usage: bool) -> bytes:
        """The bytes to send an upstream of this same dialect: ``raw`` untouched unless a documented edit
        is needed (the mapped model name, asking a stream for usage)."""
        ...

    def urls_to_fetch(self, req: ChatRequest) -> list[str]:
        """Media URLs in ``req`` that an upstream of this dialect cannot read itself (fetched and inlined
        by the relay before sending)."""
        ...

    def max_output_tokens(self, body: dict[str, Any], default: int) -> int:
        """The most output tokens the client's request may produce, for the reservation: its own cap in
        this dialect's field (else ``default``) times the choices it asks for."""
        ...

    def wants_usage(self, body: dict[str, Any]) -> bool:
        """Whether the client asked for the usage report its dialect makes optional in streams (OpenAI's
        ``stream_options.include_usage``); False where usage always comes."""
        ...

    def counted_prompt(self, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        """The request in OpenAI's chat form (``messages``, ``tools``), the form the offline prompt
        count reads (``billing.tokenizer.count_chat_prompt``)."""
        ...

    # --- whole answers ----------------------------------------------------------------------------

    def response_to_core(self, parsed: dict[str, Any]) -> ChatResponse:
        """An upstream's parsed answer in the core model."""
        ...

    def response_from_core(self, resp: ChatResponse, model: str) -> dict[str, Any]:
        """The client's answer (``model``: the name the client asked for)."""
        ...

    def usage_of(self, parsed: Any) -> Usage | None:
        """The usage a parsed whole answer reports, if any."""
        ...

    def text_of(self, parsed: Any) -> str:
        """A parsed whole answer's generated text (text, thinking, tool names and arguments), for the
        offline count when the upstream reported no usage."""
        ...

    # --- streams ----------------------------------------------------------------------------------

    def answers_stream(self, content_type: str) -> bool:
        """Whether an upstream answer with this ``Content-Type`` is a stream in this dialect's framing
        (else it is read as a whole answer)."""
        ...

    def stream_reader(self) -> StreamReader:
        """A reader of one upstream stream of this dialect (framing and decoding)."""
        ...

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        """Core events → this dialect's ``(event name | None, payload)`` pairs, for the client's model
        name; ``include_usage``: the client asked for the optional usage report."""
        ...

    def framing(self) -> Framing:
        """The outbound byte framing of one stream to a client of this dialect."""
        ...

    def passthrough_tap(self, client_wants_usage: bool, scrubber: Scrubber, model: str) -> PassthroughTap:
        """A tap that forwards an upstream stream of this same dialect to its client (``model``: the
        client's model name, for the offline count)."""
        ...

    # --- errors -----------------------------------------------------------------------------------

    def parse_upstream_error(self, status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        """An upstream's error answer, rebuilt from its known fields with the channel's scrubber."""
        ...

    def error_status(self, parsed: Any) -> int | None:
        """The status of an error an upstream answered with HTTP 200, else None."""
        ...

    def error_body(self, error: GatewayError, request_id: str) -> tuple[int, bytes]:
        """A gateway error as this dialect's client reads it: status and body."""
        ...

    def stream_error_frame(self, error: GatewayError, request_id: str) -> bytes:
        """A gateway error as this dialect's in-stream error event, framed."""
        ...


class EmbeddingsDialect(Protocol):
    """An embeddings wire format as ``relay/embeddings.py`` sees it (an optional ability of a format:
    Anthropic has none): one class per format (``dialects/<name>/embeddings.py``), registered in
    ``dialects/registry.py``. Methods are pure, like ``Dialect``'s; the relay calls them for the
    client's format and for the channel's, and names neither."""

    name: str  # the registry's name of the format ("openai", "gemini", "gemini-single")
    takes_token_ids: bool  # False: token-id inputs are decoded to text before a request in this format

    def request_to_core(self, body: dict[str, Any], model: str) -> EmbeddingsRequest:
        """A client's parsed body (``model``: the URL's or the body's model name) in the core model."""
        ...

    def request_from_core(self, req: EmbeddingsRequest) -> dict[str, Any]:
        """The upstream body for a translated request."""
        ...

    def passthrough_body(self, body: dict[str, Any], raw: bytes, upstream_model: str) -> bytes:
        """The bytes to send an upstream of this same format: ``raw`` untouched unless the channel maps
        the model name."""
        ...

    def response_to_core(self, parsed: Any) -> EmbeddingsResponse:
        """An upstream's parsed answer in the core model."""
        ...

    def response_from_core(self, resp: EmbeddingsResponse, req: EmbeddingsRequest, model: str) -> dict[str, Any]:
        """The client's answer to ``req`` (``resp`` with its usage filled in; ``model``: the name the
        client asked for)."""
        ...

    def usage_of(self, parsed: Any) -> Usage | None:
        """The usage a parsed answer reports, if any."""
        ...

    def parse_upstream_error(self, status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        """An upstream's error answer, rebuilt from its known fields with the channel's scrubber."""
        ...

    def error_status(self, parsed: Any) -> int | None:
        """The status of an error an upstream answered with HTTP 200, else None."""
        ...
