"""One attempt against one channel: send, read or stream the answer, meter it.

``Leg`` says which dialect the client speaks and which the channel speaks. When they are the same the
answer passes through (a light tap notes usage); when they differ it is translated through the core
model. Either way the usage record is committed before the client's last byte.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.billing.rules import EndReason
from relaygate.billing.tokenizer import count_text
from relaygate.core.stream import StreamFrameTooLarge
from relaygate.core.wire import loads_or_none as loads_or_none  # the relays' one JSON reader
from relaygate.dialects.base import Dialect, PassthroughTap
from relaygate.errors import GatewayError, RateLimited, ShuttingDown, UpstreamError, UpstreamRejected, UpstreamTimeout
from relaygate.providers.base import (
    Transport,
    UpstreamBodyTooLarge,
    UpstreamConnectError,
    UpstreamReadTimeout,
    UpstreamRequest,
    UpstreamResponse,
)
from relaygate.relay.call import Call
from relaygate.relay.cutoff import OpenStreams
from relaygate.relay.meter import Meter
from relaygate.relay.translate import TranslatingTap, response_text
from relaygate.routing.health import HealthBook
from relaygate.routing.records import ChannelRecord
from relaygate.scrub import Scrubber
from relaygate.storage.recorder import RecorderError

_ERROR_BODY_LIMIT = 64 * 1024

# Reads an upstream's error answer (status, body) into a client's error, with the channel's scrubber.
ParseError = Callable[[int, bytes, Scrubber], UpstreamRejected]


class AccountingUnavailable(GatewayError):
    status = 503
    code = "accounting_unavailable"
    kind = "overloaded"
    retryable = True


_NOT_ACCOUNTED = "The request could not be accounted for; it was not billed."


@dataclass(slots=True)
class JsonResult:
    status: int
    body: bytes
    content_type: str = "application/json"


class FinalFrame(bytes):
    """A stream's last bytes (its terminator or closing error event): the sender writes them together
    with the end of the response, one write instead of two."""

    __slots__ = ()


@dataclass(slots=True)
class StreamResult:
    body: AsyncIterator[bytes]  # may end with a ``FinalFrame``


RelayResult = JsonResult | StreamResult


@dataclass(slots=True)
class Failure:
    """Why an attempt failed; becomes the client's error when every candidate failed."""

    error: GatewayError
    reason: EndReason


@dataclass(frozen=True, slots=True)
class Leg:
    client: Dialect
    upstream: Dialect

    @property
    def translating(self) -> bool:
        return self.client is not self.upstream


