"""AnthropicStreamTap: forwards a Messages stream as it came, holding back ``message_stop`` and
scrubbing error events, while noting usage, stop reasons and a running token count of the generated
text (kept only until the upstream reports usage)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from relaygate.billing.tokenizer import count_text
from relaygate.core.chat import FinishReason, TextPart, ThinkingPart, ToolCallPart
from relaygate.core.stream import accumulate
from relaygate.core.usage import Usage
from relaygate.dialects.anthropic.stream import anthropic_stream_to_core
from relaygate.dialects.anthropic.stream_tap import MESSAGE_STOP, AnthropicStreamTap
from relaygate.dialects.held import HELD_LIMIT
from relaygate.dialects.sse import SSEDecoder
from tests.fakes.anthropic_upstream import Behavior, Reply, frame


def event(payload: dict[str, Any], name: str | None = None) -> bytes:
    return b"event: " + (name or payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def delta(index: int, body: dict[str, Any]) -> bytes:
    return event({"type": "content_block_delta", "index": index, "delta": body})


# The full example of spec/anthropic.md §4: thinking, text and a tool call.
START = event({"type": "message_start", "message": {
    "id": "msg_01Xa", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514", "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens": 2}}})
PING = b'event: ping\ndata: {"type": "ping"}\n\n'
BODY = [
    event({"type": "content_block_start", "index": 0,
           "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
    delta(0, {"type": "thinking_delta", "thinking": "User wants weather; call the tool."}),
    delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM..."}),
    event({"type": "content_block_stop", "index": 0}),
    event({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    delta(1, {"type": "text_delta", "text": "Checking now."}),
    event({"type": "content_block_stop", "index": 1}),
    event({"type": "content_block_start", "index": 2,
           "content_block": {"type": "tool_use", "id": "toolu_01Qz", "name": "get_weather", "input": {}}}),
    delta(2, {"type": "input_json_delta", "partial_json": ""}),
    delta(2, {"type": "input_json_delta", "partial_json": '{"city": "Ly'}),
    delta(2, {"type": "input_json_delta", "partial_json": 'on"}'}),
    event({"type": "content_block_stop", "index": 2}),
    event({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
           "usage": {"output_tokens": 87}}),
]
STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
STREAM = [START, PING, *BODY, STOP]


def run(tap: AnthropicStreamTap, pieces: list[bytes]) -> bytes:
    return b"".join(tap.feed(p) for p in pieces) + tap.finish()


def decode(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(e.data) for e in SSEDecoder().feed(data) if e.data is not None]


def test_the_spec_example_passes_through_with_message_stop_held() -> None:
    tap = AnthropicStreamTap(client_wants_usage=False)
    out = run(tap, STREAM)
    assert out == b"".join(STREAM[:-1])
    assert tap.final_frame() == STOP
    assert tap.completed and tap.saw_stop and tap.error is None
    assert tap.usage == Usage(input_tokens=472, output_tokens=87)
    assert tap.finish_reasons == {"tool_use"}
    assert tap.events == len(STREAM) - 1  # every event but the held message_stop


def without_usage(frame: bytes) -> bytes:
    """The event with its usage taken out (of ``message_start``'s message and of ``message_delta``)."""
    payload = orjson.loads(frame.split(b"data: ", 1)[1])
    payload.pop("usage", None)
    if isinstance(payload.get("message"), dict):
        payload["message"].pop("usage", None)
    return event(payload)


def test_without_usage_the_generated_text_is_counted() -> None:
    tap = AnthropicStreamTap(client_wants_usage=False, model="claude-sonnet-4")
    run(tap, [without_usage(f) for f in STREAM[:-1]] + [STOP])
    assert tap.usage is None and tap.completed
    text = 'User wants weather; call the tool.Checking now.get_weather{"city": "Lyon"}'
    assert tap.produced_tokens() == count_text(text, "claude-sonnet-4")


def test_counting_stops_at_the_final_output_count() -> None:
    """``message_delta`` brings the final output count, which is billed; counting stops there."""
    tap = AnthropicStreamTap(client_wants_usage=False, model="claude-sonnet-4")
    run(tap, STREAM)
    assert tap.usage is not None and tap.usage.output_tokens == 87 and tap.usage.input_tokens == 472
    counted = tap.produced_tokens()
    tap.feed(delta(1, {"type": "text_delta", "text": "more text after the end " * 20}))
    assert tap.produced_tokens() == counted and tap.usage.output_tokens == 87


def test_a_stream_cut_before_message_delta_is_billed_for_what_was_delivered() -> None:
    """``message_start`` reports 2 output tokens; a stream that ends before ``message_delta`` (cut, or
    the client left) shows the running count as its output, with the reported input."""
    tap = AnthropicStreamTap(client_wants_usage=False, model="claude-sonnet-4")
    run(tap, [START, PING, *BODY[:-1]])
    text = 'User wants weather; call the tool.Checking now.get_weather{"city": "Lyon"}'
    assert not tap.completed
    assert tap.usage is not None and tap.usage.input_tokens == 472
    assert tap.usage.output_tokens == count_text(text, "claude-sonnet-4") > 2


def test_what_the_client_gets_is_a_well_formed_stream() -> None:
    tap = AnthropicStreamTap(client_wants_usage=True)
    forwarded = run(tap, STREAM) + tap.final_frame()
    decoder = anthropic_stream_to_core()
    response = accumulate([e for payload in decode(forwarded) for e in decoder.feed(payload)])
    assert response.finish is FinishReason.TOOL_CALLS and response.usage == tap.usage
    assert response.parts == (ThinkingPart("User wants weather; call the tool.", "EqQBCgIYAhIM...", "anthropic"),
                              TextPart("Checking now."), ToolCallPart("toolu_01Qz", "get_weather", '{"city": "Lyon"}'))


@pytest.mark.parametrize("seed", range(8))
def test_split_anywhere_forwards_the_same_bytes(seed: int) -> None:
    whole = b"".join(STREAM)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(whole)), rng.randint(1, 40)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert run(tap, pieces) == b"".join(STREAM[:-1]) and tap.final_frame() == STOP
    assert tap.completed and tap.usage == Usage(input_tokens=472, output_tokens=87)


