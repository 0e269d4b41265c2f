"""Prices and cost. Pure functions: no I/O, no settings.

A price is per call (``per_call``), per image (``per_image``: one amount, or amounts by size and
quality), or per token (``input``, ``output``, ``cached_input``, ``cache_write``, ``input_image``, each
USD per 1M tokens). The first of these that is set and applies wins: a per-call price over everything,
a per-image price over tokens for image calls. Amounts are kept as integer nano-dollars (per 1M tokens
for token rates), and a request's cost is rounded up once, to the next whole nano-dollar, so that the
operator never bills less than the exact amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from relaygate.billing.money import TOKENS_PER_PRICE_UNIT, ceil_div, nano_to_usd, usd_to_nano
from relaygate.core.patterns import best_match, is_pattern
from relaygate.core.usage import Usage

PRICE_FIELDS = ("input", "output", "cached_input", "cache_write", "input_image", "per_call", "per_image")
_RATE_FIELDS = ("input", "output", "cached_input", "cache_write", "input_image", "per_call")
DEFAULT_IMAGE_KEY = "default"


@dataclass(frozen=True, slots=True)
class ImageBill:
    """The images one call produced (or asked for, when reserving), for per-image prices."""

    count: int
    size: str = "auto"
    quality: str = "auto"


def image_price_keys(size: str, quality: str) -> tuple[str, ...]:
    """Most specific first: ``1024x1792/hd``, ``1024x1792``, ``*/hd``, ``default``."""
    return (f"{size}/{quality}", size, f"*/{quality}", DEFAULT_IMAGE_KEY)


@dataclass(frozen=True, slots=True)
class Price:
    pattern: str
    input: int = 0  # nano-USD per 1M tokens
    output: int = 0
    cached_input: int | None = None  # None: cached tokens cost the input price
    cache_write: int | None = None  # None: cache writes cost the input price
    per_call: int | None = None  # nano-USD per request
    input_image: int | None = None  # per 1M input tokens that encode images; None: the input price
    per_image: tuple[tuple[str, int], ...] | None = None  # (size/quality key, nano-USD per image)

    def image_amount(self, size: str, quality: str) -> int | None:
        """The per-image amount for this size and quality, or None without per-image prices."""
        if self.per_image is None:
            return None
        table = dict(self.per_image)
        for key in image_price_keys(size, quality):
            if key in table:
                return table[key]
        return None  # unreachable for prices built by price_from_mapping: it requires a default

    def to_public(self) -> dict[str, object]:
        out: dict[str, object] = {"model": self.pattern}
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            out[name] = None if value is None else nano_to_usd(value)
        out["per_image"] = None if self.per_image is None else {k: nano_to_usd(v) for k, v in self.per_image}
        return out


def price_from_mapping(pattern: str, raw: Mapping[str, object]) -> Price:
    """Build a price from ``{input: 2.5, output: 10}``-style USD values; raises ValueError on bad input."""
    unknown = set(raw) - set(PRICE_FIELDS)
    if unknown:
        raise ValueError(f"price {pattern}: unknown fields {', '.join(sorted(unknown))}")
    values: dict[str, int | None] = {}
    for name in _RATE_FIELDS:
        value = raw.get(name)
        values[name] = None if value is None else usd_to_nano(value, f"price {pattern}.{name}")
    return Price(
        pattern=pattern,
        input=values["input"] or 0,
        output=values["output"] or 0,
        cached_input=values["cached_input"],
        cache_write=values["cache_write"],
        per_call=values["per_call"],
        input_image=values["input_image"],
        per_image=_image_amounts(pattern, raw.get("per_image")),
    )


def _image_amounts(pattern: str, raw: object) -> tuple[tuple[str, int], ...] | None:
    """``0.04`` (any size and quality) or ``{default: 0.04, "1792x1024": 0.08, "1792x1024/hd": 0.12,
    "*/hd": 0.08}``; a mapping must have a ``default`` so that no image is ever billed by accident at 0."""
    if raw is None:
        return None
    what = f"price {pattern}.per_image"
    if not isinstance(raw, Mapping):
        return ((DEFAULT_IMAGE_KEY, usd_to_nano(raw, what)),)
    if DEFAULT_IMAGE_KEY not in raw:
        raise ValueError(f"{what} must have a 'default' amount beside its sizes and qualities")
    amounts = []
    for key, value in raw.items():
        if not isinstance(key, str) or not key or len(key) > 64:
            raise ValueError(f"{what} keys must be sizes ('1024x1024'), 'size/quality', '*/quality' or 'default'")
        amounts.append((key, usd_to_nano(value, f"{what}.{key}")))
    return tuple(sorted(amounts))


def cost_of(price: Price, usage: Usage, image: ImageBill | None = None) -> int:
    """Exact cost in nano-dollars of one request with this usage (and, for image calls, these images)."""
    if price.per_call is not None:
        return price.per_call
    if image is not None:
        amount = price.image_amount(image.size, image.quality)
        if amount is not None:
            return amount * image.count
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    writes = min(usage.cache_write_tokens, usage.input_tokens - cached)
    images = min(usage.image_input_tokens, usage.input_tokens - cached - writes)
    plain_input = usage.input_tokens - cached - writes - images
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    image_rate = price.input if price.input_image is None else price.input_image
    scaled = (plain_input * price.input + cached * cached_rate + writes * write_rate + images * image_rate
              + usage.output_tokens * price.output)
    return ceil_div(scaled, TOKENS_PER_PRICE_UNIT)


def estimate_cost(price: Price, input_tokens: int, output_tokens: int, image: ImageBill | None = None) -> int:
    """The amount reserved before a call: what it would cost if it used this many tokens (and images)."""
    return cost_of(price, Usage(input_tokens=input_tokens, output_tokens=output_tokens), image)


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
