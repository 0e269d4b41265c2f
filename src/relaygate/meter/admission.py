"""What a call must pass after the gate and before any upstream is tried: a price, and a reservation
of its estimated cost against the key's quota (docs/billing.md)."""

from __future__ import annotations

from relaygate.billing.money import nano_to_usd
from relaygate.billing.pricing import ImageBill, Price, cost_of, estimate_cost
from relaygate.core.usage import Usage
from relaygate.errors import QUOTA_EXCEEDED, InsufficientQuota, PriceMissing
from relaygate.meter.books import Books
from relaygate.meter.call import Call


class Admission(Books):
    def price_and_reserve(self, call: Call, *, input_tokens: int, output_tokens: int,
                          image: ImageBill | None = None) -> int:
        """Set ``call.price`` and ``call.reservation``; the estimate is the per-call price, or what the
        given token counts (or images) would cost. Returns that estimate (0 without a price, and for a
        token call of an unlimited key, which needs none). Raises ``PriceMissing`` or ``InsufficientQuota``."""
        price = self._snapshots.current.prices.lookup(call.model)
        if price is None and self._reject_unpriced:
            raise PriceMissing(f"The model '{call.model}' has no price set; ask the operator to add one.",
                               param="model")
        call.price = price
        quota = call.key.quota_nano
        if quota is None and image is None:
            return 0  # the hot chat path: an unlimited key needs no estimate
        amount = 0 if price is None else estimate_cost(price, input_tokens, output_tokens, image)
        if quota is None:
            return amount
        reservation = self._ledger.reserve(call.key.id, quota, amount)
        if reservation is None:
            left = max(0, self._ledger.available(call.key.id, quota))
            raise InsufficientQuota(_quota_message(amount, left, None if image is not None else output_tokens))
        call.reservation = reservation
        return amount

    def reserve_at(self, call: Call, price: Price) -> int:
        """Price the call at ``price``, which its use case chose (a Midjourney action's: the operator's,
        else the spec's default), and reserve what one call costs at it; returns that amount. Raises
        ``InsufficientQuota``."""
        call.price = price
        amount = cost_of(price, Usage())
        quota = call.key.quota_nano
        if quota is not None:
            reservation = self._ledger.reserve(call.key.id, quota, amount)
            if reservation is None:
                raise InsufficientQuota(QUOTA_EXCEEDED)
            call.reservation = reservation
        return amount

    def price_at(self, call: Call, price: Price | None) -> None:
        """Bill the call at ``price`` when it ends, without a reservation: a call rebuilt from a stored task
        to account for it (its hold was taken when the task was stored)."""
        call.price = price


def _quota_message(reserved: int, left: int, output_tokens: int | None) -> str:
    """Why the call was refused in figures: a key with money left is refused when the call's estimate
    (with its output tokens at most) does not fit, which a caller cannot guess without being told."""
    message = f"{QUOTA_EXCEEDED} This request needs ${nano_to_usd(reserved)} reserved"
    if output_tokens is not None:
        message += (f" (its input and up to {output_tokens} output tokens; a lower max_tokens, or "
                    "maxOutputTokens, reserves less)")
    return f"{message}; the key has ${nano_to_usd(left)} left."
