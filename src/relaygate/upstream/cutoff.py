"""The streams this process relays, so that a shutdown can end them itself.

On SIGTERM in-flight streams get ``shutdown_timeout_s`` to finish. aiohttp cancels whatever is still
running after that, which ends a stream without a word to the client and looks, to the stream, like a
client that left. Instead, shortly before the timeout, every open stream's upstream response is
closed: the stream sees its upstream end, asks ``cut`` why, and ends with the client's in-stream
``gateway_shutdown`` error and a usage record whose end reason is ``gateway_cut`` (docs/billing.md).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

# The part of the drain kept back for cut streams to send their error event and commit their record.
_CUT_MARGIN_S = 2.0
_CUT_MARGIN_SHARE = 0.25


class Closable(Protocol):
    def close(self) -> None: ...


def cut_delay(shutdown_timeout_s: float) -> float:
    """How long after the drain starts open streams are cut: a little before ``shutdown_timeout_s``."""
    return max(0.0, shutdown_timeout_s - min(_CUT_MARGIN_S, shutdown_timeout_s * _CUT_MARGIN_SHARE))


class OpenStreams:
    def __init__(self) -> None:
        self._open: set[Closable] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.cut = False  # once true, a stream that ends early was ended by the gateway

    def add(self, upstream: Closable) -> None:
        """Track a stream's upstream response; one that opens after the cut is closed at once."""
        if self.cut:
            upstream.close()
            return
        self._open.add(upstream)

    def discard(self, upstream: Closable) -> None:
        self._open.discard(upstream)

    def cut_all(self) -> None:
        self.cut = True
        for upstream in list(self._open):
            upstream.close()
        self._open.clear()

    def cut_later(self, shutdown_timeout_s: float) -> None:
        """Schedule ``cut_all`` for a little before the drain's end (called when the drain starts)."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(cut_delay(shutdown_timeout_s), self.cut_all)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
