"""The midjourney-proxy simulator: the task API of spec/midjourney.md written once — its routes, the checks a
submit passes, the result codes, the buttons a finished task offers and what each one makes, the modal
flow, change and simple-change, a task's timeline, the fetch, seed and batch queries — for both simulators
of it: the built-in offline mock (``mock_midjourney.py``: no state, everything about a task is in its id)
and the tests' fake upstream (``tests/fakes/midjourney_upstream.py``: tasks in memory, failure switches,
callbacks).

A simulator subclasses :class:`ProxySimulator` and keeps the tasks: :meth:`~ProxySimulator.find` says what
it knows of one, :meth:`~ProxySimulator.create` makes one (or sets it waiting in ``MODAL``),
:meth:`~ProxySimulator.confirm` starts one waiting for its modal, :meth:`~ProxySimulator.task_object` shows
one. :meth:`~ProxySimulator.answer` does the rest. ``C`` is what the subclass passes along with a request
(the mock: the clock's reading; the fake: the recorded request and its behaviour switches).
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

ACCEPTED = "提交成功"
WAITING_MODAL = "Waiting for window confirm"
BAD_STATE = "关联任务状态错误"
NOT_FOUND = "关联任务不存在或已失效"
BAD_BASE64 = "base64格式错误"
BAD_PARAMETER = "参数错误"
NO_PROMPT = "prompt不能为空"
NO_HASH = "任务未完成，无 messageHash"
BANNED = "可能包含敏感词"
# What a submit the proxy refuses answers, by code (spec §2).
REFUSALS = {3: "无可用的账号实例", 4: BAD_PARAMETER, 9: "系统异常", 23: "队列已满，请稍后尝试", 24: BANNED}
HTTP_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
                502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
GRID_PARENTS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})  # what change / simple-change take
NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
MODES = ("mj-fast", "mj-relax", "mj-turbo")
# The endpoints every simulator serves: (method, endpoint after "/mj/"; "{id}" stands for a task id).
SUBMITS = ("submit/imagine", "submit/action", "submit/modal", "submit/blend", "submit/describe", "submit/shorten",
           "submit/video", "submit/upload-discord-images", "submit/change", "submit/simple-change",
           "submit/edits", "submit/edit", "submit/retexture", "insight-face/swap")
ROUTES = frozenset({*(("POST", s) for s in SUBMITS), ("GET", "task/{id}/fetch"), ("GET", "task/{id}/image-seed"),
                    ("POST", "task/list-by-condition"), ("POST", "task/list-by-ids")})
EMPTY: Any = object()  # a reply with no body at all (MJP-OSS's fetch of an unknown id)


class Refusal(Exception):
    """A request the proxy answers with a failing SubmitResultVO."""

    def __init__(self, code: int, description: str, *, http_status: int = 200,
                 properties: Mapping[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.http_status = http_status
        self.properties = dict(properties or {})

    def reply(self) -> tuple[int, Any]:
        return self.http_status, submit_result(self.code, self.description, None, self.properties)


def submit_result(code: int, description: str, result: Any = None,
                  properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The SubmitResultVO (spec §2)."""
    return {"code": code, "description": description, "result": result, "properties": dict(properties or {})}


def spring_error(status: int, path: str, now_s: float) -> dict[str, Any]:
    """What Spring Boot answers for a path, method or body it has no handler for."""
    stamp = datetime.fromtimestamp(now_s, UTC).isoformat(timespec="milliseconds")
    return {"timestamp": stamp, "status": status, "error": HTTP_REASONS.get(status, "Error"), "path": path}


# --- buttons ----------------------------------------------------------------------------------------------

class Plan(NamedTuple):
    """What pressing a button makes: the new task's action and result, and whether it waits in MODAL."""

    action: str
    result: str  # grid | upscale | describe | shorten | image | video | video-one | face-video
    always_modal: bool = False  # Vary (Region), Custom Zoom
    remixable: bool = False  # waits in MODAL when the account or the request has remix on


_PLANS = {"upsample": Plan("UPSCALE", "upscale"), "variation": Plan("VARIATION", "grid", remixable=True),
          "low_variation": Plan("VARIATION", "grid", remixable=True),
          "high_variation": Plan("VARIATION", "grid", remixable=True),
          "reroll": Plan("REROLL", "grid", remixable=True), "Outpaint": Plan("ZOOM", "grid"),
          "CustomZoom": Plan("ZOOM", "grid", always_modal=True), "Inpaint": Plan("INPAINT", "grid", always_modal=True),
          "PicReader": Plan("IMAGINE", "grid"), "PromptAnalyzer": Plan("IMAGINE", "grid"),
          "Picread": Plan("DESCRIBE", "describe"), "video_virtual_upscale": Plan("VIDEO", "video-one")}


