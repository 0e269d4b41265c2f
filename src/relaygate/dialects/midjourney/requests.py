"""Checks of the Midjourney submit requests (spec/midjourney.md §3–4), before anything is reserved or sent.

Each endpoint's body is held to what the proxies themselves demand, so a mistake is a clear 400 from
relaygate rather than a billed-then-refused upstream call: required fields, data-URI images that decode
(MJP-OSS refuses bare base64 with "base64格式错误"), the enumerations. The result names the task action
relaygate records and the price name it bills (new-api's ``mj_<action>`` names, §9), and which of the
client's tasks the request continues (the relay swaps in the upstream's id). The error codes are new-api's
relay descriptions (``prompt_is_required``, ``unknown_action``...) where it has one.

The client's ``notifyHook`` never goes upstream: relaygate delivers client notifications itself, and sets its
own hook on the upstream when it wants callbacks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from relaygate.errors import InvalidRequest

MAX_PROMPT = 8192  # characters; longer prompts are refused before they reach Discord
MAX_STATE = 255  # MJP-NET's limit on ``state``
MAX_NOTIFY_HOOK = 2000  # MJP-NET's limit on ``notifyHook``
MAX_URL = 2048
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")
MOTIONS = ("low", "high")
CHANGE_ACTIONS = ("UPSCALE", "VARIATION", "REROLL")
BLEND_IMAGES = (2, 5)
MODAL_ACTIONS = frozenset({"INPAINT", "CUSTOM_ZOOM"})  # the upstream answers 21; the client goes on with /modal
_DATA_URI = re.compile(r"data:image/(?:png|jpeg|webp|gif);base64,(.*)", re.DOTALL)
_SIMPLE_CHANGE = re.compile(r"([UV])([1-4])|R", re.IGNORECASE)


class Endpoint(StrEnum):
    IMAGINE = "imagine"
    ACTION = "action"
    BLEND = "blend"
    MODAL = "modal"
    DESCRIBE = "describe"
    SHORTEN = "shorten"
    SWAP_FACE = "swap_face"
    VIDEO = "video"
    UPLOAD = "upload"
    CHANGE = "change"
    SIMPLE_CHANGE = "simple_change"
    EDITS = "edits"


@dataclass(frozen=True, slots=True)
class MjSubmit:
    """A checked submit: what the relay records, bills and sends."""

    endpoint: Endpoint
    action: str  # the task action recorded: IMAGINE, UPSCALE, LOW_VARIATION, CUSTOM_ZOOM, MODAL, VIDEO...
    price_model: str  # the price name billed: mj_<lower(action)>, or swap_face
    parent_id: str | None  # the client's task this continues (action, modal, change, simple-change, extend)
    custom_id: str | None  # the button clicked (action)
    index: int | None  # which image/video/prompt of the parent, when the request names one
    prompt: str | None
    body: dict[str, Any]  # what goes upstream: the client's body without ``notifyHook``
    notify_hook: str | None  # the client's own hook (the relay checks the address)
    needs_modal: bool  # INPAINT / CUSTOM_ZOOM: the upstream answers 21 and the client confirms with /modal


def price_model_for(action: str) -> str:
    """new-api's price name of an action (§9): ``mj_`` + lower(action), except SWAP_FACE."""
    return "swap_face" if action == "SWAP_FACE" else f"mj_{action.lower()}"


