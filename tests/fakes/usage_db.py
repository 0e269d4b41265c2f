"""Read a running gateway's SQLite database from a test: usage records and key balances.

The gateway commits a request's usage record before the response's last byte (group commit), so a
record of a completed request is there when the client has its answer; records of requests that end
without an answer (client gone) are awaited with ``wait_usage``.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any


def sqlite_path(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url}")
    return url[len("sqlite:///"):]


class GatewayDB:
    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params)]
        finally:
            conn.close()

    def usage_rows(self, request_id: str) -> list[dict[str, Any]]:
        """Records by relaygate's id (``X-Request-Id`` of the answer) or by the id the client sent."""
        return self._query("SELECT * FROM usage_records WHERE request_id = ? OR client_request_id = ?",
                           (request_id, request_id))

    def usage(self, request_id: str) -> dict[str, Any]:
        """The one usage record of this request (fails when there is none or several)."""
        rows = self.usage_rows(request_id)
        assert len(rows) == 1, f"expected exactly one usage record for {request_id}, found {len(rows)}"
        return rows[0]

    def wait_usage(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.usage_rows(request_id):
                return self.usage(request_id)
            time.sleep(0.02)
        raise AssertionError(f"no usage record for {request_id} after {timeout} s")

    def usage_with_prefix(self, prefix: str) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM usage_records WHERE substr(request_id, 1, ?) = ? "
                           "OR substr(client_request_id, 1, ?) = ? ORDER BY id", (len(prefix), prefix) * 2)

    def usage_for_key(self, key_name: str) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM usage_records WHERE key_name = ? ORDER BY id", (key_name,))

    def count_usage(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM usage_records")[0]["n"])

    def key_used(self, key_name: str) -> int:
        rows = self._query("SELECT used_nano FROM api_keys WHERE name = ?", (key_name,))
        assert len(rows) == 1, f"no key named {key_name}"
        return int(rows[0]["used_nano"])

    def key_id(self, key_name: str) -> int:
        rows = self._query("SELECT id FROM api_keys WHERE name = ?", (key_name,))
        assert len(rows) == 1, f"no key named {key_name}"
        return int(rows[0]["id"])