def test_byte_by_byte_and_crlf() -> None:
    whole = b"".join(STREAM).replace(b"\n", b"\r\n")
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert run(tap, [whole[i:i + 1] for i in range(len(whole))]) == b"".join(STREAM[:-1])
    assert tap.final_frame() == STOP and tap.completed


def test_usage_merges_cache_counts_and_the_cumulative_delta() -> None:
    start = event({"type": "message_start", "message": {"id": "m", "usage": {
        "input_tokens": 10, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 3000, "output_tokens": 1}}})
    first = event({"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 5}})
    last = event({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                  "usage": {"output_tokens": 40, "input_tokens": 12, "cache_read_input_tokens": None,
                            "server_tool_use": {"web_search_requests": 1}}})
    tap = AnthropicStreamTap(client_wants_usage=False)
    run(tap, [start])
    assert tap.usage == Usage(input_tokens=3210, output_tokens=1, cached_input_tokens=3000, cache_write_tokens=200)
    run(tap, [first, last, STOP])
    # input from the latest non-null value (the delta repeated it), cache reads kept, output cumulative
    assert tap.usage == Usage(input_tokens=3212, output_tokens=40, cached_input_tokens=3000, cache_write_tokens=200)
    assert tap.finish_reasons == {"end_turn"} and tap.completed


def test_a_stream_without_message_stop_is_not_completed() -> None:
    tap = AnthropicStreamTap(client_wants_usage=False)
    out = run(tap, STREAM[:-1])
    assert out == b"".join(STREAM[:-1])
    assert not tap.completed and tap.error is None
    assert tap.final_frame() == MESSAGE_STOP == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def test_a_message_stop_missing_its_blank_line_is_still_held() -> None:
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert run(tap, [START, STOP.rstrip(b"\n")]) == START
    assert tap.completed and tap.final_frame() == STOP


def test_an_error_event_is_noted_and_forwarded_scrubbed() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error",
                                        "message": "Overloaded at https://internal.example/v1 key sk-abcdef123456789 "
                                                   "from 10.1.2.3:443"}}
    tap = AnthropicStreamTap(client_wants_usage=False)
    out = run(tap, [START, PING, event(error)])
    assert out.startswith(START + PING)
    frame_out = out[len(START + PING):]
    assert frame_out.startswith(b"event: error\ndata: ")
    assert decode(frame_out) == [{"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded at [redacted] key [redacted] from [redacted]"}}]
    assert tap.error == error["error"] and not tap.completed


