"""The OpenAI chat dialect's pure parts the relay uses: the documented edits of the upstream body, the
reservation size, the generated text of a non-stream answer, and the scrubbing of upstream error messages."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate.dialects.openai.adapter import max_output_tokens as _max_output_tokens
from relaygate.dialects.openai.adapter import passthrough_body
from relaygate.dialects.openai.adapter import text_of as _completion_text
from relaygate.dialects.openai.adapter import wants_usage as _wants_usage
from relaygate.dialects.openai.errors import error_body, parse_upstream_error, stream_error_frame
from relaygate.errors import InvalidRequest, UpstreamError, scrub
from relaygate.scrub import NO_CHANNEL


def upstream_body(raw: bytes, upstream_model: str, stream: bool = False) -> bytes:
    body = orjson.loads(raw)
    return passthrough_body(body, raw, upstream_model, stream, _wants_usage(body))


RAW = b'{"model": "gpt-4o",  "messages": [{"role": "user", "content": "hi"}], "temperature": 0.70, "x": null}'


def test_the_raw_bytes_pass_untouched_when_no_edit_is_needed() -> None:
    assert upstream_body(RAW, "gpt-4o") is RAW


def test_a_mapped_model_is_the_only_change() -> None:
    out = orjson.loads(upstream_body(RAW, "gpt-4o-2024-08-06"))
    assert out == {**orjson.loads(RAW), "model": "gpt-4o-2024-08-06"}
    assert list(out) == ["model", "messages", "temperature", "x"]


@pytest.mark.parametrize(("options", "expected"), [
    (None, {"include_usage": True}),
    ({"include_usage": False}, {"include_usage": True}),
    ({"include_obfuscation": False}, {"include_obfuscation": False, "include_usage": True}),
    ("junk", {"include_usage": True}),
])
def test_streams_ask_the_upstream_for_usage(options: Any, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [], "stream": True}
    if options is not None:
        body["stream_options"] = options
    out = orjson.loads(upstream_body(orjson.dumps(body), "gpt-4o", stream=True))
    assert out["stream_options"] == expected
    assert {k: v for k, v in out.items() if k != "stream_options"} == {k: v for k, v in body.items()
                                                                      if k != "stream_options"}


def test_a_stream_that_already_asks_for_usage_is_not_re_encoded() -> None:
    raw = b'{"model":"gpt-4o", "messages":[], "stream":true, "stream_options":{"include_usage":true}}'
    assert upstream_body(raw, "gpt-4o", stream=True) == raw


@pytest.mark.parametrize(("body", "tokens"), [
    ({}, 1024), ({"max_tokens": 50}, 50), ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
    ({"max_tokens": 50, "n": 3}, 150), ({"n": 2}, 2048), ({"max_tokens": True}, 1024), ({"max_tokens": -5}, 1024),
    ({"max_tokens": "9"}, 1024), ({"max_tokens": 10, "n": "2"}, 10), ({"max_tokens": 10, "n": -3}, 10),
])
def test_reservation_output_tokens(body: dict[str, Any], tokens: int) -> None:
    assert _max_output_tokens(body, 1024) == tokens


def test_completion_text() -> None:
    answer = {"choices": [
        {"message": {"content": "Hello"}},
        {"message": {"content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}, 5]}},
        {"message": {"tool_calls": 7}}, "junk", {"message": "junk"},
    ]}
    assert _completion_text(answer) == "Hellof{}"
    assert _completion_text(None) == _completion_text({"choices": "x"}) == _completion_text([1]) == ""


# --- errors in OpenAI's shape -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("key sk-abcdef123456 bad", "key [redacted] bad"),
    ("Incorrect API key provided: sk-proj-ab***********yz12.", "Incorrect API key provided: [redacted]."),
    ("see https://api.internal:8443/v1/chat?x=1 now", "see [redacted] now"),
    ("from 10.0.0.7:9000 and 192.168.1.1", "from [redacted] and [redacted]"),
    ("Authorization: Bearer abc.def", "Authorization: [redacted]"),
    ("google AIzaSyA1234567890abcdefghijk", "google [redacted]"),
    ("plain message", "plain message"),
])
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_scrub_bounds_the_length() -> None:
    assert len(scrub("x" * 5000)) == 1000


def test_parse_upstream_error_keeps_the_fields_and_scrubs_the_message() -> None:
    body = orjson.dumps({"error": {"message": "bad temperature at http://10.0.0.1/v1", "type": "invalid_request_error",
                                   "param": "temperature", "code": "invalid_value"}})
    error = parse_upstream_error(400, body, NO_CHANNEL)
    assert (error.status, error.code, error.param, error.error_type) == (400, "invalid_value", "temperature",
                                                                        "invalid_request_error")
    assert error.message == "bad temperature at [redacted]"
    assert orjson.loads(error_body(error, "rid")) == {"error": {
        "message": "bad temperature at [redacted]", "type": "invalid_request_error", "param": "temperature",
        "code": "invalid_value"}}


@pytest.mark.parametrize("body", [b"", b"<html>nginx</html>", b"[]", b'{"error": 5}', b'{"detail": "x"}'])
def test_parse_upstream_error_of_odd_bodies(body: bytes) -> None:
    error = parse_upstream_error(422, body, NO_CHANNEL)
    assert (error.status, error.code, error.message) == (422, "upstream_rejected", "upstream answered HTTP 422")


def test_error_body_adds_the_request_id_to_server_errors_only() -> None:
    server = orjson.loads(error_body(UpstreamError("The upstream failed."), "req_1"))
    client = orjson.loads(error_body(InvalidRequest("Bad.", param="model", code="invalid_type"), "req_1"))
    assert server == {"error": {"message": "The upstream failed. (request id: req_1)", "type": "server_error",
                                "param": None, "code": "upstream_error"}}
    assert client == {"error": {"message": "Bad.", "type": "invalid_request_error", "param": "model",
                                "code": "invalid_type"}}
    frame = stream_error_frame(UpstreamError("x", code="stream_cut"), "r")
    assert frame.startswith(b"data: {") and frame.endswith(b"}\n\n") and b"\n" not in frame[:-2]