def button_token(custom_id: str) -> str:
    """The word of a customId that names the action: ``upsample``, ``pan_left``, ``Inpaint``, ..."""
    parts = custom_id.split("::")
    return parts[2] if len(parts) > 2 and parts[1] in ("JOB", "Job") else parts[1] if len(parts) > 1 else ""


def plan(custom_id: str) -> Plan | None:
    """What the button ``custom_id`` makes; None for a button no simulator offers."""
    token = button_token(custom_id)
    if token.startswith("upsample_"):
        return Plan("UPSCALE_HD", "upscale")
    if token.startswith("pan_"):
        return Plan("PAN", "grid", remixable=True)
    if token.startswith("animate_"):
        return Plan("VIDEO", "video", remixable=True)
    return _PLANS.get(token)


def button_label(custom_id: str) -> str:
    """How a task's description names the button that made it: U2, V3, R, or its action word."""
    token, parts = button_token(custom_id), custom_id.split("::")
    if token in ("upsample", "variation") and len(parts) > 3:
        return f"{token[0].upper()}{parts[3]}"
    return "R" if token == "reroll" else token


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def _upscale_buttons(h: str) -> list[dict[str, Any]]:
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


def buttons(result: str, h: str, *, videos: int = 4, offers: int = 5) -> list[dict[str, Any]]:
    """The buttons of a finished task (spec §6.3), by what it produced; ``h`` is its message hash."""
    if result == "grid":
        return [*(_button(f"MJ::JOB::upsample::{n}::{h}", f"U{n}") for n in range(1, 5)),
                _button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="🔄"),
                *(_button(f"MJ::JOB::variation::{n}::{h}", f"V{n}") for n in range(1, 5))]
    if result == "upscale":
        return _upscale_buttons(h)
    if result == "describe":
        return [*(_button(f"MJ::Job::PicReader::{n}", str(n)) for n in range(1, 5)),
                _button("MJ::Picread::Retry", emoji="🔄")]
    if result == "shorten":
        return [_button(f"MJ::Job::PromptAnalyzer::{n}", str(n)) for n in range(1, offers + 1)]
    if result in ("video", "video-one"):
        return [b for n in range(1, (videos if result == "video" else 1) + 1) for b in (
            *([_button(f"MJ::JOB::video_virtual_upscale::{n}::{h}", f"U{n}")] if result == "video" else []),
            _button(f"MJ::JOB::animate_high_extend::{n}::{h}::SOLO", f"Extend High {n}"),
            _button(f"MJ::JOB::animate_low_extend::{n}::{h}::SOLO", f"Extend Low {n}"))]
    return []


def numbered(offers: Sequence[str]) -> str:
    """Describe's readings and shorten's candidates as the proxy lists them in ``finalPrompt``."""
    return "\n\n".join(f"{NUMBERS[i]} {offer}" for i, offer in enumerate(offers))


# --- a task's timeline ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Phase:
    status: str
    progress: str
    at: float  # when the task reaches it (the unit of ``start``)


def timeline(start: float, duration: float, steps: Sequence[int], *, lead: Sequence[str] = ("SUBMITTED",),
             lead_time: float | None = None, failed: bool = False) -> list[Phase]:
    """The phases of a task started at ``start``: each of ``lead`` ("0%") in turn over ``lead_time`` (default:
    an equal share with each step), then IN_PROGRESS at each of ``steps`` evenly over the rest, then SUCCESS
    "100%" (or FAILURE "") at ``start + duration``."""
    share = duration / (len(lead) + len(steps))
    lead_span = share * len(lead) if lead_time is None else lead_time
    phases = [Phase(status, "0%", start + k * lead_span / len(lead)) for k, status in enumerate(lead)]
    running = (duration - lead_span) / len(steps) if steps else 0.0
    phases += [Phase("IN_PROGRESS", f"{p}%", start + lead_span + k * running) for k, p in enumerate(steps)]
    phases.append(Phase("FAILURE", "", start + duration) if failed else Phase("SUCCESS", "100%", start + duration))
    return phases


def phase_at(phases: Sequence[Phase], now: float) -> Phase:
    """The phase a task is in at ``now`` (its first before it starts)."""
    return next((p for p in reversed(phases) if p.at <= now), phases[0])


# --- requests ---------------------------------------------------------------------------------------------

