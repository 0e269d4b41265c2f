"""Property-style tests over seeded random inputs (no extra dependency): requests in the common
subset survive every dialect, streamed pieces may be cut anywhere, usage maps both ways, and no
malformed body makes a converter raise."""

from __future__ import annotations

import copy
import json
import random
import string
from dataclasses import replace
from typing import Any

import pytest

from relaygate.core.chat import (
    ChatRequest,
    FinishReason,
    ImagePart,
    Message,
    Part,
    Role,
    Sampling,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
)
from relaygate.core.stream import (
    BlockStop,
    Finish,
    MessageStart,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    accumulate,
)
from relaygate.core.usage import Usage
from relaygate.dialects.anthropic.shared import usage_from_anthropic, usage_to_anthropic
from relaygate.dialects.gemini.shared import usage_from_gemini, usage_to_gemini
from relaygate.dialects.openai.usage import usage_from_openai, usage_to_openai
from tests.unit.dialects.helpers import (
    DIALECTS,
    REQUEST_IN,
    REQUEST_OUT,
    RESPONSE_IN,
    RESPONSE_OUT,
    inputs,
    load,
    stream_in,
    stream_out,
)

SEEDS = range(40)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _words(rng: random.Random, n: int = 6) -> str:
    return " ".join("".join(rng.choices(string.ascii_letters + "éü€", k=rng.randint(1, 8))) for _ in range(n))


def _call(rng: random.Random, number: int) -> ToolCallPart:
    args = {"city": _words(rng, 1), "days": rng.randint(1, 9)}
    return ToolCallPart(f"call_{number}_{rng.randint(0, 999)}", rng.choice(["get_weather", "lookup"]),
                        json.dumps(args, separators=(",", ":"), ensure_ascii=False))


def _turns(rng: random.Random) -> list[Message]:
    messages: list[Message] = []
    for turn in range(rng.randint(1, 4)):
        user: list[Part] = [TextPart(_words(rng))]
        if rng.random() < 0.4:
            user.append(ImagePart("image/png", PNG))
        messages.append(Message(Role.USER, tuple(user)))
        calls = [_call(rng, 10 * turn + k) for k in range(rng.randint(0, 2))]
        said: tuple[Part, ...] = (TextPart(_words(rng)),) if rng.random() < 0.6 or not calls else ()
        messages.append(Message(Role.ASSISTANT, said + tuple(calls)))
        for call in calls:  # one TOOL message per result, each dialect's common ground
            content = rng.choice([_words(rng, 3), '{"temp_c":14}'])
            messages.append(Message(Role.TOOL, (ToolResultPart(call.id, (TextPart(content),)),)))
    return messages


def random_request(rng: random.Random) -> ChatRequest:
    tools = (Tool("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}},
                                             "required": ["city"]}),
             Tool("lookup", None, {"type": "object", "properties": {"q": {"type": "string", "description": "x"}}}))
    mode = rng.choice([None, *ToolChoiceMode])
    choice = ToolChoice(mode, "lookup" if mode is ToolChoiceMode.TOOL else None) if mode else None
    sampling = Sampling(temperature=round(rng.random(), 2), top_p=rng.choice([None, 0.9]),
                        top_k=rng.choice([None, 20]), max_tokens=rng.randint(16, 4000),
                        stop=tuple(_words(rng, 1) for _ in range(rng.randint(0, 2))),
                        seed=rng.choice([None, 7]))
    system = tuple(TextPart(_words(rng)) for _ in range(rng.randint(0, 2)))
    return ChatRequest("gemini-2.5-flash", tuple(_turns(rng)), system, tools, choice, sampling,
                       user=rng.choice([None, "u-1"]))


