"""sse.SSEDecoder: \\n, \\r\\n and \\r line ends, events split anywhere across reads."""

from __future__ import annotations

import itertools

import pytest

from relaygate.dialects.sse import SSEDecoder, SSEEvent, SSEEventTooLarge, data_frame, named_frame, parse_event

LF = (b'data: {"a":1}\n\n'
      b": keep-alive\n\n"
      b"event: message_start\ndata: {\"b\":2}\n\n"
      b"data: line one\ndata: line two\n\n"
      b"data:no-space\n\n"
      b"id: 7\nretry: 10\n\n"
      b"data: [DONE]\n\n")

EXPECTED = [
    SSEEvent(b'data: {"a":1}', b'{"a":1}'),
    SSEEvent(b": keep-alive", None),
    SSEEvent(b'event: message_start\ndata: {"b":2}', b'{"b":2}', "message_start"),
    SSEEvent(b"data: line one\ndata: line two", b"line one\nline two"),
    SSEEvent(b"data:no-space", b"no-space"),
    SSEEvent(b"id: 7\nretry: 10", None),
    SSEEvent(b"data: [DONE]", b"[DONE]"),
]
ENDINGS = {"lf": LF, "crlf": LF.replace(b"\n", b"\r\n"), "cr": LF.replace(b"\n", b"\r")}


def decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.flush())
    return events


@pytest.mark.parametrize("ending", ENDINGS)
def test_whole_stream(ending: str) -> None:
    assert decode([ENDINGS[ending]]) == EXPECTED


@pytest.mark.parametrize("ending", ENDINGS)
def test_every_single_split_point(ending: str) -> None:
    stream = ENDINGS[ending]
    for i in range(len(stream) + 1):
        assert decode([stream[:i], stream[i:]]) == EXPECTED, f"split at {i}"


@pytest.mark.parametrize("ending", ENDINGS)
def test_every_pair_of_split_points_around_line_ends(ending: str) -> None:
    stream = ENDINGS[ending]
    # splits next to a line-end byte are the interesting ones; try every pair of them
    near = sorted({i + d for i, b in enumerate(stream) if b in b"\r\n" for d in (0, 1)} | {0, len(stream)})
    for i, j in itertools.combinations(near, 2):
        assert decode([stream[:i], stream[i:j], stream[j:]]) == EXPECTED, f"splits at {i}, {j}"


@pytest.mark.parametrize("ending", ENDINGS)
def test_byte_by_byte(ending: str) -> None:
    stream = ENDINGS[ending]
    assert decode([stream[i:i + 1] for i in range(len(stream))]) == EXPECTED


def test_empty_reads_change_nothing() -> None:
    stream = ENDINGS["crlf"]
    pieces = [b""] + [p for i in range(0, len(stream), 3) for p in (stream[i:i + 3], b"")]
    assert decode(pieces) == EXPECTED


def test_events_are_returned_as_soon_as_they_are_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n") == []
    assert decoder.has_partial
    assert decoder.feed(b"\ndata: 2") == [SSEEvent(b"data: 1", b"1")]
    assert decoder.feed(b"\n\n") == [SSEEvent(b"data: 2", b"2")]
    assert not decoder.has_partial


def test_a_trailing_cr_waits_for_the_next_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    # the \r and this \n are one line end, so no blank line yet
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [SSEEvent(b"data: x", b"x")]


def test_flush_returns_a_last_event_without_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: [DONE]\n") == [SSEEvent(b"data: a", b"a")]
    assert decoder.flush() == [SSEEvent(b"data: [DONE]", b"[DONE]")]
    assert decoder.flush() == []


def test_flush_after_a_lone_cr() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: end\r") == []
    assert decoder.flush() == [SSEEvent(b"data: end", b"end")]


def test_unicode_split_inside_a_character_is_kept_intact() -> None:
    payload = "data: café ☕\n\n".encode()
    for i in range(len(payload) + 1):
        [event] = decode([payload[:i], payload[i:]])
        assert event.data == "café ☕".encode()


def test_frames() -> None:
    assert EXPECTED[0].frame() == b'data: {"a":1}\n\n'
    assert data_frame(b"{}") == b"data: {}\n\n"
    assert named_frame("ping", b"{}") == b"event: ping\ndata: {}\n\n"
    assert parse_event(b"") is None
    assert parse_event(b"event: x") == SSEEvent(b"event: x", None, "x")


def test_an_event_over_many_reads_is_one_event() -> None:
    decoder = SSEDecoder()
    pieces = [b"data: " + b"x" * 10] + [b"y" * 7] * 1000 + [b"\n", b"\n"]
    events = [e for p in pieces for e in decoder.feed(p)]
    assert [e.data for e in events] == [b"x" * 10 + b"y" * 7000]
    assert not decoder.has_partial


def test_an_event_that_never_ends_is_refused_past_the_limit() -> None:
    """An upstream that sends one endless event cannot make the decoder hold more than the limit."""
    decoder = SSEDecoder(max_event_bytes=1000)
    decoder.feed(b"data: " + b"x" * 900)
    with pytest.raises(SSEEventTooLarge):
        decoder.feed(b"x" * 200)
    assert not decoder.has_partial
    assert [e.data for e in decoder.feed(b"data: ok\n\n")] == [b"ok"]
