"""Golden tests: each input file in ``golden/<kind>/`` (``<dialect>.<case>.json``) is converted to the
core (``<case>.core.json``) and from the core to every dialect (``<case>.to_<dialect>.json``; the
input's own dialect is the round trip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaygate.core.stream import MessageStart
from tests.unit.dialects.helpers import (
    DIALECTS,
    REQUEST_IN,
    REQUEST_OUT,
    RESPONSE_IN,
    RESPONSE_OUT,
    check,
    dialect_of,
    expected_path,
    inputs,
    load,
    stream_in,
    stream_out,
)


def _ids(paths: list[Path]) -> list[str]:
    return [p.name.removesuffix(".json") for p in paths]


REQUESTS = inputs("requests")
RESPONSES = inputs("responses")
STREAMS = inputs("streams")


def test_every_dialect_has_golden_inputs() -> None:
    for kind in (REQUESTS, RESPONSES, STREAMS):
        assert {dialect_of(p) for p in kind} == set(DIALECTS)


@pytest.mark.parametrize("path", REQUESTS, ids=_ids(REQUESTS))
def test_request_to_core(path: Path) -> None:
    check(expected_path(path, "core"), REQUEST_IN[dialect_of(path)](load(path)))


@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("path", REQUESTS, ids=_ids(REQUESTS))
def test_request_from_core(path: Path, target: str) -> None:
    core = REQUEST_IN[dialect_of(path)](load(path))
    check(expected_path(path, f"to_{target}"), REQUEST_OUT[target](core))


@pytest.mark.parametrize("path", RESPONSES, ids=_ids(RESPONSES))
def test_response_to_core(path: Path) -> None:
    check(expected_path(path, "core"), RESPONSE_IN[dialect_of(path)](load(path)))


@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("path", RESPONSES, ids=_ids(RESPONSES))
def test_response_from_core(path: Path, target: str) -> None:
    core = RESPONSE_IN[dialect_of(path)](load(path))
    check(expected_path(path, f"to_{target}"), RESPONSE_OUT[target](core, core.model))


@pytest.mark.parametrize("path", STREAMS, ids=_ids(STREAMS))
def test_stream_to_core(path: Path) -> None:
    check(expected_path(path, "core"), stream_in(dialect_of(path), load(path)))


@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("path", STREAMS, ids=_ids(STREAMS))
def test_stream_from_core(path: Path, target: str) -> None:
    events = stream_in(dialect_of(path), load(path))
    model = next(e.model for e in events if isinstance(e, MessageStart))
    check(expected_path(path, f"to_{target}"), [list(wire) for wire in stream_out(target, events, model)])
