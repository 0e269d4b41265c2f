"""Signed, expiring links to a task's media, and a small cache of the files behind them.

``/mj/image/{task_id}?media=image&expires=1741571041&signature=<hex>``: the signature is an HMAC of
the task id, the media name and the expiry under a key derived from the operator's secret, so a link
cannot be made for another task or extended, and it stops working at ``expires``. Files of finished
tasks are kept in memory (least recently used first out, bounded in bytes), so that a popular image is
fetched from the upstream once, not on every view.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlencode


class SignedLinks:
    def __init__(self, key: bytes, ttl_s: float) -> None:
        self._key = key
        self._ttl_s = ttl_s

    def query(self, task_id: str, media: str, now: float | None = None) -> str:
        """The query string of a link valid for ``ttl_s`` from now (rounded up to the next minute, so
        that links made within one minute are identical and can be cached by clients)."""
        moment = time.time() if now is None else now
        expires = int((moment + self._ttl_s) // 60 + 1) * 60
        return urlencode({"media": media, "expires": expires, "signature": self._sign(task_id, media, expires)})

    def valid(self, task_id: str, media: str, expires: str, signature: str, now: float | None = None) -> bool:
        if not expires.isdigit() or len(expires) > 12:
            return False
        if int(expires) < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self._sign(task_id, media, int(expires)), signature)

    def _sign(self, task_id: str, media: str, expires: int) -> str:
        message = f"{task_id}\n{media}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedFile:
    content_type: str
    data: bytes


class MediaCache:
    """Files by URL, least recently used evicted first, at most ``max_bytes`` in all."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._files: OrderedDict[str, CachedFile] = OrderedDict()
        self._size = 0

    def get(self, url: str) -> CachedFile | None:
        found = self._files.get(url)
        if found is not None:
            self._files.move_to_end(url)
        return found

    def put(self, url: str, file: CachedFile) -> None:
        if len(file.data) > self._max_bytes // 4:
            return  # one huge file must not push everything else out
        old = self._files.pop(url, None)
        if old is not None:
            self._size -= len(old.data)
        self._files[url] = file
        self._size += len(file.data)
        while self._size > self._max_bytes and self._files:
            _, evicted = self._files.popitem(last=False)
            self._size -= len(evicted.data)
