"""A fake midjourney-proxy upstream: a real HTTP server on loopback that speaks the task API of
spec/midjourney.md (the MJP-OSS base plus the "plus"/MJP-NET additions a relay forwards), keeps its tasks in
memory, moves them through their statuses over time, calls their ``notifyHook`` and fails on demand.

The protocol (routes, submit checks, result codes, buttons, modal flow, change, timelines, batch queries) is
relaygate's own ``providers/midjourney_sim.py``, which the built-in offline mock also runs; this module is
the HTTP server around it, the task store, the files, and the test-only switches (failures, echo, delays,
remix, queueing, callbacks, the clock).

Paths: every endpoint under ``/mj/...``, also behind a mode prefix (``/mj-fast/mj/...``, ``/mj-relax/mj/...``,
``/mj-turbo/mj/...``; recorded as ``MjRequest.mode``, and it sets the task's ``mode``) and behind one channel
segment before either (``{fake.url}/a`` as a channel's ``base_url`` reaches ``/a/mj/...``; recorded as
``prefix``, and it chooses the behaviour, as in the other fakes). The images and videos of finished tasks and
the files of ``upload-discord-images`` are served, without auth, from ``/images``, ``/videos`` and
``/attachments``: a gateway can proxy them.

Auth: ``mj-api-secret`` must equal ``FakeMidjourney(api_secret=...)`` (default ``"mj-secret"``; None: no
check). A missing or wrong secret gets MJP-OSS's HTTP 401 with an empty body, or with ``auth_failure="net"``
MJP-NET's HTTP 403 ``未登录``.

Time: a task's statuses are computed on read from when it started (its submit, or the modal confirm), so
what a poll sees is deterministic: SUBMITTED "0%", then IN_PROGRESS at each of ``Behavior.progress_steps``,
then SUCCESS "100%" (or FAILURE ""), ``duration_s`` after the start, evenly spaced. A task accepted with code
22 spends the first step in NOT_START. The clock is the wall clock plus ``advance()``; ``finish()`` and
``finish_all()`` end tasks at once. A task with a notifyHook (its own, or the fake's global ``notify_hook``)
gets the whole task object POSTed there for every status/progress it went through, in order, best effort.

Behaviour is chosen per submit, most specific first: an ``"x_fake"`` object in the body, the next one
scripted for the channel prefix (``script`` / ``next_submit``; only submits take them, so a gateway's
polling cannot eat them), the one set for the prefix (``set``, which also governs fetches and lists). Prompt
markers: ``--fail`` (the task ends FAILURE), ``--banned`` (code 24), ``--queue-full`` (code 23), ``--in-queue``
(code 22).

Run as a script for a standalone server: ``python -m tests.fakes.midjourney_upstream --port 8004``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import hashlib
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
from aiohttp import web

from relaygate.providers import midjourney_sim as sim
from tests.fakes.fake_server import BehaviorBase, FakeServer, RecordedRequest, echo_text
from tests.fakes.png import make_png

DEFAULT_SECRET = "mj-secret"
SECRET_HEADER = "mj-api-secret"
INSTANCE_ID = "1219476573112713304"
MODES = {"mj-fast": "FAST", "mj-relax": "RELAX", "mj-turbo": "TURBO"}
PROMPT_MODES = {"--fast": "FAST", "--relax": "RELAX", "--turbo": "TURBO"}
NOTIFY_POLL_S = 0.01
NOTIFY_TIMEOUT_S = 2.0
MARKERS: dict[str, dict[str, Any]] = {"--fail": {"fail": True}, "--banned": {"submit_code": 24},
                                      "--queue-full": {"submit_code": 23}, "--in-queue": {"submit_code": 22}}
VIDEOS = frozenset({"video", "video-one", "face-video"})  # the results that carry videos
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free"


@dataclass(frozen=True, slots=True)
class Behavior(BehaviorBase):
    """What the fake does with one request (a submit: and with the task it creates)."""

    status: int = 200  # >= 400: answer with this HTTP status and a Spring error body
    raw_body: str | None = None  # exact body (JSON) instead of the generated answer, with ``status``
    delay_s: float = 0.0  # sleep before answering at all
    submit_code: int = 1  # 1 accepted; 22 accepted but queued; 3/4/9/23/24 refused, no task (REFUSALS)
    queue_ahead: int = 1  # code 22: "前面还有N个任务" and properties.numberOfQueues
    duration_s: float = 0.6  # from the start to SUCCESS/FAILURE
    progress_steps: tuple[int, ...] = (0, 25, 50, 75)  # the IN_PROGRESS percentages, evenly spaced
    fail: bool = False  # the task ends FAILURE with ``fail_reason``
    fail_reason: str = "[Invalid parameter] Invalid value"
    remix: bool = False  # the account has remix on: V/pan/reroll/animate wait in MODAL (as enableRemix)
    video_enabled: bool = True  # False: /mj/submit/video answers code 4 "视频功能未启用"
    fetch_unknown: str = "empty"  # an unknown id on fetch: "empty" (MJP-OSS: 200, no body) or "null"
    # A leaky fork: a refusal's description and properties, and a task's description, failReason and
    # properties, echo ``echo_text`` (the secret it was given, the URL it was called on, its host, an IP).
    echo: bool = False
    echoed: str = ""  # set per request when ``echo`` is on


@dataclass(frozen=True, slots=True)
class MjRequest(RecordedRequest):
    """A recorded request, with where it went in the proxy's terms."""

    mode: str = ""  # "mj-fast" | "mj-relax" | "mj-turbo", or "" without a mode prefix
    endpoint: str = ""  # the path after "/mj/", e.g. "submit/imagine", "task/<id>/fetch"; "" for files


