"""The built-in offline midjourney-proxy: the task API of spec/midjourney.md answered in process, so a new
operator can try relaygate's ``/mj`` API without a Midjourney account, as the ``mock`` channel lets them
try chat and images.

Configure a ``midjourney`` channel with ``options: {mock: true}`` and no ``base_url``; relaygate then
sends that channel's requests to ``mock://midjourney/mj/...`` (behind a mode prefix, ``/mj-relax/mj/...``,
when the channel forwards it; the mock serves the same under any prefix). Any ``mj-api-secret`` is
accepted, or none: nothing leaves the process.

No state. relaygate may run several worker processes and instances, and the one that polls a task need
not be the one that submitted it, so everything about a task is in its id and the clock. An id is 19
digits, ``<submit time, epoch ms, 13 digits><kind code, 2 digits><4 random digits>``: the code is the
kind of task (1 imagine, 2 upscale, 3 variation, 4 reroll, 5 pan, 6 zoom, 7 inpaint, 8 blend,
9 describe, 10 shorten, 11 swap face, 12 video, 13 video upscale, 14 edit, 15 retexture), plus 20 for a
task waiting in ``MODAL`` for that kind, plus 50 for a task that will fail. Every query reads the id
again; an id the mock cannot read is an unknown task.

Time. A task is ``SUBMITTED`` ("0%") for its first half second (an eighth of a duration under 4 s),
``IN_PROGRESS`` at "0%", "25%", "50%" and "75%" evenly over the rest, and ``SUCCESS`` ("100%")
``DURATION_S`` (4 s) after its submit — or
``FAILURE`` (progress "", ``failReason`` "[mock] the prompt asked to fail") when its prompt held the word
``--fail``. A prompt holding ``--banned`` is refused at submit with code 24 (``properties.promptEn``,
``bannedWord``) and makes no task.

Results. Images are small real PNGs of one colour derived from the id, as ``data:image/png;base64,...``
URLs (there is nowhere to host files): a running task past "0%" shows a paler preview; a grid
(imagine, variation, reroll, pan, zoom, inpaint, blend, edit) has ``imageUrl`` and four ``imageUrls``
and the buttons U1–U4, 🔄, V1–V4; an upscale has the upscale, Vary (Subtle/Strong/Region), Zoom Out
2x/1.5x, Custom Zoom, pan and Animate buttons; describe has four numbered readings in
``properties.finalPrompt`` and the PicReader 1–4 and retry buttons; shorten five numbered candidates and
PromptAnalyzer 1–5; video tasks have ``videoUrl`` and ``videoUrls`` — a PNG frame stands in for the
video — and the video upscale and extend buttons. ``properties.messageHash`` (the ``<hash>`` of the
buttons' customIds) is a UUID derived from the id. The mock never echoes what a request said: ``prompt``
and ``promptEn`` are "", ``state`` null, ``finalPrompt`` "" for images (relaygate shows its own record).

Endpoints. ``POST /mj/submit/imagine``, ``blend`` (2–5 images), ``describe``, ``shorten``, ``video``
(also ``action: "extend"`` of a finished video task), ``edits``/``edit``, ``retexture``,
``/mj/insight-face/swap``: code 1 "提交成功" with the new id; a missing prompt is code 4 "prompt不能为空",
a bad image "base64格式错误". ``action`` (``taskId`` + ``customId``), ``change`` and ``simple-change``
(``"<id> U1"``) need a parent that has succeeded (else code 4 "关联任务状态错误"; an id the mock did not
make: HTTP 404, code 3) and, for ``action``, one of its buttons. Vary (Region) and Custom Zoom — and any
V/pan/reroll/animate button with ``enableRemix: true`` — answer code 21 "Waiting for window confirm",
``properties {finalPrompt: "", remix: true}``, with an id that stays ``MODAL``; ``/mj/submit/modal`` on
it (Vary Region needs ``maskBase64``) answers code 1 with a new id, which runs like any task (the prompt
markers apply to the modal's prompt). Being stateless, the mock lets a MODAL id be confirmed more than
once, each time making a new task. ``upload-discord-images`` answers the images it was given as its
"URLs". ``POST /mj/task/list-by-condition`` (and ``list-by-ids``) lists the ids it can read, skipping
others; ``GET /mj/task/{id}/fetch`` is the task, or HTTP 200 with an empty body; ``GET
/mj/task/{id}/image-seed`` is code 1 with a seed derived from the id once the task has succeeded, HTTP
400 code 4 before. Anything else is a Spring-style HTTP 404 (405 for a wrong method, 400 for a body that
is not a JSON object).

Every worker and instance must use the same duration (``MockMidjourneyTransport(duration_s=...)``; tests
also pass a ``clock``), since each one works out a task's status from its id alone.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any
from urllib.parse import urlsplit

import orjson

from relaygate.providers.base import UpstreamBodyTooLarge, UpstreamRequest
from relaygate.providers.mock_images import png

DURATION_S = 4.0  # from submit to SUCCESS/FAILURE
SUBMITTED_S = 0.5  # how long a task stays SUBMITTED (at most an eighth of the duration)
ID_DIGITS = 19
WAITING = 20  # added to a kind's code: the task waits in MODAL; /mj/submit/modal starts one of that kind
FAILING = 50  # added to a kind's code: the task ends in FAILURE
FAIL_REASON = "[mock] the prompt asked to fail"
ACCEPTED = "提交成功"
WAITING_MODAL = "Waiting for window confirm"
BAD_STATE = "关联任务状态错误"
NOT_FOUND = "关联任务不存在或已失效"
BAD_BASE64 = "base64格式错误"
BAD_PARAMETER = "参数错误"
NO_PROMPT = "prompt不能为空"
BANNED = "可能包含敏感词"
_PROGRESS_STEPS = (0, 25, 50, 75)
_NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
_CHUNK = 64 * 1024
_SIDE = 64  # pixels: results; the four split images and previews are half that
_HTTP_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class Kind(IntEnum):
    """What a task is: its action and what its success carries. The value is its code in the id."""

    IMAGINE = 1
    UPSCALE = 2
    VARIATION = 3
    REROLL = 4
    PAN = 5
    ZOOM = 6
    INPAINT = 7
    BLEND = 8
    DESCRIBE = 9
    SHORTEN = 10
    SWAP_FACE = 11
    VIDEO = 12
    VIDEO_UPSCALE = 13
    EDIT = 14
    RETEXTURE = 15


# kind → (the proxy's task action, what a success carries)
_RESULTS: dict[Kind, tuple[str, str]] = {
    Kind.IMAGINE: ("IMAGINE", "grid"), Kind.UPSCALE: ("UPSCALE", "upscale"), Kind.VARIATION: ("VARIATION", "grid"),
    Kind.REROLL: ("REROLL", "grid"), Kind.PAN: ("PAN", "grid"), Kind.ZOOM: ("ZOOM", "grid"),
    Kind.INPAINT: ("INPAINT", "grid"), Kind.BLEND: ("BLEND", "grid"), Kind.DESCRIBE: ("DESCRIBE", "describe"),
    Kind.SHORTEN: ("SHORTEN", "shorten"), Kind.SWAP_FACE: ("SWAP_FACE", "image"), Kind.VIDEO: ("VIDEO", "video"),
    Kind.VIDEO_UPSCALE: ("VIDEO", "video-one"), Kind.EDIT: ("EDIT", "grid"), Kind.RETEXTURE: ("RETEXTURE", "grid"),
}
_KIND_CODES = frozenset(int(kind) for kind in Kind)
_GRID_PARENTS = frozenset({Kind.IMAGINE, Kind.VARIATION, Kind.REROLL, Kind.BLEND})  # what change/simple-change take
_CHANGES = {"UPSCALE": Kind.UPSCALE, "VARIATION": Kind.VARIATION, "REROLL": Kind.REROLL}


@dataclass(frozen=True, slots=True)
class MockTaskId:
    """What a mock task id says."""

    submit_ms: int
    kind: Kind
    waiting: bool = False  # MODAL until /mj/submit/modal (which makes a new task of ``kind``)
    failing: bool = False  # ends in FAILURE

    @property
    def code(self) -> int:
        return int(self.kind) + (WAITING if self.waiting else 0) + (FAILING if self.failing else 0)


def new_task_id(submit_ms: int, kind: Kind, *, waiting: bool = False, failing: bool = False) -> str:
    """A fresh id: ``<submit ms, 13 digits><code, 2 digits><4 random digits>``."""
    code = MockTaskId(submit_ms, kind, waiting, failing).code
    return f"{submit_ms:013d}{code:02d}{secrets.randbelow(10_000):04d}"


def decode_task_id(task_id: str) -> MockTaskId | None:
    """What ``task_id`` says, or None for an id the mock did not make."""
    if len(task_id) != ID_DIGITS or not task_id.isascii() or not task_id.isdigit():
        return None
    code = int(task_id[13:15])
    failing, waiting = code > FAILING, WAITING < code < FAILING
    base = code - (FAILING if failing else WAITING if waiting else 0)
    if base not in _KIND_CODES:
        return None
    return MockTaskId(int(task_id[:13]), Kind(base), waiting, failing)


def message_hash(task_id: str) -> str:
    """The task's Midjourney job hash (``properties.messageHash``, the ``<hash>`` of its buttons)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"relaygate-mock-midjourney:{task_id}"))


