"""Midjourney end to end: raw HTTP (as a midjourney-proxy client would call it) → a relaygate process →
the fake midjourney-proxy upstream; tasks polled from the upstream, billed per action when accepted,
settled or refunded when they end; every task's usage record and the key's spend read back from the
gateway's database (spec/midjourney.md, docs/midjourney.md).

Two channels of one fake (prefixes "a" and "b"): "b" serves only imagine and blend, at a higher
priority, and "a" serves everything; so an imagine is made on "b", and a follow-up that reaches "b"
(whose models do not include the follow-up's price name) proves it went to the parent's channel rather
than through the router.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.fakes.clients import raw
from tests.fakes.midjourney_upstream import FakeMidjourney, MjRequest
from tests.fakes.png import make_png
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway
from tests.helpers.webhook import WebhookReceiver

ALICE = "sk-alice-midjourney-0123456789"
BOB = "sk-bob-midjourney-0123456789"
POOR = "sk-poor-midjourney-0123456789"
MJ_SECRET = "mj-secret"
NANO = 1_000_000_000
IMAGE = "data:image/png;base64," + base64.b64encode(make_png(16, 16, (30, 60, 90))).decode()
OTHER_IMAGE = "data:image/png;base64," + base64.b64encode(make_png(16, 16, (200, 10, 10))).decode()
# The operator's prices; every other price name falls back to the spec's §9 default.
PRICES_USD = {"mj_imagine": "0.12", "mj_upscale": "0.04", "mj_modal": "0.07", "mj_blend": "0.09",
              "mj_variation": "0.08", "mj_shorten": "0.03"}
DEFAULTS_USD = {"mj_describe": "0.05", "swap_face": "0.05", "mj_upload": "0.05", "mj_video": "0.1",
                "mj_inpaint": "0", "mj_reroll": "0.1", "mj_custom_zoom": "0"}
# spec §6.2: every one of these keys is in a task object a client sees.
RELAY_TASK_KEYS = {"id", "action", "customId", "botType", "prompt", "promptEn", "description", "state", "submitTime",
                   "startTime", "finishTime", "imageUrl", "status", "progress", "failReason", "buttons", "maskBase64",
                   "properties"}
UPSTREAM_INTERNALS = {"notifyHook", "discordInstanceId", "discordChannelId", "nonce"}
FINAL = ("SUCCESS", "FAILURE", "CANCEL")
SUBMIT_ENDPOINTS = ("submit/", "insight-face/")


def price(name: str) -> int:
    """A price name's per-call price in nano-USD: the operator's, else the §9 default."""
    usd = PRICES_USD.get(name, DEFAULTS_USD.get(name))
    assert usd is not None, f"no price known for {name}"
    whole, _, frac = usd.partition(".")
    return int(whole) * NANO + int((frac + "0" * 9)[:9])


def mj_channel(name: str, fake: FakeMidjourney, prefix: str, *, models: list[str] | None = None, priority: int = 0,
               **options: bool) -> dict[str, Any]:
    return {"name": name, "type": "midjourney", "base_url": fake.channel_url(prefix), "api_key": MJ_SECRET,
            "models": models or ["mj_*", "swap_face"], "priority": priority,
            "options": {"forward_mode": False, "callbacks": False, "image_proxy": False, **options}}


def mj_config(channels: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    return {
        "mj_poll_s": 0.2,
        "task_poll_s": 0.2,
        "allow_private_webhooks": True,
        "channels": channels,
        "prices": {name: {"per_call": usd} for name, usd in PRICES_USD.items()},
        "keys": [{"name": "alice", "key": ALICE, "quota_usd": "50"}, {"name": "bob", "key": BOB, "quota_usd": "50"},
                 {"name": "poor", "key": POOR, "quota_usd": "0.05"}],
        **settings,
    }


@pytest.fixture(scope="module")
def mj_upstream() -> Iterator[FakeMidjourney]:
    with FakeMidjourney(api_secret=MJ_SECRET) as fake:
        yield fake


@pytest.fixture
def mj(mj_upstream: FakeMidjourney) -> FakeMidjourney:
    """The module's fake upstream with its tasks, behaviours and recorded requests cleared for this test."""
    mj_upstream.reset()
    return mj_upstream


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], mj_upstream: FakeMidjourney,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    home = Path(tmp_path_factory.mktemp("midjourney"))
    channels = [mj_channel("mj-a", mj_upstream, "a"),
                mj_channel("mj-b", mj_upstream, "b", models=["mj_imagine", "mj_blend"], priority=10)]
    return module_gateway_factory(home, mj_config(channels)).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(scope="module")