@dataclass(frozen=True, slots=True)
class Callback:
    """One notifyHook POST the fake made."""

    url: str
    task_id: str
    status: str
    progress: str
    body: dict[str, Any]  # the task object sent
    http_status: int | None  # None: the POST failed (``error``)
    error: str | None = None


@dataclass(slots=True, eq=False)
class _Task:
    """A task and what is needed to compute how it looks at any moment."""

    id: str
    action: str
    kind: str  # what a success carries: a ``midjourney_sim.Plan`` result (grid, upscale, video, ...)
    created: float
    behavior: Behavior
    prompt: str = ""
    prompt_en: str = ""
    description: str = ""
    state: str | None = None
    bot_type: str = "MID_JOURNEY"
    mode: str = "FAST"
    custom_id: str = ""
    parent_id: str | None = None
    notify_hook: str | None = None
    offers: tuple[str, ...] = ()  # describe/shorten: the prompts a success offers
    source_url: str | None = None  # describe: the image described (its imageUrl)
    videos: int = 0  # video: how many
    image_refs: tuple[str, ...] = ()  # imagine: the reference images, as URLs (prepended to finalPrompt)
    modal: bool = False  # began in MODAL, waiting for /mj/submit/modal
    queued: bool = False  # accepted with code 22: NOT_START first
    started: float | None = None  # None while MODAL
    forced_at: float | None = None  # finish()/cancel: ends at once
    fail_reason: str | None = None  # not None: ends FAILURE
    sent_upto: int = -1  # the last phase notified


@dataclass(frozen=True, slots=True)
class _Call:
    """What a request brings to the simulator: itself, and the behaviour switches it gets."""

    recorded: MjRequest
    behavior: Behavior


Handler = Callable[["_Call", Any, list[str]], Any]  # (call, JSON body, endpoint parts) → the JSON answer