def test_an_error_with_a_bare_message_and_a_later_stop_is_not_completed() -> None:
    tap = AnthropicStreamTap(client_wants_usage=False)
    out = run(tap, [START, b'event: error\ndata: {"type":"error","error":"boom at http://10.0.0.1/x"}\n\n', STOP])
    assert b"10.0.0.1" not in out
    assert decode(out)[-1] == {"type": "error", "error": {"type": "api_error", "message": "boom at [redacted]"}}
    assert tap.error == {"message": "boom at http://10.0.0.1/x"} and not tap.completed


def test_comments_malformed_and_unknown_events_pass_through() -> None:
    odd = [b": keep-alive\n\n", b"event: content_block_delta\ndata: {\"type\": broken\n\n", b"data: [1]\n\n",
           event({"type": "some_future_event", "x": 1})]
    tap = AnthropicStreamTap(client_wants_usage=False)
    start = without_usage(START)  # so that the tap counts, and counts nothing of these
    assert run(tap, [start, *odd, STOP]) == start + b"".join(odd)
    assert tap.completed and tap.usage is None and tap.produced_tokens() == 0


def test_nothing_overtakes_message_stop() -> None:
    late = event({"type": "ping"})
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert run(tap, [START, STOP + late]) == START
    assert tap.final_frame() == STOP + late


def test_junk_in_known_events_is_tolerated() -> None:
    junk = [event({"type": "message_start", "message": "x"}), event({"type": "message_delta", "usage": 5}),
            event({"type": "content_block_delta", "delta": {"type": "text_delta", "text": 7}}),
            event({"type": "content_block_start", "content_block": {"type": "tool_use", "name": None}}),
            event({"type": "content_block_delta", "delta": "x"})]
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert run(tap, [*junk, STOP]) == b"".join(junk)
    assert tap.usage is None and tap.produced_tokens() == 0 and tap.completed


@pytest.mark.parametrize("behavior", [
    Behavior(), Behavior(thinking=("Let me", " think."), cache_read_input_tokens=100),
    Behavior(delta_repeats_input=True, cache_creation_input_tokens=7), Behavior(omit_usage=True, ping=False)])
def test_the_fake_upstreams_streams(behavior: Behavior) -> None:
    events = Reply({"model": "claude-x", "tools": [{"name": "w", "input_schema": {}}]}, behavior).events()
    frames = [frame(name, payload) for _, name, payload in events]
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert run(tap, frames) + tap.final_frame() == b"".join(frames)
    assert tap.completed and tap.finish_reasons == {"tool_use"}
    expected = None if behavior.omit_usage else Usage(
        input_tokens=11 + behavior.cache_read_input_tokens + behavior.cache_creation_input_tokens,
        output_tokens=len(behavior.thinking) + 2, cached_input_tokens=behavior.cache_read_input_tokens,
        cache_write_tokens=behavior.cache_creation_input_tokens)
    assert tap.usage == expected
    if expected is None:
        assert tap.produced_tokens() == count_text("".join(behavior.thinking) + 'w{"city": "Lyon"}')


def test_what_follows_message_stop_is_held_only_up_to_a_limit() -> None:
    """An upstream that goes on after its end cannot grow what the tap holds."""
    late = event({"type": "ping"})
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert run(tap, [START, STOP, *[late] * 10_000, *[STOP] * 10_000]) == START
    held = tap.final_frame()
    assert held.startswith(STOP + late) and len(held) <= HELD_LIMIT