def _merge_tool_turns(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """Anthropic and Gemini answer parallel calls in one turn: consecutive TOOL messages merge."""
    out: list[Message] = []
    for message in messages:
        if out and message.role is Role.TOOL and out[-1].role is Role.TOOL:
            out[-1] = Message(Role.TOOL, out[-1].parts + message.parts)
        else:
            out.append(message)
    return tuple(out)


def expected_after(dialect: str, req: ChatRequest) -> ChatRequest:
    """What ``req`` looks like after ``dialect`` → core: the fields the dialect cannot say are gone."""
    s = req.sampling
    if dialect == "openai":
        return replace(req, sampling=replace(s, top_k=None))
    if dialect == "anthropic":
        choice = req.tool_choice
        if choice is not None and choice.mode is None:
            choice = ToolChoice(ToolChoiceMode.AUTO)
        return replace(req, messages=_merge_tool_turns(req.messages), tool_choice=choice,
                       sampling=replace(s, seed=None))
    names = {p.id: p.name for m in req.messages for p in m.parts if isinstance(p, ToolCallPart)}
    messages = tuple(Message(m.role, tuple(replace(p, name=names[p.call_id]) if isinstance(p, ToolResultPart) else p
                                           for p in m.parts)) for m in _merge_tool_turns(req.messages))
    choice = req.tool_choice if req.tool_choice is not None and req.tool_choice.mode is not None else None
    return replace(req, messages=messages, tool_choice=choice, user=None)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_common_requests_survive_each_dialect(dialect: str, seed: int) -> None:
    req = random_request(random.Random(seed))
    assert REQUEST_IN[dialect](REQUEST_OUT[dialect](req)) == expected_after(dialect, req)


def _split(rng: random.Random, text: str) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(0, 6)))) if len(text) > 1 else []
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def random_stream(rng: random.Random) -> list[StreamEvent]:
    """A text block and tool calls, each cut into random pieces, as a core event stream."""
    events: list[StreamEvent] = [MessageStart("msg_1", "m", Usage(input_tokens=50))]
    events += [TextDelta(0, piece) for piece in _split(rng, _words(rng, 12))] + [BlockStop(0)]
    calls = rng.randint(0, 2)
    for index in range(1, calls + 1):
        events.append(ToolCallStart(index, f"call_{index}", "get_weather"))
        arguments = json.dumps({"city": _words(rng, 2), "nested": {"n": [1, 2, index]}})
        events += [ToolCallDelta(index, piece) for piece in _split(rng, arguments)] + [BlockStop(index)]
    return [*events, Finish(FinishReason.TOOL_CALLS if calls else FinishReason.STOP, Usage(50, 20))]


@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_streams_cut_anywhere_add_up_to_the_same_message(target: str, seed: int) -> None:
    events = random_stream(random.Random(seed))
    back = accumulate(stream_in(target, [payload for _, payload in stream_out(target, events, "m")]))
    origin = accumulate(events)
    assert [type(p) for p in back.parts] == [type(p) for p in origin.parts]
    for got, want in zip(back.parts, origin.parts, strict=True):
        if isinstance(want, ToolCallPart):
            assert isinstance(got, ToolCallPart)
            assert (got.name, json.loads(got.arguments)) == (want.name, json.loads(want.arguments))
        else:
            assert got == want
    assert (back.finish, back.usage) == (origin.finish, origin.usage)


def random_usage(rng: random.Random, *, reasoning: bool, cache_write: bool) -> Usage:
    cached, write = rng.randint(0, 500), rng.randint(0, 300) if cache_write else 0
    output = rng.randint(0, 900)
    return Usage(input_tokens=cached + write + rng.randint(0, 2000), output_tokens=output, cached_input_tokens=cached,
                 cache_write_tokens=write, reasoning_tokens=rng.randint(0, output) if reasoning else 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_usage_maps_both_ways(seed: int) -> None:
    rng = random.Random(seed)
    anthropic = random_usage(rng, reasoning=False, cache_write=True)  # Anthropic reports no reasoning count
    assert usage_from_anthropic(usage_to_anthropic(anthropic)) == anthropic
    gemini = random_usage(rng, reasoning=True, cache_write=False)  # Gemini has no cache writes
    assert usage_from_gemini(usage_to_gemini(gemini)) == gemini
    openai = random_usage(rng, reasoning=True, cache_write=False)
    assert usage_from_openai(usage_to_openai(openai)) == openai


_JUNK: list[Any] = [None, 0, -3, 1.5, True, "", "x", [], [1, "a"], {}, {"type": 7}]


def _mutate(value: Any, rng: random.Random) -> Any:
    """The same body with one value somewhere replaced by a value of the wrong type."""
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        return {**value, key: _mutate(value[key], rng) if rng.random() < 0.7 else rng.choice(_JUNK)}
    if isinstance(value, list) and value:
        index = rng.randrange(len(value))
        return [*value[:index], _mutate(value[index], rng), *value[index + 1:]]
    return rng.choice(_JUNK)


@pytest.mark.parametrize("seed", SEEDS)
def test_malformed_bodies_never_raise(seed: int) -> None:
    """Converters read untrusted bodies defensively: a wrong type reads as absent, never an exception."""
    rng = random.Random(seed)
    for path in inputs("requests"):
        body = _mutate(copy.deepcopy(load(path)), rng)
        core = REQUEST_IN[path.name.split(".")[0]](body if isinstance(body, dict) else {})
        for target in DIALECTS:
            REQUEST_OUT[target](core)
    for path in inputs("responses"):
        body = _mutate(copy.deepcopy(load(path)), rng)
        response = RESPONSE_IN[path.name.split(".")[0]](body if isinstance(body, dict) else {})
        for target in DIALECTS:
            RESPONSE_OUT[target](response, "m")
    for path in inputs("streams"):
        chunks = [c if isinstance(c, dict) else {} for c in _mutate(copy.deepcopy(load(path)), rng)]
        events = stream_in(path.name.split(".")[0], chunks)
        for target in DIALECTS:
            stream_out(target, events, "m")
