"""The offline token count: long texts are counted in pieces (bpe-openai refuses over 200,000 tokens at
once), with the same result as counting them whole."""

from __future__ import annotations

import random

from relaygate.billing.tokenizer import _PIECE_CHARS, _encoding, count_text


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
