"""GeminiStreamTap: forwards ``alt=sse`` chunks as they came (error chunks scrubbed), noting the last
usage, the finish reasons and a running token count of the generated text (kept only until the upstream
reports usage); nothing is held back but the last chunk."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from relaygate.billing.tokenizer import count_text
from relaygate.core.chat import FinishReason, TextPart, ThinkingPart, ToolCallPart
from relaygate.core.stream import accumulate
from relaygate.core.usage import Usage
from relaygate.dialects.gemini.stream import gemini_stream_to_core
from relaygate.dialects.gemini.stream_tap import GeminiStreamTap
from relaygate.dialects.held import HELD_LIMIT
from relaygate.dialects.sse import SSEDecoder
from tests.fakes.gemini_upstream import Behavior, Reply


def chunk(body: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


# The example of spec/gemini.md §4.2.
FIRST = chunk({"candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5},
               "modelVersion": "gemini-2.5-flash", "responseId": "p0fRaK2aB"})
LAST = chunk({"candidates": [{"content": {"parts": [{"text": " there!"}], "role": "model"}, "finishReason": "STOP",
                              "index": 0}],
              "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
              "modelVersion": "gemini-2.5-flash", "responseId": "p0fRaK2aB"})
STREAM = [FIRST, LAST]


def without_usage(frame: bytes) -> bytes:
    payload = orjson.loads(frame.removeprefix(b"data: "))
    payload.pop("usageMetadata", None)
    return chunk(payload)


def run(tap: GeminiStreamTap, pieces: list[bytes]) -> bytes:
    """Everything the client receives, the held-back last chunk included."""
    return b"".join(tap.feed(p) for p in pieces) + tap.finish() + tap.final_frame()


def payloads(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(e.data) for e in SSEDecoder().feed(data) if e.data is not None]


def test_the_spec_example_passes_through_unchanged() -> None:
    tap = GeminiStreamTap(client_wants_usage=False)
    forwarded = b"".join(tap.feed(p) for p in STREAM) + tap.finish()
    assert forwarded == FIRST  # the chunk with the finish reason waits until the usage record is committed
    assert tap.final_frame() == LAST
    assert tap.usage == Usage(input_tokens=4, output_tokens=3)
    assert tap.completed and tap.error is None and tap.finish_reasons == {"STOP"}
    assert tap.events == 2


def test_without_usage_the_generated_text_is_counted() -> None:
    tap = GeminiStreamTap(client_wants_usage=False, model="gemini-2.5-flash")
    run(tap, [without_usage(c) for c in STREAM])
    assert tap.usage is None and tap.completed
    assert tap.produced_tokens() == count_text("Hello there!", "gemini-2.5-flash")


def test_counting_stops_once_the_upstream_reports_usage() -> None:
    """The meter bills the upstream's usage whenever there is one (and it never goes back to None), so
    the tap stops counting at the first ``usageMetadata``."""
    tap = GeminiStreamTap(client_wants_usage=False)
    run(tap, [without_usage(FIRST), LAST])
    assert tap.usage is not None and tap.produced_tokens() == 0  # "Hello" waited, and was dropped


@pytest.mark.parametrize("seed", range(8))
def test_split_anywhere_and_crlf(seed: int) -> None:
    whole = b"".join(STREAM).replace(b"\n", b"\r\n") if seed % 2 else b"".join(STREAM)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(whole)), rng.randint(1, 30)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    tap = GeminiStreamTap(client_wants_usage=True)
    assert run(tap, pieces) == FIRST + LAST
    assert tap.completed and tap.usage == Usage(input_tokens=4, output_tokens=3)


def test_without_a_finish_reason_the_stream_is_not_completed() -> None:
    tap = GeminiStreamTap(client_wants_usage=False)
    assert run(tap, [FIRST]) == FIRST
    assert not tap.completed and tap.usage == Usage(input_tokens=4, output_tokens=1)


def test_the_last_usage_counts_thoughts_as_output_and_a_chunk_without_usage_keeps_it() -> None:
    with_usage = chunk({"candidates": [{"content": {"parts": [{"text": "hm", "thought": True}]}}],
                        "usageMetadata": {"promptTokenCount": 9, "cachedContentTokenCount": 4,
                                          "candidatesTokenCount": 2, "thoughtsTokenCount": 30,
                                          "toolUsePromptTokenCount": 1, "totalTokenCount": 42}})
    bare = chunk({"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "MAX_TOKENS"}]})
    tap = GeminiStreamTap(client_wants_usage=False)
    run(tap, [with_usage, bare])
    assert tap.usage == Usage(input_tokens=10, output_tokens=32, cached_input_tokens=4, reasoning_tokens=30)
    assert tap.finish_reasons == {"MAX_TOKENS"} and tap.completed


def test_function_calls_count_as_generated_text() -> None:
    call = chunk({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}, "thoughtSignature": "c2ln"}],
        "role": "model"}, "finishReason": "STOP", "index": 0}]})
    tap = GeminiStreamTap(client_wants_usage=False)
    assert run(tap, [call]) == call
    assert tap.produced_tokens() == count_text('get_weather{"city":"Lyon"}') and tap.completed


def test_an_error_chunk_is_noted_and_forwarded_scrubbed() -> None:
    message = "overloaded at https://10.2.3.4/internal with key AIzaSyA1234567890abcdefghij"
    error = {"error": {"code": 503, "message": message,
                       "status": "UNAVAILABLE", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                              "metadata": {"consumer": "projects/123456"}}]}}
    tap = GeminiStreamTap(client_wants_usage=False)
    out = run(tap, [FIRST, chunk(error), LAST])
    forwarded = payloads(out)
    assert forwarded[0] == orjson.loads(FIRST[6:]) and forwarded[2] == orjson.loads(LAST[6:])
    assert forwarded[1] == {"error": {"code": 503, "message": "overloaded at [redacted] with key [redacted]",
                                      "status": "UNAVAILABLE"}}
    assert tap.error == error["error"] and not tap.completed


def test_an_error_of_odd_shape() -> None:
    tap = GeminiStreamTap(client_wants_usage=False)
    out = run(tap, [b'data: {"error": "gone at http://10.0.0.9/"}\n\n'])
    assert payloads(out) == [{"error": {"code": 500, "message": "gone at [redacted]", "status": "INTERNAL"}}]
    assert tap.error == {"message": "gone at http://10.0.0.9/"}


def test_a_blocked_prompt_is_a_complete_stream() -> None:
    blocked = chunk({"promptFeedback": {"blockReason": "SAFETY"},
                     "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}})
    tap = GeminiStreamTap(client_wants_usage=False)
    assert run(tap, [blocked]) == blocked
    assert tap.completed and tap.finish_reasons == {"SAFETY"} and tap.usage == Usage(input_tokens=7)


def test_comments_malformed_and_junk_pass_through() -> None:
    odd = [b": ping\n\n", b'data: {"candidates": [\n\n', b"data: []\n\n",
           chunk({"candidates": [1, {"content": {"parts": [None, {"text": 5}, {"functionCall": "x"}]}}],
                  "usageMetadata": "x", "promptFeedback": "y"})]
    tap = GeminiStreamTap(client_wants_usage=False)
    last = without_usage(LAST)  # so that the tap counts, and counts nothing of the junk
    assert run(tap, [*odd, last]) == b"".join(odd) + last
    assert tap.produced_tokens() == count_text(" there!") and tap.completed


@pytest.mark.parametrize(("request_body", "behavior"), [
    ({"contents": []}, Behavior()),
    ({"contents": []}, Behavior(thoughts=("Think", "ing"), thought_signature="c2ln", cached_tokens=3)),
    ({"contents": [], "tools": [{"functionDeclarations": [{"name": "get_weather"}]}]}, Behavior()),
    ({"contents": [], "tools": [{"functionDeclarations": [{"name": "get_weather"}]}]}, Behavior(omit_usage=True)),
    ({"contents": []}, Behavior(thoughts=("Think", "ing"), omit_usage=True)),
])
def test_the_fake_upstreams_streams_decode_to_the_same_answer(request_body: dict[str, Any],
                                                              behavior: Behavior) -> None:
    reply = Reply(request_body, "gemini-2.5-flash", behavior)
    frames = [chunk(c) for c in reply.chunks()]
    tap = GeminiStreamTap(client_wants_usage=False)
    assert run(tap, frames) == b"".join(frames) and tap.completed
    decoder = gemini_stream_to_core()
    events = [e for c in reply.chunks() for e in decoder.feed(c)] + decoder.close()
    answer = accumulate(events)
    assert answer.usage == tap.usage
    if "tools" in request_body:
        assert answer.finish is FinishReason.TOOL_CALLS
        assert [type(p) for p in answer.parts] == [ToolCallPart]
        text = 'get_weather{"city":"Lyon"}'
    else:
        assert answer.finish is FinishReason.STOP
        assert answer.parts[-1] == TextPart("Bonjour!")
        assert all(isinstance(p, ThinkingPart) for p in answer.parts[:-1])
        text = "".join(behavior.thoughts) + "Bonjour!"
    if tap.usage is None:
        assert tap.produced_tokens() == count_text(text)


def test_what_follows_the_finishing_chunk_is_held_only_up_to_a_limit() -> None:
    """An upstream that goes on after its end cannot grow what the tap holds."""
    tap = GeminiStreamTap(client_wants_usage=False)
    assert b"".join(tap.feed(p) for p in [FIRST, LAST, *[FIRST] * 10_000]) == FIRST
    held = tap.final_frame()
    assert held.startswith(LAST + FIRST) and len(held) <= HELD_LIMIT
