"""A Midjourney task's image or video through a signed, expiring link (``/mj/image/{task_id}``): the
link checked, the file found behind the task's media name, fetched from the upstream's media host (or
read from a ``data:`` URL, as the offline mock makes them) and cached once the task is final.

The signature is the grant (no key): ``infra/signed_media.py`` makes and checks it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from relaygate.dialects.midjourney.task import rewrite_media
from relaygate.errors import NotFound, PermissionDenied
from relaygate.infra.signed_media import CachedFile, MediaCache, SignedLinks
from relaygate.providers.base import UpstreamRequest
from relaygate.relay.services import Services
from relaygate.tasks import store
from relaygate.tasks.store import Row
from relaygate.upstream.attempt import Upstream

MAX_MEDIA_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TaskMedia:
    file: CachedFile
    final: bool  # the task succeeded: its media no longer change (previews of running tasks do)


class MidjourneyMedia:
    def __init__(self, services: Services, links: SignedLinks, cache: MediaCache) -> None:
        self._services = services
        self._links = links
        self._cache = cache
        self._upstream = Upstream.of(services.health, services.http, services.settings)

    async def file(self, task_id: str, media: str, expires: str, signature: str) -> TaskMedia:
        """The file behind a signed link; raises ``PermissionDenied`` for a link that is not valid (or
        expired), ``NotFound`` when the task has no such media."""
        if not self._links.valid(task_id, media, expires, signature):
            raise PermissionDenied("This image link is not valid or has expired; fetch the task again for a new one.",
                                   code="invalid_signature")
        task = await store.get(self._services.engine, task_id)
        url = media_url(task, media) if task is not None else None
        if task is None or url is None:
            raise NotFound("The task has no such image.", code="image_not_found")
        final = task["status"] == "SUCCESS"
        file = self._cache.get(url)
        if file is None:
            file = await self._download(task["channel_id"], url)
            if final:
                self._cache.put(url, file)
        return TaskMedia(file, final)

    async def _download(self, channel_id: int | None, url: str) -> CachedFile:
        services = self._services
        if url.startswith("data:"):  # the offline mock's images travel inside the task
            return _data_url(url)
        channel = services.snapshots.current.channels.get(channel_id or -1)
        if channel is None or not url.startswith(("http://", "https://")):
            raise NotFound("The task has no such image.", code="image_not_found")
        # The media host named by the operator's upstream; it gets no channel secret.
        content_type, data = await self._upstream.download(
            UpstreamRequest("GET", url, {"Accept": "image/*,video/*"}, b""), MAX_MEDIA_BYTES, "image")
        return CachedFile(content_type or "image/png", data)


def media_url(task: Row, media: str) -> str | None:
    """The upstream URL behind one of a task's media names (as ``rewrite_media`` names them)."""
    found: dict[str, str] = {}
    if task["result"]:
        copy = dict(task["result"])
        rewrite_media(copy, lambda name, url: found.setdefault(name, url))
    return found.get(media)


def _data_url(url: str) -> CachedFile:
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise NotFound("The task has no such image.", code="image_not_found")
    try:
        return CachedFile(header[5:].removesuffix(";base64") or "application/octet-stream",
                          base64.b64decode(data, validate=True))
    except ValueError as exc:
        raise NotFound("The task has no such image.", code="image_not_found") from exc
