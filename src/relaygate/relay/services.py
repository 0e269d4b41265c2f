"""Everything a request needs, created once in the app's lifespan and injected."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.infra.access_log import AccessLog
from relaygate.infra.snapshot import SnapshotStore
from relaygate.meter.meter import Meter
from relaygate.providers.base import Transport
from relaygate.routing.health import HealthBook
from relaygate.settings import Settings
from relaygate.storage.crypto import SecretBox
from relaygate.storage.recorder import Recorder
from relaygate.upstream.cutoff import OpenStreams


@dataclass(slots=True)
class Services:
    settings: Settings
    snapshots: SnapshotStore
    meter: Meter  # the one owner of the money: the ledger is reached only through it
    recorder: Recorder
    http: Transport
    health: HealthBook
    access_log: AccessLog
    box: SecretBox
    engine: AsyncEngine
    draining: bool = field(default=False)
    # The tokenizers' vocabularies are loaded (a thread at start, ~0.5 s, longer under load): readiness
    # waits for it, so that a balancer sends no traffic to an instance still busy with it.
    warmed_up: bool = field(default=False)
    streams: OpenStreams = field(default_factory=OpenStreams)  # what a shutdown cuts (upstream/cutoff.py)
