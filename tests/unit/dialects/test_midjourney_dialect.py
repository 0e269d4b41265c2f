"""The Midjourney dialect (spec/midjourney.md): the submit checks of every endpoint with their refusals'
codes and params, every button the fake proxy offers mapped to an action and a price name, data-URI
validation, the task object a client sees, status ordering, and the error body."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest

from relaygate.dialects.midjourney import codes
from relaygate.dialects.midjourney.errors import error_body, mj_code_for, upstream_http_status
from relaygate.dialects.midjourney.pricing import DEFAULT_PRICES_USD
from relaygate.dialects.midjourney.requests import Endpoint, MjSubmit, check_submit, parse_custom_id
from relaygate.dialects.midjourney.task import (
    TASK_KEYS,
    client_task,
    filtered_properties,
    rewrite_media,
    submit_result,
)
from relaygate.errors import (
    AuthenticationFailed,
    GatewayError,
    InsufficientQuota,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from tests.fakes.midjourney_upstream import Behavior, _buttons, _Task
from tests.fakes.png import make_png

PNG = make_png(2, 2)
IMAGE = "data:image/png;base64," + base64.b64encode(PNG).decode()
JPEG = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff\xe0jpeg").decode()
HASH = "6f1c0e9a-3b1d-4c5e-9a77-2d2f1b7e4c10"
PARENT = "1712205491372553"
URL = "https://cdn.example/a.png"


def refused(endpoint: Endpoint, body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check_submit(endpoint, body)
    return caught.value


def assert_refused(endpoint: Endpoint, body: Any, code: str, param: str | None) -> None:
    error = refused(endpoint, body)
    assert (error.code, error.param) == (code, param), error.message
    assert error.status == 400


# --- happy paths ------------------------------------------------------------------------------------------

def test_imagine() -> None:
    body = {"botType": "NIJI_JOURNEY", "prompt": "a lighthouse --ar 3:2", "base64Array": [IMAGE, JPEG],
            "base64": IMAGE, "state": "order-7731", "notifyHook": "https://client.example/hook",
            "accountFilter": {"modes": ["FAST"]}}
    submit = check_submit(Endpoint.IMAGINE, body)
    assert submit == MjSubmit(Endpoint.IMAGINE, "IMAGINE", "mj_imagine", None, None, None, "a lighthouse --ar 3:2",
                              {k: v for k, v in body.items() if k != "notifyHook"}, "https://client.example/hook",
                              False)
    assert "notifyHook" in body  # the client's mapping is left alone


def test_imagine_minimal_and_empty_hook() -> None:
    submit = check_submit(Endpoint.IMAGINE, {"prompt": "cat", "notifyHook": ""})
    assert submit.notify_hook is None
    assert submit.body == {"prompt": "cat"}


@pytest.mark.parametrize(("custom_id", "action", "price", "index", "modal"), [
    (f"MJ::JOB::upsample::2::{HASH}", "UPSCALE", "mj_upscale", 2, False),
    (f"MJ::JOB::variation::3::{HASH}", "VARIATION", "mj_variation", 3, False),
    (f"MJ::JOB::reroll::0::{HASH}::SOLO", "REROLL", "mj_reroll", None, False),
    (f"MJ::Inpaint::1::{HASH}::SOLO", "INPAINT", "mj_inpaint", None, True),
    (f"MJ::CustomZoom::{HASH}", "CUSTOM_ZOOM", "mj_custom_zoom", None, True),
])
def test_action(custom_id: str, action: str, price: str, index: int | None, modal: bool) -> None:
    body = {"taskId": PARENT, "customId": custom_id, "chooseSameChannel": True, "enableRemix": False}
    submit = check_submit(Endpoint.ACTION, body)
    assert submit == MjSubmit(Endpoint.ACTION, action, price, PARENT, custom_id, index, None, body, None, modal)


def test_modal() -> None:
    body = {"taskId": PARENT, "prompt": "add a red sailboat", "maskBase64": IMAGE}
    submit = check_submit(Endpoint.MODAL, body)
    assert (submit.action, submit.price_model, submit.parent_id, submit.prompt) == (
        "MODAL", "mj_modal", PARENT, "add a red sailboat")
    assert not submit.needs_modal
    assert check_submit(Endpoint.MODAL, {"taskId": PARENT}).prompt is None


@pytest.mark.parametrize("count", [2, 5])
def test_blend(count: int) -> None:
    submit = check_submit(Endpoint.BLEND, {"base64Array": [IMAGE] * count, "dimensions": "PORTRAIT",
                                           "botType": "MID_JOURNEY"})
    assert (submit.action, submit.price_model, submit.parent_id) == ("BLEND", "mj_blend", None)


@pytest.mark.parametrize("body", [{"base64": IMAGE}, {"link": "https://img.example/x.png"},
                                  {"base64": "", "link": "http://img.example/x.png"}])
def test_describe(body: dict[str, Any]) -> None:
    submit = check_submit(Endpoint.DESCRIBE, body)
    assert (submit.action, submit.price_model) == ("DESCRIBE", "mj_describe")


def test_shorten() -> None:
    submit = check_submit(Endpoint.SHORTEN, {"prompt": "a very long prompt", "botType": "MID_JOURNEY"})
    assert (submit.action, submit.price_model, submit.prompt) == ("SHORTEN", "mj_shorten", "a very long prompt")


@pytest.mark.parametrize("body", [{"sourceBase64": IMAGE, "targetBase64": JPEG},
                                  {"sourceUrl": URL, "targetUrl": URL},
                                  {"sourceBase64": IMAGE, "targetUrl": URL}])
def test_swap_face(body: dict[str, Any]) -> None:
    submit = check_submit(Endpoint.SWAP_FACE, body)
    assert (submit.action, submit.price_model) == ("SWAP_FACE", "swap_face")


def test_video() -> None:
    body = {"prompt": "waves", "motion": "high", "image": URL, "endImage": IMAGE, "loop": True, "batchSize": 2,
            "videoType": "vid_1.1_i2v_720"}
    submit = check_submit(Endpoint.VIDEO, body)
    assert (submit.action, submit.price_model, submit.parent_id, submit.index, submit.prompt) == (
        "VIDEO", "mj_video", None, None, "waves")


def test_video_extend() -> None:
    submit = check_submit(Endpoint.VIDEO, {"prompt": "go on", "action": "extend", "taskId": PARENT, "index": 2})
    assert (submit.action, submit.price_model, submit.parent_id, submit.index) == ("VIDEO", "mj_video", PARENT, 2)


def test_upload() -> None:
    submit = check_submit(Endpoint.UPLOAD, {"base64Array": [IMAGE, JPEG]})
    assert (submit.action, submit.price_model) == ("UPLOAD", "mj_upload")


@pytest.mark.parametrize(("body", "price", "index"), [
    ({"taskId": PARENT, "action": "UPSCALE", "index": 2}, "mj_upscale", 2),
    ({"taskId": PARENT, "action": "VARIATION", "index": 4}, "mj_variation", 4),
    ({"taskId": PARENT, "action": "REROLL"}, "mj_reroll", None),
])
def test_change(body: dict[str, Any], price: str, index: int | None) -> None:
    submit = check_submit(Endpoint.CHANGE, body)
    assert (submit.action, submit.price_model, submit.parent_id, submit.index, submit.custom_id) == (
        body["action"], price, PARENT, index, None)


@pytest.mark.parametrize(("content", "action", "index"), [
    (f"{PARENT} U2", "UPSCALE", 2), (f"{PARENT} u2", "UPSCALE", 2), (f"{PARENT} V3", "VARIATION", 3),
    (f"{PARENT} v1", "VARIATION", 1), (f"{PARENT} r", "REROLL", None), (f"{PARENT} R", "REROLL", None),
    (f"  {PARENT}   U4 ", "UPSCALE", 4),
])
def test_simple_change(content: str, action: str, index: int | None) -> None:
    body = {"content": content, "notifyHook": "https://client.example/h"}
    submit = check_submit(Endpoint.SIMPLE_CHANGE, body)
    assert (submit.action, submit.price_model, submit.parent_id, submit.index) == (
        action, f"mj_{action.lower()}", PARENT, index)
    assert submit.body == {"content": content}  # as sent, only the hook taken out


def test_edits() -> None:
    for image in (URL, IMAGE):
        submit = check_submit(Endpoint.EDITS, {"prompt": "make it blue", "image": image})
        assert (submit.action, submit.price_model, submit.prompt) == ("EDIT", "mj_edit", "make it blue")


def test_every_price_name_has_a_default() -> None:
    bodies: list[tuple[Endpoint, dict[str, Any]]] = [
        (Endpoint.IMAGINE, {"prompt": "x"}), (Endpoint.MODAL, {"taskId": "1"}),
        (Endpoint.BLEND, {"base64Array": [IMAGE, IMAGE]}), (Endpoint.DESCRIBE, {"base64": IMAGE}),
        (Endpoint.SHORTEN, {"prompt": "x"}), (Endpoint.SWAP_FACE, {"sourceUrl": URL, "targetUrl": URL}),
        (Endpoint.VIDEO, {"prompt": "x"}), (Endpoint.UPLOAD, {"base64Array": [IMAGE]}),
        (Endpoint.EDITS, {"prompt": "x", "image": URL}), (Endpoint.CHANGE, {"taskId": "1", "action": "REROLL"})]
    names = {check_submit(e, b).price_model for e, b in bodies}
    names |= {parse_custom_id(c)[1] for c in _fake_buttons()}
    assert names <= set(DEFAULT_PRICES_USD)
    assert DEFAULT_PRICES_USD["mj_inpaint"] == DEFAULT_PRICES_USD["mj_custom_zoom"] == "0"
    assert DEFAULT_PRICES_USD["mj_upscale"] == DEFAULT_PRICES_USD["swap_face"] == "0.05"
    assert DEFAULT_PRICES_USD["mj_imagine"] == "0.1"


# --- refusals ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [[], "prompt", 3, None])
def test_non_object_body(body: Any) -> None:
    assert_refused(Endpoint.IMAGINE, body, "invalid_request", None)


@pytest.mark.parametrize(("endpoint", "body", "code", "param"), [
    # imagine
    (Endpoint.IMAGINE, {}, "prompt_is_required", "prompt"),
    (Endpoint.IMAGINE, {"prompt": "   "}, "prompt_is_required", "prompt"),
    (Endpoint.IMAGINE, {"prompt": 7}, "invalid_type", "prompt"),
    (Endpoint.IMAGINE, {"prompt": "x" * 8193}, "invalid_value", "prompt"),
    (Endpoint.IMAGINE, {"prompt": "x", "base64Array": IMAGE}, "invalid_type", "base64Array"),
    (Endpoint.IMAGINE, {"prompt": "x", "base64Array": [IMAGE, "abc"]}, "invalid_base64", "base64Array"),
    (Endpoint.IMAGINE, {"prompt": "x", "base64Array": [3]}, "invalid_type", "base64Array"),
    (Endpoint.IMAGINE, {"prompt": "x", "base64": "iVBORw0KGgo="}, "invalid_base64", "base64"),
    (Endpoint.IMAGINE, {"prompt": "x", "botType": "DALL_E"}, "invalid_value", "botType"),
    (Endpoint.IMAGINE, {"prompt": "x", "botType": 1}, "invalid_type", "botType"),
    (Endpoint.IMAGINE, {"prompt": "x", "state": "s" * 256}, "invalid_value", "state"),
    (Endpoint.IMAGINE, {"prompt": "x", "state": {}}, "invalid_type", "state"),
    (Endpoint.IMAGINE, {"prompt": "x", "notifyHook": 5}, "invalid_type", "notifyHook"),
    (Endpoint.IMAGINE, {"prompt": "x", "notifyHook": "https://h/" + "a" * 2000}, "invalid_value", "notifyHook"),
    # action
    (Endpoint.ACTION, {"customId": f"MJ::JOB::upsample::1::{HASH}"}, "task_id_is_required", "taskId"),
    (Endpoint.ACTION, {"taskId": "", "customId": f"MJ::JOB::upsample::1::{HASH}"}, "task_id_is_required", "taskId"),
    (Endpoint.ACTION, {"taskId": 17, "customId": f"MJ::JOB::upsample::1::{HASH}"}, "invalid_type", "taskId"),
    (Endpoint.ACTION, {"taskId": PARENT}, "custom_id_is_required", "customId"),
    (Endpoint.ACTION, {"taskId": PARENT, "customId": ""}, "custom_id_is_required", "customId"),
    (Endpoint.ACTION, {"taskId": PARENT, "customId": "MJ::BOOKMARK::x"}, "unknown_action", "customId"),
    (Endpoint.ACTION, {"taskId": PARENT, "customId": "upsample"}, "unknown_action", "customId"),
    (Endpoint.ACTION, {"taskId": PARENT, "customId": f"MJ::JOB::upsample::x::{HASH}"}, "index_parse_failed",
     "customId"),
    (Endpoint.ACTION, {"taskId": PARENT, "customId": f"MJ::JOB::upsample::1::{HASH}", "enableRemix": "yes"},
     "invalid_type", "enableRemix"),
    # modal
    (Endpoint.MODAL, {"prompt": "x"}, "task_id_is_required", "taskId"),
    (Endpoint.MODAL, {"taskId": PARENT, "prompt": 3}, "invalid_type", "prompt"),
    (Endpoint.MODAL, {"taskId": PARENT, "maskBase64": "data:image/png;base64,!!"}, "invalid_base64", "maskBase64"),
    # blend
    (Endpoint.BLEND, {}, "invalid_image_count", "base64Array"),
    (Endpoint.BLEND, {"base64Array": [IMAGE]}, "invalid_image_count", "base64Array"),
    (Endpoint.BLEND, {"base64Array": [IMAGE] * 6}, "invalid_image_count", "base64Array"),
    (Endpoint.BLEND, {"base64Array": [IMAGE, "nope"]}, "invalid_base64", "base64Array"),
    (Endpoint.BLEND, {"base64Array": [IMAGE, IMAGE], "dimensions": "WIDE"}, "invalid_value", "dimensions"),
    # describe
    (Endpoint.DESCRIBE, {}, "image_is_required", "base64"),
    (Endpoint.DESCRIBE, {"base64": "", "link": ""}, "image_is_required", "base64"),
    (Endpoint.DESCRIBE, {"base64": "abc"}, "invalid_base64", "base64"),
    (Endpoint.DESCRIBE, {"link": "ftp://img.example/x.png"}, "invalid_value", "link"),
    (Endpoint.DESCRIBE, {"link": "not a url"}, "invalid_value", "link"),
    # shorten
    (Endpoint.SHORTEN, {}, "prompt_is_required", "prompt"),
    # swap face
    (Endpoint.SWAP_FACE, {"targetBase64": IMAGE}, "source_is_required", "sourceBase64"),
    (Endpoint.SWAP_FACE, {"sourceBase64": IMAGE}, "target_is_required", "targetBase64"),
    (Endpoint.SWAP_FACE, {"sourceBase64": "x", "targetBase64": IMAGE}, "invalid_base64", "sourceBase64"),
    (Endpoint.SWAP_FACE, {"sourceBase64": IMAGE, "targetUrl": "file:///etc/passwd"}, "invalid_value", "targetUrl"),
    # video
    (Endpoint.VIDEO, {}, "prompt_is_required", "prompt"),
    (Endpoint.VIDEO, {"prompt": "x", "motion": "medium"}, "invalid_value", "motion"),
    (Endpoint.VIDEO, {"prompt": "x", "image": "abc"}, "invalid_value", "image"),
    (Endpoint.VIDEO, {"prompt": "x", "endImage": "data:image/png;base64,@@"}, "invalid_base64", "endImage"),
    (Endpoint.VIDEO, {"prompt": "x", "loop": "yes"}, "invalid_type", "loop"),
    (Endpoint.VIDEO, {"prompt": "x", "batchSize": 0}, "invalid_value", "batchSize"),
    (Endpoint.VIDEO, {"prompt": "x", "action": "shrink"}, "invalid_value", "action"),
    (Endpoint.VIDEO, {"prompt": "x", "action": "extend", "index": 1}, "task_id_is_required", "taskId"),
    (Endpoint.VIDEO, {"prompt": "x", "action": "extend", "taskId": PARENT}, "index_is_required", "index"),
    (Endpoint.VIDEO, {"prompt": "x", "action": "extend", "taskId": PARENT, "index": "1"}, "invalid_type", "index"),
    (Endpoint.VIDEO, {"action": "extend", "taskId": PARENT, "index": 1}, "prompt_is_required", "prompt"),
    # upload
    (Endpoint.UPLOAD, {}, "invalid_image_count", "base64Array"),
    (Endpoint.UPLOAD, {"base64Array": []}, "invalid_image_count", "base64Array"),
    (Endpoint.UPLOAD, {"base64Array": ["bare"]}, "invalid_base64", "base64Array"),
    # change
    (Endpoint.CHANGE, {"action": "UPSCALE", "index": 1}, "task_id_is_required", "taskId"),
    (Endpoint.CHANGE, {"taskId": PARENT, "index": 1}, "action_is_required", "action"),
    (Endpoint.CHANGE, {"taskId": PARENT, "action": "ZOOM", "index": 1}, "unknown_action", "action"),
    (Endpoint.CHANGE, {"taskId": PARENT, "action": "upscale", "index": 1}, "unknown_action", "action"),
    (Endpoint.CHANGE, {"taskId": PARENT, "action": "UPSCALE"}, "index_is_required", "index"),
    (Endpoint.CHANGE, {"taskId": PARENT, "action": "VARIATION", "index": 5}, "invalid_value", "index"),
    (Endpoint.CHANGE, {"taskId": PARENT, "action": "VARIATION", "index": 0}, "invalid_value", "index"),
    (Endpoint.CHANGE, {"taskId": PARENT, "action": "UPSCALE", "index": True}, "invalid_type", "index"),
    (Endpoint.CHANGE, {"taskId": PARENT, "action": "UPSCALE", "index": "2"}, "invalid_type", "index"),
    # simple change
    (Endpoint.SIMPLE_CHANGE, {}, "content_is_required", "content"),
    (Endpoint.SIMPLE_CHANGE, {"content": " "}, "content_is_required", "content"),
    (Endpoint.SIMPLE_CHANGE, {"content": 1}, "invalid_type", "content"),
    # edits
    (Endpoint.EDITS, {"image": URL}, "prompt_is_required", "prompt"),
    (Endpoint.EDITS, {"prompt": "x"}, "image_is_required", "image"),
    (Endpoint.EDITS, {"prompt": "x", "image": "bare-base64"}, "invalid_value", "image"),
])
def test_refusals(endpoint: Endpoint, body: dict[str, Any], code: str, param: str) -> None:
    assert_refused(endpoint, body, code, param)


@pytest.mark.parametrize("content", [PARENT, f"{PARENT} U5", f"{PARENT} U0", f"{PARENT} V", f"{PARENT} U12",
                                     f"{PARENT} R1", f"{PARENT} X1", f"{PARENT} U2 extra", "U2", f"{PARENT} ⅠU2"])
def test_simple_change_bad_forms(content: str) -> None:
    assert_refused(Endpoint.SIMPLE_CHANGE, {"content": content}, "content_parse_failed", "content")


# --- data URIs --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mime", ["png", "jpeg", "webp", "gif"])
def test_data_uri_image_kinds(mime: str) -> None:
    uri = f"data:image/{mime};base64," + base64.b64encode(b"image bytes").decode()
    assert check_submit(Endpoint.DESCRIBE, {"base64": uri}).action == "DESCRIBE"


@pytest.mark.parametrize("uri", [
    base64.b64encode(PNG).decode(),  # bare base64 (MJP-OSS "base64格式错误")
    "data:image/png;base64,iVBOR*w0KGgo=",  # a character outside the alphabet
    "data:image/png;base64,iVBORw0KGgo",  # bad padding
    "data:image/png;base64,iVBORw0K\nGgo=",  # a line break
    "data:image/png;base64,",  # nothing
    "data:text/plain;base64," + base64.b64encode(b"hello").decode(),  # not an image
    "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode(),  # not a raster kind
    "data:image/png;base64" + base64.b64encode(PNG).decode(),  # no comma
    "data:image/png," + base64.b64encode(PNG).decode(),  # not base64-encoded
    "DATA:image/png;base64," + base64.b64encode(PNG).decode(),
    " " + IMAGE,
])
def test_data_uri_refusals(uri: str) -> None:
    assert_refused(Endpoint.DESCRIBE, {"base64": uri}, "invalid_base64", "base64")


# --- customIds --------------------------------------------------------------------------------------------

def _fake_buttons() -> list[str]:
    """Every customId the fake proxy puts on a finished task, for each kind of result it makes."""
    ids: list[str] = []
    for action, kind in (("IMAGINE", "grid"), ("UPSCALE", "upscale"), ("DESCRIBE", "describe"),
                         ("SHORTEN", "shorten"), ("VIDEO", "video")):
        task = _Task(PARENT, action, kind, time.time(), Behavior(), offers=("a", "b", "c"), videos=4)
        ids += [b["customId"] for b in _buttons(task)]
    return ids


def test_every_fake_button_maps() -> None:
    buttons = _fake_buttons()
    assert len(buttons) > 30
    for custom_id in buttons:
        action, price, _ = parse_custom_id(custom_id)
        assert price == ("swap_face" if action == "SWAP_FACE" else f"mj_{action.lower()}")
        assert price in DEFAULT_PRICES_USD, custom_id


@pytest.mark.parametrize(("custom_id", "action", "index"), [
    (f"MJ::JOB::upsample::1::{HASH}", "UPSCALE", 1),
    (f"MJ::JOB::upsample::4::{HASH}", "UPSCALE", 4),
    (f"MJ::JOB::variation::2::{HASH}", "VARIATION", 2),
    (f"MJ::JOB::reroll::0::{HASH}::SOLO", "REROLL", None),
    (f"MJ::JOB::upsample_v6r1_2x_subtle::1::{HASH}::SOLO", "UPSCALE", 1),
    (f"MJ::JOB::upsample_v6r1_2x_creative::1::{HASH}::SOLO", "UPSCALE", 1),
    (f"MJ::JOB::upsample_v6_2x_subtle::1::{HASH}::SOLO", "UPSCALE", 1),
    (f"MJ::JOB::upsample_v7_2x_creative::1::{HASH}::SOLO", "UPSCALE", 1),
    (f"MJ::JOB::upsample_v5_4x::1::{HASH}::SOLO", "UPSCALE", 1),
    (f"MJ::JOB::low_variation::1::{HASH}::SOLO", "LOW_VARIATION", None),
    (f"MJ::JOB::high_variation::1::{HASH}::SOLO", "HIGH_VARIATION", None),
    (f"MJ::Inpaint::1::{HASH}::SOLO", "INPAINT", None),
    (f"MJ::Outpaint::50::1::{HASH}::SOLO", "ZOOM", None),
    (f"MJ::Outpaint::75::1::{HASH}::SOLO", "ZOOM", None),
    (f"MJ::CustomZoom::{HASH}", "CUSTOM_ZOOM", None),
    (f"MJ::CustomZoom::1::{HASH}", "CUSTOM_ZOOM", None),
    (f"MJ::JOB::pan_left::1::{HASH}::SOLO", "PAN", None),
    (f"MJ::JOB::pan_right::1::{HASH}::SOLO", "PAN", None),
    (f"MJ::JOB::pan_up::1::{HASH}::SOLO", "PAN", None),
    (f"MJ::JOB::pan_down::1::{HASH}::SOLO", "PAN", None),
    (f"MJ::JOB::animate_high::1::{HASH}::SOLO", "VIDEO", None),
    (f"MJ::JOB::animate_low::1::{HASH}::SOLO", "VIDEO", None),
    (f"MJ::JOB::animate_high_extend::3::{HASH}::SOLO", "VIDEO", 3),
    (f"MJ::JOB::animate_low_extend::2::{HASH}::SOLO", "VIDEO", 2),
    (f"MJ::JOB::video_virtual_upscale::4::{HASH}", "VIDEO", 4),
    ("MJ::Job::PicReader::3", "IMAGINE", 3),
    ("MJ::Job::PromptAnalyzer::5", "IMAGINE", 5),
    ("MJ::Picread::Retry", "DESCRIBE", None),
])
def test_parse_custom_id(custom_id: str, action: str, index: int | None) -> None:
    price = f"mj_{action.lower()}"
    assert parse_custom_id(custom_id) == (action, price, index)


@pytest.mark.parametrize("custom_id", ["", "MJ", "MJ::", "MJ::JOB", "MJ::JOB::", f"MJ::BOOKMARK::{HASH}",
                                       f"MJ::JOB::strong_variation::1::{HASH}", "MJ::Picread::Again",
                                       f"MJ::JOB::like::1::{HASH}"])
def test_parse_custom_id_unknown(custom_id: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_custom_id(custom_id)
    assert (caught.value.code, caught.value.param) == ("unknown_action", "customId")


def test_modal_buttons_need_a_modal() -> None:
    for custom_id in _fake_buttons():
        submit = check_submit(Endpoint.ACTION, {"taskId": PARENT, "customId": custom_id})
        assert submit.needs_modal == (submit.action in ("INPAINT", "CUSTOM_ZOOM")), custom_id


# --- task objects -----------------------------------------------------------------------------------------

def _upstream() -> dict[str, Any]:
    return {
        "id": "9999999999999999", "action": "VARIATION", "customId": f"MJ::JOB::low_variation::1::{HASH}::SOLO",
        "botType": "MID_JOURNEY", "prompt": "a lighthouse", "promptEn": "a lighthouse", "description": "/up 1 V",
        "state": "order-1", "submitTime": 1, "startTime": 2, "finishTime": 3,
        "imageUrl": "https://up.example/images/9.png",
        "imageUrls": [{"url": f"https://up.example/images/9_{n}.png", "thumbnail": f"https://up.example/t/{n}.png"}
                      for n in range(1, 5)],
        "videoUrl": None, "videoUrls": None, "status": "SUCCESS", "progress": "100%", "failReason": "",
        "buttons": [{"customId": f"MJ::JOB::upsample::1::{HASH}", "emoji": "", "label": "U1", "type": 2,
                     "style": 2}],
        "properties": {"finalPrompt": "a lighthouse --v 6.1", "finalZhPrompt": "", "messageHash": HASH,
                       "messageId": "1225812290081558599", "notifyHook": "https://relaygate/mj/notify/1/secret",
                       "discordInstanceId": "1219476573112713304", "discordChannelId": "1", "nonce": "5",
                       "progressMessageId": "7", "flags": 0, "referencedMessageId": "8", "remix": True},
        "mode": "FAST", "parentId": "8888888888888888", "seed": "123", "width": 1024, "height": 1024,
        "notifyHook": "https://relaygate/mj/notify/1/secret",
    }


def _shown(upstream: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"task_id": "1712205491372553123", "action": "LOW_VARIATION", "status": "SUCCESS",
                              "progress": "100%", "submit_ms": 10, "start_ms": 20, "finish_ms": 30,
                              "fail_reason": None, "prompt": None, "parent_id": "1712205491000000001",
                              "image_url": None}
    fields.update(changes)
    return client_task(upstream, **fields)


def test_client_task_from_upstream() -> None:
    upstream = _upstream()
    shown = _shown(upstream)
    assert shown["id"] == "1712205491372553123"
    assert shown["parentId"] == "1712205491000000001"
    assert (shown["submitTime"], shown["startTime"], shown["finishTime"]) == (10, 20, 30)
    assert (shown["status"], shown["progress"], shown["failReason"]) == ("SUCCESS", "100%", "")
    assert shown["action"] == "LOW_VARIATION"
    assert shown["prompt"] == "a lighthouse"
    assert shown["imageUrl"] == "https://up.example/images/9.png"
    assert shown["buttons"] == upstream["buttons"]
    assert shown["properties"] == {"finalPrompt": "a lighthouse --v 6.1", "finalZhPrompt": "", "messageHash": HASH,
                                   "remix": True}
    for extra in ("imageUrls", "videoUrl", "videoUrls", "mode", "seed", "width", "height"):
        assert shown[extra] == upstream[extra]
    assert "notifyHook" not in shown
    assert set(TASK_KEYS) <= set(shown)
    assert list(shown)[:len(TASK_KEYS)] == list(TASK_KEYS)
    assert "9999999999999999" not in orjson.dumps(shown).decode()
    assert "8888888888888888" not in orjson.dumps(shown).decode()
    assert "secret" not in orjson.dumps(shown).decode()
    assert upstream == _upstream()  # not changed


def test_client_task_relaygate_fields_win() -> None:
    shown = _shown(_upstream(), status="FAILURE", progress="", finish_ms=99, fail_reason="Task timed out",
                   image_url="https://relaygate/mj/image/1?sig=x", parent_id=None)
    assert (shown["status"], shown["progress"], shown["finishTime"], shown["failReason"]) == (
        "FAILURE", "", 99, "Task timed out")
    assert shown["imageUrl"] == "https://relaygate/mj/image/1?sig=x"
    assert "parentId" in shown and shown["parentId"] is None  # the upstream's parent id never shows


def test_client_task_without_parent_key() -> None:
    upstream = _upstream()
    del upstream["parentId"]
    assert "parentId" not in _shown(upstream, parent_id=None)
    assert _shown(upstream)["parentId"] == "1712205491000000001"


def test_client_task_before_first_poll() -> None:
    shown = _shown(None, action="IMAGINE", status="SUBMITTED", progress="0%", start_ms=None, finish_ms=None,
                   prompt="a cat", parent_id=None)
    assert list(shown) == list(TASK_KEYS)
    assert shown == {"id": "1712205491372553123", "action": "IMAGINE", "customId": "", "botType": "",
                     "prompt": "a cat", "promptEn": "", "description": "", "state": None, "submitTime": 10,
                     "startTime": None, "finishTime": None, "imageUrl": None, "status": "SUBMITTED",
                     "progress": "0%", "failReason": "", "buttons": [], "maskBase64": "", "properties": {}}


def test_client_task_fills_missing_upstream_keys() -> None:
    shown = _shown({"id": "1", "status": "IN_PROGRESS", "properties": "junk", "buttons": None}, prompt="p")
    assert set(TASK_KEYS) <= set(shown)
    assert (shown["properties"], shown["buttons"], shown["prompt"], shown["customId"]) == ({}, [], "p", "")


def test_filtered_properties() -> None:
    assert filtered_properties(None) == {}
    assert filtered_properties([1]) == {}
    assert filtered_properties({"numberOfQueues": 2, "discordInstanceId": "1", "bannedWord": "x", "promptEn": "y",
                                "notifyHook": "h", "nonce": "n"}) == {"numberOfQueues": 2, "bannedWord": "x",
                                                                      "promptEn": "y"}


def test_submit_result() -> None:
    assert submit_result(1, "提交成功", "1712205491372553") == {"code": 1, "description": "提交成功",
                                                               "result": "1712205491372553", "properties": {}}
    assert submit_result(22, "排队中", "1", {"numberOfQueues": 3}) == {
        "code": 22, "description": "排队中", "result": "1", "properties": {"numberOfQueues": 3}}
    assert submit_result(1, "ok", ["u1", "u2"])["result"] == ["u1", "u2"]


def test_rewrite_media() -> None:
    stored: dict[str, Any] = {"imageUrl": "https://up/i.png", "imageUrls": [{"url": "https://up/0.png", "thumbnail": "https://up/t0"},
                                                            {"url": "https://up/1.png"}, "https://up/2.png"],
              "videoUrl": "https://up/v.mp4", "videoUrls": [{"url": "https://up/v0.mp4", "thumbnail": ""}],
              "thumbnailUrl": "https://up/t.png", "other": "https://up/keep"}
    task = dict(stored)
    seen: dict[str, str] = {}

    def rewrite(name: str, url: str) -> str:
        seen[name] = url
        return f"https://relaygate/mj/image/T?media={name}"

    rewrite_media(task, rewrite)
    assert seen == {"image": "https://up/i.png", "image-0": "https://up/0.png", "image-0-thumbnail": "https://up/t0",
                    "image-1": "https://up/1.png", "image-2": "https://up/2.png", "video": "https://up/v.mp4",
                    "video-0": "https://up/v0.mp4", "thumbnail": "https://up/t.png"}
    assert task["imageUrl"] == "https://relaygate/mj/image/T?media=image"
    assert task["imageUrls"][0] == {"url": "https://relaygate/mj/image/T?media=image-0",
                                    "thumbnail": "https://relaygate/mj/image/T?media=image-0-thumbnail"}
    assert task["imageUrls"][2] == "https://relaygate/mj/image/T?media=image-2"
    assert task["videoUrls"] == [{"url": "https://relaygate/mj/image/T?media=video-0", "thumbnail": ""}]
    assert task["other"] == "https://up/keep"
    assert stored["imageUrls"][0]["url"] == "https://up/0.png"  # the stored object's items are not touched


def test_rewrite_media_leaves_absent_media() -> None:
    task: dict[str, Any] = {"imageUrl": None, "videoUrl": "", "imageUrls": None}
    rewrite_media(task, lambda name, url: "x")
    assert task == {"imageUrl": None, "videoUrl": "", "imageUrls": None}


def test_rewrite_media_on_a_shown_task() -> None:
    shown = _shown(_upstream())
    rewrite_media(shown, lambda name, url: f"/mj/image/T/{name}")
    assert shown["imageUrl"] == "/mj/image/T/image"
    assert [i["url"] for i in shown["imageUrls"]] == [f"/mj/image/T/image-{n}" for n in range(4)]


# --- statuses ---------------------------------------------------------------------------------------------

def test_status_rank_order() -> None:
    order = [("NOT_START", "0%"), ("SUBMITTED", "0%"), ("MODAL", "0%"), ("IN_PROGRESS", "0%"),
             ("IN_PROGRESS", "25%"), ("IN_PROGRESS", "50%"), ("IN_PROGRESS", "99%")]
    ranks = [codes.status_rank(s, p) for s, p in order]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    for final in codes.FINAL_STATUSES:
        assert codes.status_rank(final, "") == 4
        assert codes.status_rank("IN_PROGRESS", "100%") < codes.status_rank(final, "100%")
    assert codes.status_rank("IN_PROGRESS", "50%") == pytest.approx(3.5)
    assert codes.status_rank("IN_PROGRESS", None) == 3
    assert codes.status_rank("IN_PROGRESS", "garbage") == 3
    assert codes.status_rank("SOMETHING_NEW", "10%") == 0


def test_final_statuses_and_codes() -> None:
    assert codes.FINAL_STATUSES == ("SUCCESS", "FAILURE", "CANCEL")
    assert (codes.SUCCESS, codes.NOT_FOUND, codes.VALIDATION_ERROR, codes.FAILURE, codes.EXISTED, codes.IN_QUEUE,
            codes.QUEUE_REJECTED, codes.BANNED_PROMPT) == (1, 3, 4, 9, 21, 22, 23, 24)
    assert {s.value for s in codes.TaskStatus} >= set(codes.FINAL_STATUSES)


@pytest.mark.parametrize(("progress", "percent"), [
    ("0%", 0), ("45%", 45), ("100%", 100), (" 12.5 % ", 12), ("", None), (None, None), ("abc", None),
    ("150%", 100), ("-3%", 0), (42, 42), (True, None), ("nan%", None), ("inf", None),
])
def test_progress_percent(progress: Any, percent: int | None) -> None:
    assert codes.progress_percent(progress) == percent


# --- errors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("error", "code"), [
    (NotFound("no task", code="task_not_found"), 3),
    (RateLimited("slow down"), 23),
    (InsufficientQuota("no quota"), 23),
    (AuthenticationFailed("bad key"), 4),
    (PermissionDenied("no"), 4),
    (InvalidRequest("bad", param="prompt", code="prompt_is_required"), 4),
    (GatewayError("boom"), 9),
    (UpstreamError("upstream broke"), 9),
    (UpstreamTimeout("slow upstream"), 9),
])
def test_mj_code_for(error: GatewayError, code: int) -> None:
    assert mj_code_for(error) == code


def test_error_body() -> None:
    error = InvalidRequest("'prompt' is required.", param="prompt", code="prompt_is_required")
    assert orjson.loads(error_body(error, "req_123")) == {
        "code": 4, "description": "'prompt' is required.", "result": None,
        "properties": {"error": "prompt_is_required", "request_id": "req_123"}}
    assert orjson.loads(error_body(NotFound("gone", code="task_not_found"), "r"))["code"] == 3


@pytest.mark.parametrize(("code", "status"), [(23, 429), (24, 400), (4, 400), (3, 503), (9, 502), (5, 502),
                                              (30, 502)])
def test_upstream_http_status(code: int, status: int) -> None:
    assert upstream_http_status(code) == status
