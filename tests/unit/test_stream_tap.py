"""OpenAIStreamTap: forwards upstream events as they are, with only the documented edits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.billing.tokenizer import count_text
from relaygate.core.usage import Usage
from relaygate.dialects.openai.stream_tap import OpenAIStreamTap


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, *, usage: Any = None,
          choices: list[Any] | None = None) -> bytes:
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                            "choices": choices if choices is not None else
                            [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
                            "usage": usage}
    return b"data: " + orjson.dumps(body) + b"\n\n"


USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14,
         "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}}
OPENING = chunk({"role": "assistant", "content": "", "refusal": None})
PIECES = [chunk({"content": "Bon"}), chunk({"content": "jour"})]
FINISH = chunk({}, "stop")
USAGE_CHUNK = chunk(choices=[], usage=USAGE)
DONE = b"data: [DONE]\n\n"
STREAM = [OPENING, *PIECES, FINISH, USAGE_CHUNK, DONE]


def run(tap: OpenAIStreamTap, pieces: list[bytes]) -> bytes:
    return b"".join(tap.feed(p) for p in pieces) + tap.finish()


@pytest.mark.parametrize("wants_usage", [False, True])
def test_a_complete_stream(wants_usage: bool) -> None:
    tap = OpenAIStreamTap(client_wants_usage=wants_usage)
    out = run(tap, STREAM)
    kept = [OPENING, *PIECES, FINISH] + ([USAGE_CHUNK] if wants_usage else [])
    assert out == b"".join(kept)  # byte for byte, and [DONE] held back for the relay to send
    assert tap.usage == Usage(input_tokens=11, output_tokens=3, cached_input_tokens=2, reasoning_tokens=1)
    assert tap.saw_done and tap.completed
    assert tap.finish_reasons == {"stop"}
    assert tap.error is None


def test_without_usage_the_generated_text_is_counted() -> None:
    tap = OpenAIStreamTap(client_wants_usage=False, model="gpt-4")
    run(tap, [OPENING, *PIECES, FINISH, DONE])
    assert tap.usage is None and tap.completed
    assert tap.produced_tokens() == count_text("Bonjour", "gpt-4")


def test_counting_stops_once_the_upstream_reports_usage() -> None:
    """The meter bills the upstream's usage whenever there is one (and it never goes back to None), so
    what waited to be counted is dropped when the usage chunk comes."""
    tap = OpenAIStreamTap(client_wants_usage=False)
    run(tap, STREAM)
    assert tap.usage is not None and tap.produced_tokens() == 0


def test_fed_byte_by_byte_forwards_the_same_bytes() -> None:
    whole = b"".join(STREAM)
    tap = OpenAIStreamTap(client_wants_usage=True)
    assert run(tap, [whole[i:i + 1] for i in range(len(whole))]) == b"".join(STREAM[:-1])
    assert tap.completed


def test_crlf_from_the_upstream_is_forwarded_as_lf() -> None:
    tap = OpenAIStreamTap(client_wants_usage=False)
    out = run(tap, [b"".join(STREAM).replace(b"\n", b"\r\n")])
    assert out == b"".join([OPENING, *PIECES, FINISH])


def test_a_stream_without_done_is_not_completed() -> None:
    tap = OpenAIStreamTap(client_wants_usage=False)
    run(tap, [OPENING, *PIECES])
    assert not tap.saw_done and not tap.completed
    assert tap.usage is None
    assert tap.events == 3


def test_comments_and_malformed_events_pass_through_unchanged() -> None:
    odd = [b": keep-alive\n\n", b'data: {"id": broken\n\n', b"data: [1,2]\n\n", b'data: "x"\n\n']
    tap = OpenAIStreamTap(client_wants_usage=False)
    assert run(tap, [*odd, DONE]) == b"".join(odd)
    assert tap.completed


def test_an_in_stream_error_is_noted_and_forwarded_with_its_message_scrubbed() -> None:
    error = {"error": {"message": "failed at https://internal.example:9000/v1 with key sk-abcdef1234567890 "
                                  "from 10.0.0.7:8080", "type": "server_error", "param": None, "code": "boom"}}
    tap = OpenAIStreamTap(client_wants_usage=False)
    out = run(tap, [OPENING, b"data: " + orjson.dumps(error) + b"\n\n"])
    frames = out.split(b"\n\n")
    assert frames[0] + b"\n\n" == OPENING
    forwarded = orjson.loads(frames[1].removeprefix(b"data: "))
    assert forwarded == {"error": {"message": "failed at [redacted] with key [redacted] from [redacted]",
                                   "type": "server_error", "param": None, "code": "boom"}}
    assert tap.error is not None and tap.error["code"] == "boom"
    assert not tap.completed


def test_an_error_given_as_a_string_is_still_an_error() -> None:
    tap = OpenAIStreamTap(client_wants_usage=False)
    out = run(tap, [b'data: {"error": "upstream overloaded at http://10.0.0.1/x"}\n\n', DONE])
    assert tap.error == {"message": "upstream overloaded at http://10.0.0.1/x"}
    assert b"10.0.0.1" not in out
    assert orjson.loads(out.removeprefix(b"data: "))["error"]["message"] == "upstream overloaded at [redacted]"
    assert not tap.completed


def test_tool_call_fragments_count_as_generated_text() -> None:
    tap = OpenAIStreamTap(client_wants_usage=False)
    run(tap, [
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Lyon"}'}}]}),
        chunk({}, "tool_calls"), DONE])
    assert tap.produced_tokens() == count_text('get_weather{"city":"Lyon"}')
    assert tap.finish_reasons == {"tool_calls"}


def test_junk_where_choices_and_deltas_belong_is_tolerated() -> None:
    tap = OpenAIStreamTap(client_wants_usage=False)
    junk = [chunk(choices=[1, None, "x", {"delta": 5}, {"delta": {"tool_calls": 5, "content": 7}}]),
            b'data: {"choices": "x", "usage": "none"}\n\n', chunk({"tool_calls": [None, {"function": "f"}]})]
    assert run(tap, [*junk, DONE]) == b"".join(junk)
    assert tap.produced_tokens() == 0
    assert tap.usage is None


def test_a_usage_chunk_with_choices_is_kept() -> None:
    """Some upstreams put usage on the finishing chunk; it carries content and is never dropped."""
    tap = OpenAIStreamTap(client_wants_usage=False)
    last = chunk({"content": "!"}, "stop", usage=USAGE)
    assert run(tap, [OPENING, last, DONE]) == OPENING + last
    assert tap.usage is not None and tap.usage.input_tokens == 11


def test_a_long_stream_without_usage_is_counted_whole_while_holding_little() -> None:
    """Plain deltas pass on unparsed; their data waits (bounded) and is counted when asked or when the
    bound is reached, so the count equals that of the whole text however long the stream."""
    words = [f" word{i % 97}" for i in range(20_000)]
    tap = OpenAIStreamTap(client_wants_usage=False, model="gpt-4o")
    held = 0
    for word in words:
        assert tap.feed(chunk({"content": word})) == chunk({"content": word})
        held = max(held, tap._uncounted_bytes)
    tap.feed(DONE)
    assert tap.produced_tokens() == count_text("".join(words), "gpt-4o")
    assert 0 < held <= 64 * 1024 + 200  # the bound plus one event


def test_null_usage_and_finish_reason_in_every_chunk_are_not_reports() -> None:
    """OpenAI sends ``"usage": null`` in every chunk of a stream that asked for usage; spaced JSON too."""
    spaced = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}], "usage": null}\n\n'
    tap = OpenAIStreamTap(client_wants_usage=False, model="gpt-4o")
    assert tap.feed(spaced) == spaced
    assert tap._uncounted_bytes > 0  # passed on unparsed, its text waiting to be counted
    assert tap.feed(FINISH) + tap.feed(DONE) + tap.finish() == FINISH
    assert tap.usage is None and tap.finish_reasons == {"stop"}
    assert tap.produced_tokens() == count_text("Hi", "gpt-4o")


def test_a_key_named_inside_the_text_is_not_mistaken_for_a_report() -> None:
    """Generated text that spells out '"usage": {…}' or '"error"' is forwarded and counted as text."""
    text = 'the "usage": {"prompt_tokens": 1} and "error": "x" and "finish_reason": "stop"'
    tap = OpenAIStreamTap(client_wants_usage=False, model="gpt-4o")
    piece = chunk({"content": text})
    assert run(tap, [piece, DONE]) == piece
    assert tap.usage is None and tap.error is None and tap.finish_reasons == set()
    assert tap.produced_tokens() == count_text(text, "gpt-4o")
