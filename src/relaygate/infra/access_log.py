"""The structured access log: one JSON line per request, batched into few writes.

Lines carry ids, names, counts and money, never keys, prompts or upstream URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import IO, Any

import orjson


class AccessLog:
    def __init__(self, stream: IO[bytes] | None = None, *, enabled: bool = True, flush_s: float = 0.05) -> None:
        self._stream = stream if stream is not None else sys.stderr.buffer
        self._enabled = enabled
        self._flush_s = flush_s
        self._lines: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    def write(self, fields: dict[str, Any]) -> None:
        if self._enabled:
            self._lines.append(orjson.dumps(fields) + b"\n")

    def start(self) -> None:
        if self._enabled:
            self._task = asyncio.create_task(self._run(), name="relaygate-access-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self._stream.write(b"".join(lines))
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed log stream must not take requests down

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            self.flush()
