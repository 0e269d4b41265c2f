"""Reservations against key quotas, in memory, per process.

A key's spendable balance is ``quota - committed - uncommitted - reserved``: ``committed`` is the
spend the database holds (re-read by the recorder between its commits), ``uncommitted`` is spend
settled here but not yet committed, ``reserved`` the estimates of calls in flight. A call is admitted
only when its estimate fits, so parallel calls cannot overdraw a key by more than the amount by which
their actual cost exceeds their estimate (docs/billing.md). Several processes or instances each
see the others' spend after the next refresh (``snapshot_poll_s``); that window is the documented bound
there. Task holds are decided in the database instead (``tasks/store.py``): the ledger only refuses
them early, and takes an accepted hold in as committed spend (``charge_committed``), once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Balance:
    committed: int = 0
    uncommitted: int = 0
    reserved: int = 0


@dataclass(slots=True)
class Reservation:
    """One request's hold on a key. Settling or refunding twice has no further effect."""

    key_id: int
    amount: int
    open: bool = True


class Ledger:
    def __init__(self) -> None:
        self._balances: dict[int, _Balance] = {}

    def _balance(self, key_id: int) -> _Balance:
        balance = self._balances.get(key_id)
        if balance is None:
            balance = self._balances[key_id] = _Balance()
        return balance

    def spent(self, key_id: int) -> int:
        b = self._balance(key_id)
        return b.committed + b.uncommitted

    def available(self, key_id: int, quota: int) -> int:
        b = self._balance(key_id)
        return quota - b.committed - b.uncommitted - b.reserved

    def reserve(self, key_id: int, quota: int | None, amount: int) -> Reservation | None:
        """Hold ``amount`` for a call; None when it does not fit (the caller answers 429)."""
        if quota is None:
            return Reservation(key_id, 0)
        if amount > self.available(key_id, quota) or self.available(key_id, quota) <= 0:
            return None
        self._balance(key_id).reserved += amount
        return Reservation(key_id, amount)

    def settle(self, reservation: Reservation, cost: int) -> None:
        """Replace the hold by the actual cost (which the recorder is about to commit)."""
        if not reservation.open:
            return
        reservation.open = False
        b = self._balance(reservation.key_id)
        b.reserved -= reservation.amount
        b.uncommitted += cost

    def refund(self, reservation: Reservation) -> None:
        self.settle(reservation, 0)

    def charge_committed(self, reservation: Reservation, amount: int) -> None:
        """Replace the hold by ``amount`` that is already committed to the database (an async task's
        hold, written with the task)."""
        if not reservation.open:
            return
        reservation.open = False
        b = self._balance(reservation.key_id)
        b.reserved -= reservation.amount
        b.committed += amount

    def adjust_committed(self, key_id: int, delta: int) -> None:
        """A committed change of spend made outside the group commit (an async task settled: its cost
        minus its hold, often negative)."""
        self._balance(key_id).committed += delta

    # SpendListener: called by the recorder's writer task, in order.
    def committed(self, spend_by_key: dict[int, int]) -> None:
        for key_id, cost in spend_by_key.items():
            b = self._balance(key_id)
            b.uncommitted -= cost
            b.committed += cost

    def refreshed(self, used_by_key: dict[int, int]) -> None:
        for key_id, used in used_by_key.items():
            self._balance(key_id).committed = used

    def failed(self, spend_by_key: dict[int, int]) -> None:
        """A commit failed: that spend is not owed (the requests answer with an error)."""
        for key_id, cost in spend_by_key.items():
            self._balance(key_id).uncommitted -= cost
