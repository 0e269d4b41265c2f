"""The meter: the one owner of the money (docs/billing.md, docs/architecture.md).

Every change of a key's balance is one of its operations: a call's price and reservation
(``admission``), a task's hold, its end and its released parts (``holds``), and a call's settlement and
usage record (``meter``). No other module reaches the ledger; ``tests/unit/test_meter_owns_the_money.py``
holds every module to that.
"""