def check_submit(endpoint: Endpoint, body: Mapping[str, Any]) -> MjSubmit:
    """The checked submit for ``endpoint``; raises ``InvalidRequest`` naming the first bad field."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_request")
    notify_hook = _notify_hook(body)
    _optional_text(body, "state", limit=MAX_STATE)
    forwarded = {k: v for k, v in body.items() if k != "notifyHook"}
    return _CHECKS[endpoint](forwarded, notify_hook)


def parse_custom_id(custom_id: str) -> tuple[str, str, int | None]:
    """(action, price name, index) of a button's customId (§4.2, new-api's ``CoverPlusActionToNormalAction``,
    extended to the describe/shorten/video buttons of §6.3); raises ``InvalidRequest`` ``unknown_action``.

    The action token is ``parts[2]`` after ``MJ::JOB::`` (also ``MJ::Job::``, as the describe and shorten
    buttons write it), else ``parts[1]``. Specific tokens are tested before the substring rules, since
    ``low_variation`` contains ``variation``.
    """
    parts = custom_id.split("::")
    job = len(parts) > 1 and parts[1] in ("JOB", "Job")
    token = (parts[2] if len(parts) > 2 else "") if job else (parts[1] if len(parts) > 1 else "")
    action, indexed = _button_action(token, parts)
    if action is None:
        raise InvalidRequest(f"unknown_action: the customId '{custom_id[:200]}' is not a button relaygate knows.",
                             param="customId", code="unknown_action")
    index = _button_index(parts, custom_id) if indexed else None
    return action, price_model_for(action), index


def _button_action(token: str, parts: list[str]) -> tuple[str | None, bool]:
    """(action or None, whether parts[3] names which image/video/prompt) of an action token."""
    if token.startswith("animate_") or token == "video_virtual_upscale":
        return "VIDEO", token.endswith("_extend") or token == "video_virtual_upscale"
    exact = {"low_variation": ("LOW_VARIATION", False), "high_variation": ("HIGH_VARIATION", False),
             "variation": ("VARIATION", True), "Outpaint": ("ZOOM", False), "CustomZoom": ("CUSTOM_ZOOM", False),
             "Inpaint": ("INPAINT", False), "PicReader": ("IMAGINE", True), "PromptAnalyzer": ("IMAGINE", True)}
    if token in exact:
        action, indexed = exact[token]
        return action, indexed
    if token == "Picread" and parts[2:3] == ["Retry"]:
        return "DESCRIBE", False
    if "upsample" in token:
        return "UPSCALE", True
    if "variation" in token:  # another variation kind: new-api leaves it without an action
        return None, False
    if "pan" in token:
        return "PAN", False
    if "reroll" in token:
        return "REROLL", False
    return None, False


def _button_index(parts: list[str], custom_id: str) -> int:
    raw = parts[3] if len(parts) > 3 else ""
    if not raw.isdigit() or not raw.isascii():
        raise InvalidRequest(f"index_parse_failed: the customId '{custom_id[:200]}' names no image index.",
                             param="customId", code="index_parse_failed")
    return int(raw)


# --- endpoints --------------------------------------------------------------------------------------------

def _imagine(body: dict[str, Any], hook: str | None) -> MjSubmit:
    prompt = _prompt(body)
    _bot_type(body)
    _image_list(body, "base64Array", minimum=0, maximum=None)
    _optional_data_uri(body, "base64")
    return _submit(Endpoint.IMAGINE, "IMAGINE", body, hook, prompt=prompt)


def _action(body: dict[str, Any], hook: str | None) -> MjSubmit:
    task_id = _task_id(body)
    custom_id = _required_text(body, "customId", "custom_id_is_required")
    _optional_bool(body, "enableRemix")
    _optional_bool(body, "chooseSameChannel")
    action, price, index = parse_custom_id(custom_id)
    return MjSubmit(Endpoint.ACTION, action, price, task_id, custom_id, index, None, body, hook,
                    action in MODAL_ACTIONS)


def _modal(body: dict[str, Any], hook: str | None) -> MjSubmit:
    task_id = _task_id(body)
    prompt = _optional_text(body, "prompt", limit=MAX_PROMPT)
    _optional_data_uri(body, "maskBase64")
    return _submit(Endpoint.MODAL, "MODAL", body, hook, parent_id=task_id, prompt=prompt or None)


def _blend(body: dict[str, Any], hook: str | None) -> MjSubmit:
    _image_list(body, "base64Array", minimum=BLEND_IMAGES[0], maximum=BLEND_IMAGES[1])
    _optional_choice(body, "dimensions", DIMENSIONS)
    _bot_type(body)
    return _submit(Endpoint.BLEND, "BLEND", body, hook)


def _describe(body: dict[str, Any], hook: str | None) -> MjSubmit:
    image = _optional_data_uri(body, "base64")
    link = _optional_url(body, "link")
    if image is None and link is None:
        raise InvalidRequest("'base64' (a data URI) or 'link' (an http(s) URL) is required.", param="base64",
                             code="image_is_required")
    _bot_type(body)
    return _submit(Endpoint.DESCRIBE, "DESCRIBE", body, hook)


def _shorten(body: dict[str, Any], hook: str | None) -> MjSubmit:
    prompt = _prompt(body)
    _bot_type(body)
    return _submit(Endpoint.SHORTEN, "SHORTEN", body, hook, prompt=prompt)


def _swap_face(body: dict[str, Any], hook: str | None) -> MjSubmit:
    for side in ("source", "target"):
        image = _optional_data_uri(body, f"{side}Base64")
        url = _optional_url(body, f"{side}Url")
        if image is None and url is None:
            raise InvalidRequest(f"'{side}Base64' (a data URI) or '{side}Url' (an http(s) URL) is required.",
                                 param=f"{side}Base64", code=f"{side}_is_required")
    return _submit(Endpoint.SWAP_FACE, "SWAP_FACE", body, hook)


def _video(body: dict[str, Any], hook: str | None) -> MjSubmit:
    prompt = _prompt(body)
    _optional_choice(body, "motion", MOTIONS)
    for name in ("image", "endImage"):
        _optional_image_ref(body, name)
    _optional_bool(body, "loop")
    _optional_text(body, "videoType", limit=64)
    batch = body.get("batchSize")
    if batch is not None and (_not_int(batch) or batch < 1):
        raise InvalidRequest("'batchSize' must be a positive whole number.", param="batchSize",
                             code="invalid_type" if _not_int(batch) else "invalid_value")
    action = _optional_text(body, "action", limit=32)
    if not action:
        return _submit(Endpoint.VIDEO, "VIDEO", body, hook, prompt=prompt)
    if action != "extend":
        raise InvalidRequest("'action' must be 'extend' (to extend a video task) or left out.", param="action",
                             code="invalid_value")
    task_id = _task_id(body)
    index = body.get("index")
    if index is None:
        raise InvalidRequest("'index' (which video of the task to extend) is required to extend a video.",
                             param="index", code="index_is_required")
    if _not_int(index) or index < 0:
        raise InvalidRequest("'index' must be a whole number naming one of the task's videos.", param="index",
                             code="invalid_type" if _not_int(index) else "invalid_value")
    return _submit(Endpoint.VIDEO, "VIDEO", body, hook, parent_id=task_id, index=index, prompt=prompt)


def _upload(body: dict[str, Any], hook: str | None) -> MjSubmit:
    _image_list(body, "base64Array", minimum=1, maximum=None)
    return _submit(Endpoint.UPLOAD, "UPLOAD", body, hook)


def _change(body: dict[str, Any], hook: str | None) -> MjSubmit:
    task_id = _task_id(body)
    action = _required_text(body, "action", "action_is_required")
    if action not in CHANGE_ACTIONS:
        raise InvalidRequest(f"'action' must be one of {', '.join(CHANGE_ACTIONS)}.", param="action",
                             code="unknown_action")
    index = body.get("index")
    if action == "REROLL":
        if index is not None and _not_int(index):
            raise InvalidRequest("'index' must be a whole number.", param="index", code="invalid_type")
        return _submit(Endpoint.CHANGE, action, body, hook, parent_id=task_id)
    if index is None:
        raise InvalidRequest(f"'index' (1 to 4) is required for {action}.", param="index", code="index_is_required")
    if _not_int(index) or not 1 <= index <= 4:
        raise InvalidRequest("'index' must be a whole number from 1 to 4.", param="index",
                             code="invalid_type" if _not_int(index) else "invalid_value")
    return _submit(Endpoint.CHANGE, action, body, hook, parent_id=task_id, index=index)


def _simple_change(body: dict[str, Any], hook: str | None) -> MjSubmit:
    content = _required_text(body, "content", "content_is_required")
    words = content.split()
    change = _SIMPLE_CHANGE.fullmatch(words[1]) if len(words) == 2 else None
    if change is None:
        raise InvalidRequest("'content' must be '<taskId> <U1..U4|V1..V4|R>', e.g. '1712205491372553 U2'.",
                             param="content", code="content_parse_failed")
    letter, digit = change.group(1), change.group(2)
    if letter is None:
        return _submit(Endpoint.SIMPLE_CHANGE, "REROLL", body, hook, parent_id=words[0])
    action = "UPSCALE" if letter.upper() == "U" else "VARIATION"
    return _submit(Endpoint.SIMPLE_CHANGE, action, body, hook, parent_id=words[0], index=int(digit))


def _edits(body: dict[str, Any], hook: str | None) -> MjSubmit:
    prompt = _prompt(body)
    if _optional_image_ref(body, "image") is None:
        raise InvalidRequest("'image' (an http(s) URL or a data URI) is required.", param="image",
                             code="image_is_required")
    return _submit(Endpoint.EDITS, "EDIT", body, hook, prompt=prompt)


_CHECKS: Mapping[Endpoint, Callable[[dict[str, Any], str | None], MjSubmit]] = {
    Endpoint.IMAGINE: _imagine, Endpoint.ACTION: _action, Endpoint.MODAL: _modal, Endpoint.BLEND: _blend,
    Endpoint.DESCRIBE: _describe, Endpoint.SHORTEN: _shorten, Endpoint.SWAP_FACE: _swap_face,
    Endpoint.VIDEO: _video, Endpoint.UPLOAD: _upload, Endpoint.CHANGE: _change,
    Endpoint.SIMPLE_CHANGE: _simple_change, Endpoint.EDITS: _edits,
}


def _submit(endpoint: Endpoint, action: str, body: dict[str, Any], hook: str | None, *,
            parent_id: str | None = None, index: int | None = None, prompt: str | None = None) -> MjSubmit:
    return MjSubmit(endpoint, action, price_model_for(action), parent_id, None, index, prompt, body, hook,
                    action in MODAL_ACTIONS)


# --- fields -----------------------------------------------------------------------------------------------

def _notify_hook(body: Mapping[str, Any]) -> str | None:
    """The client's hook; an empty one is none (the proxies then use their global hook, relaygate none)."""
    hook = _optional_text(body, "notifyHook", limit=MAX_NOTIFY_HOOK)
    return hook or None


