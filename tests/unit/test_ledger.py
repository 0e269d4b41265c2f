"""billing.ledger: reservations against quotas, settle/refund idempotence, and the overdraw bound."""

from __future__ import annotations

import pytest

from relaygate.billing.ledger import Ledger, Reservation


def test_a_key_without_quota_is_not_tracked() -> None:
    ledger = Ledger()
    reservation = ledger.reserve(1, None, 10**18)
    assert reservation == Reservation(1, 0)
    ledger.settle(reservation, 500)
    assert ledger.spent(1) == 500


def test_reserve_holds_the_amount_until_settled() -> None:
    ledger = Ledger()
    first = ledger.reserve(1, 100, 60)
    assert first is not None and ledger.available(1, 100) == 40
    assert ledger.reserve(1, 100, 41) is None  # does not fit next to the first
    second = ledger.reserve(1, 100, 40)
    assert second is not None and ledger.available(1, 100) == 0
    ledger.settle(first, 25)
    assert ledger.available(1, 100) == 35 and ledger.spent(1) == 25


def test_a_key_at_zero_gets_nothing_even_for_free() -> None:
    ledger = Ledger()
    assert ledger.reserve(1, 0, 0) is None
    r = ledger.reserve(2, 10, 10)
    assert r is not None
    assert ledger.reserve(2, 10, 0) is None  # nothing left while the 10 is held


def test_settle_and_refund_are_idempotent() -> None:
    ledger = Ledger()
    r = ledger.reserve(1, 1000, 300)
    assert r is not None
    ledger.settle(r, 120)
    ledger.settle(r, 999)
    ledger.refund(r)
    assert not r.open
    assert ledger.spent(1) == 120
    assert ledger.available(1, 1000) == 880


def test_refund_releases_the_hold_and_charges_nothing() -> None:
    ledger = Ledger()
    r = ledger.reserve(1, 1000, 300)
    assert r is not None
    ledger.refund(r)
    ledger.settle(r, 50)
    assert ledger.spent(1) == 0 and ledger.available(1, 1000) == 1000


def test_commit_moves_spend_and_refresh_replaces_it() -> None:
    ledger = Ledger()
    r = ledger.reserve(1, 1000, 100)
    assert r is not None
    ledger.settle(r, 70)
    ledger.committed({1: 70})
    assert ledger.spent(1) == 70
    ledger.refreshed({1: 500})  # another instance spent too
    assert ledger.spent(1) == 500 and ledger.available(1, 1000) == 500


def test_a_failed_commit_is_not_owed() -> None:
    ledger = Ledger()
    r = ledger.reserve(1, 1000, 100)
    assert r is not None
    ledger.settle(r, 70)
    ledger.failed({1: 70})
    assert ledger.spent(1) == 0 and ledger.available(1, 1000) == 1000


def test_keys_are_independent() -> None:
    ledger = Ledger()
    assert ledger.reserve(1, 100, 100) is not None
    assert ledger.reserve(2, 100, 100) is not None
    assert ledger.available(1, 100) == 0 and ledger.available(2, 100) == 0


@pytest.mark.parametrize(("quota", "estimate", "actual", "calls"), [
    (1_000, 100, 100, 50), (1_000, 100, 30, 50), (1_000, 100, 250, 50), (1_000, 7, 1_000, 500),
    (35_000_000, 10_000_000, 10_000_000, 12),
])
def test_parallel_calls_overdraw_only_by_their_excess_over_the_estimate(quota: int, estimate: int, actual: int,
                                                                        calls: int) -> None:
    """The ledger docstring's bound: admitted together, settled later, the overdraw is at most the sum
    of (actual − estimate) over the admitted calls; with actual ≤ estimate there is none."""
    ledger = Ledger()
    held = [r for r in (ledger.reserve(1, quota, estimate) for _ in range(calls)) if r is not None]
    assert len(held) == min(calls, quota // estimate)
    for r in held:
        ledger.settle(r, actual)
    overdraw = ledger.spent(1) - quota
    assert overdraw <= len(held) * max(0, actual - estimate)
    if actual <= estimate:
        assert ledger.spent(1) <= quota
    # once spent reaches the quota, nothing more is admitted
    if ledger.spent(1) >= quota:
        assert ledger.reserve(1, quota, 0) is None