class FakeMidjourney(FakeServer[Behavior], sim.ProxySimulator[_Call]):
    name = "fake-midjourney"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_secret: str | None = DEFAULT_SECRET,
                 auth_failure: str = "oss", notify_hook: str | None = None) -> None:
        super().__init__(host, port)
        self.api_secret = api_secret
        self.auth_failure = auth_failure  # "oss": 401 empty; "net": 403 "未登录"
        self.notify_hook = notify_hook  # the proxy's global hook, for tasks submitted without one
        self._tasks: dict[str, _Task] = {}
        self._files: dict[str, tuple[str, bytes]] = {}  # /attachments/... → (MIME type, bytes)
        self._callbacks: list[Callback] = []
        self._notifiers: set[asyncio.Task[None]] = set()
        self._client: aiohttp.ClientSession | None = None
        self._skew = 0.0
        self._serial = 0

    def default_behavior(self) -> Behavior:
        return Behavior()

    # --- control and inspection (from the test's thread) ------------------------------------------

    def next_submit(self, prefix: str = "", **changes: Any) -> Behavior:
        """Script the next submit under ``prefix``: the default behaviour with ``changes``."""
        behavior = self.default_behavior().replace(**changes)
        self.script(prefix, behavior)
        return behavior

    def tasks(self) -> list[dict[str, Any]]:
        """Every task as a fetch would show it now, in submit order."""
        with self._lock:
            return [self._snapshot(t) for t in self._tasks.values()]

    def task(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else self._snapshot(task)

    def mj_requests(self, endpoint: str | None = None) -> list[MjRequest]:
        """Recorded requests, optionally only those to one endpoint (``"submit/imagine"``, ``"task/list-by-
        condition"``; a task id in the path matches ``{id}``: ``"task/{id}/fetch"``)."""
        out = [r for r in self.requests if isinstance(r, MjRequest)]
        return out if endpoint is None else [r for r in out if sim.endpoint_pattern(r.endpoint) == endpoint]

    @property
    def callbacks(self) -> list[Callback]:
        with self._lock:
            return list(self._callbacks)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward: every running task gets that much further along."""
        with self._lock:
            self._skew += seconds

    def finish(self, task_id: str, *, fail_reason: str | None = None) -> None:
        """End a running task now: SUCCESS, or FAILURE with ``fail_reason`` (or as scripted)."""
        with self._lock:
            task = self._tasks[task_id]
            if task.started is None:
                raise ValueError(f"task {task_id} waits in MODAL for /mj/submit/modal")
            self._force(task, fail_reason)

    def finish_all(self) -> int:
        """End every running task now (tasks waiting in MODAL stay); returns how many were ended."""
        with self._lock:
            running = [t for t in self._tasks.values() if t.started is not None and t.forced_at is None
                       and self._phase(t).status not in sim.TERMINAL]
            for task in running:
                self._force(task, None)
            return len(running)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._tasks.clear()
            self._files.clear()
            self._callbacks.clear()
            self._skew = 0.0
            notifiers = list(self._notifiers)
        if self._loop is not None:
            for notifier in notifiers:
                self._loop.call_soon_threadsafe(notifier.cancel)

    def image_url(self, task_id: str, index: int | None = None) -> str:
        name = task_id if index is None else f"{task_id}_{index}"
        return f"{self.url}/images/{name}.png"

    # --- the app ------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_cleanup.append(self._cleanup)
        return app

    def _extras(self) -> dict[tuple[str, str], Handler]:
        """The endpoints only this fake serves, beyond ``midjourney_sim.ROUTES``; ``{id}``: a task id."""
        return {("POST", "insight-face/video-swap"): self._video_swap, ("GET", "task/list"): self._list,
                ("GET", "task/queue"): self._queue, ("POST", "task/{id}/cancel"): self._cancel}

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        files = self._serve_file(path)
        prefix, mode, endpoint = sim.split_path(path)
        recorded = await self._record(request, prefix, mode, endpoint or "")
        if files is not None:
            return files
        extras = self._extras()
        refused = sim.route_status(request.method, endpoint, sim.ROUTES | frozenset(extras))
        if refused is not None or endpoint is None:
            return _spring_error(refused or 404, path)
        refusal = self._auth(recorded)
        if refusal is not None:
            return refusal
        body = _body(recorded) if request.method == "POST" else None
        submit = endpoint.startswith(("submit/", "insight-face/"))
        behavior = self.behavior_for(prefix, body) if submit else self._set_behavior(prefix)
        if behavior.echo:
            behavior = behavior.replace(echoed=echo_text(request))
        await self.pause(behavior.delay_s)
        if behavior.status >= 400:
            return _raw(behavior.status, behavior.raw_body) if behavior.raw_body else _spring_error(
                behavior.status, path)
        if behavior.raw_body is not None:
            return _raw(behavior.status, behavior.raw_body)
        if body is _INVALID:
            return _spring_error(400, path)
        call = _Call(recorded, behavior)
        extra = extras.get((request.method, sim.endpoint_pattern(endpoint)))
        try:
            status, answer = (200, extra(call, body, endpoint.split("/"))) if extra else self.answer(
                request.method, endpoint, recorded.body, call)
        except sim.Refusal as refused_submit:
            status, answer = refused_submit.reply()
        return web.Response(status=status) if answer is sim.EMPTY else _json(status, answer)

    async def _record(self, request: web.Request, prefix: str, mode: str, endpoint: str) -> MjRequest:
        """Like ``FakeServer.record``, with the prefixes this fake parses itself (one catch-all route)."""
        recorded = MjRequest(request.method, request.path, request.raw_path, dict(parse_qsl(request.query_string)),
                             prefix, {k.lower(): v for k, v in request.headers.items()}, await request.read(), mode,
                             endpoint)
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _auth(self, recorded: MjRequest) -> web.Response | None:
        if self.api_secret is None or recorded.headers.get(SECRET_HEADER) == self.api_secret:
            return None
        if self.auth_failure == "net":
            return web.Response(status=403, text="未登录")
        return web.Response(status=401)

    def _set_behavior(self, prefix: str) -> Behavior:
        with self._lock:
            return self._behaviors.get(prefix) or self.default_behavior()

    def _serve_file(self, path: str) -> web.Response | None:
        """The fake's "CDN": task images and videos, uploaded files. None: not a file path."""
        if path.startswith("/attachments/"):
            with self._lock:
                stored = self._files.get(path)
            return _spring_error(404, path) if stored is None else web.Response(body=stored[1],
                                                                                content_type=stored[0])
        folder, _, name = path.strip("/").partition("/")
        if folder not in ("images", "videos") or "/" in name:
            return None
        stem, _, ext = name.rpartition(".")
        task_id, _, index = stem.partition("_")
        with self._lock:
            known = task_id in self._tasks
        if not known or (folder, ext) not in (("images", "png"), ("videos", "mp4")):
            return _spring_error(404, path)
        if folder == "videos":
            return web.Response(body=MP4, content_type="video/mp4")
        size = 64 if not index else 32
        return web.Response(body=make_png(size, size, _colour(stem)), content_type="image/png")


    # --- the proxy's tasks (midjourney_sim.ProxySimulator) -----------------------------------------

    video_no_prompt = "Prompt 不能为空"  # MJP-NET's wording

    def find(self, task_id: str, ctx: _Call) -> sim.Known | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            status = self._phase(task).status
            offered = {b["customId"] for b in _buttons(task)} if status == "SUCCESS" else set()
            return sim.Known(task.action, task.kind, status, frozenset(offered))

    def task_object(self, task_id: str, ctx: _Call) -> dict[str, Any] | None:
        return self.task(task_id)

    def seed(self, task_id: str) -> str:
        return str(int(hashlib.sha256(task_id.encode()).hexdigest()[:8], 16))

    def upload(self, images: list[tuple[str, bytes]]) -> list[str]:
        return [self._store_upload(image) for image in images]

    def remix(self, ctx: _Call) -> bool:
        return ctx.behavior.remix

    def video_refusal(self, ctx: _Call) -> sim.Refusal | None:
        return None if ctx.behavior.video_enabled else sim.Refusal(4, "视频功能未启用")

    def unknown_fetch(self, ctx: _Call) -> Any:
        return sim.EMPTY if ctx.behavior.fetch_unknown == "empty" else None

    def create(self, new: sim.NewTask, ctx: _Call) -> dict[str, Any]:
        if new.parent is not None and new.endpoint != "submit/video":
            return self._act(ctx, new)
        task = self._new_task(ctx, new, description=f"/{new.action.lower()} {new.prompt}")
        if new.endpoint == "submit/imagine":
            task.image_refs = tuple(self._store_upload(image) for image in new.images)
        elif new.endpoint == "submit/shorten":
            words = new.prompt.split()
            task.offers = tuple(" ".join(words[: max(1, len(words) * (5 - k) // 6)]) for k in range(5))
        elif new.endpoint == "submit/describe":
            task.description = f"/describe {task.id}.png"
            task.source_url = sim.text(new.body, "link") or self._store_upload(new.images[0])
            task.offers = tuple(f"a fake described picture, reading {n} of {task.id} --ar 1:1" for n in range(1, 5))
        elif new.endpoint == "submit/blend":
            task.description = f"/blend {task.id} {len(new.images)}"
        elif new.endpoint == "insight-face/swap":
            task.bot_type, task.description = "INSIGHT_FACE", "/swap face"
        elif new.endpoint == "submit/video":
            batch = new.body.get("batchSize")
            task.videos = batch if isinstance(batch, int) else 4
            task.parent_id = new.parent
        return self._accept(ctx, task)

    def confirm(self, task_id: str, known: sim.Known, body: Mapping[str, Any], ctx: _Call) -> dict[str, Any]:
        """The same task starts; with no new prompt, its parent's (MJP-NET)."""
        with self._lock:
            task = self._tasks[task_id]
            parent = self._tasks.get(task.parent_id or "")
        prompt = sim.text(body, "prompt") or (parent.prompt if parent is not None else task.prompt).strip()
        behavior = _marked(ctx.behavior, prompt)
        _refuse_unless_accepted(behavior, prompt)
        with self._lock:
            task.prompt = task.prompt_en = prompt
            if sim.text(body, "notifyHook"):
                task.notify_hook = body["notifyHook"]
        return self._start(task, behavior)

    # --- what only this fake does ------------------------------------------------------------------

    def _video_swap(self, call: _Call, _: Any, __: list[str]) -> dict[str, Any]:
        form = _multipart(call.recorded)
        if not (form.get("sourceBase64") or form.get("sourceUrl")) or not (form.get("targetFile")
                                                                            or form.get("targetUrl")):
            raise sim.Refusal(4, sim.BAD_PARAMETER)
        fields = {k: v.decode(errors="replace") for k, v in form.items() if k != "targetFile"}
        new = sim.NewTask("insight-face/video-swap", "SWAP_VIDEO_FACE", "face-video", fields)
        task = self._new_task(call, new, description="/swap video face")
        task.bot_type, task.videos = "INSIGHT_FACE", 1
        return self._accept(call, task)

    def _act(self, call: _Call, new: sim.NewTask) -> dict[str, Any]:
        """A new task from a button (or a change) of a finished parent: at once, or waiting in MODAL (code
        21); upscaling the same image twice by ``change`` answers code 21 with the existing task."""
        with self._lock:
            parent = self._tasks[new.parent or ""]
        description = f"/up {parent.id} {new.label}"
        if new.endpoint != "submit/action" and new.action == "UPSCALE":
            existing = self._existing(description)
            if existing is not None:
                return sim.submit_result(21, "任务已存在", existing["id"], {"status": existing["status"],
                                                                          "imageUrl": existing["imageUrl"]})
        task = self._new_task(call, new, description=description)
        task.bot_type, task.custom_id, task.parent_id = parent.bot_type, new.custom_id, parent.id
        task.prompt, task.prompt_en = parent.prompt, parent.prompt_en
        self._inherit(task, parent, new.custom_id)
        if not new.waiting:
            return self._accept(call, task)
        if new.action == "INPAINT":
            task.prompt = task.prompt_en = ""
        task.modal = True
        self._store(task)
        return sim.submit_result(21, sim.WAITING_MODAL, task.id, {"finalPrompt": task.prompt_en, "remix": True})

    def _inherit(self, task: _Task, parent: _Task, custom_id: str) -> None:
        """What a child takes from its parent beyond the prompt: the offered prompt, the image, videos."""
        parts = custom_id.split("::")
        if parts[2:3] in (["PicReader"], ["PromptAnalyzer"]) and parts[3].isdigit():
            chosen = parent.offers[int(parts[3]) - 1]
            task.prompt = task.prompt_en = chosen
            task.description = f"/imagine {chosen}"
        elif parent.kind == "describe":
            task.description = f"/describe {task.id}.png"
            task.source_url = parent.source_url
            task.offers = tuple(o.replace("reading", "rereading") for o in parent.offers)
        task.videos = {"video": 4, "video-one": 1}.get(task.kind, 0)

    def _list(self, call: _Call, _: Any, __: list[str]) -> list[dict[str, Any]]:
        return self.tasks()

    def _queue(self, call: _Call, _: Any, __: list[str]) -> list[dict[str, Any]]:
        return [t for t in self.tasks() if t["status"] == "NOT_START"]

    def _cancel(self, call: _Call, _: Any, parts: list[str]) -> Any:
        with self._lock:
            task = self._tasks.get(parts[1])
            if task is not None and self._phase(task).status not in sim.TERMINAL:
                self._force(task, "取消任务")
                if task.started is None:  # never ran: no SUBMITTED, straight from MODAL to FAILURE
                    task.started = self._now()
                    task.forced_at = task.started - 1e-6
        return sim.EMPTY

    # --- tasks -----------------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._skew

    def _new_task(self, call: _Call, new: sim.NewTask, *, description: str) -> _Task:
        body = new.body
        with self._lock:
            now = self._now()
            self._serial += 1
            task_id = f"{int(now * 1000)}{self._serial % 1000:03d}"
            while task_id in self._tasks:
                task_id = str(int(task_id) + 1)
        hook = body.get("notifyHook") if isinstance(body.get("notifyHook"), str) and body["notifyHook"] else None
        state = body.get("state") if isinstance(body.get("state"), str) else None
        bot = str(body["botType"]) if body.get("botType") in ("MID_JOURNEY", "NIJI_JOURNEY") else "MID_JOURNEY"
        mode = MODES.get(call.recorded.mode) or next(
            (m for flag, m in PROMPT_MODES.items() if flag in new.prompt.split()), "FAST")
        return _Task(task_id, new.action, new.result, now, call.behavior, new.prompt, new.prompt, description, state,
                     bot, mode, notify_hook=hook)

    def _store(self, task: _Task) -> None:
        with self._lock:
            self._tasks[task.id] = task
        self._watch(task)

    def _accept(self, call: _Call, task: _Task) -> dict[str, Any]:
        """Store and start the task, or refuse it, as the behaviour (and the prompt's markers) say."""
        return self._start(task, _marked(call.behavior, task.prompt), new=True)

    def _start(self, task: _Task, behavior: Behavior, *, new: bool = False) -> dict[str, Any]:
        code = behavior.submit_code
        _refuse_unless_accepted(behavior, task.prompt_en)
        with self._lock:
            task.behavior = behavior
            task.queued = code == 22
            task.started = self._now()
            task.fail_reason = (behavior.echoed or behavior.fail_reason) if behavior.fail else None
            if behavior.echoed:
                task.description = behavior.echoed
        if new:
            self._store(task)
        properties = {"discordInstanceId": INSTANCE_ID, "discordChannelId": INSTANCE_ID}
        if code == 22:
            ahead = behavior.queue_ahead
            return sim.submit_result(22, f"排队中，前面还有{ahead}个任务", task.id,
                                     {**properties, "numberOfQueues": ahead})
        return sim.submit_result(1, sim.ACCEPTED, task.id, properties)

    def _existing(self, description: str) -> dict[str, Any] | None:
        with self._lock:
            task = next((t for t in self._tasks.values() if t.description == description and t.action == "UPSCALE"),
                        None)
            return None if task is None else self._snapshot(task)

    def _force(self, task: _Task, fail_reason: str | None) -> None:
        """End now (under the lock). Phases not yet reached are skipped, but for the last."""
        task.forced_at = self._now()
        if fail_reason is not None:
            task.fail_reason = fail_reason

    def _store_upload(self, upload: tuple[str, bytes]) -> str:
        mime, data = upload
        with self._lock:
            self._serial += 1
            digest = hashlib.sha256(data + str(self._serial).encode()).digest()
            name = f"{uuid.UUID(bytes=digest[:16]).hex}.{_suffix(mime)}"
            path = f"/attachments/{INSTANCE_ID}/{self._serial}/{name}"
            self._files[path] = (mime, data)
        return self.url + path

    # --- how a task looks at a moment (under the lock) ------------------------------------------------

    def _phase(self, task: _Task) -> sim.Phase:
        return _phases(task)[_visible(task, self._now())[-1]]

    def _snapshot(self, task: _Task, index: int | None = None) -> dict[str, Any]:
        return _task_object(task, self.url, _visible(task, self._now())[-1] if index is None else index)

    # --- notifyHook --------------------------------------------------------------------------------------

    def _watch(self, task: _Task) -> None:
        """Start the task's notifier if it has a hook (its own or the global one)."""
        if task.notify_hook is None and self.notify_hook is None:
            return
        notifier = asyncio.get_running_loop().create_task(self._notify(task))
        with self._lock:
            self._notifiers.add(notifier)
        notifier.add_done_callback(self._notifiers.discard)

    async def _notify(self, task: _Task) -> None:
        """POST the task object for every phase it reaches, in order, until it ends."""
        while True:
            with self._lock:
                visible = _visible(task, self._now())
                due = [self._snapshot(task, i) for i in visible if i > task.sent_upto]
                task.sent_upto = max(task.sent_upto, visible[-1])
                url = task.notify_hook or self.notify_hook
            for body in due:
                if url is not None:
                    await self._post_callback(url, body)
            if due and due[-1]["status"] in sim.TERMINAL:
                return
            await asyncio.sleep(NOTIFY_POLL_S)

    async def _post_callback(self, url: str, body: dict[str, Any]) -> None:
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_S))
        status: int | None = None
        error: str | None = None
        try:
            async with self._client.post(url, data=orjson.dumps(body),
                                         headers={"Content-Type": "application/json"}) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = repr(exc)
        with self._lock:
            self._callbacks.append(Callback(url, body["id"], body["status"], body["progress"], body, status, error))

    async def _cleanup(self, app: web.Application) -> None:
        with self._lock:
            notifiers = list(self._notifiers)
        for notifier in notifiers:
            notifier.cancel()
        await asyncio.gather(*notifiers, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None


# --- task timeline and objects ------------------------------------------------------------------------


def _phases(task: _Task) -> list[sim.Phase]:
    """Every status/progress the task goes through, with when; append-only as the task moves on."""
    out = [sim.Phase("MODAL", "0%", task.created)] if task.modal else []
    if task.started is None:
        return out
    lead = ("NOT_START", "SUBMITTED") if task.queued else ("SUBMITTED",)
    return out + sim.timeline(task.started, task.behavior.duration_s, task.behavior.progress_steps, lead=lead,
                              failed=task.fail_reason is not None)

def _visible(task: _Task, now: float) -> list[int]:
    """The phases the task has been through by ``now``: those reached before any forced end, then the end."""
    phases = _phases(task)
    last = len(phases) - 1
    ends = phases[last].status in sim.TERMINAL
    cutoff = now if task.forced_at is None else min(now, task.forced_at)
    shown = [i for i, p in enumerate(phases) if p.at <= cutoff and not (ends and i == last)]
    if ends and (phases[last].at <= now or task.forced_at is not None):
        shown.append(last)
    return shown


def _task_object(task: _Task, base_url: str, index: int) -> dict[str, Any]:
    """The proxy's task object (spec §6.1) as it is at phase ``index``."""
    phases = _phases(task)
    phase = phases[index]
    status = phase.status
    forced = math.inf if task.forced_at is None else task.forced_at

    def ms(at: float) -> int:
        return int(min(at, forced) * 1000)

    submitted = next((p for p in phases if p.status == "SUBMITTED"), None)
    done = status == "SUCCESS"
    running = status == "IN_PROGRESS" or done
    prompt, prompt_en = ((sim.numbered(task.offers),) * 2 if done and task.kind == "describe"
                         else (task.prompt, task.prompt_en))
    return {
        "id": task.id, "action": task.action, "customId": task.custom_id, "botType": task.bot_type,
        "prompt": prompt, "promptEn": prompt_en, "description": task.description, "state": task.state,
        "submitTime": int(task.created * 1000),
        "startTime": ms(submitted.at) if submitted is not None and status not in ("NOT_START", "MODAL") else None,
        "finishTime": ms(phase.at) if status in sim.TERMINAL else None,
        "imageUrl": _image_url(task, base_url, phase), "imageUrls": _split_urls(task, base_url) if done else None,
        "videoUrl": f"{base_url}/videos/{task.id}_1.mp4" if done and task.kind in VIDEOS else None,
        "videoUrls": _video_urls(task, base_url) if done else None,
        "status": status, "progress": phase.progress,
        "failReason": (task.fail_reason or "") if status == "FAILURE" else "",
        "buttons": _buttons(task) if done else [],
        "properties": _properties(task, running, done),
        "mode": task.mode, "parentId": task.parent_id,
    }


def _image_url(task: _Task, base_url: str, phase: sim.Phase) -> str | None:
    """SUCCESS: the result (describe: the image described); IN_PROGRESS past 0%: a preview."""
    if task.kind in ("describe", "shorten"):
        return task.source_url if phase.status == "SUCCESS" else None
    own = f"{base_url}/images/{task.id}.png"
    if phase.status == "SUCCESS":
        return own
    if phase.status == "IN_PROGRESS" and phase.progress != "0%":
        return f"{own}?progress={phase.progress.rstrip('%')}"
    return None


def _split_urls(task: _Task, base_url: str) -> list[dict[str, str]] | None:
    if task.kind != "grid":
        return None
    return [{"url": f"{base_url}/images/{task.id}_{n}.png", "thumbnail": f"{base_url}/images/{task.id}_{n}.png"}
            for n in range(1, 5)]


def _video_urls(task: _Task, base_url: str) -> list[dict[str, str]] | None:
    if task.kind not in VIDEOS:
        return None
    return [{"url": f"{base_url}/videos/{task.id}_{n}.mp4", "thumbnail": f"{base_url}/images/{task.id}_{n}.png"}
            for n in range(1, task.videos + 1)]


def _properties(task: _Task, running: bool, done: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"discordInstanceId": INSTANCE_ID, "discordChannelId": INSTANCE_ID,
                                  "nonce": str(int(task.id) * 1000 + 1)}
    if task.notify_hook is not None:
        properties["notifyHook"] = task.notify_hook
    if task.modal:
        properties["remix"] = True
    if task.kind in ("describe", "shorten"):
        if done:
            properties["finalPrompt"] = sim.numbered(task.offers)
            properties["finalZhPrompt"] = ""
    elif running:
        properties["finalPrompt"] = _final_prompt(task)
        properties["finalZhPrompt"] = ""
        properties["progressMessageId"] = _snowflake(task.id, 1)
    if done:
        properties.update(messageId=_snowflake(task.id, 2), messageHash=_hash(task.id), flags=0)
    if task.behavior.echoed:
        properties.update(dict.fromkeys(("finalPrompt", "finalZhPrompt", "promptEn", "bannedWord"),
                                        task.behavior.echoed))
    return properties


def _final_prompt(task: _Task) -> str:
    """What MJ reports it ran: reference image URLs first, the version parameter added."""
    prompt = task.prompt_en
    if prompt and "--v " not in prompt and "--niji" not in prompt:
        prompt += " --niji 6" if task.bot_type == "NIJI_JOURNEY" else " --v 6.1"
    return " ".join([*task.image_refs, prompt]) if task.image_refs else prompt


def _buttons(task: _Task) -> list[dict[str, Any]]:
    """The buttons of a finished task (spec §6.3)."""
    return sim.buttons(task.kind, _hash(task.id), videos=task.videos, offers=len(task.offers))


def _hash(task_id: str) -> str:
    """The task's MJ job UUID (properties.messageHash), stable for an id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-midjourney:{task_id}"))


def _snowflake(task_id: str, salt: int) -> str:
    return str(1225812290081558599 + int(hashlib.sha256(f"{task_id}:{salt}".encode()).hexdigest()[:12], 16))


# --- request helpers ---------------------------------------------------------------------------------------

_INVALID = object()


def _body(recorded: MjRequest) -> Any:
    """The JSON object of a POST; ``{}`` for none; ``_INVALID`` for a body that is not an object."""
    if recorded.endpoint == "insight-face/video-swap":
        return {}
    if not recorded.body.strip():
        return {}
    with contextlib.suppress(orjson.JSONDecodeError):
        body = orjson.loads(recorded.body)
        if isinstance(body, dict):
            return body
    return _INVALID


def _multipart(recorded: MjRequest) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (the recorded bytes, so the stream need not be re-read)."""
    head = f"Content-Type: {recorded.headers.get('content-type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + recorded.body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def _refuse_unless_accepted(behavior: Behavior, prompt_en: str) -> None:
    """Raise the proxy's answer when the behaviour's ``submit_code`` refuses the submit (spec §2)."""
    code = behavior.submit_code
    if code in (1, 22):
        return
    properties: dict[str, Any] = {"discordInstanceId": INSTANCE_ID}
    if code == 24:
        properties = {"promptEn": prompt_en, "bannedWord": "banned"}
    if behavior.echoed:
        properties = dict.fromkeys(("promptEn", "bannedWord", "finalPrompt", "discordInstanceId"), behavior.echoed)
        raise sim.Refusal(code, behavior.echoed, properties=properties)
    raise sim.Refusal(code, sim.REFUSALS.get(code, sim.BAD_PARAMETER), properties=properties)


def _marked(behavior: Behavior, prompt: str) -> Behavior:
    """The behaviour with the prompt's markers (``--fail``, ``--banned``, ...) applied."""
    words = prompt.split()
    for marker, changes in MARKERS.items():
        if marker in words:
            behavior = behavior.replace(**changes)
    return behavior


def _suffix(mime: str) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}.get(mime, "png")


# --- responses ----------------------------------------------------------------------------------------------


def _spring_error(status: int, path: str) -> web.Response:
    return _json(status, sim.spring_error(status, path, time.time()))


def _raw(status: int, body: str) -> web.Response:
    return web.Response(status=status, body=body.encode(), content_type="application/json")


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _colour(seed: str) -> tuple[int, int, int]:
    """A colour per image, so a test can tell two tasks' images apart."""
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


if __name__ == "__main__":
    FakeMidjourney.serve_from_command_line("A fake midjourney-proxy upstream", 8004)
