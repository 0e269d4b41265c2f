"""The one upstream attempt (upstream/attempt.py): timeouts by kind of call, the transport choice, and the
error map every use case shares (connect error, timeout, 429, 5xx, 401/403, a 4xx the client can fix, an
error answered with HTTP 200), with the channel's health."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from relaygate.billing.rules import EndReason
from relaygate.errors import RateLimited, UpstreamError, UpstreamRejected, UpstreamTimeout
from relaygate.providers.base import (
    UpstreamBodyTooLarge,
    UpstreamConnectError,
    UpstreamReadTimeout,
    UpstreamRequest,
    UpstreamResponse,
)
from relaygate.routing.health import HealthBook
from relaygate.routing.records import ChannelRecord
from relaygate.scrub import Scrubber
from relaygate.settings import Settings
from relaygate.storage.recorder import RecorderError
from relaygate.upstream.attempt import (
    AccountingUnavailable,
    Failure,
    Timeouts,
    Upstream,
    Wait,
    accounted,
    transport_for,
)

SECRET = "sk-upstream-secret-0123456789"


class _Answer:
    def __init__(self, status: int, body: bytes = b"", *, chunks: Sequence[bytes | Exception] = (),
                 read_error: Exception | None = None) -> None:
        self.status = status
        self.content_type = "application/json"
        self._body = body
        self._chunks = chunks
        self._read_error = read_error
        self.closed = False

    async def read(self, limit: int) -> bytes:
        if self._read_error is not None:
            raise self._read_error
        if len(self._body) > limit:
            raise UpstreamBodyTooLarge()
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def close(self) -> None:
        self.closed = True


class _Transport:
    """Answers every send with ``answer``, or raises ``error``; keeps the requests it was given."""

    def __init__(self, answer: _Answer | None = None, error: Exception | None = None) -> None:
        self._answer = answer
        self._error = error
        self.sent: list[UpstreamRequest] = []

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        self.sent.append(request)
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer


def _channel(kind: str = "openai", options: dict[str, Any] | None = None) -> ChannelRecord:
    return ChannelRecord(7, "c", kind, "https://api.example.com/v1", SECRET, options=options or {})


def _request() -> UpstreamRequest:
    return UpstreamRequest("POST", "https://api.example.com/v1/chat/completions", {}, b"{}")


def _parse(status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
    return UpstreamRejected(status, scrubber, message=body.decode())


def _upstream(transport: _Transport, health: HealthBook | None = None, body_limit: int = 1024) -> Upstream:
    return Upstream(health or HealthBook(failures=1), transport, Timeouts(3.0, (30.0, 60.0, 15.0)), body_limit)


# --- timeouts and transport ---------------------------------------------------------------------


def test_timeouts_are_decided_by_the_kind_of_call() -> None:
    settings = dataclasses.replace(Settings(), connect_timeout_s=4.0, first_byte_timeout_s=20.0,
                                   stream_idle_timeout_s=90.0, mj_poll_s=5.0)
    timeouts = Timeouts.of(settings)
    assert timeouts.apply(_request(), Wait.ANSWER).read_timeout == 20.0
    assert timeouts.apply(_request(), Wait.STREAM).read_timeout == 90.0  # the longer of first byte and idle
    assert timeouts.apply(_request(), Wait.POLL).read_timeout == 15.0  # at least 15 s
    assert timeouts.apply(_request(), Wait.ANSWER).connect_timeout == 4.0
    assert Timeouts.of(dataclasses.replace(settings, mj_poll_s=40.0)).reads[Wait.POLL] == 40.0
    assert Timeouts.uniform(2.5).apply(_request(), Wait.STREAM).read_timeout == 2.5


async def test_send_applies_the_timeouts_of_its_kind() -> None:
    transport = _Transport(_Answer(200, b"{}"))
    upstream = _upstream(transport)
    await upstream.send(_channel(), _request(), _parse, Wait.STREAM)
    await upstream.send(_channel(), _request(), _parse)
    assert [(r.connect_timeout, r.read_timeout) for r in transport.sent] == [(3.0, 60.0), (3.0, 30.0)]


def test_the_mock_brings_its_own_transport_others_use_the_shared_client() -> None:
    http = object()
    assert transport_for(_channel("openai"), http) is http
    assert transport_for(_channel("mock"), http) is not http
    assert transport_for(_channel("midjourney"), http) is http
    assert transport_for(_channel("midjourney", {"mock": True}), http) is not http


# --- the error map ------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "kind", "status", "reason"), [
    (UpstreamConnectError("ClientConnectorError"), UpstreamError, 502, EndReason.UPSTREAM_ERROR),
    (UpstreamReadTimeout(), UpstreamTimeout, 504, EndReason.TIMEOUT),
])
async def test_no_answer_fails_the_attempt_and_the_channel(error: Exception, kind: type, status: int,
                                                           reason: EndReason) -> None:
    health = HealthBook(failures=1)
    failure = await _upstream(_Transport(error=error), health).send(_channel(), _request(), _parse)
    assert isinstance(failure, Failure)
    assert type(failure.error) is kind
    assert (failure.error.status, failure.reason) == (status, reason)
    assert not health.healthy(7)


@pytest.mark.parametrize(("status", "kind", "code"), [
    (429, RateLimited, "upstream_rate_limited"),
    (500, UpstreamError, "upstream_error"),
    (503, UpstreamError, "upstream_error"),
    (401, UpstreamError, "upstream_auth_failed"),
    (403, UpstreamError, "upstream_auth_failed"),
])
async def test_failover_statuses_are_said_in_relaygates_words(status: int, kind: type, code: str) -> None:
    health = HealthBook(failures=1)
    answer = _Answer(status, f'{{"error": {{"message": "bad key {SECRET}"}}}}'.encode())
    failure = await _upstream(_Transport(answer), health).send(_channel(), _request(), _parse)
    assert isinstance(failure, Failure)
    assert type(failure.error) is kind
    assert failure.error.code == code
    assert failure.reason is EndReason.UPSTREAM_ERROR
    assert SECRET not in str(failure.error)
    assert not health.healthy(7)


async def test_a_4xx_the_client_can_fix_is_the_upstreams_read_by_the_dialect_with_the_channels_scrubber() -> None:
    health = HealthBook(failures=1)
    health.failure(7)
    seen: list[Scrubber] = []

    def parse(status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        seen.append(scrubber)
        return UpstreamRejected(status, scrubber, message=body.decode())

    channel = _channel()
    failure = await _upstream(_Transport(_Answer(400, f"max_tokens is too large for {SECRET}".encode())),
                              health).send(channel, _request(), parse)
    assert isinstance(failure, Failure)
    assert isinstance(failure.error, UpstreamRejected)
    assert (failure.error.status, failure.reason) == (400, EndReason.REJECTED)
    assert seen == [channel.scrubber]
    assert SECRET not in failure.error.message
    assert health.healthy(7)  # the channel works: the request was at fault


async def test_an_unreadable_error_body_is_still_mapped() -> None:
    answer = _Answer(400, read_error=UpstreamConnectError("ClientPayloadError"))
    failure = await _upstream(_Transport(answer)).send(_channel(), _request(), _parse)
    assert isinstance(failure, Failure)
    assert isinstance(failure.error, UpstreamRejected)
    assert failure.error.status == 400


async def test_a_success_is_the_response() -> None:
    answer = _Answer(200, b"{}")
    assert await _upstream(_Transport(answer)).send(_channel(), _request(), _parse) is answer


@pytest.mark.parametrize(("named", "status", "reason"), [
    (404, 404, EndReason.REJECTED), (429, 429, EndReason.UPSTREAM_ERROR),
    (200, 502, EndReason.UPSTREAM_ERROR),  # a status out of the error range counts as an upstream failure
])
def test_an_error_answered_with_http_200_is_mapped_like_its_status(named: int, status: int,
                                                                   reason: EndReason) -> None:
    upstream = _upstream(_Transport())
    failure = upstream.error_answer(_channel(), lambda parsed: parsed.get("code"), _parse, {"code": named}, b"{}")
    assert failure is not None
    assert (failure.error.status, failure.reason) == (status, reason)
    assert upstream.error_answer(_channel(), lambda parsed: None, _parse, {"ok": True}, b"{}") is None


@pytest.mark.parametrize(("error", "kind"), [
    (UpstreamReadTimeout(), UpstreamTimeout),
    (UpstreamConnectError("ClientPayloadError"), UpstreamError),
    (UpstreamBodyTooLarge(), UpstreamError),
])
async def test_a_whole_answer_that_cannot_be_read(error: Exception, kind: type) -> None:
    health = HealthBook(failures=1)
    upstream = _upstream(_Transport(_Answer(200, read_error=error)), health)
    failure = await upstream.fetch(_channel(), _request(), _parse)
    assert isinstance(failure, Failure)
    assert type(failure.error) is kind
    assert not health.healthy(7)


async def test_an_answer_past_the_body_limit_is_broken() -> None:
    failure = await _upstream(_Transport(_Answer(200, b"x" * 2048)), body_limit=1024).fetch(_channel(), _request(),
                                                                                            _parse)
    assert isinstance(failure, Failure)
    assert failure.error.code == "upstream_error"


# --- a stream's first chunk ---------------------------------------------------------------------


@pytest.mark.parametrize(("chunks", "kind", "reason"), [
    ((), UpstreamError, EndReason.UPSTREAM_ERROR),
    ((UpstreamConnectError("ServerDisconnectedError"),), UpstreamError, EndReason.UPSTREAM_ERROR),
    ((UpstreamReadTimeout(),), UpstreamTimeout, EndReason.TIMEOUT),
])
async def test_a_stream_that_fails_before_its_first_chunk_can_fail_over(chunks: Sequence[Exception], kind: type,
                                                                       reason: EndReason) -> None:
    health = HealthBook(failures=1)
    answer = _Answer(200, chunks=chunks)
    failure = await _upstream(_Transport(), health).first_chunk(_channel(), answer)
    assert isinstance(failure, Failure)
    assert (type(failure.error), failure.reason) == (kind, reason)
    assert answer.closed
    assert not health.healthy(7)


async def test_a_stream_that_starts_counts_for_the_channel() -> None:
    health = HealthBook(failures=1)
    health.failure(7)
    opened = await _upstream(_Transport(), health).first_chunk(_channel(), _Answer(200, chunks=(b"a", b"b")))
    assert not isinstance(opened, Failure)
    rest, first = opened
    assert first == b"a"
    assert [chunk async for chunk in rest] == [b"b"]
    assert health.healthy(7)


# --- accounting ---------------------------------------------------------------------------------


async def test_a_record_that_cannot_be_stored_fails_the_call_unbilled() -> None:
    async def unstored() -> None:
        raise RecorderError("usage record could not be stored")

    with pytest.raises(AccountingUnavailable) as raised:
        await accounted(unstored())
    assert (raised.value.status, raised.value.code) == (503, "accounting_unavailable")
    assert "not billed" in str(raised.value)


# --- a media download (no channel) -----------------------------------------------------------------


async def test_a_download_gives_type_and_bytes_with_the_answer_timeouts() -> None:
    transport = _Transport(_Answer(200, b"PNG"))
    assert await _upstream(transport).download(_request(), 1024, "image") == ("application/json", b"PNG")
    assert (transport.sent[0].connect_timeout, transport.sent[0].read_timeout) == (3.0, 30.0)


@pytest.mark.parametrize("transport", [
    _Transport(error=UpstreamConnectError("x")), _Transport(error=UpstreamReadTimeout()),
    _Transport(_Answer(200, b"x" * 2048)), _Transport(_Answer(404, b"gone")),
])
async def test_a_download_that_fails_is_an_upstream_error_that_names_the_file(transport: _Transport) -> None:
    with pytest.raises(UpstreamError, match="image"):
        await _upstream(transport).download(_request(), 1024, "image")
