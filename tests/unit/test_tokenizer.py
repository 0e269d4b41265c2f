"""The offline token count: long texts are counted in pieces (bpe-openai refuses over 200,000 tokens at
once), with the same result as counting them whole."""

from __future__ import annotations

import random

import pytest

from relaygate.billing.tokenizer import (
    _MAX_PENDING_CHARS,
    _PIECE_CHARS,
    TokenTally,
    _encoding,
    count_text,
    encoding_name_for,
)


def test_a_text_over_the_libraries_limit_is_counted() -> None:
    text = "3.3987608237015544e+16, " * 30_000  # 390,000 tokens: one encode call refuses it
    assert count_text(text, "gpt-4o") == 13 * 30_000


def test_counting_in_pieces_matches_counting_whole() -> None:
    words = ["relay", "gateway", "token", "naïve", "数据", "🙂", "x" * 30, "\n"]
    rng = random.Random(7)
    text = " ".join(rng.choice(words) for _ in range(3 * _PIECE_CHARS // 5))
    assert len(text) > 2 * _PIECE_CHARS
    assert count_text(text, "gpt-4o") == len(_encoding("o200k_base").encode_ordinary(text))


def test_a_text_without_spaces_is_cut_anywhere_and_still_counted() -> None:
    text = "🙂" * (_PIECE_CHARS * 2 + 5)  # 4 UTF-8 bytes a character: the worst case for the limit
    assert count_text(text, "gpt-4o") >= len(text) // 2


def _deltas(text: str, rng: random.Random) -> list[str]:
    """``text`` cut anywhere, as a stream's deltas are (mid-word, mid-number, between space and word)."""
    cuts = sorted(rng.sample(range(1, len(text)), len(text) // 4))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4"])  # o200k_base and cl100k_base
def test_a_running_tally_equals_counting_the_whole_text(model: str) -> None:
    words = ["relay", "gateway", "Token", "naïve", "数据", "🙂", "x" * 30, "\n", "  ", "it's", "3.14159",
             "{\"city\":", "\"Lyon\"}", "\t", ".\n", "— ", "ünïcödé"]
    rng = random.Random(11)
    text = " ".join(rng.choice(words) for _ in range(40_000))
    tally = TokenTally(model)
    for delta in _deltas(text, rng):
        tally.add(delta)
        assert tally.waiting <= _MAX_PENDING_CHARS + len(delta)
    assert len(text) > 10 * _MAX_PENDING_CHARS // 4  # many batches were counted on the way
    assert tally.total() == len(_encoding(encoding_name_for(model)).encode_ordinary(text))


def test_a_tally_of_text_without_spaces_stays_bounded_and_close() -> None:
    text = "数据网关令牌计数" * 40_000  # no space to cut at: cut where the batch is full
    tally = TokenTally("gpt-4o")
    for start in range(0, len(text), 3):
        tally.add(text[start:start + 3])
        assert tally.waiting <= _MAX_PENDING_CHARS + 3
    whole = count_text(text, "gpt-4o")
    cuts = len(text) // _MAX_PENDING_CHARS
    assert abs(tally.total() - whole) <= cuts  # a token or so per forced cut (docs/billing.md)


def test_a_stopped_tally_keeps_nothing() -> None:
    tally = TokenTally("gpt-4o")
    tally.add("Bonjour " * 100)
    tally.stop()
    tally.add("more text")
    assert tally.waiting == 0
