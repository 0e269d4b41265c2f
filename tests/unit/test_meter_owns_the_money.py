"""The meter is the one owner of the money (docs/billing.md, docs/architecture.md): no module outside
``meter/`` reaches the ledger, only the meter writes a call's money (its price, its reservation, and
whether it is finished), and the usage record it returns cannot be changed afterwards."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import relaygate
from relaygate.billing.rules import EndReason
from relaygate.storage.recorder import UsageRecord

SRC = Path(relaygate.__file__).parent
# The ledger itself, and the composition root that builds it and gives it to the meter and (as the
# recorder's SpendListener, which reports what was committed) to the recorder.
LEDGER_ALLOWED = {"billing/ledger.py", "app.py"}
MONEY_FIELDS = frozenset({"price", "reservation", "finished"})


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _in_meter(name: str) -> bool:
    return name.startswith("meter/")


def ledger_uses(tree: ast.Module) -> list[str]:
    """Where a module reaches the ledger: imports ``Ledger``, or names an attribute ``ledger``
    (``services.ledger``, ``self._ledger``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("relaygate.billing.ledger", "relaygate.billing"):
            found += [f"{node.lineno}: imports {a.name}" for a in node.names if a.name in ("Ledger", "ledger", "*")]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: imports {a.name}" for a in node.names if a.name == "relaygate.billing.ledger"]
        elif isinstance(node, ast.Attribute) and node.attr.lstrip("_") == "ledger":
            found.append(f"{node.lineno}: .{node.attr}")
    return found


def money_writes(tree: ast.Module) -> list[str]:
    """Assignments to a money field of anything but ``self`` (``call.price = ...``, ``call.finished = True``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for part in ast.walk(target):
                    if (isinstance(part, ast.Attribute) and part.attr in MONEY_FIELDS
                            and not (isinstance(part.value, ast.Name) and part.value.id == "self")):
                        found.append(f"{part.lineno}: .{part.attr} =")
    return found


def test_no_module_outside_the_meter_reaches_the_ledger() -> None:
    offenders = {name: uses for name, tree in _modules()
                 if not _in_meter(name) and name not in LEDGER_ALLOWED and (uses := ledger_uses(tree))}
    assert offenders == {}, "only meter/ may use the ledger; ask the meter for an operation instead"


def test_only_the_meter_writes_a_calls_money() -> None:
    offenders = {name: writes for name, tree in _modules() if not _in_meter(name) and (writes := money_writes(tree))}
    assert offenders == {}, "price, reservation and finished are written by meter/ only"


def test_the_scans_see_the_meter_itself() -> None:
    """The two scans find what the meter does, so an empty answer above means something."""
    meter = dict(_modules())
    assert ledger_uses(meter["meter/admission.py"]) and ledger_uses(meter["meter/holds.py"])
    assert money_writes(meter["meter/meter.py"]) and money_writes(meter["meter/admission.py"])
    assert money_writes(ast.parse("call.finished = True\ncall.channel, call.price = c, p\n")) == [
        "1: .finished =", "2: .price ="]
    assert ledger_uses(ast.parse("services.ledger.refund(r)\nfrom relaygate.billing.ledger import Ledger\n"))


def test_a_usage_record_cannot_be_changed() -> None:
    record = UsageRecord(request_id="r", created_at_ms=1, surface="openai", model="m", stream=False, status=200,
                         end_reason=EndReason.DONE.value, cost_nano=5)
    with pytest.raises(AttributeError):
        record.cost_nano = 0  # type: ignore[misc]
    assert record._replace(latency_ms=3).cost_nano == 5