def options_gateway(module_gateway_factory: type[Gateway], mj_upstream: FakeMidjourney,
                    tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    """One channel (prefix "c") that forwards the mode prefix and proxies images; no private webhooks."""
    home = Path(tmp_path_factory.mktemp("midjourney-options"))
    channels = [mj_channel("mj-c", mj_upstream, "c", forward_mode=True, image_proxy=True)]
    return module_gateway_factory(home, mj_config(channels, allow_private_webhooks=False)).start()


# --- helpers -------------------------------------------------------------------------------------------

def rid(response: httpx.Response) -> str:
    return str(response.headers["x-request-id"])


def submit(client: httpx.Client, path: str, body: dict[str, Any], *, code: int = 1) -> tuple[str, httpx.Response]:
    """POST a submit that must be accepted; returns relaygate's task id and the response."""
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) >= {"code", "description", "result", "properties"}, answer
    assert answer["code"] == code, answer
    assert isinstance(answer["result"], str) and answer["result"], answer
    assert isinstance(answer["properties"], dict)
    return str(answer["result"]), response


def fetch(client: httpx.Client, task_id: str, prefix: str = "") -> dict[str, Any]:
    response = client.get(f"{prefix}/mj/task/{task_id}/fetch")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def wait_task(client: httpx.Client, task_id: str, *, until: tuple[str, ...] = FINAL, timeout: float = 15.0,
              seen: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Fetch until the task's status is one of ``until``; every (status, progress) seen is added to ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        task = fetch(client, task_id)
        if seen is not None and (not seen or seen[-1] != (task["status"], task["progress"])):
            seen.append((task["status"], task["progress"]))
        if task["status"] in until:
            return task
        assert time.monotonic() < deadline, f"task {task_id} still {task['status']} {task['progress']}"
        time.sleep(0.05)


def sent(fake: FakeMidjourney) -> list[MjRequest]:
    """What reached the upstream besides the gateway's own polling."""
    return [r for r in fake.mj_requests() if r.endpoint != "task/list-by-condition"]


def submits(fake: FakeMidjourney, endpoint: str | None = None) -> list[MjRequest]:
    return [r for r in fake.mj_requests(endpoint) if r.endpoint.startswith(SUBMIT_ENDPOINTS)]


def upstream_id_of(fake: FakeMidjourney, request: MjRequest) -> str:
    """The upstream task id a recorded submit created (the fake's tasks are in submit order)."""
    body = request.json()
    matches = [t for t in fake.tasks() if t.get("prompt") == body.get("prompt")] if body.get("prompt") else []
    assert matches, "the upstream has no task for that submit"
    return str(matches[-1]["id"])


def assert_mj_error(response: httpx.Response, status: int, code: int, error: str | None = None) -> dict[str, Any]:
    """relaygate's own refusal: the proxies' result shape with its stable code and the request id."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "description", "result", "properties"}, body
    assert body["code"] == code, body
    assert body["result"] is None
    assert isinstance(body["description"], str) and body["description"]
    if error is not None:
        assert body["properties"].get("error") == error, body
    assert body["properties"].get("request_id") == rid(response), body
    return body


def assert_client_task(task: dict[str, Any], task_id: str, fake: FakeMidjourney) -> None:
    assert set(task) >= RELAY_TASK_KEYS, RELAY_TASK_KEYS - set(task)
    assert task["id"] == task_id
    assert task_id not in {t["id"] for t in fake.tasks()}  # relaygate's id, never the upstream's
    assert not UPSTREAM_INTERNALS & set(task["properties"]), task["properties"]


def percent(progress: str) -> int:
    return int(progress.rstrip("%") or 0)


def button(task: dict[str, Any], starts: str) -> str:
    found = [b["customId"] for b in task["buttons"] if b["customId"].startswith(starts)]
    assert found, f"no button {starts}... in {[b['customId'] for b in task['buttons']]}"
    return str(found[0])


# --- the quick tutorial (spec §8) ---------------------------------------------------------------------

def test_quick_tutorial_flow(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    before = db.key_used("alice")
    mj.next_submit("b", duration_s=1.5)  # long enough for several polls to see it move
    with raw(gateway, ALICE) as client:
        # 1. Imagine.
        t1, imagine = submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse at dusk --ar 3:2",
                                                             "state": "order-7731"})
        assert db.key_used("alice") == before + price("mj_imagine")  # charged at once
        parent_request = submits(mj, "submit/imagine")[-1]
        assert parent_request.path == "/b/mj/submit/imagine" and parent_request.mode == ""
        assert parent_request.headers["mj-api-secret"] == MJ_SECRET
        assert ALICE not in str(parent_request.headers)
        assert parent_request.json()["prompt"] == "a lighthouse at dusk --ar 3:2"
        up1 = upstream_id_of(mj, parent_request)
        assert t1 != up1

        # 2. Poll until SUCCESS: the progress moves, the buttons are there, the id is relaygate's.
        seen: list[tuple[str, str]] = []
        done = wait_task(client, t1, seen=seen)
        assert done["status"] == "SUCCESS" and done["progress"] == "100%", done
        assert_client_task(done, t1, mj)
        assert done["action"] == "IMAGINE" and done["state"] == "order-7731"
        assert done["imageUrl"] == mj.image_url(up1)
        assert done["submitTime"] <= done["finishTime"]
        running = [p for s, p in seen if s == "IN_PROGRESS"]
        assert running and any(0 < percent(p) < 100 for p in running), seen
        ranks = [percent(p) for s, p in seen if s == "IN_PROGRESS"]
        assert ranks == sorted(ranks), seen
        assert done["properties"].get("finalPrompt", "").startswith("a lighthouse at dusk")
        labels = [b["label"] for b in done["buttons"]]
        assert {"U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"} <= set(labels), labels

        # 3. Act: U1.
        u1 = button(done, "MJ::JOB::upsample::1::")
        t2, upscale = submit(client, "/mj/submit/action", {"taskId": t1, "customId": u1})
        assert db.key_used("alice") == before + price("mj_imagine") + price("mj_upscale")
        action_request = submits(mj, "submit/action")[-1]
        assert action_request.prefix == "b"  # the parent's channel, though "b" does not serve mj_upscale
        assert action_request.json()["taskId"] == up1  # the parent's upstream id
        assert action_request.headers["mj-api-secret"] == MJ_SECRET
        upscaled = wait_task(client, t2)
        assert upscaled["status"] == "SUCCESS" and upscaled["id"] == t2
        assert_client_task(upscaled, t2, mj)

        # 4. Vary (Region) on the upscale: code 21, a task waiting in MODAL; not charged yet.
        t3, inpaint = submit(client, "/mj/submit/action",
                             {"taskId": t2, "customId": button(upscaled, "MJ::Inpaint::")}, code=21)
        assert inpaint.json()["description"] == "Waiting for window confirm"
        assert t3 not in {t["id"] for t in mj.tasks()}
        assert fetch(client, t3)["status"] == "MODAL"
        spent = price("mj_imagine") + price("mj_upscale")
        assert db.key_used("alice") == before + spent + price("mj_inpaint")
        up2 = str(upscaled["imageUrl"]).rsplit("/", 1)[-1].removesuffix(".png")
        assert submits(mj, "submit/action")[-1].json()["taskId"] == up2

        # 5. Modal with a prompt and a mask, then poll the task it returns.
        t4, modal = submit(client, "/mj/submit/modal", {"taskId": t3, "prompt": "same scene, add a red sailboat",
                                                         "maskBase64": IMAGE})
        assert db.key_used("alice") == before + spent + price("mj_modal")
        modal_request = submits(mj, "submit/modal")[-1]
        assert modal_request.prefix == "b"
        assert modal_request.json()["maskBase64"] == IMAGE
        assert modal_request.json()["prompt"] == "same scene, add a red sailboat"
        inpainted = wait_task(client, t4)
        assert inpainted["status"] == "SUCCESS", inpainted
        assert_client_task(inpainted, t4, mj)

    # Every follow-up went to the parent's channel.
    assert {r.prefix for r in submits(mj)} == {"b"}
    assert {r.prefix for r in sent(mj)} <= {"b"}
    # One usage record per task, written when it ended.
    total = price("mj_imagine") + price("mj_upscale") + price("mj_modal")
    assert db.key_used("alice") == before + total
    rows = {name: db.usage(rid(r)) for name, r in (("imagine", imagine), ("upscale", upscale))}
    assert (rows["imagine"]["surface"], rows["imagine"]["model"], rows["imagine"]["end_reason"]) == (
        "midjourney", "mj_imagine", "done")
    assert rows["imagine"]["cost_nano"] == price("mj_imagine")
    assert (rows["upscale"]["model"], rows["upscale"]["cost_nano"]) == ("mj_upscale", price("mj_upscale"))
    modal_rows = db.usage_rows(rid(inpaint)) + db.usage_rows(rid(modal))
    assert len(modal_rows) == 1, modal_rows  # the inpaint and its modal are one task
    assert modal_rows[0]["cost_nano"] == price("mj_inpaint") + price("mj_modal")
    assert modal_rows[0]["end_reason"] == "done"


# --- the other submits ----------------------------------------------------------------------------------

def test_blend_takes_two_to_five_images(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        for count in (1, 6):
            refused = client.post("/mj/submit/blend", json={"base64Array": [IMAGE] * count})
            assert_mj_error(refused, 400, 4, "invalid_image_count")
        assert sent(mj) == [] and db.key_used("alice") == before
        task_id, response = submit(client, "/mj/submit/blend", {"base64Array": [IMAGE, OTHER_IMAGE],
                                                                "dimensions": "LANDSCAPE"})
        done = wait_task(client, task_id)
    assert done["status"] == "SUCCESS" and done["action"] == "BLEND"
    assert submits(mj, "submit/blend")[-1].json()["base64Array"] == [IMAGE, OTHER_IMAGE]
    row = db.usage(rid(response))
    assert (row["model"], row["cost_nano"]) == ("mj_blend", price("mj_blend"))
    assert db.key_used("alice") == before + price("mj_blend")


def test_describe_shorten_swap_face_video(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    before = db.key_used("alice")
    jobs = [("/mj/submit/describe", {"base64": IMAGE}, "mj_describe", "DESCRIBE"),
            ("/mj/submit/shorten", {"prompt": "a very long and winding prompt about a lighthouse at dusk"},
             "mj_shorten", "SHORTEN"),
            ("/mj/insight-face/swap", {"sourceBase64": IMAGE, "targetBase64": OTHER_IMAGE}, "swap_face", "SWAP_FACE"),
            ("/mj/submit/video", {"prompt": "waves on the shore", "motion": "high", "image": IMAGE}, "mj_video",
             "VIDEO")]
    with raw(gateway, ALICE) as client:
        started = [(*submit(client, path, body), model, action) for path, body, model, action in jobs]
        done = {action: wait_task(client, task_id) for task_id, _, _, action in started}
    for task_id, response, model, action in started:
        task = done[action]
        assert task["status"] == "SUCCESS", task
        assert task["action"] == action and task["id"] == task_id
        assert_client_task(task, task_id, mj)
        row = db.usage(rid(response))
        assert (row["surface"], row["model"], row["cost_nano"], row["end_reason"]) == (
            "midjourney", model, price(model), "done")
    assert "1️⃣" in done["DESCRIBE"]["properties"]["finalPrompt"]
    assert any(b["customId"].startswith("MJ::Job::PicReader::") for b in done["DESCRIBE"]["buttons"])
    assert done["SHORTEN"]["properties"]["finalPrompt"]
    assert done["SWAP_FACE"]["imageUrl"]
    assert done["VIDEO"].get("videoUrl") and len(done["VIDEO"].get("videoUrls") or []) == 4
    assert db.key_used("alice") == before + sum(price(model) for _, _, model, _ in jobs)
    assert {r.endpoint for r in submits(mj)} == {"submit/describe", "submit/shorten", "insight-face/swap",
                                                 "submit/video"}
    for request in submits(mj):
        assert request.prefix == "a" and request.headers["mj-api-secret"] == MJ_SECRET
        assert "notifyHook" not in request.json()


def test_upload_answers_urls_and_is_billed_at_once(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        response = client.post("/mj/submit/upload-discord-images", json={"base64Array": [IMAGE, OTHER_IMAGE]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["code"] == 1
    urls = answer["result"]
    assert isinstance(urls, list) and len(urls) == 2 and all(isinstance(u, str) for u in urls)
    assert httpx.get(urls[0]).content == base64.b64decode(IMAGE.split(",", 1)[1])
    row = db.usage(rid(response))
    assert (row["model"], row["cost_nano"], row["end_reason"]) == ("mj_upload", price("mj_upload"), "done")
    assert db.key_used("alice") == before + price("mj_upload")
    assert [r.endpoint for r in submits(mj)] == ["submit/upload-discord-images"]


def _finished_imagine(client: httpx.Client, prompt: str) -> tuple[str, dict[str, Any]]:
    task_id, _ = submit(client, "/mj/submit/imagine", {"prompt": prompt})
    done = wait_task(client, task_id)
    assert done["status"] == "SUCCESS", done
    return task_id, done


def test_image_seed_asks_the_parents_channel_with_its_upstream_id(gateway: Gateway, mj: FakeMidjourney,
                                                                   db: GatewayDB) -> None:
    with raw(gateway, ALICE) as client:
        task_id, _ = _finished_imagine(client, "a seed for me")
        up = upstream_id_of(mj, submits(mj, "submit/imagine")[-1])
        before = db.key_used("alice")
        response = client.get(f"/mj/task/{task_id}/image-seed")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["code"] == 1
    assert answer["result"] == str(int(hashlib.sha256(up.encode()).hexdigest()[:8], 16))  # the fake's seed of up
    asked = mj.mj_requests("task/{id}/image-seed")
    assert [(r.prefix, r.endpoint) for r in asked] == [("b", f"task/{up}/image-seed")]
    assert asked[0].headers["mj-api-secret"] == MJ_SECRET
    assert db.key_used("alice") == before  # free


def test_list_by_condition_gives_own_tasks_in_order(gateway: Gateway, mj: FakeMidjourney) -> None:
    with raw(gateway, ALICE) as alice, raw(gateway, BOB) as bob:
        first, _ = submit(alice, "/mj/submit/imagine", {"prompt": "first"})
        second, _ = submit(alice, "/mj/submit/imagine", {"prompt": "second"})
        foreign, _ = submit(bob, "/mj/submit/imagine", {"prompt": "bob's"})
        for client, task_id in ((alice, first), (alice, second), (bob, foreign)):
            wait_task(client, task_id)
        response = alice.post("/mj/task/list-by-condition", json={"ids": [second, "1234567890123456789", first,
                                                                           foreign]})
        assert response.status_code == 200, response.text
        listed = response.json()
        assert [t["id"] for t in listed] == [second, first]
        for task in listed:
            assert_client_task(task, task["id"], mj)
            assert task["status"] == "SUCCESS"
        assert alice.post("/mj/task/list-by-condition", json={"ids": []}).json() == []
        assert alice.post("/mj/task/list-by-condition", json={}).json() == []
        relax = alice.post("/mj-relax/mj/task/list-by-condition", json={"ids": [first]})
        assert [t["id"] for t in relax.json()] == [first]


def test_legacy_change_and_simple_change(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    with raw(gateway, ALICE) as client:
        parent, _ = _finished_imagine(client, "a grid to change")
        up = upstream_id_of(mj, submits(mj, "submit/imagine")[-1])
        before = db.key_used("alice")
        changed, change = submit(client, "/mj/submit/change", {"taskId": parent, "action": "UPSCALE", "index": 2})
        simple, simple_change = submit(client, "/mj/submit/simple-change", {"content": f"{parent} V1"})
        assert db.key_used("alice") == before + price("mj_upscale") + price("mj_variation")
        results = [wait_task(client, changed), wait_task(client, simple)]
    assert [t["status"] for t in results] == ["SUCCESS", "SUCCESS"]
    assert [t["id"] for t in results] == [changed, simple]
    change_request = submits(mj, "submit/change")[-1]
    assert change_request.prefix == "b"
    assert change_request.json() == {"taskId": up, "action": "UPSCALE", "index": 2}
    simple_request = submits(mj, "submit/simple-change")[-1]
    assert simple_request.prefix == "b" and simple_request.json()["content"] == f"{up} V1"
    assert (db.usage(rid(change))["model"], db.usage(rid(change))["cost_nano"]) == ("mj_upscale", price("mj_upscale"))
    assert (db.usage(rid(simple_change))["model"], db.usage(rid(simple_change))["cost_nano"]) == (
        "mj_variation", price("mj_variation"))


# --- owners, failures, refusals -------------------------------------------------------------------------

def test_a_key_cannot_see_or_act_on_another_keys_task(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    with raw(gateway, ALICE) as alice, raw(gateway, BOB) as bob:
        task_id, done = _finished_imagine(alice, "alice's own")
        bob_before = db.key_used("bob")
        before = sent(mj)
        assert_mj_error(bob.get(f"/mj/task/{task_id}/fetch"), 404, 3, "task_not_found")
        assert_mj_error(bob.get("/mj/task/1234567890123456789/fetch"), 404, 3, "task_not_found")
        assert bob.post("/mj/task/list-by-condition", json={"ids": [task_id]}).json() == []
        act = bob.post("/mj/submit/action", json={"taskId": task_id, "customId": button(done, "MJ::JOB::upsample::1")})
        assert_mj_error(act, 404, 3, "task_not_found")
        assert_mj_error(bob.post("/mj/submit/change", json={"taskId": task_id, "action": "UPSCALE", "index": 1}),
                        404, 3, "task_not_found")
        assert_mj_error(bob.post("/mj/submit/simple-change", json={"content": f"{task_id} U1"}), 404, 3,
                        "task_not_found")
        assert_mj_error(bob.get(f"/mj/task/{task_id}/image-seed"), 404, 3, "task_not_found")
        foreign = bob.get(f"/mj/task/{task_id}/fetch")
        assert "alice's own" not in foreign.text
    assert sent(mj) == before and db.key_used("bob") == bob_before


def test_failure_is_refunded(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        task_id, response = submit(client, "/mj/submit/imagine", {"prompt": "a storm at sea --fail"})
        assert db.key_used("alice") == before + price("mj_imagine")
        done = wait_task(client, task_id)
    assert done["status"] == "FAILURE", done
    assert done["failReason"] == "[Invalid parameter] Invalid value"
    assert done["id"] == task_id
    assert db.key_used("alice") == before
    row = db.usage(rid(response))
    assert (row["model"], row["end_reason"], row["cost_nano"]) == ("mj_imagine", "upstream_error", 0)


@pytest.mark.parametrize(("marker", "status", "code", "description"), [
    ("--banned", 400, 24, "可能包含敏感词"),
    ("--queue-full", 429, 23, "队列已满，请稍后尝试"),
])
def test_upstream_refusals_are_relayed_unbilled(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB, marker: str,
                                                status: int, code: int, description: str) -> None:
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        response = client.post("/mj/submit/imagine", json={"prompt": f"something {marker}"})
    assert response.status_code == status, response.text
    answer = response.json()
    assert (answer["code"], answer["description"], answer["result"]) == (code, description, None)
    assert submits(mj, "submit/imagine"), "the submit should have reached the upstream"
    assert db.key_used("alice") == before
    assert all(row["cost_nano"] == 0 for row in db.usage_rows(rid(response)))


def test_upstream_system_error_is_relayed_as_502(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    mj.next_submit("b", submit_code=9)
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        response = client.post("/mj/submit/imagine", json={"prompt": "an unlucky one"})
    assert response.status_code == 502, response.text
    assert (response.json()["code"], response.json()["description"], response.json()["result"]) == (9, "系统异常", None)
    assert db.key_used("alice") == before
    assert all(row["cost_nano"] == 0 for row in db.usage_rows(rid(response)))


def test_quota_exceeded_is_429_code_23(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    with raw(gateway, POOR) as client:
        response = client.post("/mj/submit/imagine", json={"prompt": "too dear"})
    assert_mj_error(response, 429, 23, "insufficient_quota")
    assert sent(mj) == [] and db.key_used("poor") == 0


def test_queued_submit_is_answered_as_accepted(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        task_id, response = submit(client, "/mj/submit/imagine", {"prompt": "a patient cat --in-queue"}, code=1)
        done = wait_task(client, task_id)
    assert done["status"] == "SUCCESS"
    assert task_id not in {t["id"] for t in mj.tasks()}
    assert db.usage(rid(response))["cost_nano"] == price("mj_imagine")
    assert db.key_used("alice") == before + price("mj_imagine")


def test_bad_input_never_reaches_the_upstream(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    with raw(gateway, ALICE) as client:
        parent, done = _finished_imagine(client, "a finished grid")
        mj.next_submit("b", duration_s=30)
        running, _ = submit(client, "/mj/submit/imagine", {"prompt": "a slow grid"})
        before_sent, before_used = len(sent(mj)), db.key_used("alice")
        u1 = button(done, "MJ::JOB::upsample::1::")
        cases: list[tuple[str, dict[str, Any], int, int, str]] = [
            ("/mj/submit/imagine", {}, 400, 4, "prompt_is_required"),
            ("/mj/submit/imagine", {"prompt": "   "}, 400, 4, "prompt_is_required"),
            ("/mj/submit/imagine", {"prompt": "x", "base64Array": ["not a data uri"]}, 400, 4, "invalid_base64"),
            ("/mj/submit/imagine", {"prompt": "x", "base64Array": ["data:image/png;base64,@@@"]}, 400, 4,
             "invalid_base64"),
            ("/mj/submit/describe", {"base64": IMAGE.split(",", 1)[1]}, 400, 4, "invalid_base64"),
            ("/mj/submit/blend", {"base64Array": [IMAGE]}, 400, 4, "invalid_image_count"),
            ("/mj/submit/blend", {"base64Array": [IMAGE] * 6}, 400, 4, "invalid_image_count"),
            ("/mj/submit/action", {"taskId": running, "customId": u1}, 400, 4, "task_status_not_success"),
            ("/mj/submit/action", {"taskId": parent, "customId": u1.replace("::1::", "::7::")}, 400, 4,
             "unknown_custom_id"),
            ("/mj/submit/action", {"taskId": "1234567890123456789", "customId": u1}, 404, 3, "task_not_found"),
            ("/mj/submit/modal", {"taskId": "1234567890123456789", "prompt": "x"}, 404, 3, "task_not_found"),
            ("/mj/submit/change", {"taskId": running, "action": "UPSCALE", "index": 1}, 400, 4,
             "task_status_not_success"),
            ("/mj/submit/simple-change", {"content": f"{parent} U9"}, 400, 4, "content_parse_failed"),
        ]
        for path, body, status, code, error in cases:
            assert_mj_error(client.post(path, json=body), status, code, error)
        assert_mj_error(client.get("/mj/task/1234567890123456789/fetch"), 404, 3, "task_not_found")
        assert_mj_error(client.post("/mj/submit/imagine", content=b"{not json",
                                    headers={"Content-Type": "application/json"}), 400, 4)
        assert len(sent(mj)) == before_sent
        assert db.key_used("alice") == before_used
        mj.finish_all()
        assert wait_task(client, running)["status"] == "SUCCESS"


def test_notify_hook_must_be_public_unless_allowed(options_gateway: Gateway, mj: FakeMidjourney) -> None:
    with raw(options_gateway, ALICE) as client:
        response = client.post("/mj/submit/imagine", json={"prompt": "x", "notifyHook": "http://127.0.0.1:9/hook"})
    assert_mj_error(response, 400, 4, "invalid_webhook")
    assert sent(mj) == []


# --- auth and mode prefixes ---------------------------------------------------------------------------------

def test_mj_api_secret_header_is_a_client_key(gateway: Gateway, mj: FakeMidjourney, db: GatewayDB) -> None:
    with httpx.Client(base_url=gateway.url, headers={"mj-api-secret": ALICE}, timeout=30) as client:
        task_id, response = submit(client, "/mj/submit/imagine", {"prompt": "keyed by header"})
        assert wait_task(client, task_id)["status"] == "SUCCESS"
    assert db.usage(rid(response))["key_name"] == "alice"
    assert submits(mj)[-1].headers["mj-api-secret"] == MJ_SECRET  # the channel's secret, not the client's key
    before = len(sent(mj))
    wrong = httpx.post(gateway.url + "/mj/submit/imagine", json={"prompt": "x"},
                       headers={"mj-api-secret": "sk-not-a-key-0000000000"})
    assert_mj_error(wrong, 401, 4, "invalid_api_key")
    wrong_bearer = httpx.get(gateway.url + f"/mj/task/{task_id}/fetch",
                             headers={"Authorization": "Bearer sk-not-a-key-0000000000"})
    assert_mj_error(wrong_bearer, 401, 4, "invalid_api_key")
    missing = httpx.post(gateway.url + "/mj/submit/imagine", json={"prompt": "x"})
    assert_mj_error(missing, 401, 4, "missing_api_key")
    assert len(sent(mj)) == before


def test_mode_prefix_is_not_forwarded_by_default(gateway: Gateway, mj: FakeMidjourney) -> None:
    with raw(gateway, ALICE) as client:
        task_id, _ = submit(client, "/mj-relax/mj/submit/imagine", {"prompt": "relaxed"})
        assert fetch(client, task_id, "/mj-relax")["id"] == task_id
        assert wait_task(client, task_id)["status"] == "SUCCESS"
        turbo, _ = submit(client, "/mj-turbo/mj/submit/shorten", {"prompt": "turbo words here"})
        assert wait_task(client, turbo)["status"] == "SUCCESS"
    assert [(r.path, r.mode) for r in submits(mj)] == [("/b/mj/submit/imagine", ""), ("/a/mj/submit/shorten", "")]


def test_mode_prefix_is_forwarded_with_forward_mode(options_gateway: Gateway, mj: FakeMidjourney) -> None:
    with raw(options_gateway, ALICE) as client:
        relaxed, _ = submit(client, "/mj-relax/mj/submit/imagine", {"prompt": "relaxed and forwarded"})
        plain, _ = submit(client, "/mj/submit/imagine", {"prompt": "plain and forwarded"})
        assert wait_task(client, relaxed)["status"] == wait_task(client, plain)["status"] == "SUCCESS"
    requests = submits(mj, "submit/imagine")
    assert [(r.path, r.mode) for r in requests] == [("/c/mj-relax/mj/submit/imagine", "mj-relax"),
                                                    ("/c/mj/submit/imagine", "")]
    relaxed_upstream = mj.task(upstream_id_of(mj, requests[0]))
    assert relaxed_upstream is not None and relaxed_upstream["mode"] == "RELAX"


# --- notifications, images, callbacks, timeouts --------------------------------------------------------------

def test_notify_hook_gets_the_changes_and_the_end_once(gateway: Gateway, mj: FakeMidjourney) -> None:
    mj.next_submit("b", duration_s=1.5)
    with WebhookReceiver() as receiver, raw(gateway, ALICE) as client:
        task_id, _ = submit(client, "/mj/submit/imagine", {"prompt": "tell me", "notifyHook": receiver.url + "/hook",
                                                           "state": "s-1"})
        assert wait_task(client, task_id)["status"] == "SUCCESS"
        deadline = time.monotonic() + 15
        while not any(b.get("status") == "SUCCESS" for b in receiver.received):
            assert time.monotonic() < deadline, receiver.received
            time.sleep(0.05)
        time.sleep(1.0)  # would a second SUCCESS come?
        bodies = list(receiver.received)
    assert all(b["id"] == task_id for b in bodies), bodies
    statuses = [b["status"] for b in bodies]
    assert statuses.count("SUCCESS") == 1 and statuses[-1] == "SUCCESS", statuses
    assert len(bodies) >= 2, statuses  # at least one change before the end
    for body in bodies:
        assert_client_task(body, task_id, mj)
        assert body["state"] == "s-1" or body["status"] in ("NOT_START", "SUBMITTED")
    assert bodies[-1]["buttons"] and bodies[-1]["progress"] == "100%"
    assert "notifyHook" not in submits(mj, "submit/imagine")[-1].json()  # not forwarded upstream


def test_image_proxy_serves_signed_links(options_gateway: Gateway, mj: FakeMidjourney) -> None:
    with raw(options_gateway, ALICE) as client:
        task_id, _ = submit(client, "/mj/submit/imagine", {"prompt": "show me through the gateway"})
        done = wait_task(client, task_id)
        listed = client.post("/mj/task/list-by-condition", json={"ids": [task_id]}).json()[0]
    assert done["status"] == "SUCCESS"
    up = upstream_id_of(mj, submits(mj, "submit/imagine")[-1])
    link = urlsplit(done["imageUrl"])
    assert f"{link.scheme}://{link.netloc}" == options_gateway.url and link.path == f"/mj/image/{task_id}"
    assert set(parse_qs(link.query)) == {"media", "expires", "signature"}
    assert mj.url not in str(done) and mj.url not in str(listed)
    assert urlsplit(listed["imageUrl"]).path == f"/mj/image/{task_id}"

    image = httpx.get(done["imageUrl"])  # no key: the signature is the grant
    assert image.status_code == 200
    assert image.headers["content-type"].startswith("image/png")
    assert image.content == httpx.get(mj.image_url(up)).content
    split = done["imageUrls"][1]["url"]
    assert urlsplit(split).path == f"/mj/image/{task_id}"
    assert httpx.get(split).content == httpx.get(mj.image_url(up, 2)).content

    query = parse_qs(link.query)
    signature = query["signature"][0]
    bad = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    tampered = urlencode({"media": query["media"][0], "expires": query["expires"][0], "signature": bad})
    assert_mj_error(httpx.get(f"{options_gateway.url}/mj/image/{task_id}?{tampered}"), 403, 4)
    longer = urlencode({"media": query["media"][0], "expires": int(query["expires"][0]) + 3600,
                        "signature": signature})
    assert httpx.get(f"{options_gateway.url}/mj/image/{task_id}?{longer}").status_code == 403
    other = urlencode({"media": "image-1", "expires": query["expires"][0], "signature": signature})
    assert httpx.get(f"{options_gateway.url}/mj/image/{task_id}?{other}").status_code == 403


@pytest.mark.parametrize("public_url", [True, False], ids=["public_url", "the_submits_origin"])
def test_notify_hook_bodies_carry_signed_links(gateway_factory: type[Gateway], tmp_path: Path, mj: FakeMidjourney,
                                               public_url: bool) -> None:
    """Under ``public_url``, or else under the address the client submitted to: never the upstream's."""
    gateway = gateway_factory(tmp_path, mj_config([mj_channel("mj-px", mj, "px", image_proxy=True)]))
    if public_url:
        gateway.config["public_url"] = gateway.url
    gateway.start()
    with WebhookReceiver() as receiver, raw(gateway, ALICE) as client:
        task_id, _ = submit(client, "/mj/submit/imagine", {"prompt": "hooked", "notifyHook": receiver.url + "/h"})
        assert wait_task(client, task_id)["status"] == "SUCCESS"
        deadline = time.monotonic() + 15
        while not any(b.get("status") == "SUCCESS" for b in receiver.received):
            assert time.monotonic() < deadline, receiver.received
            time.sleep(0.05)
        final = next(b for b in receiver.received if b["status"] == "SUCCESS")
    assert urlsplit(final["imageUrl"]).path == f"/mj/image/{task_id}"
    assert final["imageUrl"].startswith(gateway.url + "/mj/image/")
    assert all(mj.url not in str(body) for body in receiver.received)  # in-progress previews too
    up = upstream_id_of(mj, submits(mj, "submit/imagine")[-1])
    assert httpx.get(final["imageUrl"]).content == httpx.get(mj.image_url(up)).content


def test_upstream_callbacks_finish_tasks_before_any_poll(gateway_factory: type[Gateway], tmp_path: Path,
                                                         mj: FakeMidjourney) -> None:
    channels = [mj_channel("mj-cb", mj, "cb", callbacks=True)]
    gateway = gateway_factory(tmp_path, mj_config(channels, mj_poll_s=30))
    gateway.config["public_url"] = gateway.url
    gateway.start()
    db = GatewayDB(gateway.database)
    started = time.monotonic()
    with raw(gateway, ALICE) as client:
        task_id, response = submit(client, "/mj/submit/imagine", {"prompt": "call me back"})
        done = wait_task(client, task_id, timeout=10)
    assert done["status"] == "SUCCESS" and time.monotonic() - started < 10
    request = submits(mj, "submit/imagine")[-1]
    hook = request.json().get("notifyHook")
    assert isinstance(hook, str) and hook.startswith(f"{gateway.url}/mj/notify/"), hook
    up = upstream_id_of(mj, request)
    polled = [r for r in mj.mj_requests("task/list-by-condition") if up in (r.json().get("ids") or [])]
    assert polled == []  # it was never polled: the callbacks did it
    calls = [c for c in mj.callbacks if c.task_id == up]
    assert calls and calls[-1].status == "SUCCESS"
    assert all(c.http_status == 200 for c in calls), calls
    assert hook not in str(done)  # relaygate's callback address is not shown to the client
    assert db.usage(rid(response))["cost_nano"] == price("mj_imagine")
    # A callback with a wrong token is refused.
    forged = httpx.post(hook.rsplit("/", 1)[0] + "/" + "0" * 32, json=calls[-1].body)
    assert forged.status_code == 403


def test_a_task_that_runs_out_of_time_fails_and_is_refunded(gateway_factory: type[Gateway], tmp_path: Path,
                                                             mj: FakeMidjourney) -> None:
    mj.set("to", duration_s=30)
    gateway = gateway_factory(tmp_path, mj_config([mj_channel("mj-to", mj, "to")], mj_task_timeout_s=1.0)).start()
    db = GatewayDB(gateway.database)
    with raw(gateway, ALICE) as client:
        task_id, response = submit(client, "/mj/submit/imagine", {"prompt": "never ending"})
        assert db.key_used("alice") == price("mj_imagine")
        done = wait_task(client, task_id, timeout=10)
    assert done["status"] == "FAILURE" and done["failReason"], done
    row = db.usage(rid(response))
    assert (row["end_reason"], row["cost_nano"], row["model"]) == ("timeout", 0, "mj_imagine")
    assert db.key_used("alice") == 0
