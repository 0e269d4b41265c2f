"""The built-in offline midjourney-proxy: stateless tasks that move with the clock, real buttons, modal
flows, refusals, the other endpoints, and any instance answering for ids another made."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from relaygate.providers.base import UpstreamBodyTooLarge, UpstreamRequest
from relaygate.providers.mock_midjourney import (
    FAIL_REASON,
    Kind,
    MockMidjourneyResponse,
    MockMidjourneyTransport,
    decode_task_id,
    message_hash,
    new_task_id,
)

ROOT = "mock://midjourney"
MASK = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nmask").decode()
IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nimage").decode()
# §6.1: what every task object carries
TASK_KEYS = {"id", "action", "customId", "botType", "prompt", "promptEn", "description", "state", "submitTime",
             "startTime", "finishTime", "imageUrl", "status", "progress", "failReason", "buttons", "properties"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def request(method: str, path: str, body: dict[str, Any] | None = None, *, mode: str = "") -> UpstreamRequest:
    """As providers/midjourney.py builds them: the secret, JSON, the mode prefix before ``/mj/``."""
    headers = {"Accept": "application/json", "mj-api-secret": "anything"}
    payload = b""
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = orjson.dumps(body)
    return UpstreamRequest(method, ROOT + (f"/{mode}" if mode else "") + path, headers, payload)


async def call(mock: MockMidjourneyTransport, method: str, path: str, body: dict[str, Any] | None = None, *,
               mode: str = "") -> tuple[int, Any]:
    response = await mock.send(request(method, path, body, mode=mode))
    raw = await response.read(10_000_000)
    response.close()
    return response.status, orjson.loads(raw) if raw else None


async def submit(mock: MockMidjourneyTransport, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = await call(mock, "POST", f"/mj/{endpoint}", body)
    assert status in (200, 404)
    assert set(answer) == {"code", "description", "result", "properties"}
    result: dict[str, Any] = answer
    return result


async def accepted(mock: MockMidjourneyTransport, endpoint: str, body: dict[str, Any]) -> str:
    answer = await submit(mock, endpoint, body)
    assert (answer["code"], answer["description"], answer["properties"]) == (1, "提交成功", {}), answer
    task_id: str = answer["result"]
    return task_id


async def fetch(mock: MockMidjourneyTransport, task_id: str) -> dict[str, Any]:
    status, listed = await call(mock, "POST", "/mj/task/list-by-condition", {"ids": [task_id, "nope", 7]})
    assert status == 200 and len(listed) == 1
    task: dict[str, Any] = listed[0]
    assert set(task) >= TASK_KEYS and task["id"] == task_id
    return task


def png_size(data_url: str) -> tuple[int, int]:
    header, _, data = data_url.partition(",")
    assert header == "data:image/png;base64"
    raw = base64.b64decode(data, validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    return width, height


def button(task: dict[str, Any], fragment: str) -> str:
    custom_id: str = next(b["customId"] for b in task["buttons"] if fragment in b["customId"])
    return custom_id


async def test_imagine_moves_with_the_clock_and_ends_with_a_grid(clock: Clock) -> None:
    mock = MockMidjourneyTransport(clock=clock)  # the default 4 s
    submitted_ms = int(clock.now * 1000)
    task_id = await accepted(mock, "submit/imagine", {"prompt": "a lighthouse", "base64Array": [IMAGE]})
    assert len(task_id) == 19 and task_id.isdigit()
    first = await fetch(mock, task_id)
    assert (first["status"], first["progress"], first["action"], first["submitTime"]) == (
        "SUBMITTED", "0%", "IMAGINE", submitted_ms)
    assert first["startTime"] is None and first["imageUrl"] is None and first["buttons"] == []
    seen = []
    for at in (0.6, 1.5, 2.3, 3.2):
        clock.now = submitted_ms / 1000 + at
        task = await fetch(mock, task_id)
        seen.append((task["status"], task["progress"]))
        assert task["startTime"] == submitted_ms + 500 and task["finishTime"] is None
    assert seen == [("IN_PROGRESS", "0%"), ("IN_PROGRESS", "25%"), ("IN_PROGRESS", "50%"), ("IN_PROGRESS", "75%")]
    assert png_size(task["imageUrl"]) == (32, 32)  # a preview past 0%
    clock.now = submitted_ms / 1000 + 4.0
    done = await fetch(mock, task_id)
    assert (done["status"], done["progress"], done["finishTime"], done["failReason"]) == (
        "SUCCESS", "100%", submitted_ms + 4000, "")
    assert (done["botType"], done["prompt"], done["customId"]) == ("MID_JOURNEY", "", "")
    assert png_size(done["imageUrl"]) == (64, 64)
    assert [png_size(i["url"]) for i in done["imageUrls"]] == [(32, 32)] * 4
    assert [b["label"] or b["emoji"] for b in done["buttons"]] == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    hash_ = done["properties"]["messageHash"]
    assert hash_ == message_hash(task_id) and len(hash_) == 36
    assert done["buttons"][0]["customId"] == f"MJ::JOB::upsample::1::{hash_}"
    assert done["buttons"][4]["customId"] == f"MJ::JOB::reroll::0::{hash_}::SOLO"
    assert all((b["type"], b["style"]) == (2, 2) for b in done["buttons"])


async def test_a_mode_prefix_and_any_secret_are_served(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    status, answer = await call(mock, "POST", "/mj/submit/imagine", {"prompt": "fast"}, mode="mj-relax")
    assert status == 200 and answer["code"] == 1
    clock.now += 1
    status, listed = await call(mock, "POST", "/mj/task/list-by-condition", {"ids": [answer["result"]]},
                                mode="mj-relax")
    assert status == 200 and listed[0]["status"] == "SUCCESS"


async def test_nothing_is_kept_another_instance_answers_the_same(clock: Clock) -> None:
    first = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    second = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    grid = await accepted(first, "submit/imagine", {"prompt": "x"})
    assert await fetch(second, grid) == await fetch(first, grid)
    clock.now += 0.3
    done = await fetch(second, grid)
    assert done == await fetch(first, grid) and done["status"] == "SUCCESS"
    upscale = await accepted(second, "submit/action", {"taskId": grid, "customId": button(done, "upsample::2")})
    clock.now += 0.3
    assert (await fetch(first, upscale))["action"] == "UPSCALE"


async def test_upscale_then_vary_region_waits_for_the_modal(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    grid = await accepted(mock, "submit/imagine", {"prompt": "x"})
    u1 = f"MJ::JOB::upsample::1::{message_hash(grid)}"
    early = await submit(mock, "submit/action", {"taskId": grid, "customId": u1})
    assert (early["code"], early["description"]) == (4, "关联任务状态错误")  # the parent has not finished
    clock.now += 0.3
    parent = await fetch(mock, grid)
    not_ours = await submit(mock, "submit/action", {"taskId": grid, "customId": "MJ::JOB::upsample::1::other"})
    assert not_ours["code"] == 4
    missing = await submit(mock, "submit/action", {"taskId": grid})
    assert missing["code"] == 4
    upscale = await accepted(mock, "submit/action", {"taskId": grid, "customId": button(parent, "upsample::1")})
    clock.now += 0.3
    done = await fetch(mock, upscale)
    assert (done["action"], done["status"], done["imageUrls"]) == ("UPSCALE", "SUCCESS", None)
    labels = {b["label"] for b in done["buttons"]}
    assert {"Vary (Subtle)", "Vary (Strong)", "Vary (Region)", "Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom",
            "Animate (High motion)"} <= labels
    assert any(b["customId"].startswith("MJ::JOB::pan_left::1::") for b in done["buttons"])
    region = button(done, "MJ::Inpaint::")
    assert region == f"MJ::Inpaint::1::{message_hash(upscale)}::SOLO"

    waiting = await submit(mock, "submit/action", {"taskId": upscale, "customId": region})
    assert (waiting["code"], waiting["description"], waiting["properties"]) == (
        21, "Waiting for window confirm", {"finalPrompt": "", "remix": True})
    clock.now += 3600
    modal = await fetch(mock, waiting["result"])
    assert (modal["status"], modal["action"], modal["startTime"], modal["finishTime"]) == (
        "MODAL", "INPAINT", None, None)
    assert modal["properties"]["remix"] is True and modal["buttons"] == []
    assert (await submit(mock, "submit/modal", {"taskId": waiting["result"]}))["code"] == 4  # no mask
    assert (await submit(mock, "submit/modal", {"taskId": upscale, "maskBase64": MASK}))["code"] == 4  # not MODAL
    confirmed = await accepted(mock, "submit/modal", {"taskId": waiting["result"], "prompt": "a boat",
                                                      "maskBase64": MASK})
    assert confirmed != waiting["result"]
    assert (await fetch(mock, waiting["result"]))["status"] == "MODAL"  # for ever
    assert (await fetch(mock, confirmed))["status"] == "SUBMITTED"
    clock.now += 0.3
    repainted = await fetch(mock, confirmed)
    assert (repainted["status"], repainted["action"], len(repainted["imageUrls"])) == ("SUCCESS", "INPAINT", 4)

    zoom = await submit(mock, "submit/action", {"taskId": upscale, "customId": button(done, "CustomZoom")})
    assert zoom["code"] == 21
    zoomed = await accepted(mock, "submit/modal", {"taskId": zoom["result"], "prompt": "wide --zoom 1.5"})
    clock.now += 0.3
    assert (await fetch(mock, zoomed))["action"] == "ZOOM"


async def test_remix_makes_a_variation_wait_too(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    grid = await accepted(mock, "submit/imagine", {"prompt": "x"})
    clock.now += 0.3
    v1 = button(await fetch(mock, grid), "variation::1")
    remixed = await submit(mock, "submit/action", {"taskId": grid, "customId": v1, "enableRemix": True})
    assert remixed["code"] == 21 and (await fetch(mock, remixed["result"]))["status"] == "MODAL"
    confirmed = await accepted(mock, "submit/modal", {"taskId": remixed["result"], "prompt": "y --fail"})
    clock.now += 0.3
    assert (await fetch(mock, confirmed))["status"] == "FAILURE"  # the modal's prompt counts


async def test_prompt_markers_fail_and_ban(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    banned = await submit(mock, "submit/imagine", {"prompt": "x --banned"})
    assert (banned["code"], banned["result"], banned["properties"]) == (
        24, None, {"promptEn": "x --banned", "bannedWord": "banned"})
    for endpoint in ("submit/imagine", "submit/shorten", "submit/video"):
        empty = await submit(mock, endpoint, {"prompt": " "})
        assert (empty["code"], empty["description"]) == (4, "prompt不能为空")
    failing = await accepted(mock, "submit/imagine", {"prompt": "x --fail"})
    clock.now += 0.15
    assert (await fetch(mock, failing))["status"] == "IN_PROGRESS"
    clock.now += 0.15
    failed = await fetch(mock, failing)
    assert (failed["status"], failed["progress"], failed["failReason"]) == ("FAILURE", "", FAIL_REASON)
    assert failed["buttons"] == [] and failed["imageUrl"] is None and failed["finishTime"] is not None
    acted = await submit(mock, "submit/action", {"taskId": failing, "customId": f"MJ::JOB::upsample::1::"
                                                                                f"{message_hash(failing)}"})
    assert acted["code"] == 4


async def test_blend_takes_two_to_five_images(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    for count, code in ((0, 4), (1, 4), (2, 1), (5, 1), (6, 4)):
        answer = await submit(mock, "submit/blend", {"base64Array": [IMAGE] * count})
        assert answer["code"] == code, count
    assert (await submit(mock, "submit/blend", {"base64Array": [IMAGE, "aGVsbG8="]}))["description"] == "base64格式错误"
    assert (await submit(mock, "submit/blend", {"base64Array": [IMAGE] * 2, "dimensions": "ROUND"}))["code"] == 4
    blend = await accepted(mock, "submit/blend", {"base64Array": [IMAGE] * 3, "dimensions": "PORTRAIT"})
    clock.now += 0.3
    done = await fetch(mock, blend)
    assert (done["action"], len(done["buttons"])) == ("BLEND", 9)


async def test_describe_and_shorten_offer_prompts(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    assert (await submit(mock, "submit/describe", {}))["code"] == 4
    described = await accepted(mock, "submit/describe", {"base64": IMAGE})
    linked = await accepted(mock, "submit/describe", {"link": "https://example.com/a.png"})
    shortened = await accepted(mock, "submit/shorten", {"prompt": "a very long prompt indeed"})
    clock.now += 0.3
    describe = await fetch(mock, described)
    readings = describe["properties"]["finalPrompt"].split("\n\n")
    assert len(readings) == 4 and [r[:3] for r in readings] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    assert describe["action"] == "DESCRIBE" and png_size(describe["imageUrl"]) == (64, 64)
    assert [b["customId"] for b in describe["buttons"]] == [
        "MJ::Job::PicReader::1", "MJ::Job::PicReader::2", "MJ::Job::PicReader::3", "MJ::Job::PicReader::4",
        "MJ::Picread::Retry"]
    assert (await fetch(mock, linked))["status"] == "SUCCESS"
    shorten = await fetch(mock, shortened)
    candidates = shorten["properties"]["finalPrompt"].split("\n\n")
    assert len(candidates) == 5 and candidates[0].startswith("1️⃣ ") and candidates[4].startswith("5️⃣ ")
    assert [b["customId"] for b in shorten["buttons"]] == [f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)]
    assert shorten["imageUrl"] is None
    imagined = await accepted(mock, "submit/action", {"taskId": described, "customId": "MJ::Job::PicReader::2"})
    again = await accepted(mock, "submit/action", {"taskId": described, "customId": "MJ::Picread::Retry"})
    picked = await accepted(mock, "submit/action", {"taskId": shortened, "customId": "MJ::Job::PromptAnalyzer::5"})
    clock.now += 0.3
    assert [(await fetch(mock, i))["action"] for i in (imagined, again, picked)] == ["IMAGINE", "DESCRIBE", "IMAGINE"]


async def test_upload_echoes_the_images(clock: Clock) -> None:
    mock = MockMidjourneyTransport(clock=clock)
    uploaded = await submit(mock, "submit/upload-discord-images", {"base64Array": [IMAGE, MASK]})
    assert (uploaded["code"], uploaded["result"]) == (1, [IMAGE, MASK])
    assert (await submit(mock, "submit/upload-discord-images", {"base64Array": []}))["code"] == 4
    assert (await submit(mock, "submit/upload-discord-images", {"base64Array": ["plain"]}))["code"] == 4


async def test_image_seed_fetch_and_unknown_ids(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    task_id = await accepted(mock, "submit/imagine", {"prompt": "x"})
    status, early = await call(mock, "GET", f"/mj/task/{task_id}/image-seed")
    assert (status, early["code"]) == (400, 4)
    clock.now += 0.3
    status, seed = await call(mock, "GET", f"/mj/task/{task_id}/image-seed")
    assert status == 200 and (seed["code"], seed["description"]) == (1, "成功") and seed["result"].isdigit()
    other = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    assert await call(other, "GET", f"/mj/task/{task_id}/image-seed") == (200, seed)
    status, fetched = await call(mock, "GET", f"/mj/task/{task_id}/fetch")
    assert status == 200 and fetched == await fetch(mock, task_id)
    assert await call(mock, "GET", "/mj/task/123/fetch") == (200, None)
    response = await mock.send(request("GET", "/mj/task/123/fetch"))
    assert await response.read(10) == b""
    status, unknown = await call(mock, "GET", "/mj/task/1234567890123999999/image-seed")
    assert (status, unknown["code"]) == (404, 3)
    status, orphan = await call(mock, "POST", "/mj/submit/action",
                                {"taskId": "1234567890123", "customId": "MJ::JOB::upsample::1::h"})
    assert (status, orphan["code"]) == (404, 3)
    assert await call(mock, "POST", "/mj/task/list-by-condition", {"ids": None}) == (200, [])
    assert await call(mock, "POST", "/mj/task/list-by-condition", {}) == (200, [])


async def test_change_and_simple_change_act_on_grids(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    grid = await accepted(mock, "submit/imagine", {"prompt": "x"})
    clock.now += 0.3
    upscale = await accepted(mock, "submit/change", {"taskId": grid, "action": "UPSCALE", "index": 2})
    reroll = await accepted(mock, "submit/change", {"taskId": grid, "action": "REROLL"})
    variation = await accepted(mock, "submit/simple-change", {"content": f"{grid} v3"})
    assert (await submit(mock, "submit/change", {"taskId": grid, "action": "UPSCALE", "index": 5}))["code"] == 4
    assert (await submit(mock, "submit/change", {"taskId": grid, "action": "ZOOM", "index": 1}))["code"] == 4
    assert (await submit(mock, "submit/simple-change", {"content": f"{grid} U9"}))["code"] == 4
    clock.now += 0.3
    assert [(await fetch(mock, i))["action"] for i in (upscale, reroll, variation)] == [
        "UPSCALE", "REROLL", "VARIATION"]
    not_a_grid = await submit(mock, "submit/simple-change", {"content": f"{upscale} U1"})
    assert not_a_grid["code"] == 4


async def test_video_swap_face_and_edits(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    video = await accepted(mock, "submit/video", {"prompt": "waves", "motion": "high", "image": IMAGE})
    assert (await submit(mock, "submit/video", {"prompt": "waves", "motion": "wild"}))["code"] == 4
    swap = await accepted(mock, "insight-face/swap", {"sourceBase64": IMAGE, "targetUrl": "https://e.com/t.png"})
    assert (await submit(mock, "insight-face/swap", {"sourceBase64": IMAGE}))["code"] == 4
    edit = await accepted(mock, "submit/edits", {"prompt": "add a hat", "image": IMAGE})
    assert (await submit(mock, "submit/edits", {"prompt": "add a hat"}))["code"] == 4
    extend_early = await submit(mock, "submit/video", {"prompt": "more", "action": "extend", "taskId": video,
                                                       "index": 0})
    assert extend_early["code"] == 4
    clock.now += 0.3
    done = await fetch(mock, video)
    assert done["action"] == "VIDEO" and png_size(done["videoUrl"]) == (64, 64)
    assert len(done["videoUrls"]) == 4 and all(png_size(v["url"]) for v in done["videoUrls"])
    extended = await accepted(mock, "submit/video", {"prompt": "more", "action": "extend", "taskId": video,
                                                     "index": 0})
    upscaled = await accepted(mock, "submit/action", {"taskId": video,
                                                      "customId": button(done, "video_virtual_upscale::2")})
    face = await fetch(mock, swap)
    assert (face["action"], face["botType"], face["buttons"]) == ("SWAP_FACE", "INSIGHT_FACE", [])
    assert png_size(face["imageUrl"]) == (64, 64)
    assert (await fetch(mock, edit))["action"] == "EDIT"
    clock.now += 0.3
    assert (await fetch(mock, extended))["action"] == "VIDEO"
    one = await fetch(mock, upscaled)
    assert (one["action"], len(one["videoUrls"])) == ("VIDEO", 1)
    assert (await submit(mock, "submit/video", {"prompt": "x", "action": "extend", "taskId": edit,
                                                "index": 0}))["code"] == 4  # not a video


async def test_the_animate_button_of_an_upscale_makes_a_video(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=0.3, clock=clock)
    grid = await accepted(mock, "submit/imagine", {"prompt": "x"})
    clock.now += 0.3
    upscale = await accepted(mock, "submit/action", {"taskId": grid, "customId": button(await fetch(mock, grid),
                                                                                        "upsample::3")})
    clock.now += 0.3
    video = await accepted(mock, "submit/action", {"taskId": upscale, "customId": button(await fetch(mock, upscale),
                                                                                         "animate_low")})
    clock.now += 0.3
    assert (await fetch(mock, video))["videoUrl"].startswith("data:image/png;base64,")


async def test_task_ids_encode_time_kind_and_flags() -> None:
    plain = new_task_id(1_800_000_000_123, Kind.SHORTEN)
    assert plain.startswith("180000000012310") and len(plain) == 19
    decoded = decode_task_id(plain)
    assert decoded is not None and (decoded.submit_ms, decoded.kind, decoded.waiting, decoded.failing) == (
        1_800_000_000_123, Kind.SHORTEN, False, False)
    waiting = decode_task_id(new_task_id(1_800_000_000_123, Kind.INPAINT, waiting=True))
    assert waiting is not None and (waiting.kind, waiting.waiting, waiting.code) == (Kind.INPAINT, True, 27)
    failing = decode_task_id(new_task_id(1_800_000_000_123, Kind.IMAGINE, failing=True))
    assert failing is not None and (failing.failing, failing.code) == (True, 51)
    for bad in ("", "123", "1800000000123001234x", "1800000000123991234", "1800000000123001234",
                "1800000000123201234", "１８００００００００１２３０１１２３４"):
        assert decode_task_id(bad) is None, bad


async def test_wrong_paths_methods_and_bodies(clock: Clock) -> None:
    mock = MockMidjourneyTransport(clock=clock)
    status, error = await call(mock, "POST", "/mj/submit/nothing", {})
    assert (status, error["status"], error["error"], error["path"]) == (404, 404, "Not Found", "/mj/submit/nothing")
    assert (await call(mock, "GET", "/mj/submit/imagine"))[0] == 405
    assert (await call(mock, "POST", "/mj/task/1/fetch"))[0] == 405
    response = await mock.send(UpstreamRequest("POST", ROOT + "/mj/submit/imagine", {}, b"[1, 2]"))
    assert response.status == 400


async def test_the_response_reads_in_chunks_and_keeps_to_the_limit() -> None:
    body = b"x" * 150_000
    response = MockMidjourneyResponse(200, body)
    assert response.content_type == "application/json"
    assert b"".join([chunk async for chunk in response.iter_chunks()]) == body
    with pytest.raises(UpstreamBodyTooLarge):
        await response.read(1000)
    assert await response.read(len(body)) == body
    response.close()
    assert await response.read(10) == b""


def test_a_duration_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MockMidjourneyTransport(duration_s=0)
