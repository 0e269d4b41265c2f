"""One attempt against one channel: which transport, which timeouts, the send, and what its failures mean.

Every use case (chat, embeddings, images, image streams, async image tasks, Midjourney submits and
polls) sends through ``Upstream``, so these are decided here once:

- the transport: the provider's in-process one (the mock), else the shared HTTP client;
- the timeouts, by what kind of call it is (``Wait``), from the settings;
- the error map: no connection or a read timeout, a 429, a 5xx, or refused credentials (401/403) are
  relaygate's own errors (the next candidate may do better) and count against the channel's health;
  any other 4xx is the upstream's refusal, rebuilt from its known fields by the dialect's parser with
  the channel's scrubber (``UpstreamRejected``); an error answered with HTTP 200 goes the same way;
- the one error of a call whose usage record could not be stored (``accounted``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

from relaygate.billing.rules import EndReason
from relaygate.errors import GatewayError, RateLimited, UpstreamError, UpstreamRejected, UpstreamTimeout
from relaygate.providers import registry
from relaygate.providers.base import (
    Transport,
    UpstreamBodyTooLarge,
    UpstreamConnectError,
    UpstreamReadTimeout,
    UpstreamRequest,
    UpstreamResponse,
)
from relaygate.routing.health import HealthBook
from relaygate.routing.records import ChannelRecord
from relaygate.scrub import Scrubber
from relaygate.storage.recorder import RecorderError

if TYPE_CHECKING:
    from relaygate.settings import Settings

_ERROR_BODY_LIMIT = 64 * 1024

# Reads an upstream's error answer (status, body) into a client's error, with the channel's scrubber.
ParseError = Callable[[int, bytes, Scrubber], UpstreamRejected]

H = TypeVar("H")


@dataclass(slots=True)
class Failure:
    """Why an attempt failed; becomes the client's error when every candidate failed."""

    error: GatewayError
    reason: EndReason


class AccountingUnavailable(GatewayError):
    status = 503
    code = "accounting_unavailable"
    kind = "overloaded"
    retryable = True


def not_accounted() -> AccountingUnavailable:
    """The client's error for a call whose usage record could not be stored (it was not billed)."""
    return AccountingUnavailable("The request could not be accounted for; it was not billed.")


async def accounted(finishing: Awaitable[None]) -> None:
    """Await a meter's ``finish``; a record that cannot be stored fails the call (``not_accounted``)."""
    try:
        await finishing
    except RecorderError as exc:
        raise not_accounted() from exc


class Wait(IntEnum):
    """What kind of call a request is, which decides how long each read of its answer may take."""

    ANSWER = 0  # a whole answer: the first byte within first_byte_timeout_s
    STREAM = 1  # a stream: each read within the longer of the first-byte and stream-idle timeouts
    POLL = 2  # a batch status poll (Midjourney): at least 15 s, and at least one poll period


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The only place an upstream request's timeouts are set (seconds)."""

    connect: float
    reads: tuple[float, float, float]  # indexed by ``Wait``

    @classmethod
    def of(cls, settings: Settings) -> Timeouts:
        first_byte = settings.first_byte_timeout_s
        return cls(settings.connect_timeout_s,
                   (first_byte, max(first_byte, settings.stream_idle_timeout_s), max(15.0, settings.mj_poll_s)))

    @classmethod
    def uniform(cls, seconds: float) -> Timeouts:
        """One limit for everything (a channel test's ``timeout_s``)."""
        return cls(seconds, (seconds, seconds, seconds))

    def apply(self, request: UpstreamRequest, wait: Wait) -> UpstreamRequest:
        request.connect_timeout = self.connect
        request.read_timeout = self.reads[wait]
        return request


def transport_for(channel: ChannelRecord, http: H) -> Transport | H:
    """The channel's provider's own transport (the mock's in-process one), else ``http``."""
    return registry.transport_for(channel) or http


