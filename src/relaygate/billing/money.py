"""Exact money. Every amount is an integer count of nano-dollars (1e-9 USD); no floats anywhere."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NANO_PER_USD = 1_000_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are quoted per 1M tokens


def usd_to_nano(value: object, what: str = "amount") -> int:
    """Parse a USD amount given as text or a YAML/JSON number into exact nano-dollars.

    Numbers go through ``str`` first so that ``0.1`` means one tenth, not the nearest binary float.
    More precision than a nano-dollar is refused rather than rounded silently.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{what} must be a decimal number of USD") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{what} must be a non-negative number of USD")
    nano = amount * NANO_PER_USD
    if nano != nano.to_integral_value():
        raise ValueError(f"{what} has more precision than one nano-dollar")
    return int(nano)


def nano_to_usd(nano: int) -> str:
    """Render nano-dollars as an exact decimal string (``"0.000123"``), trailing zeros trimmed."""
    sign = "-" if nano < 0 else ""
    whole, frac = divmod(abs(nano), NANO_PER_USD)
    text = f"{whole}.{frac:09d}".rstrip("0").rstrip(".")
    return sign + text


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