def split_path(path: str) -> tuple[str, str, str | None]:
    """``[/<channel>][/<mode>]/mj/<endpoint>`` → (channel prefix, mode prefix, endpoint or None)."""
    segments = path.strip("/").split("/")
    if "mj" not in segments[:3]:
        return "", "", None
    at = segments.index("mj")
    head = segments[:at]
    mode = head.pop() if head and head[-1] in MODES else ""
    if len(head) > 1 or any(not s for s in segments[at + 1:]):
        return "", "", None
    return (head[0] if head else ""), mode, "/".join(segments[at + 1:])


def endpoint_pattern(endpoint: str) -> str:
    """``task/123/fetch`` → ``task/{id}/fetch``."""
    parts = endpoint.split("/")
    if len(parts) == 3 and parts[0] == "task":
        parts[1] = "{id}"
    return "/".join(parts)


def route_status(method: str, endpoint: str | None, routes: frozenset[tuple[str, str]] = ROUTES) -> int | None:
    """None when ``routes`` serve the request; else Spring's 404 (no such path) or 405 (wrong method)."""
    if endpoint is None:
        return 404
    pattern = endpoint_pattern(endpoint)
    if (method, pattern) in routes:
        return None
    return 405 if any(p == pattern for _, p in routes) else 404


def json_object(raw: bytes) -> dict[str, Any] | None:
    """A POST's JSON object; ``{}`` for no body; None for a body that is not an object."""
    if not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    return value.strip() if isinstance(value, str) else ""


def prompt_of(body: Mapping[str, Any], missing: str = NO_PROMPT) -> str:
    prompt = text(body, "prompt")
    if not prompt:
        raise Refusal(4, missing)
    return prompt


def data_uri(value: Any) -> tuple[str, bytes]:
    """(MIME type, bytes) of ``data:<mime>;base64,<b64>``; anything else is the proxy's code 4."""
    if not isinstance(value, str) or not value.startswith("data:") or ";base64," not in value:
        raise Refusal(4, BAD_BASE64)
    mime, _, data = value[5:].partition(";base64,")
    try:
        return mime or "image/png", base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(4, BAD_BASE64) from None


def optional_data_uri(body: Mapping[str, Any], name: str) -> tuple[str, bytes] | None:
    value = body.get(name)
    return None if value is None or value == "" else data_uri(value)


def data_uris(body: Mapping[str, Any], many: str, one: str | None = None) -> list[tuple[str, bytes]]:
    """The images of ``many`` (a list, absent: none), and ``one`` after them when given."""
    images = body.get(many) or []
    if not isinstance(images, list):
        raise Refusal(4, BAD_BASE64)
    single = optional_data_uri(body, one) if one else None
    return [*(data_uri(i) for i in images), *([single] if single else [])]


