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
9 describe, 10 shorten, 11 swap face, 12 video, 13 video upscale, 14 edit, 15 retexture, 16 HD upscale), plus 20 for a
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

The protocol itself (routes, submit checks, result codes, buttons, the modal flow, timelines, batch queries)
is ``midjourney_sim.py``, which the tests' fake upstream also runs; this module is what the mock keeps
instead of a task table: the id codec, and results drawn from the id.

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
from enum import IntEnum
from typing import Any
from urllib.parse import urlsplit

import orjson

from relaygate.providers import midjourney_sim as sim
from relaygate.providers.base import UpstreamBodyTooLarge, UpstreamRequest
from relaygate.providers.mock_images import png

DURATION_S = 4.0  # from submit to SUCCESS/FAILURE
SUBMITTED_S = 0.5  # how long a task stays SUBMITTED (at most an eighth of the duration)
ID_DIGITS = 19
WAITING = 20  # added to a kind's code: the task waits in MODAL; /mj/submit/modal starts one of that kind
FAILING = 50  # added to a kind's code: the task ends in FAILURE
FAIL_REASON = "[mock] the prompt asked to fail"
_PROGRESS_STEPS = (0, 25, 50, 75)
_CHUNK = 64 * 1024
_SIDE = 64  # pixels: results; the four split images and previews are half that


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
    UPSCALE_HD = 16


# kind → (the proxy's task action, what a success carries: a ``midjourney_sim.Plan`` result)
_RESULTS: dict[Kind, tuple[str, str]] = {
    Kind.IMAGINE: ("IMAGINE", "grid"), Kind.UPSCALE: ("UPSCALE", "upscale"), Kind.VARIATION: ("VARIATION", "grid"),
    Kind.REROLL: ("REROLL", "grid"), Kind.PAN: ("PAN", "grid"), Kind.ZOOM: ("ZOOM", "grid"),
    Kind.INPAINT: ("INPAINT", "grid"), Kind.BLEND: ("BLEND", "grid"), Kind.DESCRIBE: ("DESCRIBE", "describe"),
    Kind.SHORTEN: ("SHORTEN", "shorten"), Kind.SWAP_FACE: ("SWAP_FACE", "image"), Kind.VIDEO: ("VIDEO", "video"),
    Kind.VIDEO_UPSCALE: ("VIDEO", "video-one"), Kind.EDIT: ("EDIT", "grid"), Kind.RETEXTURE: ("RETEXTURE", "grid"),
    Kind.UPSCALE_HD: ("UPSCALE_HD", "upscale"),
}
_KINDS = {result: kind for kind, result in _RESULTS.items()}
_KIND_CODES = frozenset(int(kind) for kind in Kind)


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


