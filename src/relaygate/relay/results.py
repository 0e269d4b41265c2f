"""What a use case hands its surface: a whole answer (``JsonResult``) or a stream (``StreamResult``, whose
body may end with a ``FinalFrame``). Made in ``upstream/``; named here so that surfaces know the use
cases only."""

from __future__ import annotations

from relaygate.upstream.exchange import JsonResult, RelayResult
from relaygate.upstream.stream import FinalFrame, StreamResult

__all__ = ["FinalFrame", "JsonResult", "RelayResult", "StreamResult"]