# --- the simulator ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Known:
    """What a simulator knows of a task, for the checks of the submits that continue it."""

    action: str
    result: str
    status: str
    buttons: frozenset[str] = frozenset()  # the customIds it offers


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task a submit asks for."""

    endpoint: str  # "submit/imagine", ...
    action: str
    result: str
    body: Mapping[str, Any]
    prompt: str = ""
    parent: str | None = None  # the task a button, change or extend continues
    custom_id: str = ""  # the button pressed (submit/action)
    label: str = ""  # U2, V3, R, or the button's action word
    waiting: bool = False  # MODAL until /mj/submit/modal
    images: tuple[tuple[str, bytes], ...] = field(default=())  # imagine's references, upload's files


C = TypeVar("C")
_CHANGES = {"UPSCALE": ("UPSCALE", "upscale"), "VARIATION": ("VARIATION", "grid"), "REROLL": ("REROLL", "grid")}


class ProxySimulator(ABC, Generic[C]):
    """A midjourney-proxy's answers to routed requests; subclasses keep the tasks."""

    video_no_prompt = NO_PROMPT  # forks word this one differently (MJP-NET: "Prompt 不能为空")

    # --- to fill in --------------------------------------------------------------------------------------

    @abstractmethod
    def find(self, task_id: str, ctx: C) -> Known | None: ...

    @abstractmethod
    def create(self, new: NewTask, ctx: C) -> dict[str, Any]:
        """Make the task (or refuse it, raising :class:`Refusal`); the SubmitResultVO."""

    @abstractmethod
    def confirm(self, task_id: str, known: Known, body: Mapping[str, Any], ctx: C) -> dict[str, Any]:
        """Start ``task_id``, waiting in MODAL, with the modal's ``body``; the SubmitResultVO."""

    @abstractmethod
    def task_object(self, task_id: str, ctx: C) -> dict[str, Any] | None: ...

    @abstractmethod
    def seed(self, task_id: str) -> str: ...

    @abstractmethod
    def upload(self, images: list[tuple[str, bytes]]) -> list[str]:
        """Where ``upload-discord-images`` put each image."""

    def remix(self, ctx: C) -> bool:
        """Whether the account has remix on (V, pan, reroll and animate then wait in MODAL)."""
        return False

    def video_refusal(self, ctx: C) -> Refusal | None:
        return None

    def unknown_fetch(self, ctx: C) -> Any:
        return EMPTY

    # --- answering ---------------------------------------------------------------------------------------

    def answer(self, method: str, endpoint: str, raw: bytes, ctx: C) -> tuple[int, Any]:
        """The (HTTP status, JSON body or EMPTY) for a request that :func:`route_status` routed here."""
        parts = endpoint.split("/")
        if method == "GET":
            return self._fetch(parts[1], ctx) if parts[2] == "fetch" else self._seed(parts[1], ctx)
        body = json_object(raw)
        if body is None:
            return 400, None  # the caller renders Spring's 400
        if endpoint in ("task/list-by-condition", "task/list-by-ids"):
            ids = body.get("ids")
            found = [self.task_object(i, ctx) for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
            return 200, [t for t in found if t is not None]
        try:
            if endpoint == "submit/upload-discord-images":
                return 200, self._upload(body)
            if endpoint == "submit/modal":
                return 200, self._modal(body, ctx)
            return 200, self.create(self._asked_for(endpoint, body, ctx), ctx)
        except Refusal as refusal:
            return refusal.reply()

    def _fetch(self, task_id: str, ctx: C) -> tuple[int, Any]:
        task = self.task_object(task_id, ctx)
        return 200, self.unknown_fetch(ctx) if task is None else task

    def _seed(self, task_id: str, ctx: C) -> tuple[int, Any]:
        known = self.find(task_id, ctx)
        if known is None:
            return 404, submit_result(3, NOT_FOUND)
        if known.status != "SUCCESS":
            return 400, submit_result(4, NO_HASH)
        return 200, submit_result(1, "成功", self.seed(task_id))

    def _upload(self, body: Mapping[str, Any]) -> dict[str, Any]:
        images = body.get("base64Array")
        if not isinstance(images, list) or not images:
            raise Refusal(4, "base64 参数错误")
        return submit_result(1, ACCEPTED, self.upload([data_uri(i) for i in images]))

    def _parent(self, task_id: str, ctx: C) -> Known:
        """The task a submit continues: known, and finished with SUCCESS."""
        known = self.find(task_id, ctx)
        if known is None:
            raise Refusal(3, NOT_FOUND, http_status=404)
        if known.status != "SUCCESS":
            raise Refusal(4, BAD_STATE)
        return known

    def _asked_for(self, endpoint: str, body: Mapping[str, Any], ctx: C) -> NewTask:
        """What a submit other than modal and upload asks for, once checked."""
        if endpoint == "submit/action":
            return self._action(body, ctx)
        if endpoint in ("submit/change", "submit/simple-change"):
            task_id, action, index = _change(body) if endpoint == "submit/change" else _simple_change(body)
            return self._change(endpoint, body, task_id, action, index, ctx)
        if endpoint == "submit/video":
            return self._video(body, ctx)
        return _fresh(endpoint, body)

    def _action(self, body: Mapping[str, Any], ctx: C) -> NewTask:
        task_id, custom_id = text(body, "taskId"), text(body, "customId")
        if not task_id or not custom_id:
            raise Refusal(4, BAD_PARAMETER)
        pressed = plan(custom_id)
        if custom_id not in self._parent(task_id, ctx).buttons or pressed is None:
            raise Refusal(4, "customId 不存在")
        remix = body.get("enableRemix") is True or self.remix(ctx)
        return NewTask("submit/action", pressed.action, pressed.result, body, parent=task_id, custom_id=custom_id,
                       label=button_label(custom_id),
                       waiting=pressed.always_modal or (pressed.remixable and remix))

    def _change(self, endpoint: str, body: Mapping[str, Any], task_id: str, action: str, index: int | None,
                ctx: C) -> NewTask:
        """MJP-OSS ``/submit/change``: U/V by index, or reroll, of a grid task."""
        if self._parent(task_id, ctx).action not in GRID_PARENTS:
            raise Refusal(4, "关联任务不允许执行变化")
        label = "R" if action == "REROLL" else f"{action[0]}{index}"
        made, result = _CHANGES[action]
        return NewTask(endpoint, made, result, body, parent=task_id, label=label)

    def _video(self, body: Mapping[str, Any], ctx: C) -> NewTask:
        refusal = self.video_refusal(ctx)
        if refusal is not None:
            raise refusal
        parent: str | None = None
        action = body.get("action")
        if action == "extend":
            index = body.get("index")
            if not text(body, "taskId") or not isinstance(index, int) or isinstance(index, bool):
                raise Refusal(4, BAD_PARAMETER)
            parent = text(body, "taskId")
            if self._parent(parent, ctx).action != "VIDEO":
                raise Refusal(4, BAD_STATE)
        elif action not in (None, ""):
            raise Refusal(4, BAD_PARAMETER)
        prompt = prompt_of(body, self.video_no_prompt)
        if body.get("motion", "low") not in ("low", "high"):
            raise Refusal(4, BAD_PARAMETER)
        return NewTask("submit/video", "VIDEO", "video", body, prompt, parent=parent)

    def _modal(self, body: Mapping[str, Any], ctx: C) -> dict[str, Any]:
        task_id = text(body, "taskId")
        if not task_id:
            raise Refusal(4, BAD_PARAMETER)
        known = self.find(task_id, ctx)
        if known is None:
            raise Refusal(3, NOT_FOUND, http_status=404)
        if known.status != "MODAL":
            raise Refusal(4, BAD_STATE)
        mask = optional_data_uri(body, "maskBase64")
        if known.action == "INPAINT" and mask is None:
            raise Refusal(4, "maskBase64不能为空")
        return self.confirm(task_id, known, body, ctx)


def _fresh(endpoint: str, body: Mapping[str, Any]) -> NewTask:
    """A submit that starts from nothing (imagine, blend, describe, shorten, edits, swap face)."""
    if endpoint == "submit/imagine":
        prompt = prompt_of(body)
        references = tuple(data_uris(body, "base64Array", "base64"))
        return NewTask(endpoint, "IMAGINE", "grid", body, prompt, images=references)
    if endpoint == "submit/shorten":
        return NewTask(endpoint, "SHORTEN", "shorten", body, prompt_of(body))
    if endpoint in ("submit/edits", "submit/edit", "submit/retexture"):
        prompt = prompt_of(body)
        if not text(body, "image"):
            raise Refusal(4, "image不能为空")
        return NewTask(endpoint, "RETEXTURE" if endpoint.endswith("retexture") else "EDIT", "grid", body, prompt)
    if endpoint == "submit/blend":
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            raise Refusal(4, "base64List参数错误")
        if (body.get("dimensions") or "SQUARE") not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
            raise Refusal(4, "dimensions参数错误")
        return NewTask(endpoint, "BLEND", "grid", body, images=tuple(data_uri(i) for i in images))
    if endpoint == "submit/describe":
        image = optional_data_uri(body, "base64")
        if image is None and not text(body, "link"):
            raise Refusal(4, "base64或link不能为空")
        return NewTask(endpoint, "DESCRIBE", "describe", body, images=(image,) if image else ())
    for side in ("source", "target"):  # insight-face/swap
        if optional_data_uri(body, f"{side}Base64") is None and not text(body, f"{side}Url"):
            raise Refusal(4, f"{side}Base64或{side}Url不能为空")
    return NewTask(endpoint, "SWAP_FACE", "image", body)


def _change(body: Mapping[str, Any]) -> tuple[str, str, int | None]:
    task_id, action, index = text(body, "taskId"), body.get("action"), body.get("index")
    if not task_id:
        raise Refusal(4, "taskId不能为空")
    if action not in _CHANGES:
        raise Refusal(4, "action参数错误")
    if action == "REROLL":
        return task_id, action, None
    if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= 4:
        raise Refusal(4, "index参数错误")
    return task_id, action, index


def _simple_change(body: Mapping[str, Any]) -> tuple[str, str, int | None]:
    """``"<id> U1"``, ``"<id> V3"``, ``"<id> R"``."""
    words = text(body, "content").split()
    change = words[1].upper() if len(words) == 2 else ""
    if change not in ("R", *(f"{letter}{n}" for letter in "UV" for n in range(1, 5))):
        raise Refusal(4, "content 参数错误")
    action = {"U": "UPSCALE", "V": "VARIATION", "R": "REROLL"}[change[0]]
    return words[0], action, int(change[1]) if len(change) == 2 else None
