"""The channel-aware scrubber, the one constructor of relayed upstream errors, and what an error answered
with HTTP 200 stands for in each dialect."""

from __future__ import annotations

import orjson
import pytest

from relaygate.dialects.anthropic.errors import error_status as anthropic_status
from relaygate.dialects.gemini.errors import error_status as gemini_status
from relaygate.dialects.midjourney.task import scrubbed_task
from relaygate.dialects.openai.errors import error_status as openai_status
from relaygate.dialects.openai.errors import parse_upstream_error
from relaygate.routing.records import ChannelRecord
from relaygate.scrub import Scrubber

KEY = "sk-proj-upstreamKEY0123456789wxyz"
CHANNEL = ChannelRecord(1, "c", "openai", "https://relay.internal.example:8443/base", KEY)


@pytest.mark.parametrize("text", [
    f"Incorrect API key provided: {KEY}",
    "Incorrect API key provided: sk-pro***wxyz",
    "key sk-proj-…wxyz was refused",
    "key upstreamKEY0123…9wxyz was refused",
    "called on https://relay.internal.example:8443/base/v1/chat/completions",
    "called on relay.internal.example:8443/v1/chat",
    "host relay.internal.example refused",
    "from 10.1.2.3:9000",
    "via [fd00::17]:443 and 2001:db8::1",
    "Authorization: Bearer abc.def",
    "ws://10.0.0.1/socket",
])
def test_the_channel_scrubber_leaves_no_secret(text: str) -> None:
    scrubbed = CHANNEL.scrubber.text(text)
    assert "[redacted]" in scrubbed
    for secret in (KEY, "wxyz", "relay.internal.example", "10.1.2.3", "10.0.0.1", "fd00::17", "2001:db8", "abc.def"):
        assert secret not in scrubbed, scrubbed


@pytest.mark.parametrize("text", ["retry at 12:30:45", "invalid_request_error", "max_tokens: 4096 > 1024",
                                  "the prompt ... was too long", "api_error"])
def test_ordinary_words_stay(text: str) -> None:
    assert Scrubber.for_channel("k" * 20, "http://api:8080").text(text) == text


def test_content_keeps_the_clients_urls_but_not_the_channels_secrets() -> None:
    prompt = f"https://cdn.example.com/a.png a cat --v 6 ({KEY}, https://relay.internal.example:8443/x, 10.9.9.9)"
    expected = "https://cdn.example.com/a.png a cat --v 6 ([redacted], https://[redacted]/x, [redacted])"
    assert CHANNEL.scrubber.content(prompt) == expected


def test_an_upstream_error_is_rebuilt_from_known_fields_all_scrubbed() -> None:
    echo = f"bad key {KEY} at https://relay.internal.example:8443/base"
    body = orjson.dumps({"error": {"message": echo, "param": echo, "code": echo, "type": echo, "extra": echo}})
    error = parse_upstream_error(400, body, CHANNEL.scrubber)
    for value in (error.message, error.param, error.code, error.error_type):
        assert value == "bad key [redacted] at [redacted]"


def test_a_midjourney_task_object_is_scrubbed_but_its_media_kept() -> None:
    media = "https://relay.internal.example:8443/base/images/1.png"
    task = {"description": f"/imagine {KEY}", "failReason": "at http://10.0.0.1/", "imageUrl": media,
            "properties": {"finalPrompt": f"https://cdn.example.com/a.png {KEY}"}, "progress": "0%"}
    safe = scrubbed_task(task, CHANNEL.scrubber)
    assert safe == {"description": "/imagine [redacted]", "failReason": "at [redacted]", "imageUrl": media,
                    "properties": {"finalPrompt": "https://cdn.example.com/a.png [redacted]"}, "progress": "0%"}


@pytest.mark.parametrize(("parsed", "status"), [
    ({"error": {"message": "m", "type": "invalid_request_error", "code": None}}, 400),
    ({"error": {"message": "m", "code": "invalid_api_key"}}, 401),
    ({"error": {"message": "m", "code": 429}}, 429),
    ({"error": {"message": "m", "code": "503"}}, 503),
    ({"error": {"message": "m", "type": "new_api_error"}}, 500),
    ({"error": "upstream said no"}, 500),
    ({"error": None, "choices": []}, None),
    ({"id": "x", "choices": [{"index": 0}], "error": {"message": "m"}}, None),
    ({"data": [{"embedding": [0.1]}]}, None),
])
def test_openai_errors_in_a_200(parsed: object, status: int | None) -> None:
    assert openai_status(parsed) == status


@pytest.mark.parametrize(("parsed", "status"), [
    ({"type": "error", "error": {"type": "overloaded_error", "message": "m"}}, 529),
    ({"type": "error", "error": {"type": "invalid_request_error", "message": "m"}}, 400),
    ({"type": "error", "error": {"type": "something new"}}, 500),
    ({"type": "message", "content": []}, None),
])
def test_anthropic_errors_in_a_200(parsed: object, status: int | None) -> None:
    assert anthropic_status(parsed) == status


@pytest.mark.parametrize(("parsed", "status"), [
    ({"error": {"code": 400, "message": "m", "status": "INVALID_ARGUMENT"}}, 400),
    ([{"error": {"message": "m", "status": "RESOURCE_EXHAUSTED"}}], 429),
    ({"error": {"message": "m"}}, 500),
    ({"candidates": [{"content": {}}]}, None),
])
def test_gemini_errors_in_a_200(parsed: object, status: int | None) -> None:
    assert gemini_status(parsed) == status
