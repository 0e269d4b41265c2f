"""billing.money and billing.pricing: exact integer nano-dollars, one rounding up, pattern precedence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from relaygate.billing.money import ceil_div, nano_to_usd, usd_to_nano
from relaygate.billing.pricing import ImageBill, Price, PriceTable, cost_of, estimate_cost, price_from_mapping
from relaygate.core.patterns import best_match, matches
from relaygate.core.usage import Usage

GPT4O = price_from_mapping("gpt-4o", {"input": 2.5, "output": 10, "cached_input": 1.25})


@pytest.mark.parametrize(("value", "nano"), [
    ("0.1", 100_000_000), (0.1, 100_000_000), (2.5, 2_500_000_000), (10, 10_000_000_000), ("1e-9", 1),
    ("0.000000001", 1), (" 3 ", 3_000_000_000), ("0", 0), (0.15, 150_000_000),
    ("123456789.123456789", 123_456_789_123_456_789),
])
def test_usd_to_nano_is_exact(value: object, nano: int) -> None:
    assert usd_to_nano(value) == nano


@pytest.mark.parametrize("value", ["1e-10", "0.0000000015", -1, "-0.5", True, "abc", "", "nan", "inf", None, [1]])
def test_usd_to_nano_refuses_what_is_not_an_exact_amount(value: object) -> None:
    with pytest.raises(ValueError):
        usd_to_nano(value)


@pytest.mark.parametrize(("nano", "text"), [
    (0, "0"), (1, "0.000000001"), (100_000_000, "0.1"), (2_500_000_000, "2.5"), (10_000_000_000, "10"),
    (-57_500, "-0.0000575"), (123_456_789_123_456_789, "123456789.123456789"),
])
def test_nano_to_usd(nano: int, text: str) -> None:
    assert nano_to_usd(nano) == text
    assert usd_to_nano(text.lstrip("-")) == abs(nano)


def test_ceil_div() -> None:
    assert [ceil_div(n, 4) for n in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]


def test_cost_is_exact_and_rounded_up_once() -> None:
    assert cost_of(GPT4O, Usage(input_tokens=11, output_tokens=3)) == 57_500
    assert cost_of(GPT4O, Usage(input_tokens=1)) == 2_500
    # 0.15 USD/M × 1 token = 0.15 nano-dollars → 1 (rounded up, once, over the whole request)
    mini = price_from_mapping("m", {"input": "0.00015", "output": "0.0006"})
    assert cost_of(mini, Usage(input_tokens=1)) == 1
    assert cost_of(mini, Usage(input_tokens=3, output_tokens=1)) == 2  # 0.45 + 0.6 = 1.05 → 2
    assert cost_of(mini, Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == 750_000
    assert cost_of(mini, Usage()) == 0


def test_cost_of_huge_usage_stays_exact() -> None:
    usage = Usage(input_tokens=10**12 + 1, output_tokens=10**12 + 3)
    expected = Decimal(10**12 + 1) * Decimal("2.5") * 1000 + Decimal(10**12 + 3) * Decimal(10) * 1000
    assert cost_of(GPT4O, usage) == int(expected)


def test_cached_tokens_use_the_cached_rate_and_writes_the_write_rate() -> None:
    price = price_from_mapping("c", {"input": 3, "output": 15, "cached_input": "0.3", "cache_write": "3.75"})
    usage = Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=600, cache_write_tokens=300)
    assert cost_of(price, usage) == 100 * 3000 + 600 * 300 + 300 * 3750 + 100 * 15_000


def test_cached_and_write_rates_default_to_the_input_rate() -> None:
    price = price_from_mapping("p", {"input": 2, "output": 8})
    usage = Usage(input_tokens=1000, cached_input_tokens=400, cache_write_tokens=100)
    assert cost_of(price, usage) == cost_of(price, Usage(input_tokens=1000)) == 2_000_000


def test_cached_tokens_beyond_the_input_are_clamped() -> None:
    usage = Usage(input_tokens=100, cached_input_tokens=500, cache_write_tokens=50)
    assert cost_of(GPT4O, usage) == 100 * 1250  # every input token cached, no room left for writes


def test_a_per_call_price_wins_over_tokens() -> None:
    price = price_from_mapping("g", {"per_call": 0.1, "input": 100, "output": 100})
    assert cost_of(price, Usage(input_tokens=10**6, output_tokens=10**6)) == 100_000_000
    assert estimate_cost(price, 10, 10) == 100_000_000


def test_estimate_cost() -> None:
    assert estimate_cost(GPT4O, 100, 1024) == cost_of(GPT4O, Usage(input_tokens=100, output_tokens=1024))


def test_price_from_mapping_refuses_unknown_fields_and_bad_amounts() -> None:
    with pytest.raises(ValueError, match="unknown fields"):
        price_from_mapping("x", {"input": 1, "outptu": 2})
    with pytest.raises(ValueError, match=r"x\.input"):
        price_from_mapping("x", {"input": -1})


def test_price_to_public_renders_usd_strings() -> None:
    assert GPT4O.to_public() == {"model": "gpt-4o", "input": "2.5", "output": "10", "cached_input": "1.25",
                                 "cache_write": None, "input_image": None, "per_call": None, "per_image": None}


DALL_E_3 = price_from_mapping("dall-e-3", {"per_image": {"default": "0.04", "1792x1024": "0.08", "1024x1792": "0.08",
                                                          "*/hd": "0.08", "1792x1024/hd": "0.12"}})


def test_per_image_price_most_specific_key_wins() -> None:
    assert cost_of(DALL_E_3, Usage(), ImageBill(1, "1024x1024", "standard")) == 40_000_000
    assert cost_of(DALL_E_3, Usage(), ImageBill(1, "1792x1024", "standard")) == 80_000_000
    assert cost_of(DALL_E_3, Usage(), ImageBill(1, "1024x1024", "hd")) == 80_000_000
    assert cost_of(DALL_E_3, Usage(), ImageBill(1, "1792x1024", "hd")) == 120_000_000
    assert cost_of(DALL_E_3, Usage(), ImageBill(3, "1024x1792", "hd")) == 3 * 80_000_000  # size beats */quality


def test_per_image_number_applies_to_every_size_and_count_multiplies() -> None:
    price = price_from_mapping("flux-*", {"per_image": 0.025})
    assert cost_of(price, Usage(), ImageBill(4, "512x512", "auto")) == 100_000_000
    assert price.to_public()["per_image"] == {"default": "0.025"}


def test_per_image_mapping_needs_a_default() -> None:
    with pytest.raises(ValueError, match="default"):
        price_from_mapping("x", {"per_image": {"1024x1024": 0.04}})


def test_per_call_wins_over_per_image_and_per_image_over_tokens() -> None:
    both = price_from_mapping("m", {"per_call": "0.1", "per_image": "0.04", "input": 5, "output": 40})
    assert cost_of(both, Usage(input_tokens=10), ImageBill(2)) == 100_000_000
    images = price_from_mapping("m", {"per_image": "0.04", "input": 5, "output": 40})
    assert cost_of(images, Usage(input_tokens=1_000_000, output_tokens=1), ImageBill(2)) == 80_000_000
    # A chat call of the same model (no images) pays its tokens.
    assert cost_of(images, Usage(input_tokens=1_000_000)) == 5_000_000_000


def test_image_input_tokens_use_their_own_rate() -> None:
    gpt_image = price_from_mapping("gpt-image-1", {"input": 5, "input_image": 10, "output": 40})
    usage = Usage(input_tokens=50 + 323, image_input_tokens=323, output_tokens=4160)
    # 50 × 5 + 323 × 10 + 4160 × 40 = 250 + 3230 + 166400 USD per 1M tokens → 0.16988 USD
    assert cost_of(gpt_image, usage, ImageBill(1)) == 169_880_000
    without_rate = price_from_mapping("x", {"input": 5, "output": 40})
    assert cost_of(without_rate, usage, ImageBill(1)) == (373 * 5 + 4160 * 40) * 1000


# --- the price table ----------------------------------------------------------------------------

TABLE = PriceTable([
    Price("*", input=1), Price("gpt-4*", input=2), Price("gpt-4-gizmo-*", per_call=3),
    Price("gpt-4-gizmo-g-special", per_call=4), Price("gpt-4o", input=5), Price("*-mini", input=6),
])


@pytest.mark.parametrize(("model", "pattern"), [
    ("gpt-4o", "gpt-4o"),  # exact beats every pattern
    ("gpt-4-gizmo-g-special", "gpt-4-gizmo-g-special"),
    ("gpt-4-gizmo-g-other", "gpt-4-gizmo-*"),  # the most literal characters win
    ("gpt-4-turbo", "gpt-4*"),
    ("gpt-4o-mini", "gpt-4*"),  # "gpt-4" has more literal characters than "-mini"
    ("o1-mini", "*-mini"),
    ("claude-3", "*"),
])
def test_lookup_precedence(model: str, pattern: str) -> None:
    found = TABLE.lookup(model)
    assert found is not None and found.pattern == pattern
    assert TABLE.lookup(model) is found  # the cached answer is the same


def test_lookup_without_a_match() -> None:
    table = PriceTable([Price("gpt-4o", input=1), Price("gpt-4-gizmo-*", per_call=1)])
    assert table.lookup("claude-3") is None
    assert table.lookup("claude-3") is None
    assert table.lookup("gpt-4-gizmo-") is not None  # "*" may match nothing


def test_all_lists_every_price_sorted() -> None:
    assert [p.pattern for p in TABLE.all()] == sorted(["*", "gpt-4*", "gpt-4-gizmo-*", "gpt-4-gizmo-g-special",
                                                        "gpt-4o", "*-mini"])


@pytest.mark.parametrize(("pattern", "name", "result"), [
    ("gpt-4-gizmo-*", "gpt-4-gizmo-g-1", True), ("gpt-4-gizmo-*", "gpt-4-gizmo", False),
    ("a*b*c", "a-x-b-y-c", True), ("a*b*c", "a-c", False), ("gpt-4o", "gpt-4o", True),
    ("gpt-4o", "gpt-4o-mini", False), ("gpt.4", "gpt-4", False), ("*", "", True), ("a?b", "axb", False),
])
def test_patterns_only_star_is_special(pattern: str, name: str, result: bool) -> None:
    assert matches(pattern, name) is result


def test_best_match_prefers_exact_then_the_most_specific() -> None:
    assert best_match(["*", "gpt-*", "gpt-4o"], "gpt-4o") == "gpt-4o"
    assert best_match(["gpt-*", "*", "gpt-4*"], "gpt-4o") == "gpt-4*"
    assert best_match(["claude-*"], "gpt-4o") is None
