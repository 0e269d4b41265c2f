"""Golden-file plumbing for the converter tests: the converters by dialect, a JSON view of core
objects, and the comparison (``RELAYGATE_UPDATE_GOLDEN=1`` rewrites the expected files; review the
diff before committing it)."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from relaygate.core.chat import ChatRequest, ChatResponse
from relaygate.core.stream import StreamEvent, WireEvent
from relaygate.dialects.anthropic.request import anthropic_request_to_core, core_request_to_anthropic
from relaygate.dialects.anthropic.response import anthropic_response_to_core, core_response_to_anthropic
from relaygate.dialects.anthropic.stream import anthropic_stream_to_core, core_stream_to_anthropic
from relaygate.dialects.gemini.request import core_request_to_gemini, gemini_request_to_core
from relaygate.dialects.gemini.response import core_response_to_gemini, gemini_response_to_core
from relaygate.dialects.gemini.stream import core_stream_to_gemini, gemini_stream_to_core
from relaygate.dialects.openai.convert import core_request_to_openai, openai_request_to_core
from relaygate.dialects.openai.response_convert import core_response_to_openai, openai_response_to_core
from relaygate.dialects.openai.stream_convert import core_stream_to_openai, openai_stream_to_core

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RELAYGATE_UPDATE_GOLDEN") == "1"
DIALECTS = ("openai", "anthropic", "gemini")
GEMINI_MODEL = "gemini-2.5-flash"  # Gemini bodies carry no model: it is in the URL
CREATED = 1741570001

REQUEST_IN: dict[str, Callable[[dict[str, Any]], ChatRequest]] = {
    "openai": openai_request_to_core,
    "anthropic": anthropic_request_to_core,
    "gemini": lambda body: gemini_request_to_core(body, model=GEMINI_MODEL),
}
REQUEST_OUT: dict[str, Callable[[ChatRequest], dict[str, Any]]] = {
    "openai": core_request_to_openai, "anthropic": core_request_to_anthropic, "gemini": core_request_to_gemini,
}
RESPONSE_IN: dict[str, Callable[[dict[str, Any]], ChatResponse]] = {
    "openai": openai_response_to_core, "anthropic": anthropic_response_to_core, "gemini": gemini_response_to_core,
}
RESPONSE_OUT: dict[str, Callable[[ChatResponse, str], dict[str, Any]]] = {
    "openai": core_response_to_openai, "anthropic": core_response_to_anthropic, "gemini": core_response_to_gemini,
}


def stream_in(dialect: str, chunks: Iterable[dict[str, Any]]) -> list[StreamEvent]:
    """Feed upstream chunks one by one, then close."""
    factories: dict[str, Callable[[], Any]] = {"openai": openai_stream_to_core, "anthropic": anthropic_stream_to_core,
                                               "gemini": gemini_stream_to_core}
    converter = factories[dialect]()
    events = [event for chunk in chunks for event in converter.feed(chunk)]
    return events + list(converter.close())


def stream_out(dialect: str, events: Iterable[StreamEvent], model: str) -> list[WireEvent]:
    encoder: Any
    if dialect == "openai":
        encoder = core_stream_to_openai(model, created=CREATED, include_usage=True)
    elif dialect == "anthropic":
        encoder = core_stream_to_anthropic(model)
    else:
        encoder = core_stream_to_gemini(model)
    return [wire for event in events for wire in encoder.feed(event)]


def to_jsonable(value: Any) -> Any:
    """Core objects as plain JSON: ``{"type": ClassName, field: value}``, fields at their default left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"type": type(value).__name__}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            default = field.default if field.default is not dataclasses.MISSING else None
            if item != default and item not in ((), {}, None):
                out[field.name] = to_jsonable(item)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def check(path: Path, actual: Any) -> None:
    """Compare ``actual`` (as JSON) with the expected file, or write it when updating."""
    actual = json.loads(json.dumps(to_jsonable(actual)))
    if UPDATE:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
        return
    assert path.exists(), f"missing golden file {path.name} (run with RELAYGATE_UPDATE_GOLDEN=1 and review it)"
    assert actual == load(path), f"output differs from {path.relative_to(GOLDEN)}"


def inputs(kind: str) -> list[Path]:
    """Input files of ``golden/<kind>/``: ``<dialect>.<case>.json`` (expected files have a second dot)."""
    return sorted(p for p in (GOLDEN / kind).glob("*.json") if p.name.count(".") == 2)


def dialect_of(path: Path) -> str:
    return path.name.split(".", 1)[0]


def expected_path(path: Path, suffix: str) -> Path:
    return path.with_name(path.name.removesuffix(".json") + f".{suffix}.json")