class Upstream:
    """Sends requests to channels and maps what goes wrong; holds what attempts share."""

    def __init__(self, health: HealthBook, http: Transport, timeouts: Timeouts, body_limit: int) -> None:
        self._health = health
        self._http = http
        self._timeouts = timeouts
        self._body_limit = body_limit

    @classmethod
    def of(cls, health: HealthBook, http: Transport, settings: Settings) -> Upstream:
        return cls(health, http, Timeouts.of(settings), settings.max_upstream_body_bytes)

    async def send(self, channel: ChannelRecord, request: UpstreamRequest, parse_error: ParseError,
                   wait: Wait = Wait.ANSWER) -> UpstreamResponse | Failure:
        """The upstream's response when its status is a success; else why the attempt failed (an upstream
        4xx the client can fix is read with ``parse_error``, the upstream dialect's)."""
        self._timeouts.apply(request, wait)
        try:
            response = await transport_for(channel, self._http).send(request)
        except UpstreamReadTimeout:
            return self.failed(channel, UpstreamTimeout("The upstream did not answer in time."), EndReason.TIMEOUT)
        except UpstreamConnectError:
            return self.failed(channel, UpstreamError("The upstream could not be reached."), EndReason.UPSTREAM_ERROR)
        if response.status >= 400:
            return await self._refused(channel, parse_error, response)
        return response

    async def read(self, channel: ChannelRecord, response: UpstreamResponse) -> bytes | Failure:
        """A whole answer's body, within the size limit and the read timeout."""
        try:
            return await response.read(self._body_limit)
        except UpstreamReadTimeout:
            return self.failed(channel, UpstreamTimeout("The upstream did not finish its answer in time."),
                               EndReason.TIMEOUT)
        except (UpstreamConnectError, UpstreamBodyTooLarge):
            return self.broken(channel, "The upstream's answer was broken off or too large.")

    async def fetch(self, channel: ChannelRecord, request: UpstreamRequest, parse_error: ParseError,
                    wait: Wait = Wait.ANSWER) -> bytes | Failure:
        """``send`` then ``read``: a whole answer's body, or why the attempt failed."""
        response = await self.send(channel, request, parse_error, wait)
        if isinstance(response, Failure):
            return response
        return await self.read(channel, response)

    async def download(self, request: UpstreamRequest, limit: int, what: str) -> tuple[str, bytes]:
        """A file from a host an upstream named (a Midjourney image on its media host: no channel, no
        channel secret, no health): its content type and bytes; ``UpstreamError`` when it cannot be had."""
        self._timeouts.apply(request, Wait.ANSWER)
        try:
            response = await self._http.send(request)
            try:
                data = await response.read(limit)
            finally:
                response.close()
        except (UpstreamConnectError, UpstreamReadTimeout, UpstreamBodyTooLarge) as exc:
            raise UpstreamError(f"The {what} could not be fetched from the upstream.") from exc
        if response.status != 200:
            raise UpstreamError(f"The upstream answered HTTP {response.status} for the {what}.")
        return response.content_type, data

    async def first_chunk(self, channel: ChannelRecord,
                          response: UpstreamResponse) -> tuple[AsyncIterator[bytes], bytes] | Failure:
        """A stream's first read, made before the client is answered so that an upstream that fails at
        once can still fail over: the rest of the stream and its first chunk, or why it failed."""
        chunks = response.iter_chunks().__aiter__()
        try:
            first = await chunks.__anext__()
        except (StopAsyncIteration, UpstreamReadTimeout, UpstreamConnectError) as exc:
            response.close()
            if isinstance(exc, UpstreamReadTimeout):
                return self.failed(channel, UpstreamTimeout("The upstream did not start its answer in time."),
                                   EndReason.TIMEOUT)
            return self.broken(channel, "The upstream closed the stream before answering.")
        self._health.success(channel.id)
        return chunks, first

    def succeeded(self, channel: ChannelRecord) -> None:
        self._health.success(channel.id)

    def failed(self, channel: ChannelRecord, error: GatewayError, reason: EndReason) -> Failure:
        self._health.failure(channel.id)
        return Failure(error, reason)

    def broken(self, channel: ChannelRecord, message: str) -> Failure:
        """An answer that is not what the call asked for (in relaygate's words, never the upstream's)."""
        return self.failed(channel, UpstreamError(message), EndReason.UPSTREAM_ERROR)

    async def _refused(self, channel: ChannelRecord, parse_error: ParseError, response: UpstreamResponse) -> Failure:
        try:
            raw = await response.read(_ERROR_BODY_LIMIT)
        except (UpstreamBodyTooLarge, UpstreamConnectError, UpstreamReadTimeout):
            raw = b""
        return self.refusal(channel, parse_error, response.status, raw)

    def refusal(self, channel: ChannelRecord, parse_error: ParseError, status: int, raw: bytes) -> Failure:
        """Why an upstream's error answer failed the attempt: rate limits, 5xx and refused credentials in
        relaygate's words (the next candidate may do better), any other 4xx rebuilt from its fields with
        the channel's scrubber. Also for an error answered with HTTP 200 (``status`` is the one it names)."""
        if status == 429:
            return self.failed(channel, RateLimited("The upstream is rate limiting; try again shortly.",
                                                    code="upstream_rate_limited"), EndReason.UPSTREAM_ERROR)
        if status >= 500:
            return self.broken(channel, f"The upstream failed (HTTP {status}).")
        if status in (401, 403):
            return self.failed(channel, UpstreamError("The upstream refused the gateway's credentials for this "
                                                      "channel.", code="upstream_auth_failed"),
                               EndReason.UPSTREAM_ERROR)
        self._health.success(channel.id)
        return Failure(parse_error(status, raw, channel.scrubber), EndReason.REJECTED)

    def error_answer(self, channel: ChannelRecord, error_status: Callable[[Any], int | None], parse_error: ParseError,
                     parsed: Any, raw: bytes) -> Failure | None:
        """An upstream that answered an error with HTTP 200: the failure its error stands for (never the
        body as a success); None when ``parsed`` is a real answer."""
        status = error_status(parsed)
        if status is None:
            return None
        return self.refusal(channel, parse_error, status if 400 <= status <= 599 else 500, raw)
