"""billing.rules: the written table of what each end reason is billed (docs/billing.md)."""

from __future__ import annotations

import itertools

import pytest

from relaygate.billing.rules import EndReason, charges

# (reason, delivered, per_call) → billed
TABLE = {
    (EndReason.DONE, True, False): True, (EndReason.DONE, True, True): True,
    (EndReason.DONE, False, False): True, (EndReason.DONE, False, True): True,
    (EndReason.CLIENT_GONE, True, False): True, (EndReason.CLIENT_GONE, True, True): True,
    (EndReason.CLIENT_GONE, False, False): True, (EndReason.CLIENT_GONE, False, True): True,
    (EndReason.STREAM_CUT, True, False): True, (EndReason.STREAM_CUT, True, True): False,
    (EndReason.STREAM_CUT, False, False): False, (EndReason.STREAM_CUT, False, True): False,
    # the gateway's own cut is billed like the upstream's: what was delivered, never a per-call price
    (EndReason.GATEWAY_CUT, True, False): True, (EndReason.GATEWAY_CUT, True, True): False,
    (EndReason.GATEWAY_CUT, False, False): False, (EndReason.GATEWAY_CUT, False, True): False,
    (EndReason.TIMEOUT, True, False): True, (EndReason.TIMEOUT, True, True): False,
    (EndReason.TIMEOUT, False, False): False, (EndReason.TIMEOUT, False, True): False,
    (EndReason.UPSTREAM_ERROR, True, False): True, (EndReason.UPSTREAM_ERROR, True, True): False,
    (EndReason.UPSTREAM_ERROR, False, False): False, (EndReason.UPSTREAM_ERROR, False, True): False,
    **{(reason, d, p): False for reason in (EndReason.REJECTED, EndReason.NO_CHANNEL, EndReason.ACCOUNTING_ERROR)
       for d, p in itertools.product((True, False), repeat=2)},
}


def test_the_table_covers_every_end_reason() -> None:
    assert {reason for reason, _, _ in TABLE} == set(EndReason)
    assert len(TABLE) == len(EndReason) * 4


@pytest.mark.parametrize(("reason", "delivered", "per_call"), sorted(TABLE, key=str))
def test_charges(reason: EndReason, delivered: bool, per_call: bool) -> None:
    assert charges(reason, delivered=delivered, per_call=per_call) is TABLE[(reason, delivered, per_call)]


def test_end_reason_values_are_the_stored_strings() -> None:
    assert [r.value for r in EndReason] == ["done", "client_gone", "stream_cut", "gateway_cut", "upstream_error",
                                            "timeout", "rejected", "no_channel", "accounting_error"]
