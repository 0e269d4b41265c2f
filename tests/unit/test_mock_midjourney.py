"""The built-in offline midjourney-proxy: stateless tasks that move with the clock, real buttons,
modal flows, refusals, and any instance answering for ids another made."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from relaygate.providers.base import UpstreamRequest
from relaygate.providers.mock_midjourney import MockMidjourneyTransport


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def call(mock: MockMidjourneyTransport, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = UpstreamRequest(method, "mock://midjourney" + path, {}, orjson.dumps(body) if body is not None else b"")
    response = await mock.send(request)
    raw = await response.read(10_000_000)
    return response.status, orjson.loads(raw) if raw else None


async def fetch(mock: MockMidjourneyTransport, task_id: str) -> dict[str, Any]:
    status, listed = await call(mock, "POST", "/mj/task/list-by-condition", {"ids": [task_id, "nope"]})
    assert status == 200 and len(listed) == 1
    task: dict[str, Any] = listed[0]
    return task


async def test_imagine_moves_with_the_clock_and_ends_with_a_grid(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=4.0, clock=clock)
    status, answer = await call(mock, "POST", "/mj-relax/mj/submit/imagine", {"prompt": "a lighthouse"})
    assert status == 200 and answer["code"] == 1 and len(answer["result"]) == 19
    task_id = answer["result"]
    assert (await fetch(mock, task_id))["status"] == "SUBMITTED"
    clock.now += 1.0
    running = await fetch(mock, task_id)
    assert (running["status"], running["progress"]) == ("IN_PROGRESS", "0%")
    clock.now += 2.8
    assert (await fetch(mock, task_id))["progress"] == "75%"
    clock.now += 0.2
    done = await fetch(mock, task_id)
    assert (done["status"], done["progress"], done["action"]) == ("SUCCESS", "100%", "IMAGINE")
    assert [b["label"] for b in done["buttons"]] == ["U1", "U2", "U3", "U4", "", "V1", "V2", "V3", "V4"]
    assert base64.b64decode(done["imageUrl"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    other = MockMidjourneyTransport(duration_s=4.0, clock=clock)
    assert await fetch(other, task_id) == done  # no state: another process answers the same


async def test_upscale_then_vary_region_waits_for_the_modal(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=1.0, clock=clock)
    grid = (await call(mock, "POST", "/mj/submit/imagine", {"prompt": "x"}))[1]["result"]
    early = await call(mock, "POST", "/mj/submit/action", {"taskId": grid, "customId": "MJ::JOB::upsample::1::h"})
    assert early[1]["code"] == 4  # the parent has not finished
    clock.now += 2
    u1 = (await fetch(mock, grid))["buttons"][0]["customId"]
    upscale = (await call(mock, "POST", "/mj/submit/action", {"taskId": grid, "customId": u1}))[1]["result"]
    clock.now += 2
    done = await fetch(mock, upscale)
    assert done["action"] == "UPSCALE" and any("Inpaint" in b["customId"] for b in done["buttons"])
    region = next(b["customId"] for b in done["buttons"] if "Inpaint" in b["customId"])
    _, waiting = await call(mock, "POST", "/mj/submit/action", {"taskId": upscale, "customId": region})
    assert (waiting["code"], waiting["properties"]) == (21, {"finalPrompt": "", "remix": True})
    clock.now += 60
    assert (await fetch(mock, waiting["result"]))["status"] == "MODAL"
    _, confirmed = await call(mock, "POST", "/mj/submit/modal", {"taskId": waiting["result"], "prompt": "a boat"})
    assert confirmed["code"] == 1
    clock.now += 2
    assert (await fetch(mock, confirmed["result"]))["status"] == "SUCCESS"


async def test_markers_refusals_and_other_endpoints(clock: Clock) -> None:
    mock = MockMidjourneyTransport(duration_s=1.0, clock=clock)
    assert (await call(mock, "POST", "/mj/submit/imagine", {"prompt": "x --banned"}))[1]["code"] == 24
    assert (await call(mock, "POST", "/mj/submit/imagine", {"prompt": " "}))[1]["code"] == 4
    failing = (await call(mock, "POST", "/mj/submit/imagine", {"prompt": "x --fail"}))[1]["result"]
    described = (await call(mock, "POST", "/mj/submit/describe", {"base64": "data:image/png;base64,iVBO"}))[1]
    uploaded = (await call(mock, "POST", "/mj/submit/upload-discord-images", {"base64Array": ["data:a", "data:b"]}))
    assert uploaded[1]["result"] == ["data:a", "data:b"]
    clock.now += 2
    failed = await fetch(mock, failing)
    assert (failed["status"], failed["failReason"]) == ("FAILURE", "[mock] the prompt asked to fail")
    describe = await fetch(mock, described["result"])
    assert describe["properties"]["finalPrompt"].count("mock reading") == 4
    status, seed = await call(mock, "GET", f"/mj/task/{described['result']}/image-seed")
    assert status == 200 and seed["code"] == 1 and seed["result"].isdigit()
    assert (await call(mock, "GET", "/mj/task/123/fetch")) == (200, None)
    assert (await call(mock, "GET", "/mj/task/1234567890123999999/image-seed"))[0] == 404