def image_seed(task_id: str) -> str:
    digest = hashlib.sha256(f"{task_id}:seed".encode()).digest()
    return str(int.from_bytes(digest[:4], "big"))


class MockMidjourneyResponse:
    """An answer of the mock, whole in memory (implements ``UpstreamResponse``)."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status = status
        self.content_type = content_type
        self._body = body

    async def read(self, limit: int) -> bytes:
        if len(self._body) > limit:
            raise UpstreamBodyTooLarge()
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._body), _CHUNK):
            yield self._body[start:start + _CHUNK]

    def close(self) -> None:
        self._body = b""


class _Refusal(Exception):
    """A submit the proxy answers with a failing SubmitResultVO."""

    def __init__(self, code: int, description: str, *, http_status: int = 200,
                 properties: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.http_status = http_status
        self.properties = properties or {}


_Handler = Callable[[dict[str, Any], int], dict[str, Any]]


class MockMidjourneyTransport:
    """The offline proxy. ``duration_s``: from submit to the end of a task; ``clock``: epoch seconds (tests
    pass their own, so that they need not sleep)."""

    def __init__(self, *, duration_s: float = DURATION_S, clock: Callable[[], float] = time.time) -> None:
        if not duration_s > 0:
            raise ValueError("duration_s must be positive")
        self._duration_ms = max(1, round(duration_s * 1000))
        self._submitted_ms = min(round(SUBMITTED_S * 1000), self._duration_ms // 8)
        self._clock = clock
        self._submits: dict[str, _Handler] = {
            "submit/imagine": self._imagine, "submit/action": self._action, "submit/modal": self._modal,
            "submit/blend": self._blend, "submit/describe": self._describe, "submit/shorten": self._shorten,
            "submit/video": self._video, "submit/upload-discord-images": self._upload,
            "submit/change": self._change, "submit/simple-change": self._simple_change,
            "submit/edits": self._edit, "submit/edit": self._edit, "submit/retexture": self._retexture,
            "insight-face/swap": self._swap_face,
        }

    async def send(self, request: UpstreamRequest) -> MockMidjourneyResponse:
        path = urlsplit(request.url).path
        at = path.find("/mj/")
        endpoint = path[at + len("/mj/"):].strip("/") if at >= 0 else ""
        now_ms = round(self._clock() * 1000)
        method = request.method.upper()
        parts = endpoint.split("/")
        if len(parts) == 3 and parts[0] == "task" and parts[2] in ("fetch", "image-seed"):
            if method != "GET":
                return self._spring_error(405, path, now_ms)
            return self._fetch(parts[1], now_ms) if parts[2] == "fetch" else self._seed(parts[1], now_ms)
        listing = endpoint in ("task/list-by-condition", "task/list-by-ids")
        handler = self._submits.get(endpoint)
        if handler is None and not listing:
            return self._spring_error(404, path, now_ms)
        if method != "POST":
            return self._spring_error(405, path, now_ms)
        body = _json_object(request.body)
        if body is None:
            return self._spring_error(400, path, now_ms)
        if listing:
            ids = body.get("ids")
            found = [self.task(i, now_ms) for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
            return _json(200, [t for t in found if t is not None])
        assert handler is not None
        try:
            return _json(200, handler(body, now_ms))
        except _Refusal as refusal:
            return _json(refusal.http_status, _result(refusal.code, refusal.description, None, refusal.properties))

    # --- tasks ----------------------------------------------------------------------------------------

    def task(self, task_id: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """The task object (spec §6.1) ``task_id`` stands for at ``now_ms`` (default: the clock's now);
        None for an id the mock did not make."""
        decoded = decode_task_id(task_id)
        if decoded is None:
            return None
        now = round(self._clock() * 1000) if now_ms is None else now_ms
        status, progress = self._status(decoded, now)
        action, result = _RESULTS[decoded.kind]
        done = status == "SUCCESS"
        running = status == "IN_PROGRESS"
        hash_ = message_hash(task_id)
        properties: dict[str, Any] = {"finalPrompt": "", "finalZhPrompt": ""}
        if decoded.waiting:
            properties["remix"] = True
        if done:
            properties["messageHash"] = hash_
            if result == "describe":
                properties["finalPrompt"] = _describe_prompts(task_id)
            elif result == "shorten":
                properties["finalPrompt"] = _shorten_prompts()
        task: dict[str, Any] = {
            "id": task_id, "action": action, "customId": "",
            "botType": "INSIGHT_FACE" if decoded.kind is Kind.SWAP_FACE else "MID_JOURNEY",
            "prompt": "", "promptEn": "", "description": f"/{action.lower().replace('_', ' ')}", "state": None,
            "submitTime": decoded.submit_ms,
            "startTime": decoded.submit_ms + self._submitted_ms if status not in ("SUBMITTED", "MODAL") else None,
            "finishTime": decoded.submit_ms + self._duration_ms if status in ("SUCCESS", "FAILURE") else None,
            "imageUrl": None, "imageUrls": None, "videoUrl": None, "videoUrls": None,
            "status": status, "progress": progress,
            "failReason": FAIL_REASON if status == "FAILURE" else "",
            "buttons": _buttons(decoded.kind, hash_) if done else [],
            "properties": properties,
        }
        if running and progress != "0%" and result not in ("describe", "shorten"):
            task["imageUrl"] = _data_url(_SIDE // 2, _pale(_colour(task_id), int(progress.rstrip("%"))))
        if done:
            _fill_media(task, task_id, result)
        return task

    def _status(self, task: MockTaskId, now_ms: int) -> tuple[str, str]:
        if task.waiting:
            return "MODAL", "0%"
        elapsed = now_ms - task.submit_ms
        if elapsed >= self._duration_ms:
            return ("FAILURE", "") if task.failing else ("SUCCESS", "100%")
        if elapsed < self._submitted_ms:
            return "SUBMITTED", "0%"
        running_ms = self._duration_ms - self._submitted_ms
        step = min((elapsed - self._submitted_ms) * len(_PROGRESS_STEPS) // running_ms, len(_PROGRESS_STEPS) - 1)
        return "IN_PROGRESS", f"{_PROGRESS_STEPS[step]}%"

    def _parent(self, task_id: str, now_ms: int) -> MockTaskId:
        """The task an action continues: one the mock made, finished with SUCCESS."""
        decoded = decode_task_id(task_id)
        if decoded is None:
            raise _Refusal(3, NOT_FOUND, http_status=404)
        if self._status(decoded, now_ms)[0] != "SUCCESS":
            raise _Refusal(4, BAD_STATE)
        return decoded

    # --- queries --------------------------------------------------------------------------------------

    def _fetch(self, task_id: str, now_ms: int) -> MockMidjourneyResponse:
        task = self.task(task_id, now_ms)
        return MockMidjourneyResponse(200, b"", "") if task is None else _json(200, task)

    def _seed(self, task_id: str, now_ms: int) -> MockMidjourneyResponse:
        decoded = decode_task_id(task_id)
        if decoded is None:
            return _json(404, _result(3, "任务不存在"))
        if self._status(decoded, now_ms)[0] != "SUCCESS":
            return _json(400, _result(4, "任务未完成，无 messageHash"))
        return _json(200, _result(1, "成功", image_seed(task_id)))

    def _spring_error(self, status: int, path: str, now_ms: int) -> MockMidjourneyResponse:
        """What Spring Boot answers for a path or method it has no handler for."""
        stamp = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="milliseconds")
        return _json(status, {"timestamp": stamp, "status": status, "error": _HTTP_REASONS[status], "path": path})

    # --- submits --------------------------------------------------------------------------------------

    def _imagine(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        prompt = _prompt(body)
        _data_uris(body.get("base64Array"), minimum=0)
        _optional_data_uri(body, "base64")
        return _accepted(now_ms, Kind.IMAGINE, prompt)

    def _shorten(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return _accepted(now_ms, Kind.SHORTEN, _prompt(body))

    def _edit(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return self._edit_kind(body, now_ms, Kind.EDIT)

    def _retexture(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return self._edit_kind(body, now_ms, Kind.RETEXTURE)

    def _edit_kind(self, body: dict[str, Any], now_ms: int, kind: Kind) -> dict[str, Any]:
        prompt = _prompt(body)
        if not _text(body, "image"):
            raise _Refusal(4, "image不能为空")
        return _accepted(now_ms, kind, prompt)

    def _blend(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            raise _Refusal(4, "base64List参数错误")
        _data_uris(images, minimum=2)
        if body.get("dimensions", "SQUARE") not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
            raise _Refusal(4, "dimensions参数错误")
        return _accepted(now_ms, Kind.BLEND)

    def _describe(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        if _optional_data_uri(body, "base64") is None and not _text(body, "link"):
            raise _Refusal(4, "base64或link不能为空")
        return _accepted(now_ms, Kind.DESCRIBE)

    def _swap_face(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        for side in ("source", "target"):
            if _optional_data_uri(body, f"{side}Base64") is None and not _text(body, f"{side}Url"):
                raise _Refusal(4, f"{side}Base64或{side}Url不能为空")
        return _accepted(now_ms, Kind.SWAP_FACE)

    def _video(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        prompt = _prompt(body)
        if body.get("motion", "low") not in ("low", "high"):
            raise _Refusal(4, BAD_PARAMETER)
        action = body.get("action")
        if action == "extend":
            index = body.get("index")
            if not _text(body, "taskId") or not isinstance(index, int) or isinstance(index, bool):
                raise _Refusal(4, BAD_PARAMETER)
            if self._parent(_text(body, "taskId"), now_ms).kind not in (Kind.VIDEO, Kind.VIDEO_UPSCALE):
                raise _Refusal(4, BAD_STATE)
        elif action not in (None, ""):
            raise _Refusal(4, BAD_PARAMETER)
        return _accepted(now_ms, Kind.VIDEO, prompt)

    def _upload(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        images = body.get("base64Array")
        if not isinstance(images, list) or not images:
            raise _Refusal(4, "base64 参数错误")
        return _result(1, ACCEPTED, _data_uris(images, minimum=1))

    def _action(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        task_id, custom_id = _text(body, "taskId"), _text(body, "customId")
        if not task_id or not custom_id:
            raise _Refusal(4, BAD_PARAMETER)
        parent = self._parent(task_id, now_ms)
        if custom_id not in {b["customId"] for b in _buttons(parent.kind, message_hash(task_id))}:
            raise _Refusal(4, "customId 不存在")
        plan = _plan(custom_id)
        if plan is None:
            raise _Refusal(4, "customId 不存在")
        kind, modal, remixable = plan
        if modal or (remixable and body.get("enableRemix") is True):
            return _result(21, WAITING_MODAL, new_task_id(now_ms, kind, waiting=True),
                           {"finalPrompt": "", "remix": True})
        return _result(1, ACCEPTED, new_task_id(now_ms, kind))

    def _modal(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        task_id = _text(body, "taskId")
        if not task_id:
            raise _Refusal(4, BAD_PARAMETER)
        waiting = decode_task_id(task_id)
        if waiting is None:
            raise _Refusal(3, NOT_FOUND, http_status=404)
        if not waiting.waiting:
            raise _Refusal(4, BAD_STATE)
        mask = _optional_data_uri(body, "maskBase64")
        if waiting.kind is Kind.INPAINT and mask is None:
            raise _Refusal(4, "maskBase64不能为空")
        return _accepted(now_ms, waiting.kind, _text(body, "prompt"))

    def _change(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return self._legacy_change(_text(body, "taskId"), body.get("action"), body.get("index"), now_ms)

    def _simple_change(self, body: dict[str, Any], now_ms: int) -> dict[str, Any]:
        words = _text(body, "content").split()
        change = words[1].upper() if len(words) == 2 else ""
        if change not in ("R", *(f"{letter}{n}" for letter in "UV" for n in range(1, 5))):
            raise _Refusal(4, "content 参数错误")
        action = {"U": "UPSCALE", "V": "VARIATION", "R": "REROLL"}[change[0]]
        return self._legacy_change(words[0], action, int(change[1]) if len(change) == 2 else None, now_ms)

    def _legacy_change(self, task_id: str, action: Any, index: Any, now_ms: int) -> dict[str, Any]:
        """MJP-OSS ``/submit/change``: U/V by index, or reroll, of a grid task."""
        if not task_id:
            raise _Refusal(4, "taskId不能为空")
        if action not in _CHANGES:
            raise _Refusal(4, "action参数错误")
        if action != "REROLL" and (not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= 4):
            raise _Refusal(4, "index参数错误")
        if self._parent(task_id, now_ms).kind not in _GRID_PARENTS:
            raise _Refusal(4, "关联任务不允许执行变化")
        return _result(1, ACCEPTED, new_task_id(now_ms, _CHANGES[action]))


# --- submit helpers -----------------------------------------------------------------------------------------

def _accepted(now_ms: int, kind: Kind, prompt: str = "") -> dict[str, Any]:
    """Code 1 with a new task of ``kind``, or code 24 for a prompt with ``--banned``; ``--fail`` marks it."""
    words = prompt.split()
    if "--banned" in words:
        raise _Refusal(24, BANNED, properties={"promptEn": prompt.strip(), "bannedWord": "banned"})
    return _result(1, ACCEPTED, new_task_id(now_ms, kind, failing="--fail" in words))


def _plan(custom_id: str) -> tuple[Kind, bool, bool] | None:
    """(the kind of task a button makes, whether it always waits for a modal, whether remix makes it wait)."""
    parts = custom_id.split("::")
    job = len(parts) > 2 and parts[1] in ("JOB", "Job")
    token = parts[2] if job else parts[1] if len(parts) > 1 else ""
    fixed = {"Inpaint": (Kind.INPAINT, True, False), "CustomZoom": (Kind.ZOOM, True, False),
             "Outpaint": (Kind.ZOOM, False, False), "PicReader": (Kind.IMAGINE, False, False),
             "PromptAnalyzer": (Kind.IMAGINE, False, False), "Picread": (Kind.DESCRIBE, False, False),
             "video_virtual_upscale": (Kind.VIDEO_UPSCALE, False, False), "reroll": (Kind.REROLL, False, True),
             "variation": (Kind.VARIATION, False, True), "low_variation": (Kind.VARIATION, False, True),
             "high_variation": (Kind.VARIATION, False, True)}
    if token in fixed:
        return fixed[token]
    if token.startswith("animate_"):
        return Kind.VIDEO, False, True
    if token.startswith("pan_"):
        return Kind.PAN, False, True
    if "upsample" in token:
        return Kind.UPSCALE, False, False
    return None


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    return value.strip() if isinstance(value, str) else ""


def _prompt(body: Mapping[str, Any]) -> str:
    prompt = _text(body, "prompt")
    if not prompt:
        raise _Refusal(4, NO_PROMPT)
    return prompt


def _is_data_uri(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("data:") and ";base64," in value


def _data_uris(value: Any, *, minimum: int) -> list[str]:
    """A list of data-URI images (absent: none), as the proxies check them (the prefix; MJP-OSS's code 4)."""
    images = [] if value is None else value
    if not isinstance(images, list) or len(images) < minimum or not all(_is_data_uri(i) for i in images):
        raise _Refusal(4, BAD_BASE64)
    return [str(i) for i in images]


def _optional_data_uri(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not _is_data_uri(value):
        raise _Refusal(4, BAD_BASE64)
    return str(value)


def _result(code: int, description: str, result: Any = None,
            properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The SubmitResultVO (spec §2)."""
    return {"code": code, "description": description, "result": result, "properties": dict(properties or {})}


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """A POST's JSON object; ``{}`` for no body; None for a body that is not an object."""
    if not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _json(status: int, body: Any) -> MockMidjourneyResponse:
    return MockMidjourneyResponse(status, orjson.dumps(body))


# --- results ------------------------------------------------------------------------------------------------

def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def _buttons(kind: Kind, h: str) -> list[dict[str, Any]]:
    """The buttons of a finished task (spec §6.3), by what it produced."""
    result = _RESULTS[kind][1]
    if result == "grid":
        return [*(_button(f"MJ::JOB::upsample::{n}::{h}", f"U{n}") for n in range(1, 5)),
                _button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="🔄"),
                *(_button(f"MJ::JOB::variation::{n}::{h}", f"V{n}") for n in range(1, 5))]
    if result == "upscale":
        return [
            _button(f"MJ::JOB::upsample_v6r1_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)"),
            _button(f"MJ::JOB::upsample_v6r1_2x_creative::1::{h}::SOLO", "Upscale (Creative)"),
            _button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
            _button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
            _button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
            _button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
            _button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
            _button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
            *(_button(f"MJ::JOB::pan_{side}::1::{h}::SOLO", emoji=arrow)
              for side, arrow in (("left", "⬅️"), ("right", "➡️"), ("up", "⬆️"), ("down", "⬇️"))),
            _button(f"MJ::JOB::animate_high::1::{h}::SOLO", "Animate (High motion)", "🎞️"),
            _button(f"MJ::JOB::animate_low::1::{h}::SOLO", "Animate (Low motion)", "🎞️"),
        ]
    if result == "describe":
        return [*(_button(f"MJ::Job::PicReader::{n}", str(n)) for n in range(1, 5)),
                _button("MJ::Picread::Retry", emoji="🔄")]
    if result == "shorten":
        return [_button(f"MJ::Job::PromptAnalyzer::{n}", str(n)) for n in range(1, 6)]
    if result in ("video", "video-one"):
        videos = range(1, 5) if result == "video" else range(1, 2)
        upscale = [_button(f"MJ::JOB::video_virtual_upscale::{n}::{h}", f"U{n}") for n in videos] \
            if result == "video" else []
        return [*upscale,
                *(_button(f"MJ::JOB::animate_{motion}_extend::{n}::{h}::SOLO", f"Extend {motion.title()} {n}")
                  for n in videos for motion in ("high", "low"))]
    return []


def _fill_media(task: dict[str, Any], task_id: str, result: str) -> None:
    """The images (and stand-in videos) of a finished task."""
    if result == "shorten":
        return
    own = _data_url(_SIDE, _colour(task_id))
    task["imageUrl"] = own
    if result == "grid":
        splits = [_data_url(_SIDE // 2, _colour(f"{task_id}:{n}")) for n in range(1, 5)]
        task["imageUrls"] = [{"url": url, "thumbnail": url} for url in splits]
    elif result in ("video", "video-one"):
        count = 4 if result == "video" else 1
        frames = [_data_url(_SIDE, _colour(f"{task_id}:{n}")) for n in range(1, count + 1)]
        task["videoUrl"] = frames[0]
        task["videoUrls"] = [{"url": frame, "thumbnail": frame} for frame in frames]


def _describe_prompts(task_id: str) -> str:
    r, g, b = _colour(task_id)
    return "\n\n".join(f"{_NUMBERS[n - 1]} [mock] reading {n}: a small square of colour #{r:02x}{g:02x}{b:02x}, "
                       f"flat and calm --ar 1:1" for n in range(1, 5))


def _shorten_prompts() -> str:
    words = ("a", "mock", "prompt", "made", "shorter", "still")
    return "\n\n".join(f"{_NUMBERS[k]} {' '.join(words[:len(words) - k])}" for k in range(5))


def _colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


def _pale(rgb: tuple[int, int, int], percent: int) -> tuple[int, int, int]:
    """A preview's colour: the result's, mixed with grey the less the further along."""
    r, g, b = (round(128 + (c - 128) * percent / 100) for c in rgb)
    return r, g, b


@functools.lru_cache(maxsize=512)
def _data_url(side: int, rgb: tuple[int, int, int]) -> str:
    return "data:image/png;base64," + base64.b64encode(png(side, side, rgb)).decode()
