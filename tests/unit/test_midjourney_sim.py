"""One midjourney-proxy simulator: the built-in offline mock and the tests' fake upstream run the same protocol
(``providers/midjourney_sim.py``), so the same walk through it gets the same answers from both — and every
fake upstream keeps its switches, scripts and recorded requests in the one ``FakeServer`` base."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, Protocol

import httpx
import orjson
import pytest

from relaygate.providers.base import UpstreamRequest
from relaygate.providers.midjourney_sim import ProxySimulator
from relaygate.providers.mock_midjourney import MockMidjourneyTransport
from tests.fakes.fake_server import FakeServer
from tests.fakes.midjourney_upstream import DEFAULT_SECRET, FakeMidjourney
from tests.fakes.openai_upstream import FakeOpenAI

MASK = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nmask").decode()


class Proxy(Protocol):
    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]: ...

    def settle(self) -> None:
        """Let every running task end."""


class MockProxy:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.mock = MockMidjourneyTransport(duration_s=1.0, clock=lambda: self.now)

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        payload = b"" if body is None else orjson.dumps(body)
        response = await self.mock.send(UpstreamRequest(method, "mock://midjourney" + path, {}, payload))
        raw = await response.read(10_000_000)
        return response.status, orjson.loads(raw) if raw else None

    def settle(self) -> None:
        self.now += 1.0


class FakeProxy:
    def __init__(self, fake: FakeMidjourney) -> None:
        self.fake = fake
        self.http = httpx.Client(base_url=fake.url, headers={"mj-api-secret": DEFAULT_SECRET})

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        response = self.http.request(method, path, json=body)
        return response.status_code, response.json() if response.content else None

    def settle(self) -> None:
        self.fake.finish_all()


@pytest.fixture(params=["mock", "fake"])
def proxy(request: pytest.FixtureRequest) -> Iterator[Proxy]:
    if request.param == "mock":
        yield MockProxy()
        return
    with FakeMidjourney() as fake:
        yield FakeProxy(fake)


async def submitted(proxy: Proxy, endpoint: str, body: dict[str, Any], code: int = 1) -> str:
    status, answer = await proxy.call("POST", f"/mj/{endpoint}", body)
    assert (status, answer["code"]) == (200, code), answer
    task_id: str = answer["result"]
    return task_id


async def finished(proxy: Proxy, task_id: str) -> dict[str, Any]:
    proxy.settle()
    status, listed = await proxy.call("POST", "/mj/task/list-by-condition", {"ids": [task_id, "nope", 7]})
    assert status == 200 and [t["id"] for t in listed] == [task_id]
    task: dict[str, Any] = listed[0]
    assert task["status"] in ("SUCCESS", "MODAL"), task
    return task


def pick(task: dict[str, Any], fragment: str) -> str:
    custom_id: str = next(b["customId"] for b in task["buttons"] if fragment in b["customId"])
    return custom_id


def test_both_simulators_run_the_one_protocol() -> None:
    assert issubclass(MockMidjourneyTransport, ProxySimulator) and issubclass(FakeMidjourney, ProxySimulator)


def test_every_fake_uses_the_one_base() -> None:
    assert issubclass(FakeOpenAI, FakeServer) and issubclass(FakeMidjourney, FakeServer)
    for name in ("set", "script", "requests", "record", "behavior_for"):
        assert name not in vars(FakeOpenAI), name


async def test_the_same_walk_gets_the_same_answers(proxy: Proxy) -> None:
    grid = await finished(proxy, await submitted(proxy, "submit/imagine", {"prompt": "a lighthouse"}))
    assert [b["label"] or b["emoji"] for b in grid["buttons"]] == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    upscale = await finished(proxy, await submitted(proxy, "submit/action", {
        "taskId": grid["id"], "customId": pick(grid, "upsample::1")}))
    assert upscale["action"] == "UPSCALE"
    hd = await finished(proxy, await submitted(proxy, "submit/action", {
        "taskId": upscale["id"], "customId": pick(upscale, "upsample_v6r1_2x_subtle")}))
    assert hd["action"] == "UPSCALE_HD"

    status, region = await proxy.call("POST", "/mj/submit/action", {"taskId": upscale["id"],
                                                                    "customId": pick(upscale, "MJ::Inpaint::")})
    assert (status, region["code"], region["description"]) == (200, 21, "Waiting for window confirm")
    assert (await finished(proxy, region["result"]))["status"] == "MODAL"
    _, no_mask = await proxy.call("POST", "/mj/submit/modal", {"taskId": region["result"], "prompt": "a boat"})
    assert (no_mask["code"], no_mask["description"]) == (4, "maskBase64不能为空")
    repainted = await submitted(proxy, "submit/modal", {"taskId": region["result"], "prompt": "a boat",
                                                        "maskBase64": MASK})
    assert (await finished(proxy, repainted))["action"] == "INPAINT"

    _, not_grid = await proxy.call("POST", "/mj/submit/change", {"taskId": upscale["id"], "action": "VARIATION",
                                                                "index": 1})
    assert (not_grid["code"], not_grid["description"]) == (4, "关联任务不允许执行变化")
    _, bad = await proxy.call("POST", "/mj/submit/simple-change", {"content": f"{grid['id']} U5"})
    assert (bad["code"], bad["description"]) == (4, "content 参数错误")
    status, unknown = await proxy.call("POST", "/mj/submit/action", {"taskId": "1", "customId": "MJ::JOB::x"})
    assert (status, unknown["code"]) == (404, 3)


async def test_videos_and_errors_alike(proxy: Proxy) -> None:
    video = await finished(proxy, await submitted(proxy, "submit/video", {"prompt": "waves"}))
    upscaled = await finished(proxy, await submitted(proxy, "submit/action", {
        "taskId": video["id"], "customId": pick(video, "video_virtual_upscale::2")}))
    assert upscaled["action"] == "VIDEO"
    assert sorted(b["label"] for b in upscaled["buttons"]) == ["Extend High 1", "Extend Low 1"]
    status, wrong_method = await proxy.call("GET", "/mj/submit/imagine")
    assert (status, set(wrong_method)) == (405, {"timestamp", "status", "error", "path"})
    status, nowhere = await proxy.call("POST", "/mj/submit/nothing", {})
    assert (status, nowhere["error"]) == (404, "Not Found")
