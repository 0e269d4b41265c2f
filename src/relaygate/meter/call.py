"""The state of one relayed call, from the gate to its usage record."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relaygate.auth.records import KeyRecord
from relaygate.billing.ledger import Reservation
from relaygate.billing.pricing import Price
from relaygate.routing.records import ChannelRecord


@dataclass(slots=True)
class Call:
    request_id: str
    surface: str
    model: str
    stream: bool
    key: KeyRecord
    client_ip: str | None
    body: dict[str, Any]
    # The id the client gave its request (X-Client-Request-Id / X-Request-Id), kept beside
    # ``request_id``, which relaygate made; required so that no surface forgets to pass it on.
    client_request_id: str | None
    client_headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    dialect: str = "openai"  # the client's wire format
    price: Price | None = None
    reservation: Reservation | None = None
    channel: ChannelRecord | None = None
    upstream_model: str | None = None
    attempts: int = 0
    started: float = field(default_factory=time.monotonic)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    first_byte_at: float | None = None
    finished: bool = False

    def elapsed_ms(self, since: float | None = None) -> int:
        return int(((since if since is not None else time.monotonic()) - self.started) * 1000)


def task_call(keys_by_id: Mapping[int, KeyRecord], task: Mapping[str, Any], surface: str,
              body: dict[str, Any]) -> Call:
    """A call standing for a task's run. Its key is the snapshot's (``keys_by_id``), or, when the key
    was removed since, a stand-in with its id and name: the task was paid for at submit and must still
    end."""
    key = keys_by_id.get(task["key_id"]) or KeyRecord(id=task["key_id"], name=task["key_name"] or "", key_hash="")
    return Call(request_id=task["request_id"], surface=surface, model=task["model"], stream=False, key=key,
                client_ip=task["client_ip"], client_request_id=task["client_request_id"], body=body)
