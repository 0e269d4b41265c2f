"""What the relay needs from a wire dialect, in one small shape.

A ``Dialect`` bundles a format's pure converters (to and from the neutral ``core`` model), its stream
framing, its passthrough tap and its error rendering, so that ``relay/`` works with any pair of client
and upstream formats without naming either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    request_to_core: Callable[[dict[str, Any], str, bool], ChatRequest]  # body, model, stream
    request_from_core: Callable[[ChatRequest], dict[str, Any]]
    response_to_core: Callable[[dict[str, Any]], ChatResponse]
    response_from_core: Callable[[ChatResponse, str], dict[str, Any]]  # response, client's model name
    stream_decoder: Callable[[], StreamDecoder]
    stream_encoder: Callable[[str, bool], StreamEncoder]  # client's model name, include usage
    sse_framing: Callable[[], Framing]
    passthrough_tap: Callable[[bool, Scrubber, str], PassthroughTap]
    # ^ client wants usage, the channel's scrubber, the client's model name (for the offline count)
    passthrough_body: Callable[[dict[str, Any], bytes, str, bool, bool], bytes]
    # ^ body, raw bytes, upstream model, stream, client wants usage → the bytes to send upstream
    usage_of: Callable[[Any], Usage | None]  # a parsed non-stream response
    text_of: Callable[[Any], str]  # a parsed non-stream response's generated text
    upstream_done: Callable[[str | None, bytes], bool]  # an upstream SSE event that ends the stream
    urls_to_fetch: Callable[[ChatRequest], list[str]]  # media the upstream cannot read by URL
    parse_upstream_error: Callable[[int, bytes, Scrubber], UpstreamRejected]  # status, body, the channel's scrubber
    error_status: Callable[[Any], int | None]  # the status of an error answered with HTTP 200, else None
    error_body: Callable[[GatewayError, str], tuple[int, bytes]]  # error, request id → status, body
    stream_error_frame: Callable[[GatewayError, str], bytes]


@dataclass(frozen=True, slots=True)
class EmbeddingsDialect:
    """An embeddings wire format (an optional ability of a dialect: Anthropic has none).

    Same shape as ``Dialect``, for ``relay/embeddings.py``: pure converters to and from the neutral
    ``core.embeddings`` model, the passthrough edit, and where the upstream reports usage.
    """

    name: str
    request_to_core: Callable[[dict[str, Any], str], EmbeddingsRequest]  # body, model (of the URL or body)
    request_from_core: Callable[[EmbeddingsRequest], dict[str, Any]]
    response_to_core: Callable[[Any], EmbeddingsResponse]  # a parsed upstream answer
    response_from_core: Callable[[EmbeddingsResponse, EmbeddingsRequest, str], dict[str, Any]]
    # ^ response (usage filled in), the client's request, the client's model name
    passthrough_body: Callable[[dict[str, Any], bytes, str], bytes]  # body, raw bytes, upstream model
    usage_of: Callable[[Any], Usage | None]  # a parsed answer's own usage report, if any
    takes_token_ids: bool  # False: token-id inputs are decoded to text before a request in this dialect
    parse_upstream_error: Callable[[int, bytes, Scrubber], UpstreamRejected]
    error_status: Callable[[Any], int | None]  # the status of an error answered with HTTP 200, else None
