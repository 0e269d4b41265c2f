"""Run relaygate as a real process for integration tests: write a config, start ``relaygate serve``,
wait until ready, and stop it with SIGTERM (which drains) when done."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

ADMIN_KEY = "rg-admin-test-credential"
SECRET = "test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    """A relaygate process. ``config`` is the YAML mapping (``listen``/``home`` are filled in)."""

    def __init__(self, home: Path, config: Mapping[str, Any], *, env: Mapping[str, str] | None = None,
                 workers: int = 1) -> None:
        self.home = home
        self.port = free_port()
        self.config = {"admin_key": ADMIN_KEY, "secret": SECRET, "access_log": True, **config,
                       "listen": f"127.0.0.1:{self.port}", "home": str(home / "data")}
        self.env = dict(env or {})
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "gateway.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> str:
        return str(self.config.get("database") or f"sqlite:///{self.home / 'data' / 'relaygate.db'}")

    def start(self, timeout: float = 30.0) -> Gateway:
        self.home.mkdir(parents=True, exist_ok=True)
        config_path = self.home / "config.yaml"
        config_path.write_text(yaml.safe_dump(self.config), encoding="utf-8")
        env = {**os.environ, **self.env}
        env.pop("RELAYGATE_ADMIN_KEY", None)
        cmd = [sys.executable, "-m", "relaygate", "--config", str(config_path), "serve"]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"relaygate exited early:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"relaygate did not become ready:\n{self.logs()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        """End the process at once (SIGKILL): no drain, as in a crash or a lost machine."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
