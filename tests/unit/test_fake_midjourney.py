"""The fake midjourney-proxy upstream speaks spec/midjourney.md, so that what the gateway's MJ relay tests see
is what a real proxy would send: codes, statuses and progress over time, buttons, modals, callbacks."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from tests.fakes.fake_server import LoopbackServer
from tests.fakes.midjourney_upstream import INSTANCE_ID, Behavior, FakeMidjourney
from tests.fakes.png import png_size

SECRET = "mj-test-secret"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
IMAGE = "data:image/png;base64," + base64.b64encode(PNG).decode()
TASK_KEYS = {"id", "action", "customId", "botType", "prompt", "promptEn", "description", "state", "submitTime",
             "startTime", "finishTime", "imageUrl", "imageUrls", "videoUrl", "videoUrls", "status", "progress",
             "failReason", "buttons", "properties", "mode", "parentId"}


class HookReceiver(LoopbackServer):
    """Where the gateway would listen for the proxy's notifyHook POSTs: records each body."""

    name = "hook-receiver"

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/mj/notify", self._notify)
        return app

    async def _notify(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        body = orjson.loads(await request.read())
        with self.lock:
            self.bodies.append(body)
        return web.Response(text="ok")

    def received(self, task_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.bodies if b["id"] == task_id]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeMidjourney]:
    with FakeMidjourney(api_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeMidjourney) -> FakeMidjourney:
    fake_server.reset()
    return fake_server


@pytest.fixture
def http(fake: FakeMidjourney) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10, headers={"mj-api-secret": SECRET}) as client:
        yield client


@pytest.fixture(scope="module")
def receiver() -> Iterator[HookReceiver]:
    with HookReceiver() as server:
        yield server


def submit(http: httpx.Client, endpoint: str, body: dict[str, Any], expected_code: int = 1,
           path: str = "/mj/submit/") -> dict[str, Any]:
    response = http.post(path + endpoint, json=body)
    result: dict[str, Any] = response.json()
    assert result["code"] == expected_code, result
    return result


def fetch(http: httpx.Client, task_id: str) -> dict[str, Any]:
    response = http.get(f"/mj/task/{task_id}/fetch")
    assert response.status_code == 200
    task: dict[str, Any] = response.json()
    return task


