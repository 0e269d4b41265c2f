"""How a Midjourney task and a submit answer look to the client (spec/midjourney.md §2, §6).

A task is shown as the proxy's task object (§6.1) with relaygate's own truth laid over it: relaygate's id
(never the upstream's, which would let a client address the upstream's task space), its status, progress
and times (a task relaygate ended on its deadline is FAILURE even if the upstream never said so), and
every key of new-api's relay form (§6.2) present, so a client written against new-api finds them all.
The proxy's extras (``imageUrls``, ``videoUrl``, ``mode``, ``seed``...) pass through. ``properties`` keeps
only an allow-list: the proxies put their Discord ids, nonces and the notify hook there, and the hook is
relaygate's own callback URL with its token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relaygate.scrub import Scrubber

# §6.2, in new-api's order: every one is in what a client sees.
TASK_KEYS = ("id", "action", "customId", "botType", "prompt", "promptEn", "description", "state", "submitTime",
             "startTime", "finishTime", "imageUrl", "status", "progress", "failReason", "buttons", "maskBase64",
             "properties")
# What a client may read in ``properties``: §6.2's prompts, the job hash (image-seed, ``--sref`` users), and
# what a submit answer explains itself with (§2: remix on code 21, queue length on 22, the banned word on 24).
PROPERTIES_ALLOWED = ("finalPrompt", "finalZhPrompt", "messageHash", "remix", "numberOfQueues", "bannedWord",
                      "promptEn")
# Top-level keys of an upstream object that are never shown: relaygate's callback URL (MJP-NET may echo it
# beside ``properties``) and the address the upstream saw relaygate call from.
_HIDDEN_KEYS = frozenset({"notifyHook", "clientIp"})
_TEXT_KEYS = ("customId", "botType", "promptEn", "description", "maskBase64")  # "" until the upstream says
# What an upstream says about its task's trouble: scrubbed like an error message (no URL, address, key).
_ERROR_KEYS = ("description", "failReason")
# The task's media: the client's to fetch, as the upstream names them (``image_proxy`` hides them).
_MEDIA_KEYS = frozenset({"imageUrl", "imageUrls", "videoUrl", "videoUrls", "thumbnailUrl"})


def client_task(upstream: Mapping[str, Any] | None, *, task_id: str, action: str, status: str, progress: str,
                submit_ms: int, start_ms: int | None, finish_ms: int | None, fail_reason: str | None,
                prompt: str | None, parent_id: str | None, image_url: str | None) -> dict[str, Any]:
    """The task object the client sees: the upstream's last object (None before the first sighting) under
    relaygate's own fields.

    ``action`` is relaygate's (what was billed, as new-api shows its stored action), so it does not change
    when the first poll arrives (the proxies say VARIATION for a low_variation click, UPSCALE_HD for a v6
    upscale). ``prompt`` is the upstream's when it has one (a modal's new prompt, a describe's readings),
    else the submitted one. ``imageUrl`` is ``image_url`` when given, else the upstream's.
    """
    source: Mapping[str, Any] = upstream if upstream is not None else {}
    upstream_prompt = source.get("prompt")
    shown: dict[str, Any] = {
        "id": task_id,
        "action": action,
        "customId": "",
        "botType": "",
        "prompt": upstream_prompt if isinstance(upstream_prompt, str) and upstream_prompt else (prompt or ""),
        "promptEn": "",
        "description": "",
        "state": source.get("state"),
        "submitTime": submit_ms,
        "startTime": start_ms,
        "finishTime": finish_ms,
        "imageUrl": image_url if image_url is not None else source.get("imageUrl"),
        "status": status,
        "progress": progress,
        "failReason": fail_reason or "",
        "buttons": list(source["buttons"]) if isinstance(source.get("buttons"), list) else [],
        "maskBase64": "",
        "properties": filtered_properties(source.get("properties")),
    }
    for key in _TEXT_KEYS:
        value = source.get(key)
        if value is not None:
            shown[key] = value
    for key, value in source.items():
        if key not in shown and key not in _HIDDEN_KEYS and key != "parentId":
            shown[key] = value
    if parent_id is not None or "parentId" in source:
        shown["parentId"] = parent_id  # the upstream's parentId is an upstream id: relaygate's or none
    return shown


def scrubbed_task(upstream: Mapping[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    """An upstream task object made safe to keep and show: ``description`` and ``failReason`` scrubbed as
    error text, every other string in it (prompts, ``properties``, buttons) of the channel's secrets and
    IP addresses; media URLs are left as the upstream gave them."""
    safe: dict[str, Any] = {}
    for key, value in upstream.items():
        if key in _MEDIA_KEYS:
            safe[key] = value
        elif key in _ERROR_KEYS and isinstance(value, str):
            safe[key] = scrubber.text(value)
        else:
            safe[key] = scrubber.deep(value)
    return safe


def filtered_properties(props: Any) -> dict[str, Any]:
    """The allowed keys of an upstream ``properties`` object; anything that is not an object gives ``{}``."""
    if not isinstance(props, Mapping):
        return {}
    return {key: props[key] for key in PROPERTIES_ALLOWED if key in props}


def submit_result(code: int, description: str, result: Any,
                  properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``SubmitResultVO`` (§2); ``properties`` is always there, as the proxies send it."""
    return {"code": code, "description": description, "result": result,
            "properties": dict(properties) if properties is not None else {}}


def rewrite_media(task: dict[str, Any], rewrite: Callable[[str, str], str]) -> None:
    """Replace every media URL of a task object with ``rewrite(name, url)``, in place.

    Names: ``image`` (``imageUrl``), ``image-<i>`` (``imageUrls[i].url``), ``video`` (``videoUrl``),
    ``video-<i>`` (``videoUrls[i].url``), with ``i`` counted from 0; the thumbnails too, as ``thumbnail``
    (MJP-NET's ``thumbnailUrl``), ``image-<i>-thumbnail`` and ``video-<i>-thumbnail``, since they are the
    upstream's URLs as well. Absent or empty URLs are left alone. The lists and their items are replaced by
    new ones, so a shallow copy of a stored object can be rewritten without touching the stored one.
    """
    for key, name in (("imageUrl", "image"), ("videoUrl", "video"), ("thumbnailUrl", "thumbnail")):
        url = task.get(key)
        if isinstance(url, str) and url:
            task[key] = rewrite(name, url)
    for key, name in (("imageUrls", "image"), ("videoUrls", "video")):
        items = task.get(key)
        if isinstance(items, list):
            task[key] = [_rewrite_item(item, f"{name}-{i}", rewrite) for i, item in enumerate(items)]


def _rewrite_item(item: Any, name: str, rewrite: Callable[[str, str], str]) -> Any:
    if isinstance(item, str):  # a bare URL instead of {url, thumbnail}
        return rewrite(name, item) if item else item
    if not isinstance(item, Mapping):
        return item
    out = dict(item)
    for field, media in (("url", name), ("thumbnail", f"{name}-thumbnail")):
        url = out.get(field)
        if isinstance(url, str) and url:
            out[field] = rewrite(media, url)
    return out