class MockMidjourneyTransport(sim.ProxySimulator[int]):
    """The offline proxy. ``duration_s``: from submit to the end of a task; ``clock``: epoch seconds (tests
    pass their own, so that they need not sleep). What it passes along with a request is the clock's reading,
    in epoch ms."""

    def __init__(self, *, duration_s: float = DURATION_S, clock: Callable[[], float] = time.time) -> None:
        if not duration_s > 0:
            raise ValueError("duration_s must be positive")
        self._duration_ms = max(1, round(duration_s * 1000))
        self._submitted_ms = min(round(SUBMITTED_S * 1000), self._duration_ms // 8)
        self._clock = clock

    async def send(self, request: UpstreamRequest) -> MockMidjourneyResponse:
        path = urlsplit(request.url).path
        _, _, endpoint = sim.split_path(path)
        now_ms = round(self._clock() * 1000)
        method = request.method.upper()
        refused = sim.route_status(method, endpoint)
        if refused is not None or endpoint is None:
            return _spring_error(refused or 404, path, now_ms)
        status, body = self.answer(method, endpoint, request.body, now_ms)
        if status == 400 and body is None:
            return _spring_error(400, path, now_ms)
        return MockMidjourneyResponse(200, b"", "") if body is sim.EMPTY else _json(status, body)

    # --- the tasks, read from their ids ---------------------------------------------------------------

    def find(self, task_id: str, ctx: int) -> sim.Known | None:
        decoded = decode_task_id(task_id)
        if decoded is None:
            return None
        action, result = _RESULTS[decoded.kind]
        status = self._phase(decoded, ctx).status
        offered = {b["customId"] for b in sim.buttons(result, message_hash(task_id))} if status == "SUCCESS" else ()
        return sim.Known(action, result, status, frozenset(offered))

    def create(self, new: sim.NewTask, ctx: int) -> dict[str, Any]:
        kind = _KINDS[new.action, new.result]
        if new.waiting:
            return sim.submit_result(21, sim.WAITING_MODAL, new_task_id(ctx, kind, waiting=True),
                                     {"finalPrompt": "", "remix": True})
        return _accepted(ctx, kind, new.prompt)

    def confirm(self, task_id: str, known: sim.Known, body: Mapping[str, Any], ctx: int) -> dict[str, Any]:
        """Being stateless, a MODAL id may be confirmed more than once, each time making a new task."""
        return _accepted(ctx, _KINDS[known.action, known.result], sim.text(body, "prompt"))

    def seed(self, task_id: str) -> str:
        return image_seed(task_id)

    def upload(self, images: list[tuple[str, bytes]]) -> list[str]:
        """There is nowhere to keep files: the images themselves are their "URLs"."""
        return [f"data:{mime};base64,{base64.b64encode(data).decode()}" for mime, data in images]

    def task_object(self, task_id: str, ctx: int) -> dict[str, Any] | None:
        return self.task(task_id, ctx)

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
            "buttons": sim.buttons(result, hash_) if done else [],
            "properties": properties,
        }
        if running and progress != "0%" and result not in ("describe", "shorten"):
            task["imageUrl"] = _data_url(_SIDE // 2, _pale(_colour(task_id), int(progress.rstrip("%"))))
        if done:
            _fill_media(task, task_id, result)
        return task

    def _phase(self, task: MockTaskId, now_ms: int) -> sim.Phase:
        if task.waiting:
            return sim.Phase("MODAL", "0%", task.submit_ms)
        phases = sim.timeline(task.submit_ms, self._duration_ms, _PROGRESS_STEPS, lead_time=self._submitted_ms,
                              failed=task.failing)
        return sim.phase_at(phases, now_ms)

    def _status(self, task: MockTaskId, now_ms: int) -> tuple[str, str]:
        phase = self._phase(task, now_ms)
        return phase.status, phase.progress


def _accepted(now_ms: int, kind: Kind, prompt: str = "") -> dict[str, Any]:
    """Code 1 with a new task of ``kind``, or code 24 for a prompt with ``--banned``; ``--fail`` marks it."""
    words = prompt.split()
    if "--banned" in words:
        raise sim.Refusal(24, sim.BANNED, properties={"promptEn": prompt.strip(), "bannedWord": "banned"})
    return sim.submit_result(1, sim.ACCEPTED, new_task_id(now_ms, kind, failing="--fail" in words))


def _spring_error(status: int, path: str, now_ms: int) -> MockMidjourneyResponse:
    return _json(status, sim.spring_error(status, path, now_ms / 1000))


def _json(status: int, body: Any) -> MockMidjourneyResponse:
    return MockMidjourneyResponse(status, orjson.dumps(body))


# --- results ------------------------------------------------------------------------------------------------

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
    return sim.numbered([f"[mock] reading {n}: a small square of colour #{r:02x}{g:02x}{b:02x}, flat and calm --ar 1:1"
                         for n in range(1, 5)])


def _shorten_prompts() -> str:
    words = ("a", "mock", "prompt", "made", "shorter", "still")
    return sim.numbered([" ".join(words[:len(words) - k]) for k in range(5)])


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
