"""How each way a request can end is billed. Pure; the table is mirrored in docs/billing.md.

``delivered`` says whether any of the answer reached the client. Token-priced calls pay for the
tokens the upstream produced for them (the upstream bills us for those too); a per-call price buys a
complete answer, so it is charged only when the answer completed or the client chose to leave.
"""

from __future__ import annotations

from enum import StrEnum


class EndReason(StrEnum):
    DONE = "done"  # the upstream finished and the client received everything
    CLIENT_GONE = "client_gone"  # the client disconnected before the end
    STREAM_CUT = "stream_cut"  # the upstream closed or broke the stream before its end
    GATEWAY_CUT = "gateway_cut"  # relaygate ended the stream itself (a shutdown's drain ran out of time)
    UPSTREAM_ERROR = "upstream_error"  # the upstream failed (before the first byte, or said so in-stream)
    TIMEOUT = "timeout"  # the upstream went quiet for longer than the read timeout
    REJECTED = "rejected"  # the upstream refused the request itself (4xx the client can fix)
    NO_CHANNEL = "no_channel"  # no candidate channel could be reached
    ACCOUNTING_ERROR = "accounting_error"  # the usage record could not be stored; the call is failed


def charges(reason: EndReason, *, delivered: bool, per_call: bool) -> bool:
    """Whether the request's usage is billed at all."""
    if reason in (EndReason.DONE, EndReason.CLIENT_GONE):
        return True
    if reason in (EndReason.STREAM_CUT, EndReason.GATEWAY_CUT, EndReason.TIMEOUT, EndReason.UPSTREAM_ERROR):
        return delivered and not per_call
    return False
