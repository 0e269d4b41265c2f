"""Serving: one process, or several workers sharing one port.

Workers are forked after the database is prepared; each binds the port with SO_REUSEPORT, so the
kernel spreads connections over them. SIGTERM stops accepting, lets in-flight requests and streams
finish (up to ``shutdown_timeout_s``; streams still open just before that are ended by the gateway with
an in-stream error, upstream/cutoff.py), commits the last usage records, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from typing import Any

from aiohttp import web

from relaygate.app import create_app
from relaygate.bootstrap import Prepared, admin_credential_note, ensure_home, load_secret, prepare
from relaygate.protocol import GatewayRunner
from relaygate.settings import Settings
from relaygate.storage.crypto import SecretBox
from relaygate.storage.engine import create_engine

log = logging.getLogger("relaygate.server")


async def prepare_database(settings: Settings, *, sync_config: bool = True) -> Prepared:
    ensure_home(settings)
    engine = create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        return await prepare(settings, engine, SecretBox(load_secret(settings)), sync=sync_config)
    finally:
        await engine.dispose()


def _event_loop_runner() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
        return asyncio.run
    return uvloop.run


async def serve_forever(settings: Settings, prepared: Prepared, *, reuse_port: bool) -> None:
    app = create_app(settings, prepared)
    runner = GatewayRunner(app, settings, access_log=None, handle_signals=False,
                           shutdown_timeout=settings.shutdown_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=4096, reuse_port=reuse_port,
                       shutdown_timeout=settings.shutdown_timeout_s)
    await site.start()
    # The objects made so far (modules, app, snapshot, vocabularies) live as long as the process: take
    # them out of the collector's sight and collect young objects less often. Measured on bench/: the
    # collector's full passes over them cost ~30% of the CPU per request (docs/performance.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("relaygate listening on http://%s (pid %d)", settings.listen, os.getpid())
    await stop.wait()
    log.info("draining in-flight requests (up to %.0f s)", settings.shutdown_timeout_s)
    await runner.cleanup()


def run(settings: Settings) -> None:
    prepared = asyncio.run(prepare_database(settings))
    show_new_admin_key(prepared)
    note = admin_credential_note(settings, prepared)
    if note:
        print(note, flush=True)
    print(f"relaygate: serving on http://{settings.listen} with {settings.workers} worker(s), "
          f"database {_describe_db(settings.database_url)}", flush=True)
    if settings.workers == 1:
        _event_loop_runner()(serve_forever(settings, prepared, reuse_port=False))
        return
    _run_workers(settings, prepared)


def show_new_admin_key(prepared: Prepared) -> None:
    if prepared.new_admin_key:
        print("relaygate: generated the admin credential; it is shown only this once:", flush=True)
        print(f"  RELAYGATE_ADMIN_KEY={prepared.new_admin_key}", flush=True)
        print("  (use it as 'Authorization: Bearer …' on /api; 'relaygate admin-key reset' makes a new one)",
              flush=True)


def _describe_db(url: str) -> str:
    return url if url.startswith("sqlite") else url.split("@")[-1].split("?")[0]


def _check_port_free(settings: Settings) -> None:
    with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((settings.host, settings.port))


def _run_workers(settings: Settings, prepared: Prepared) -> None:
    _check_port_free(settings)
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _event_loop_runner()(serve_forever(settings, prepared, reuse_port=True))
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = False
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
            forward(signal.SIGTERM, None)
    if failed:
        raise SystemExit(1)
