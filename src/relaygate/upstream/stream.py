"""The one stream driver: every stream relaygate relays (chat passed through or translated, image
events) is forwarded, ended and billed here.

The use case supplies what differs: a ``StreamTap`` (upstream bytes → the client's bytes, what the
stream said about itself, its final frame and its in-stream error frame) and a ``Record`` (how the
call's usage record is made). The driver does the rest, the same way for every stream:

- the first chunk is read before the client is answered (``Upstream.first_chunk``), so that an
  upstream that fails at once still fails over;
- the stream is registered with ``OpenStreams``, so that a shutdown's drain can end it itself;
- the usage record is committed before the last frame, which is the tap's final frame once the
  record is durable, or an in-stream error (the record could not be stored; the upstream went quiet,
  broke the stream off, or the gateway cut it);
- a client that leaves (or a drain that cancels the stream) is billed for what it received.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from relaygate.billing.rules import EndReason
from relaygate.core.stream import StreamFrameTooLarge
from relaygate.errors import GatewayError, ShuttingDown, UpstreamError, UpstreamTimeout
from relaygate.meter.call import Call
from relaygate.providers.base import UpstreamConnectError, UpstreamReadTimeout
from relaygate.storage.recorder import RecorderError
from relaygate.upstream.attempt import not_accounted
from relaygate.upstream.cutoff import Closable, OpenStreams


class StreamTap(Protocol):
    """One stream's bytes, as its use case reads them. Nothing it holds grows with the stream."""

    @property
    def events(self) -> int:
        """Upstream events read so far (a client that left after any was served something)."""
        ...

    @property
    def error(self) -> object:
        """Truthy once the upstream sent an in-stream error (forwarded, made safe, by ``feed``)."""
        ...

    @property
    def completed(self) -> bool:
        """The upstream ended the stream properly, without an error."""
        ...

    def feed(self, chunk: bytes) -> bytes:
        """The client's bytes for one upstream read (possibly none); the stream's last event is held
        back for ``final_frame``. May raise ``core.stream.StreamFrameTooLarge``."""
        ...

    def finish(self) -> bytes:
        """The client's bytes for what was left when the upstream closed."""
        ...

    def final_frame(self) -> bytes:
        """The held-back last event, sent once the usage record is committed."""
        ...

    def error_frame(self, error: GatewayError, request_id: str) -> bytes:
        """``error`` as the client's in-stream error event, the stream's last (after anything the tap
        held back that is the client's however the stream ends)."""
        ...


T = TypeVar("T", bound=StreamTap)
T_contra = TypeVar("T_contra", bound=StreamTap, contravariant=True)


class Record(Protocol[T_contra]):
    """The use case's ``Meter.finish`` for a stream that ended: its usage as ``tap`` saw it. Raises
    ``RecorderError`` when the record cannot be stored."""

    async def __call__(self, call: Call, tap: T_contra, reason: EndReason, *, delivered: bool,
                       error_code: str | None) -> None: ...


class FinalFrame(bytes):
    """A stream's last bytes (its terminator or closing error event): the sender writes them together
    with the end of the response, one write instead of two."""

    __slots__ = ()


@dataclass(slots=True)
class StreamResult:
    body: AsyncIterator[bytes]  # may end with a ``FinalFrame``


class StreamDriver:
    def __init__(self, streams: OpenStreams) -> None:
        self._streams = streams

    async def run(self, call: Call, upstream: Closable, chunks: AsyncIterator[bytes], first: bytes, tap: T,
                  record: Record[T]) -> AsyncIterator[bytes]:
        """Forward the stream (``first``, then ``chunks``); commit the usage record before the last
        frame; bill any other end. ``upstream`` is closed when the stream ends, or by a shutdown's cut."""
        delivered = False
        streams = self._streams
        streams.add(upstream)
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
            yield FinalFrame(await self._end(call, tap, record, cut_reason(reason, streams), delivered))
        finally:
            streams.discard(upstream)
            upstream.close()
            if not call.finished:  # the client stopped reading (or the drain cancelled us): bill what it received
                # Nobody is left to tell if the record cannot be stored; the recorder logs it, and the
                # ledger forgets the unstored spend (no charge without a record).
                with contextlib.suppress(RecorderError):
                    await record(call, tap, cut_reason(EndReason.CLIENT_GONE, streams),
                                 delivered=delivered or bool(tap.events), error_code=None)

    async def _end(self, call: Call, tap: T, record: Record[T], reason: EndReason, delivered: bool) -> bytes:
        """The last frame: the tap's final one once the record is durable, or an error event."""
        try:
            await record(call, tap, reason, delivered=delivered,
                         error_code=None if reason is EndReason.DONE else reason.value)
        except RecorderError:
            return tap.error_frame(not_accounted(), call.request_id)
        if reason is EndReason.DONE:
            return tap.final_frame()
        if reason is EndReason.UPSTREAM_ERROR:
            return b""  # the upstream's own error event has already been forwarded
        return tap.error_frame(broken_stream_error(reason), call.request_id)


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
