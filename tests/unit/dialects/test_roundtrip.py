"""Round trips: D → core → D keeps what D can express.

Two checks per golden input. The core is a fixpoint (``D→core`` equals ``D→core→D→core``: nothing the
core captured is lost on the way back). And the wire form comes back exactly, except for the listed
normalisations, where it must at least be stable (converting the output again changes nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaygate.core.chat import ToolCallPart
from relaygate.core.stream import MessageStart, StreamEvent, accumulate
from tests.unit.dialects.helpers import (
    DIALECTS,
    REQUEST_IN,
    REQUEST_OUT,
    RESPONSE_IN,
    RESPONSE_OUT,
    dialect_of,
    inputs,
    load,
    stream_in,
    stream_out,
)

REQUESTS = inputs("requests")
RESPONSES = inputs("responses")
STREAMS = inputs("streams")

# Cases whose wire form is normalised on the way back (same meaning, other spelling); see docs/translation.md.
NORMALISED = {
    "anthropic.vision": "a one-block system prompt comes back as a string",
    "gemini.tools_snake": "snake_case fields come back in camelCase",
    "openai.text": "usage details OpenAI sends and the core does not keep (audio, predictions) are left out",
    "anthropic.text": "usage breakdowns (cache_creation by TTL, service_tier) are left out",
    "gemini.text": "zero counts and per-modality token details are left out of usageMetadata",
}


def _case(path: Path) -> str:
    return path.name.removesuffix(".json")


def _json(value: object) -> object:
    return json.loads(json.dumps(value))


def _gemini_model(dialect: str, model: str) -> dict[str, str]:
    return {"model": model} if dialect == "gemini" else {}


@pytest.mark.parametrize("path", REQUESTS, ids=[_case(p) for p in REQUESTS])
def test_request_core_is_a_fixpoint(path: Path) -> None:
    dialect = dialect_of(path)
    core = REQUEST_IN[dialect](load(path))
    assert REQUEST_IN[dialect](REQUEST_OUT[dialect](core)) == core


@pytest.mark.parametrize("path", REQUESTS, ids=[_case(p) for p in REQUESTS])
def test_request_wire_round_trip(path: Path) -> None:
    dialect = dialect_of(path)
    once = _json(REQUEST_OUT[dialect](REQUEST_IN[dialect](load(path))))
    if _case(path) in NORMALISED:
        assert _json(REQUEST_OUT[dialect](REQUEST_IN[dialect](once))) == once  # type: ignore[arg-type]
    else:
        assert once == load(path)


@pytest.mark.parametrize("path", RESPONSES, ids=[_case(p) for p in RESPONSES])
def test_response_core_is_a_fixpoint(path: Path) -> None:
    dialect = dialect_of(path)
    core = RESPONSE_IN[dialect](load(path))
    assert RESPONSE_IN[dialect](RESPONSE_OUT[dialect](core, core.model)) == core


@pytest.mark.parametrize("path", RESPONSES, ids=[_case(p) for p in RESPONSES])
def test_response_wire_round_trip(path: Path) -> None:
    dialect = dialect_of(path)
    core = RESPONSE_IN[dialect](load(path))
    once = _json(RESPONSE_OUT[dialect](core, core.model))
    if _case(path) in NORMALISED:
        again = RESPONSE_IN[dialect](once)  # type: ignore[arg-type]
        assert _json(RESPONSE_OUT[dialect](again, again.model)) == once
    else:
        assert once == load(path)


def _model(events: list[StreamEvent]) -> str:
    return next(e.model for e in events if isinstance(e, MessageStart))


@pytest.mark.parametrize("path", [p for p in STREAMS if dialect_of(p) == "anthropic"],
                         ids=[_case(p) for p in STREAMS if dialect_of(p) == "anthropic"])
def test_anthropic_stream_round_trip_is_exact(path: Path) -> None:
    """Anthropic's event sequence is reproduced event for event (names and payloads)."""
    events = stream_in("anthropic", load(path))
    wire = [[name, payload] for name, payload in stream_out("anthropic", events, _model(events))]
    assert _json(wire) == [[event["type"], event] for event in load(path)]


@pytest.mark.parametrize("path", STREAMS, ids=[_case(p) for p in STREAMS])
def test_stream_round_trip_keeps_the_message(path: Path) -> None:
    """Through the dialect's own encoder and decoder again, the stream amounts to the same message."""
    dialect = dialect_of(path)
    events = stream_in(dialect, load(path))
    again = stream_in(dialect, [payload for _, payload in stream_out(dialect, events, _model(events))])
    first, second = accumulate(events), accumulate(again)
    assert (second.parts, second.finish, second.usage, second.id) == (first.parts, first.finish, first.usage, first.id)


@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("path", STREAMS, ids=[_case(p) for p in STREAMS])
def test_stream_across_dialects_keeps_text_calls_and_finish(path: Path, target: str) -> None:
    """Through any other dialect and back, text, tool calls (name and arguments) and the finish
    reason survive, and so does the usage a dialect can carry (input, cached, output)."""
    events = stream_in(dialect_of(path), load(path))
    back = accumulate(stream_in(target, [p for _, p in stream_out(target, events, _model(events))]))
    origin = accumulate(events)

    def summary(parts: tuple[object, ...]) -> list[object]:
        calls = [(p.name, json.loads(p.arguments)) for p in parts if isinstance(p, ToolCallPart)]
        text = "".join(getattr(p, "text", "") for p in parts if type(p).__name__ == "TextPart")
        return [text, calls]

    assert summary(back.parts) == summary(origin.parts)
    assert back.finish == origin.finish
    if origin.usage is not None and back.usage is not None:
        # A stream cut by an error has only its input counts (output is still running).
        kept = ("input_tokens", "cached_input_tokens") + (("output_tokens",) if origin.finish != "error" else ())
        assert [getattr(back.usage, k) for k in kept] == [getattr(origin.usage, k) for k in kept]
