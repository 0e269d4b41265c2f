"""What the meter's operations share: the ledger, the recorder and the access log, which no other
module reaches, and the two small operations every part of the meter uses (release, log)."""

from __future__ import annotations

from relaygate.billing.ledger import Ledger
from relaygate.infra.access_log import AccessLog
from relaygate.infra.snapshot import SnapshotStore
from relaygate.meter.call import Call
from relaygate.storage.recorder import Recorder, UsageRecord


class Books:
    """The meter's state; ``meter.Meter`` is the object the app builds (once, in its composition root)."""

    def __init__(self, ledger: Ledger, recorder: Recorder, access_log: AccessLog, snapshots: SnapshotStore, *,
                 reject_unpriced: bool) -> None:
        self._ledger = ledger
        self._recorder = recorder
        self._access_log = access_log
        self._snapshots = snapshots  # the current prices
        self._reject_unpriced = reject_unpriced

    def spent(self, key_id: int) -> int:
        """What the key has spent so far, as this process knows it (committed and settled): read-only,
        for the balance endpoints."""
        return self._ledger.spent(key_id)

    def release(self, call: Call) -> None:
        """Give the call's reservation back (idempotent): nothing of it is owed. The call is not ended."""
        if call.reservation is not None:
            self._ledger.refund(call.reservation)

    def _log(self, r: UsageRecord) -> None:
        self._access_log.write({
            "ts_ms": r.created_at_ms, "request_id": r.request_id, "client_request_id": r.client_request_id,
            "surface": r.surface, "key_id": r.key_id,
            "model": r.model, "channel": r.channel_name, "stream": r.stream, "status": r.status,
            "end": r.end_reason, "in": r.input_tokens, "out": r.output_tokens, "cost_nano": r.cost_nano,
            "images": r.images, "attempts": r.attempts, "ms": r.latency_ms, "ip": r.client_ip, "error": r.error_code,
        })
