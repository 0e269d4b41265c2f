"""billing.tokenizer: the offline fallback count, and its tolerance of odd message shapes."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.billing.tokenizer import count_chat_prompt, count_text, encoding_name_for


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4o", "o200k_base"), ("gpt-4o-mini", "o200k_base"), ("gpt-4.1", "o200k_base"), ("o3", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
    ("text-embedding-3-small", "cl100k_base"), ("claude-3", "o200k_base"), ("", "o200k_base"),
])
def test_encoding_for_model(model: str, encoding: str) -> None:
    assert encoding_name_for(model) == encoding


def test_count_text() -> None:
    assert count_text("") == 0
    assert count_text("hello world", "gpt-4o") == 2
    assert count_text("hello world", "gpt-4") == 2
    assert count_text("Bonjour", "gpt-4o") > 0


def test_chat_accounting_adds_framing_per_message() -> None:
    one = [{"role": "user", "content": "hello world"}]
    assert count_chat_prompt(one, "gpt-4o") == 3 + 3 + 2
    named = [{"role": "user", "content": "hello world", "name": "ann"}]
    assert count_chat_prompt(named, "gpt-4o") == 3 + 3 + 2 + 1 + count_text("ann", "gpt-4o")
    assert count_chat_prompt([], "gpt-4o") == 3


def test_parts_images_tool_calls_and_tools_are_counted() -> None:
    messages: list[Any] = [
        {"role": "user", "content": [{"type": "text", "text": "hello world"},
                                     {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'}}]},
    ]
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    base = 3 + 3 + 2 + 85 + 3
    calls = count_text("get_weather", "gpt-4o") + count_text('{"city":"Lyon"}', "gpt-4o")
    assert count_chat_prompt(messages, "gpt-4o") == base + calls
    assert count_chat_prompt(messages, "gpt-4o", tools) == base + calls + count_text(
        '[{"type":"function","function":{"name":"get_weather"}}]', "gpt-4o")


@pytest.mark.parametrize("messages", [
    ["not a message", 5, None],
    [{"role": "user", "content": {"text": "x"}}],
    [{"role": "user", "content": [1, None, {"type": "text", "text": 5}]}],
    [{"role": "assistant", "tool_calls": 5, "name": 7}],
    [{"role": "assistant", "tool_calls": "abc"}],
    [{"role": "assistant", "tool_calls": [None, 1, {"function": "f"}, {"function": {"name": 1, "arguments": {}}}]}],
])
def test_odd_shapes_are_counted_without_failing(messages: list[Any]) -> None:
    assert count_chat_prompt(messages, "gpt-4o") >= 3