def wait_done(http: httpx.Client, task_id: str, timeout: float = 5.0) -> tuple[dict[str, Any], list[str]]:
    """Poll as a client would until SUCCESS/FAILURE; returns the task and each status:progress seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = fetch(http, task_id)
        assert set(task) == TASK_KEYS
        point = f"{task['status']}:{task['progress']}"
        if not seen or seen[-1] != point:
            seen.append(point)
        if task["status"] in ("SUCCESS", "FAILURE"):
            return task, seen
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not finish: {seen}")


def button(task: dict[str, Any], label: str) -> str:
    return str(next(b["customId"] for b in task["buttons"] if b["label"] == label))


def test_quick_tutorial_flow(http: httpx.Client, fake: FakeMidjourney) -> None:
    accepted = submit(http, "imagine", {"botType": "MID_JOURNEY", "prompt": "a lighthouse at dusk --ar 3:2",
                                        "base64Array": [], "state": "order-7731"})
    assert accepted["description"] == "提交成功" and accepted["properties"]["discordInstanceId"] == INSTANCE_ID
    t1 = accepted["result"]
    assert isinstance(t1, str) and t1.isdigit() and len(t1) == 16

    grid, seen = wait_done(http, t1)
    assert seen[0] == "SUBMITTED:0%" and seen[-1] == "SUCCESS:100%" and "IN_PROGRESS:50%" in seen
    assert grid["action"] == "IMAGINE" and grid["state"] == "order-7731" and grid["failReason"] == ""
    assert grid["description"] == "/imagine a lighthouse at dusk --ar 3:2" and grid["mode"] == "FAST"
    assert grid["submitTime"] <= grid["startTime"] < grid["finishTime"]
    assert grid["properties"]["finalPrompt"] == "a lighthouse at dusk --ar 3:2 --v 6.1"
    h = grid["properties"]["messageHash"]
    assert [(b["customId"], b["emoji"], b["label"], b["type"], b["style"]) for b in grid["buttons"]] == [
        *[(f"MJ::JOB::upsample::{n}::{h}", "", f"U{n}", 2, 2) for n in range(1, 5)],
        (f"MJ::JOB::reroll::0::{h}::SOLO", "🔄", "", 2, 2),
        *[(f"MJ::JOB::variation::{n}::{h}", "", f"V{n}", 2, 2) for n in range(1, 5)]]
    assert len(grid["imageUrls"]) == 4 and grid["videoUrl"] is None
    image = httpx.get(grid["imageUrl"])
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png_size(image.content) == (64, 64) and png_size(httpx.get(grid["imageUrls"][2]["url"]).content) == (32, 32)

    t2 = submit(http, "action", {"taskId": t1, "customId": button(grid, "U1"), "chooseSameChannel": True})["result"]
    upscaled, _ = wait_done(http, t2)
    assert (upscaled["action"], upscaled["parentId"], upscaled["prompt"]) == ("UPSCALE", t1, grid["prompt"])
    assert upscaled["customId"] == button(grid, "U1") and upscaled["description"] == f"/up {t1} U1"
    assert upscaled["imageUrls"] is None
    h2 = upscaled["properties"]["messageHash"]
    assert h2 != h
    customs = [b["customId"] for b in upscaled["buttons"]]
    for expected in (f"MJ::JOB::upsample_v6r1_2x_subtle::1::{h2}::SOLO", f"MJ::JOB::high_variation::1::{h2}::SOLO",
                     f"MJ::JOB::low_variation::1::{h2}::SOLO", f"MJ::Inpaint::1::{h2}::SOLO",
                     f"MJ::Outpaint::50::1::{h2}::SOLO", f"MJ::Outpaint::75::1::{h2}::SOLO", f"MJ::CustomZoom::{h2}",
                     f"MJ::JOB::pan_left::1::{h2}::SOLO", f"MJ::JOB::animate_high::1::{h2}::SOLO"):
        assert expected in customs

    region = submit(http, "action", {"taskId": t2, "customId": button(upscaled, "Vary (Region)")}, expected_code=21)
    assert region["description"] == "Waiting for window confirm"
    assert region["properties"] == {"finalPrompt": "", "remix": True}
    t3 = region["result"]
    waiting = fetch(http, t3)
    assert (waiting["status"], waiting["action"], waiting["startTime"]) == ("MODAL", "INPAINT", None)
    time.sleep(0.7)  # a MODAL task does not move on by itself
    assert fetch(http, t3)["status"] == "MODAL" and fake.finish_all() == 0

    confirmed = submit(http, "modal", {"taskId": t3, "prompt": "same scene, add a red sailboat",
                                       "maskBase64": IMAGE})
    assert confirmed["result"] == t3
    repainted, seen = wait_done(http, t3)
    assert seen[0] in ("MODAL:0%", "SUBMITTED:0%") and seen[-1] == "SUCCESS:100%"
    assert repainted["prompt"] == "same scene, add a red sailboat" and repainted["action"] == "INPAINT"
    assert len(repainted["buttons"]) == 9  # an inpaint result is a grid again

    seed = http.get(f"/mj/task/{t3}/image-seed").json()
    assert seed["code"] == 1 and seed["description"] == "成功" and seed["result"].isdigit()
    assert [r.endpoint for r in fake.mj_requests("submit/modal")] == ["submit/modal"]


def test_progress_is_computed_from_the_clock(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=10)  # five steps of 2 s: SUBMITTED, IN_PROGRESS 0/25/50/75, then SUCCESS
    task_id = submit(http, "imagine", {"prompt": "slow"})["result"]
    points = []
    for _ in range(6):
        task = fetch(http, task_id)
        points.append((task["status"], task["progress"], task["imageUrl"] is not None, bool(task["buttons"])))
        fake.advance(2)
    assert points == [("SUBMITTED", "0%", False, False), ("IN_PROGRESS", "0%", False, False),
                      ("IN_PROGRESS", "25%", True, False), ("IN_PROGRESS", "50%", True, False),
                      ("IN_PROGRESS", "75%", True, False), ("SUCCESS", "100%", True, True)]
    preview = fake.tasks()[0]
    assert preview["finishTime"] - preview["startTime"] == 10_000

    other = submit(http, "imagine", {"prompt": "forced"})["result"]
    assert fetch(http, other)["status"] == "SUBMITTED"
    assert fake.finish_all() == 1
    done = fetch(http, other)
    assert done["status"] == "SUCCESS" and done["finishTime"] is not None
    failed = submit(http, "imagine", {"prompt": "to fail"})["result"]
    fake.finish(failed, fail_reason="[Banned prompt] nope")
    assert (fake.task(failed) or {})["failReason"] == "[Banned prompt] nope"


def test_blend_validation(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    for count in (1, 6):
        refused = submit(http, "blend", {"base64Array": [IMAGE] * count}, expected_code=4)
        assert refused == {"code": 4, "description": "base64List参数错误", "result": None, "properties": {}}
    bare = submit(http, "blend", {"base64Array": [IMAGE, base64.b64encode(PNG).decode()]}, expected_code=4)
    assert bare["description"] == "base64格式错误"
    assert submit(http, "blend", {"base64Array": [IMAGE] * 2, "dimensions": "WIDE"}, 4)["description"] == (
        "dimensions参数错误")
    task_id = submit(http, "blend", {"base64Array": [IMAGE] * 3, "dimensions": "PORTRAIT"})["result"]
    blended, _ = wait_done(http, task_id)
    assert blended["action"] == "BLEND" and blended["description"] == f"/blend {task_id} 3"
    assert len(blended["buttons"]) == 9


def test_describe_then_imagine_a_reading(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    assert submit(http, "describe", {}, expected_code=4)["description"] == "base64或link不能为空"
    task_id = submit(http, "describe", {"base64": IMAGE})["result"]
    described, _ = wait_done(http, task_id)
    assert described["action"] == "DESCRIBE" and described["description"] == f"/describe {task_id}.png"
    readings = described["properties"]["finalPrompt"].split("\n\n")
    assert len(readings) == 4 and readings[0].startswith("1️⃣ ") and readings[3].startswith("4️⃣ ")
    assert described["prompt"] == described["promptEn"] == described["properties"]["finalPrompt"]
    assert httpx.get(described["imageUrl"]).content == PNG  # the image described, as uploaded
    assert [b["customId"] for b in described["buttons"]] == [
        "MJ::Job::PicReader::1", "MJ::Job::PicReader::2", "MJ::Job::PicReader::3", "MJ::Job::PicReader::4",
        "MJ::Picread::Retry"]
    child = submit(http, "action", {"taskId": task_id, "customId": "MJ::Job::PicReader::2"})["result"]
    imagined, _ = wait_done(http, child)
    assert imagined["action"] == "IMAGINE" and imagined["prompt"] == readings[1].removeprefix("2️⃣ ")
    retry = submit(http, "action", {"taskId": task_id, "customId": "MJ::Picread::Retry"})["result"]
    assert wait_done(http, retry)[0]["action"] == "DESCRIBE"


def test_shorten(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    assert submit(http, "shorten", {"prompt": "  "}, expected_code=4)["description"] == "prompt不能为空"
    prompt = "a very long and elaborate prompt about a lighthouse at dusk in watercolor"
    task_id = submit(http, "shorten", {"prompt": prompt})["result"]
    shortened, _ = wait_done(http, task_id)
    assert shortened["action"] == "SHORTEN" and shortened["description"] == f"/shorten {prompt}"
    candidates = shortened["properties"]["finalPrompt"].split("\n\n")
    assert len(candidates) == 5 and all(len(c) < len(prompt) + 10 for c in candidates)
    assert [b["customId"] for b in shortened["buttons"]] == [f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)]


def test_swap_face(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    missing = submit(http, "swap", {"sourceBase64": IMAGE}, 4, path="/mj/insight-face/")
    assert missing["description"] == "targetBase64或targetUrl不能为空"
    task_id = submit(http, "swap", {"sourceBase64": IMAGE, "targetBase64": IMAGE}, path="/mj/insight-face/")["result"]
    swapped, _ = wait_done(http, task_id)
    assert (swapped["action"], swapped["botType"], swapped["buttons"]) == ("SWAP_FACE", "INSIGHT_FACE", [])
    assert httpx.get(swapped["imageUrl"]).content.startswith(b"\x89PNG")


def test_video_swap_is_multipart(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    files = {"targetFile": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")}
    refused = http.post("/mj/insight-face/video-swap", files=files).json()
    assert refused["code"] == 4
    accepted = http.post("/mj/insight-face/video-swap", data={"sourceBase64": IMAGE, "state": "v1"}, files=files)
    swapped, _ = wait_done(http, accepted.json()["result"])
    assert (swapped["action"], swapped["state"], len(swapped["videoUrls"])) == ("SWAP_VIDEO_FACE", "v1", 1)


def test_edits_retexture_and_reference_images(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    assert submit(http, "edits", {"prompt": "red roof"}, expected_code=4)["description"] == "image不能为空"
    edit = submit(http, "edits", {"prompt": "red roof", "image": IMAGE})["result"]
    texture = submit(http, "retexture", {"prompt": "marble", "image": "https://example.com/a.png"})["result"]
    assert [wait_done(http, t)[0]["action"] for t in (edit, texture)] == ["EDIT", "RETEXTURE"]
    bare = submit(http, "imagine", {"prompt": "x", "base64Array": ["aGVsbG8="]}, expected_code=4)
    assert bare["description"] == "base64格式错误"
    niji = submit(http, "imagine", {"prompt": "a fox", "base64Array": [IMAGE], "botType": "NIJI_JOURNEY"})["result"]
    final = wait_done(http, niji)[0]
    reference, _, rest = final["properties"]["finalPrompt"].partition(" ")
    assert httpx.get(reference).content == PNG and rest == "a fox --niji 6" and final["botType"] == "NIJI_JOURNEY"


def test_video(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    assert submit(http, "video", {"motion": "low"}, expected_code=4)["description"] == "Prompt 不能为空"
    task_id = submit(http, "video", {"prompt": "waves", "motion": "high", "image": IMAGE, "batchSize": 2})["result"]
    video, _ = wait_done(http, task_id)
    assert video["action"] == "VIDEO" and len(video["videoUrls"]) == 2
    assert video["videoUrl"] == video["videoUrls"][0]["url"]
    assert httpx.get(video["videoUrl"]).headers["content-type"] == "video/mp4"
    extend = submit(http, "video", {"prompt": "more waves", "action": "extend", "taskId": task_id, "index": 1})
    assert wait_done(http, extend["result"])[0]["parentId"] == task_id
    unknown = http.post("/mj/submit/video", json={"prompt": "x", "action": "extend", "taskId": "1", "index": 1})
    assert unknown.status_code == 404 and unknown.json()["code"] == 3
    fake.set(video_enabled=False)
    assert submit(http, "video", {"prompt": "waves"}, expected_code=4)["description"] == "视频功能未启用"


def test_upload_discord_images(http: httpx.Client, fake: FakeMidjourney) -> None:
    uploaded = submit(http, "upload-discord-images", {"base64Array": [IMAGE, IMAGE]})
    assert uploaded["description"] == "提交成功" and len(uploaded["result"]) == 2
    assert all(httpx.get(url).content == PNG for url in uploaded["result"])
    assert fake.tasks() == []  # no task on the proxy
    assert submit(http, "upload-discord-images", {"base64Array": []}, 4)["description"] == "base64 参数错误"


def test_image_seed(http: httpx.Client) -> None:
    unknown = http.get("/mj/task/1712205491372553/image-seed")
    assert unknown.status_code == 404 and unknown.json()["code"] == 3
    task_id = submit(http, "imagine", {"prompt": "seeded"})["result"]
    early = http.get(f"/mj/task/{task_id}/image-seed")
    assert early.status_code == 400 and early.json()["code"] == 4
    wait_done(http, task_id)
    seed = http.get(f"/mj/task/{task_id}/image-seed").json()
    assert seed == http.get(f"/mj/task/{task_id}/image-seed").json() and seed["result"].isdigit()


def test_list_by_condition_and_fetch(http: httpx.Client, fake: FakeMidjourney) -> None:
    first = submit(http, "imagine", {"prompt": "one"})["result"]
    second = submit(http, "imagine", {"prompt": "two"})["result"]
    listed = http.post("/mj/task/list-by-condition", json={"ids": [second, "404", first]}).json()
    assert [t["id"] for t in listed] == [second, first]
    assert http.post("/mj/task/list-by-condition", json={"ids": None}).json() == []
    assert [t["id"] for t in http.post("/a/mj-fast/mj/task/list-by-ids", json={"ids": [first]}).json()] == [first]
    assert [r.endpoint for r in fake.mj_requests("task/list-by-condition")] == ["task/list-by-condition"] * 2
    unknown = http.get("/mj/task/404/fetch")
    assert unknown.status_code == 200 and unknown.content == b""
    fake.set(fetch_unknown="null")
    assert http.get("/mj/task/404/fetch").json() is None
    assert {t["id"] for t in http.get("/mj/task/list").json()} == {first, second}


def test_failure_and_refusal_markers(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=0.15)
    failing = submit(http, "imagine", {"prompt": "a cat --fail"})["result"]
    failed, seen = wait_done(http, failing)
    assert seen[-1] == "FAILURE:" and failed["failReason"] == "[Invalid parameter] Invalid value"
    assert failed["buttons"] == [] and failed["finishTime"] is not None
    banned = submit(http, "imagine", {"prompt": "a cat --banned"}, expected_code=24)
    assert banned["description"] == "可能包含敏感词" and banned["result"] is None
    assert banned["properties"] == {"promptEn": "a cat --banned", "bannedWord": "banned"}
    full = submit(http, "imagine", {"prompt": "a cat --queue-full"}, expected_code=23)
    assert full["description"] == "队列已满，请稍后尝试"
    assert len(fake.tasks()) == 1  # refused submits make no task

    fake.set(submit_code=22, queue_ahead=3, duration_s=10)
    queued = submit(http, "imagine", {"prompt": "queued"}, expected_code=22)
    assert queued["description"] == "排队中，前面还有3个任务" and queued["properties"]["numberOfQueues"] == 3
    task = fetch(http, queued["result"])
    assert (task["status"], task["startTime"]) == ("NOT_START", None)
    assert [t["id"] for t in http.get("/mj/task/queue").json()] == [queued["result"]]

    fake.set(duration_s=0.15)
    fake.next_submit(fail=True, fail_reason="scripted", duration_s=0.15)
    fetch(http, failing)  # queries do not take the scripted behaviour
    assert wait_done(http, submit(http, "imagine", {"prompt": "x"})["result"])[0]["failReason"] == "scripted"
    assert wait_done(http, submit(http, "imagine", {"prompt": "y"})["result"])[0]["status"] == "SUCCESS"
    marked = submit(http, "imagine", {"prompt": "z", "x_fake": {"submit_code": 9}}, expected_code=9)
    assert marked["description"] == "系统异常"


def test_http_failures(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(status=500)
    for response in (http.post("/mj/submit/imagine", json={"prompt": "x"}), http.get("/mj/task/1/fetch"),
                     http.post("/mj/task/list-by-condition", json={"ids": []})):
        assert response.status_code == 500
        assert response.json()["error"] == "Internal Server Error"
    fake.set(status=502, raw_body='{"code":5}')
    assert http.get("/mj/task/1/fetch").json() == {"code": 5}
    fake.set()
    assert http.post("/mj/submit/imagine", content=b"{nope", headers={"content-type": "application/json"}
                     ).status_code == 400
    assert http.post("/mj/submit/nothing", json={}).status_code == 404
    assert http.get("/mj/submit/imagine").status_code == 405


def test_auth(fake: FakeMidjourney) -> None:
    with httpx.Client(base_url=fake.url, timeout=10) as raw:
        missing = raw.post("/mj/submit/imagine", json={"prompt": "x"})
        wrong = raw.get("/mj/task/1/fetch", headers={"mj-api-secret": "nope"})
        right = raw.get("/mj/task/1/fetch", headers={"Mj-Api-Secret": SECRET})
    assert (missing.status_code, missing.content) == (401, b"")
    assert (wrong.status_code, wrong.content) == (401, b"")
    assert right.status_code == 200
    assert [r.headers.get("mj-api-secret") for r in fake.mj_requests()] == [None, "nope", SECRET]
    assert fake.tasks() == []
    with FakeMidjourney(api_secret="s", auth_failure="net") as net, httpx.Client(base_url=net.url) as raw:
        forbidden = raw.post("/mj/submit/imagine", json={"prompt": "x"})
        assert (forbidden.status_code, forbidden.text) == (403, "未登录")


def test_mode_prefixes(http: httpx.Client, fake: FakeMidjourney) -> None:
    fast = submit(http, "imagine", {"prompt": "f"}, path="/mj-fast/mj/submit/")["result"]
    relax = submit(http, "imagine", {"prompt": "r"}, path="/chan/mj-relax/mj/submit/")["result"]
    turbo = submit(http, "imagine", {"prompt": "t --turbo"}, path="/mj-turbo/mj/submit/")["result"]
    plain = submit(http, "imagine", {"prompt": "p --relax"})["result"]
    assert [(r.prefix, r.mode, r.endpoint) for r in fake.mj_requests()] == [
        ("", "mj-fast", "submit/imagine"), ("chan", "mj-relax", "submit/imagine"),
        ("", "mj-turbo", "submit/imagine"), ("", "", "submit/imagine")]
    assert [fetch(http, t)["mode"] for t in (fast, relax, turbo, plain)] == ["FAST", "RELAX", "TURBO", "RELAX"]
    assert http.get(f"/mj-relax/mj/task/{fast}/fetch").json()["id"] == fast


def test_action_validation_and_remix(http: httpx.Client, fake: FakeMidjourney) -> None:
    fake.set(duration_s=10)
    task_id = submit(http, "imagine", {"prompt": "parent"})["result"]
    assert submit(http, "action", {"taskId": task_id}, 4)["description"] == "参数错误"
    custom = "MJ::JOB::upsample::1::not-its-hash"
    running = submit(http, "action", {"taskId": task_id, "customId": custom}, 4)
    assert running["description"] == "关联任务状态错误"
    gone = http.post("/mj/submit/action", json={"taskId": "404", "customId": custom})
    assert gone.status_code == 404 and gone.json() == {"code": 3, "description": "关联任务不存在或已失效",
                                                       "result": None, "properties": {}}
    fake.finish_all()
    grid = fetch(http, task_id)
    assert submit(http, "action", {"taskId": task_id, "customId": custom}, 4)["description"] == "customId 不存在"
    remixed = submit(http, "action", {"taskId": task_id, "customId": button(grid, "V2"), "enableRemix": True}, 21)
    assert remixed["properties"] == {"finalPrompt": "parent", "remix": True}
    assert fetch(http, remixed["result"])["status"] == "MODAL"
    assert submit(http, "modal", {"taskId": task_id}, 4)["description"] == "关联任务状态错误"
    submit(http, "modal", {"taskId": remixed["result"]})  # no prompt: the parent's
    fake.finish_all()
    varied = fetch(http, remixed["result"])
    assert (varied["status"], varied["action"], varied["prompt"]) == ("SUCCESS", "VARIATION", "parent")


def test_legacy_change_and_simple_change(http: httpx.Client, fake: FakeMidjourney) -> None:
    task_id = submit(http, "imagine", {"prompt": "old style"})["result"]
    fake.finish_all()
    upscale = submit(http, "change", {"taskId": task_id, "action": "UPSCALE", "index": 2})["result"]
    upscaled = fetch(http, upscale)
    assert (upscaled["action"], upscaled["description"], upscaled["customId"]) == ("UPSCALE", f"/up {task_id} U2", "")
    again = submit(http, "simple-change", {"content": f"{task_id} u2"}, expected_code=21)
    assert again["description"] == "任务已存在" and again["result"] == upscale
    assert set(again["properties"]) == {"status", "imageUrl"}
    variation = submit(http, "simple-change", {"content": f"{task_id} V3"})["result"]
    assert fetch(http, variation)["description"] == f"/up {task_id} V3"
    reroll = submit(http, "change", {"taskId": task_id, "action": "REROLL"})["result"]
    assert fetch(http, reroll)["action"] == "REROLL"
    assert submit(http, "simple-change", {"content": f"{task_id} X9"}, 4)["description"] == "content 参数错误"
    assert submit(http, "change", {"taskId": task_id, "action": "UPSCALE"}, 4)["description"] == "index参数错误"
    fake.finish_all()
    assert submit(http, "change", {"taskId": upscale, "action": "VARIATION", "index": 1}, 4)["description"] == (
        "关联任务不允许执行变化")


def test_notify_hook_callbacks(http: httpx.Client, fake: FakeMidjourney, receiver: HookReceiver) -> None:
    hook = f"{receiver.url}/mj/notify"
    task_id = submit(http, "imagine", {"prompt": "notify me", "notifyHook": hook, "state": "s1"})["result"]
    deadline = time.monotonic() + 5
    while not any(b["status"] == "SUCCESS" for b in receiver.received(task_id)) and time.monotonic() < deadline:
        time.sleep(0.02)
    bodies = receiver.received(task_id)
    assert [f"{b['status']}:{b['progress']}" for b in bodies] == [
        "SUBMITTED:0%", "IN_PROGRESS:0%", "IN_PROGRESS:25%", "IN_PROGRESS:50%", "IN_PROGRESS:75%", "SUCCESS:100%"]
    assert all(set(b) == TASK_KEYS and b["state"] == "s1" for b in bodies)
    assert bodies[-1] == fetch(http, task_id) and bodies[-1]["properties"]["notifyHook"] == hook
    sent = [c for c in fake.callbacks if c.task_id == task_id]
    assert [c.http_status for c in sent] == [200] * 6 and sent[-1].url == hook

    # a forced end skips what was not reached; a modal task reports MODAL first
    fake.set(duration_s=60)
    grid = submit(http, "imagine", {"prompt": "forced", "notifyHook": hook})["result"]
    fake.finish_all()
    upscale = submit(http, "action", {"taskId": grid, "customId": button(fetch(http, grid), "U3")})["result"]
    fake.finish_all()
    custom = submit(http, "action", {"taskId": upscale, "customId": button(fetch(http, upscale), "Custom Zoom"),
                                     "notifyHook": hook}, expected_code=21)["result"]
    submit(http, "modal", {"taskId": custom, "prompt": "wider --zoom 2"})
    fake.finish_all()
    deadline = time.monotonic() + 5
    while len(receiver.received(custom)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [b["status"] for b in receiver.received(grid)] == ["SUBMITTED", "SUCCESS"]
    assert [b["status"] for b in receiver.received(custom)] == ["MODAL", "SUBMITTED", "SUCCESS"]
    assert receiver.received(custom)[-1]["action"] == "ZOOM"


def test_unreachable_hook_is_recorded(http: httpx.Client, fake: FakeMidjourney) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    task_id = submit(http, "imagine", {"prompt": "x", "notifyHook": f"http://127.0.0.1:{port}/hook"})["result"]
    fake.finish_all()
    deadline = time.monotonic() + 5
    while not any(c.status == "SUCCESS" for c in fake.callbacks) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert {(c.task_id, c.http_status) for c in fake.callbacks} == {(task_id, None)}
    assert all(c.error for c in fake.callbacks)


def test_global_notify_hook_and_cancel(receiver: HookReceiver) -> None:
    with FakeMidjourney(api_secret=None, notify_hook=f"{receiver.url}/mj/notify") as fake, \
            httpx.Client(base_url=fake.url) as client:
        fake.set(duration_s=60)
        task_id = submit(client, "imagine", {"prompt": "cancel me"})["result"]
        assert client.post(f"/mj/task/{task_id}/cancel").content == b""
        cancelled = fetch(client, task_id)
        assert (cancelled["status"], cancelled["failReason"], cancelled["progress"]) == ("FAILURE", "取消任务", "")
        deadline = time.monotonic() + 5
        while len(receiver.received(task_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [b["status"] for b in receiver.received(task_id)] == ["SUBMITTED", "FAILURE"]


def test_behavior_defaults_are_fast() -> None:
    assert Behavior().duration_s <= 1 and Behavior().submit_code == 1


def test_serves_from_the_command_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.midjourney_upstream", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/mj/submit/imagine", json={"prompt": "standalone"},
                                    headers={"mj-api-secret": "mj-secret"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert answer.json()["code"] == 1
    finally:
        process.terminate()
        process.wait(10)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()
