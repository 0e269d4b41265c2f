"""Trying a call's candidate channels in order, and settling it when none answered.

A connect error, a timeout, a 429, a 5xx, or an upstream that refuses our credentials or the model
moves on to the next candidate; any other upstream 4xx is the client's to fix and ends the call.
Shared by every use case (chat, embeddings, images, image streams, Midjourney submits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from relaygate.billing.rules import EndReason
from relaygate.errors import NoChannelAvailable, UpstreamError, UpstreamRejected
from relaygate.meter.call import Call
from relaygate.meter.meter import Meter
from relaygate.routing.records import ChannelRecord
from relaygate.storage.recorder import RecorderError
from relaygate.upstream.attempt import Failure

# Statuses after which the next channel is tried: the upstream is down, overloaded, or refuses our
# credentials or the model (a channel misconfiguration), none of which the client can fix.
FAILOVER_STATUSES = frozenset({401, 403, 404, 408, 409, 429})

R = TypeVar("R")
Attempt = Callable[[ChannelRecord, str], Awaitable[R | Failure]]


async def try_in_order(call: Call, candidates: Iterable[tuple[ChannelRecord, str]], attempt: Attempt[R]) -> R | Failure:
    """The first answer of ``attempt(channel, upstream_model)`` over the candidates, else the failure
    that ended the call (``no_channel`` when there was no candidate)."""
    failure = Failure(NoChannelAvailable("No channel is available for this model right now."), EndReason.NO_CHANNEL)
    for channel, upstream_model in candidates:
        call.attempts += 1
        call.channel, call.upstream_model = channel, upstream_model
        outcome = await attempt(channel, upstream_model)
        if not isinstance(outcome, Failure):
            return outcome
        failure = outcome
        if isinstance(outcome.error, UpstreamRejected) and outcome.error.status not in FAILOVER_STATUSES:
            break
    return failure


async def settled(meter: Meter, call: Call, attempts: Awaitable[R | Failure]) -> R:
    """The answer of ``attempts``; when they failed, or raised anything (a bug, a cancelled request),
    the call is settled as failed first, so that no reservation is left open, and the error raised."""
    try:
        outcome = await attempts
    except BaseException:
        if not call.finished:
            await finish_failed(meter, call, Failure(UpstreamError("internal error"), EndReason.UPSTREAM_ERROR))
        raise
    if isinstance(outcome, Failure):
        await finish_failed(meter, call, outcome)
        raise outcome.error
    return outcome


async def finish_failed(meter: Meter, call: Call, failure: Failure) -> None:
    # Nothing was billed; if the record cannot be stored the client still gets the upstream failure.
    with contextlib.suppress(RecorderError):
        await meter.finish(call, failure.reason, status=failure.error.status, error_code=failure.error.code)