class Exchange:
    """Runs attempts; holds what they share (meter, health, limits)."""

    def __init__(self, meter: Meter, health: HealthBook, body_limit: int, *,
                 streams: OpenStreams | None = None) -> None:
        self._meter = meter
        self._health = health
        self._body_limit = body_limit
        self._streams = streams or OpenStreams()

    async def attempt(self, call: Call, channel: ChannelRecord, leg: Leg, transport: Transport,
                      request: UpstreamRequest, client_wants_usage: bool) -> RelayResult | Failure:
        response = await self.send(channel, transport, request, leg.upstream.parse_upstream_error)
        if isinstance(response, Failure):
            return response
        if call.stream and leg.upstream.answers_stream(response.content_type):
            return await self._open_stream(call, channel, leg, response, client_wants_usage)
        return await self._complete(call, channel, leg, response)

    async def send(self, channel: ChannelRecord, transport: Transport, request: UpstreamRequest,
                   parse_error: ParseError) -> UpstreamResponse | Failure:
        """The upstream's response when its status is a success; else why the attempt failed (an upstream
        4xx the client can fix is read with ``parse_error``, the upstream dialect's)."""
        try:
            response = await transport.send(request)
        except UpstreamReadTimeout:
            return self._failed(channel, UpstreamTimeout("The upstream did not answer in time."), EndReason.TIMEOUT)
        except UpstreamConnectError:
            return self._failed(channel, UpstreamError("The upstream could not be reached."),
                                EndReason.UPSTREAM_ERROR)
        if response.status >= 400:
            return await self._refused(channel, parse_error, response)
        return response

    async def read(self, channel: ChannelRecord, response: UpstreamResponse) -> bytes | Failure:
        """A whole answer's body, within the size limit and the read timeout."""
        try:
            return await response.read(self._body_limit)
        except UpstreamReadTimeout:
            return self._failed(channel, UpstreamTimeout("The upstream did not finish its answer in time."),
                                EndReason.TIMEOUT)
        except (UpstreamConnectError, UpstreamBodyTooLarge):
            return self._failed(channel, UpstreamError("The upstream's answer was broken off or too large."),
                                EndReason.UPSTREAM_ERROR)

    def _failed(self, channel: ChannelRecord, error: GatewayError, reason: EndReason) -> Failure:
        self._health.failure(channel.id)
        return Failure(error, reason)

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
            return self._failed(channel, RateLimited("The upstream is rate limiting; try again shortly.",
                                                     code="upstream_rate_limited"), EndReason.UPSTREAM_ERROR)
        if status >= 500:
            return self._failed(channel, UpstreamError(f"The upstream failed (HTTP {status})."),
                                EndReason.UPSTREAM_ERROR)
        if status in (401, 403):
            return self._failed(channel, UpstreamError("The upstream refused the gateway's credentials for this "
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

    # --- a whole answer -----------------------------------------------------------------------

    async def _complete(self, call: Call, channel: ChannelRecord, leg: Leg,
                        response: UpstreamResponse) -> RelayResult | Failure:
        payload = await self.read(channel, response)
        if isinstance(payload, Failure):
            return payload
        call.first_byte_at = time.monotonic()
        parsed = loads_or_none(payload)
        refused = self.error_answer(channel, leg.upstream.error_status, leg.upstream.parse_upstream_error, parsed,
                                    payload)
        if refused is not None:
            return refused
        if leg.translating:
            if not isinstance(parsed, dict):
                return self._failed(channel, UpstreamError("The upstream's answer was not valid JSON."),
                                    EndReason.UPSTREAM_ERROR)
            resp = leg.upstream.response_to_core(parsed)
            payload = orjson.dumps(leg.client.response_from_core(resp, call.model))
            usage, text = resp.usage, ("" if resp.usage is not None else response_text(resp.parts))
        else:
            usage = leg.client.usage_of(parsed)
            # The answer's text is needed only for the offline count, when the upstream reported no usage.
            text = "" if usage is not None else leg.client.text_of(parsed)
        self._health.success(channel.id)
        try:
            await self._meter.finish(call, EndReason.DONE, status=200, usage=usage,
                                     produced_tokens=count_text(text, call.model), delivered=True)
        except RecorderError as exc:
            raise AccountingUnavailable(_NOT_ACCOUNTED) from exc
        content_type = "application/json" if leg.translating else (response.content_type or "application/json")
        return JsonResult(200, payload, content_type)

    # --- a stream -----------------------------------------------------------------------------

    async def _open_stream(self, call: Call, channel: ChannelRecord, leg: Leg, response: UpstreamResponse,
                           client_wants_usage: bool) -> RelayResult | Failure:
        """Read the first upstream chunk before answering the client, so that an upstream that fails at
        once can still fail over."""
        chunks = response.iter_chunks().__aiter__()
        try:
            first = await chunks.__anext__()
        except (StopAsyncIteration, UpstreamReadTimeout, UpstreamConnectError) as exc:
            response.close()
            if isinstance(exc, UpstreamReadTimeout):
                return self._failed(channel, UpstreamTimeout("The upstream did not start its answer in time."),
                                    EndReason.TIMEOUT)
            return self._failed(channel, UpstreamError("The upstream closed the stream before answering."),
                                EndReason.UPSTREAM_ERROR)
        self._health.success(channel.id)
        call.first_byte_at = time.monotonic()
        tap: PassthroughTap | TranslatingTap
        if leg.translating:
            tap = TranslatingTap(leg.upstream, leg.client, model=call.model, include_usage=client_wants_usage,
                                 scrubber=channel.scrubber)
        else:
            tap = leg.client.passthrough_tap(client_wants_usage, channel.scrubber, call.model)
        return StreamResult(self._stream(call, leg, response, chunks, first, tap))

    async def _stream(self, call: Call, leg: Leg, response: UpstreamResponse, chunks: AsyncIterator[bytes],
                      first: bytes, tap: PassthroughTap | TranslatingTap) -> AsyncIterator[bytes]:
        """Forward the stream; commit the usage record before the last frame; bill any other end."""
        delivered = False
        self._streams.add(response)
        try:
            out = tap.feed(first)
            if out:
                delivered = True
                yield out
            reason = EndReason.STREAM_CUT
            try:
                async for chunk in chunks:
                    out = tap.feed(chunk)
                    if out:
                        delivered = True
                        yield out
                out = tap.finish()
                if out:
                    yield out
                reason = (EndReason.DONE if tap.completed
                          else EndReason.UPSTREAM_ERROR if tap.error else EndReason.STREAM_CUT)
            except UpstreamReadTimeout:
                reason = EndReason.TIMEOUT
            except (UpstreamConnectError, StreamFrameTooLarge):  # an event that never ends is a broken stream
                reason = EndReason.STREAM_CUT
            yield FinalFrame(await self._stream_end(call, leg, tap, cut_reason(reason, self._streams), delivered))
        finally:
            self._streams.discard(response)
            response.close()
            if not call.finished:  # the client stopped reading (or the drain cancelled us): bill what it received
                # Nobody is left to tell if the record cannot be stored; the recorder logs it, and the
                # ledger forgets the unstored spend (no charge without a record).
                with contextlib.suppress(RecorderError):
                    await self._meter.finish(call, cut_reason(EndReason.CLIENT_GONE, self._streams), status=200,
                                             usage=tap.usage, produced_tokens=tap.produced_tokens(),
                                             delivered=delivered or bool(tap.events))

    async def _stream_end(self, call: Call, leg: Leg, tap: PassthroughTap | TranslatingTap, reason: EndReason,
                          delivered: bool) -> bytes:
        """The last frame: the dialect's terminator once the record is durable, or an error event."""
        try:
            await self._meter.finish(call, reason, status=200, usage=tap.usage,
                                     produced_tokens=tap.produced_tokens(), delivered=delivered,
                                     error_code=None if reason is EndReason.DONE else reason.value)
        except RecorderError:
            return _error_frame(leg, tap, AccountingUnavailable(_NOT_ACCOUNTED), call.request_id)
        if reason is EndReason.DONE:
            return tap.final_frame()
        if reason is EndReason.UPSTREAM_ERROR:
            return b""  # the upstream's own error event has already been forwarded
        return _error_frame(leg, tap, broken_stream_error(reason), call.request_id)


# How a stream the shutdown cut looks from inside: its upstream ended early, or the drain cancelled it.
_CUT_LOOKALIKES = (EndReason.STREAM_CUT, EndReason.CLIENT_GONE)


def cut_reason(reason: EndReason, streams: OpenStreams) -> EndReason:
    """Why a stream ended, once the shutdown has cut open streams: an early end is the gateway's doing."""
    return EndReason.GATEWAY_CUT if streams.cut and reason in _CUT_LOOKALIKES else reason


def broken_stream_error(reason: EndReason) -> GatewayError:
    """What the client is told in-stream when the upstream went quiet or ended the stream early, or the
    gateway ended it itself."""
    if reason is EndReason.GATEWAY_CUT:
        return ShuttingDown("The gateway is shutting down and ended this stream before its end; retry.",
                            code="gateway_shutdown")
    if reason is EndReason.TIMEOUT:
        return UpstreamTimeout("The upstream stopped sending in the middle of the answer.")
    return UpstreamError("The upstream ended the stream before the answer was complete.", code="stream_cut")


def _error_frame(leg: Leg, tap: PassthroughTap | TranslatingTap, error: GatewayError, request_id: str) -> bytes:
    """The client's in-stream error event. A translated stream frames it itself: its framing knows what
    came before (a JSON-array stream must stay one well-formed array)."""
    if isinstance(tap, TranslatingTap):
        return tap.error_frame(error, request_id)
    return leg.client.stream_error_frame(error, request_id)