def _prompt(body: Mapping[str, Any]) -> str:
    return _required_text(body, "prompt", "prompt_is_required", limit=MAX_PROMPT)


def _task_id(body: Mapping[str, Any]) -> str:
    return _required_text(body, "taskId", "task_id_is_required")


def _required_text(body: Mapping[str, Any], name: str, missing: str, *, limit: int | None = None) -> str:
    """A string that must be there and not blank (new-api refuses ``""`` with the same code as absence)."""
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRequest(f"'{name}' is required.", param=name, code=missing)
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.", param=name, code="invalid_type")
    if limit is not None and len(value) > limit:
        raise InvalidRequest(f"'{name}' is longer than {limit} characters.", param=name, code="invalid_value")
    return value


def _optional_text(body: Mapping[str, Any], name: str, *, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.", param=name, code="invalid_type")
    if len(value) > limit:
        raise InvalidRequest(f"'{name}' is longer than {limit} characters.", param=name, code="invalid_value")
    return value


def _optional_choice(body: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.", param=name, code="invalid_type")
    if value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(allowed)}.", param=name, code="invalid_value")


def _bot_type(body: Mapping[str, Any]) -> None:
    _optional_choice(body, "botType", BOT_TYPES)


def _optional_bool(body: Mapping[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be true or false.", param=name, code="invalid_type")


def _not_int(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def _image_list(body: Mapping[str, Any], name: str, *, minimum: int, maximum: int | None) -> None:
    """A list of data-URI images, ``minimum``..``maximum`` of them (absent counts as none)."""
    images = body.get(name)
    if images is not None and not isinstance(images, list):
        raise InvalidRequest(f"'{name}' must be an array of data URIs.", param=name, code="invalid_type")
    count = len(images or [])
    if count < minimum or (maximum is not None and count > maximum):
        wanted = f"{minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidRequest(f"'{name}' must hold {wanted} images; it has {count}.", param=name,
                             code="invalid_image_count")
    for image in images or []:
        _data_uri(image, name)


def _optional_data_uri(body: Mapping[str, Any], name: str) -> str | None:
    """A data-URI image, or None when the field is absent or empty (the proxies treat ``""`` as absent)."""
    value = body.get(name)
    if value is None or value == "":
        return None
    return _data_uri(value, name)


def _data_uri(value: Any, param: str) -> str:
    """``data:image/<png|jpeg|webp|gif>;base64,<base64>`` whose payload decodes strictly to some bytes."""
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}' must hold data-URI strings.", param=param, code="invalid_type")
    match = _DATA_URI.fullmatch(value)
    try:
        decoded = base64.b64decode(match.group(1), validate=True) if match is not None else b""
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise InvalidRequest(f"'{param}' must be a data URI such as 'data:image/png;base64,<base64>' (PNG, JPEG, "
                             "WebP or GIF, valid base64); bare base64 is not accepted.", param=param,
                             code="invalid_base64")
    return value


def _optional_url(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.", param=name, code="invalid_type")
    if not _is_http_url(value):
        raise InvalidRequest(f"'{name}' must be an http(s) URL.", param=name, code="invalid_value")
    return value


def _optional_image_ref(body: Mapping[str, Any], name: str) -> str | None:
    """An image given as an http(s) URL or a data URI (MJP-NET's ``image`` fields)."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.", param=name, code="invalid_type")
    if value.startswith("data:"):
        return _data_uri(value, name)
    if not _is_http_url(value):
        raise InvalidRequest(f"'{name}' must be an http(s) URL or a data URI.", param=name, code="invalid_value")
    return value


def _is_http_url(value: str) -> bool:
    if len(value) > MAX_URL or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
