"""Prices and cost. Pure functions: no I/O, no settings.

A price is either per call (``per_call``) or per token (``input``, ``output``, ``cached_input``,
``cache_write``, each USD per 1M tokens). When both are set, the per-call price wins. Amounts are kept
as integer nano-dollars per 1M tokens, and a request's cost is rounded up once, to the next whole
nano-dollar, so that the operator never bills less than the exact amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from relaygate.billing.money import TOKENS_PER_PRICE_UNIT, ceil_div, nano_to_usd, usd_to_nano
from relaygate.core.patterns import best_match, is_pattern
from relaygate.core.usage import Usage

PRICE_FIELDS = ("input", "output", "cached_input", "cache_write", "per_call")


@dataclass(frozen=True, slots=True)
class Price:
    pattern: str
    input: int = 0  # nano-USD per 1M tokens
    output: int = 0
    cached_input: int | None = None  # None: cached tokens cost the input price
    cache_write: int | None = None  # None: cache writes cost the input price
    per_call: int | None = None  # nano-USD per request

    def to_public(self) -> dict[str, object]:
        out: dict[str, object] = {"model": self.pattern}
        for name in PRICE_FIELDS:
            value = getattr(self, name)
            out[name] = None if value is None else nano_to_usd(value)
        return out


def price_from_mapping(pattern: str, raw: Mapping[str, object]) -> Price:
    """Build a price from ``{input: 2.5, output: 10}``-style USD values; raises ValueError on bad input."""
    unknown = set(raw) - set(PRICE_FIELDS)
    if unknown:
        raise ValueError(f"price {pattern}: unknown fields {', '.join(sorted(unknown))}")
    values: dict[str, int | None] = {}
    for name in PRICE_FIELDS:
        value = raw.get(name)
        values[name] = None if value is None else usd_to_nano(value, f"price {pattern}.{name}")
    return Price(
        pattern=pattern,
        input=values["input"] or 0,
        output=values["output"] or 0,
        cached_input=values["cached_input"],
        cache_write=values["cache_write"],
        per_call=values["per_call"],
    )


def cost_of(price: Price, usage: Usage) -> int:
    """Exact cost in nano-dollars of one request with this usage."""
    if price.per_call is not None:
        return price.per_call
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    writes = min(usage.cache_write_tokens, usage.input_tokens - cached)
    plain_input = usage.input_tokens - cached - writes
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    scaled = (plain_input * price.input + cached * cached_rate + writes * write_rate
              + usage.output_tokens * price.output)
    return ceil_div(scaled, TOKENS_PER_PRICE_UNIT)


def estimate_cost(price: Price, input_tokens: int, output_tokens: int) -> int:
    """The amount reserved before a call: what it would cost if it used this many tokens."""
    return cost_of(price, Usage(input_tokens=input_tokens, output_tokens=output_tokens))


class PriceTable:
    """Exact model names first, then the most specific ``*`` pattern."""

    def __init__(self, prices: Iterable[Price]) -> None:
        self._exact: dict[str, Price] = {}
        self._patterns: dict[str, Price] = {}
        for price in prices:
            (self._patterns if is_pattern(price.pattern) else self._exact)[price.pattern] = price
        self._cache: dict[str, Price | None] = {}

    def lookup(self, model: str) -> Price | None:
        found = self._exact.get(model)
        if found is not None:
            return found
        if model in self._cache:
            return self._cache[model]
        pattern = best_match(self._patterns, model)
        result = None if pattern is None else self._patterns[pattern]
        if len(self._cache) < 10_000:
            self._cache[model] = result
        return result

    def all(self) -> list[Price]:
        return sorted([*self._exact.values(), *self._patterns.values()], key=lambda p: p.pattern)
