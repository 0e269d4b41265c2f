"""An upstream that echoes everything in its errors reveals nothing through any surface (issue 9, item 1).

Every fake runs with its ``echo`` switch: each string field of its errors (message, param, code, type; on
Midjourney description, failReason and properties) says the credential it received (whole and masked),
the URL it was called on, its host and an IPv4 and an IPv6 address. The fakes listen on 127.0.0.2 so that
their address is told apart from the gateway's own (127.0.0.1). For every surface the client's whole
answer — status line aside, its body and its headers — must name none of them. Errors answered with
HTTP 200 are tried too: they must become the upstream's error, not a billed success (item 6).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY
from tests.fakes.fake_server import ECHO_IP, ECHO_IPV6
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.midjourney_upstream import FakeMidjourney
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway
from tests.helpers.webhook import WebhookReceiver

KEY = "sk-echo-client-key-000001"
MJ_SECRET = "mj-upstreamSECRET-77aa88bb99cc"
HOST = "127.0.0.2"  # where the fakes listen
PRICE = {"input": 2.5, "output": 10}


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAI, FakeAnthropic, FakeGemini, FakeMidjourney]]:
    with (FakeOpenAI(HOST) as oa, FakeAnthropic(HOST, api_key=UPSTREAM_KEY) as an, FakeGemini(HOST) as gm,
          FakeMidjourney(HOST, api_secret=MJ_SECRET) as mj):
        yield oa, an, gm, mj


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fakes: tuple[Any, ...],
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    oa, an, gm, mj = fakes

    def channel(name: str, kind: str, url: str, models: list[str], key: str = UPSTREAM_KEY,
                **options: Any) -> dict[str, Any]:
        return {"name": name, "type": kind, "base_url": url, "api_key": key, "models": models, "options": options}

    config = {
        "max_attempts": 1, "circuit_failures": 1000, "mj_poll_s": 0.2, "task_poll_s": 0.2,
        "allow_private_webhooks": True,
        "channels": [
            channel("oa", "openai", oa.channel_url("oa"), ["gpt-4o", "text-embedding-3-small", "dall-e-3",
                                                           "gpt-image-1"]),
            channel("an", "anthropic", an.channel_url("an"), ["claude-echo"]),
            channel("gm", "gemini", gm.channel_url("gm"), ["gemini-echo"]),
            channel("mj", "midjourney", mj.channel_url("leak"), ["mj_*"], MJ_SECRET, forward_mode=False,
                    callbacks=False, image_proxy=True),
        ],
        "prices": {"*": PRICE, "dall-e-3": {"per_call": 0.04}, "mj_imagine": {"per_call": 0.1}},
        "keys": [{"name": "echo", "key": KEY, "quota_usd": 50}],
    }
    gateway = module_gateway_factory(Path(tmp_path_factory.mktemp("echo")), config)
    gateway.config["public_url"] = gateway.url  # signed media links, also in notifyHook bodies
    return gateway.start()


@pytest.fixture(autouse=True)
def _echoing(fakes: tuple[Any, ...]) -> None:
    for fake in fakes:
        fake.reset()
    oa, an, gm, mj = fakes
    oa.set("oa", echo=True)
    an.set("an", echo=True)
    gm.set("gm", echo=True)
    mj.set("leak", echo=True)


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}", "x-api-key": KEY, "x-goog-api-key": KEY}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
        yield client


def assert_clean(fakes: tuple[Any, ...], *texts: Any) -> None:
    """None of the upstreams' secrets or addresses in ``texts`` (bodies, headers, parsed objects)."""
    secrets = [UPSTREAM_KEY, MJ_SECRET, HOST, ECHO_IP, ECHO_IPV6, "fd00:dead:beef"]
    for key in (UPSTREAM_KEY, MJ_SECRET):
        secrets += [f"{key[:6]}***", f"***{key[-4:]}", f"{key[:3]}...{key[-3:]}"]
    for fake in fakes:
        secrets += [fake.url, f"{HOST}:{fake.port}"]
    for text in texts:
        shown = text if isinstance(text, str) else repr(text)
        for secret in secrets:
            assert secret not in shown, f"{secret!r} leaked in {shown[:600]}"


def answer_text(response: httpx.Response) -> str:
    return response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


def assert_not_a_success(db: GatewayDB, response: httpx.Response) -> None:
    """An error the upstream answered with HTTP 200 whose every field is echo text: its type and code say no
    status, so it is the upstream's failure (502), recorded as such and not billed."""
    assert response.status_code == 502, response.text
    row = db.usage(response.headers["x-request-id"])
    assert (row["end_reason"], row["cost_nano"]) == ("upstream_error", 0)


def post_all(fakes: tuple[Any, ...], http: httpx.Client, path: str, bodies: list[dict[str, Any]],
             statuses: tuple[int, ...] = (400, 502)) -> list[httpx.Response]:
    responses = [http.post(path, json=body) for body in bodies]
    for response in responses:
        assert response.status_code in statuses, response.text
        assert_clean(fakes, answer_text(response))
    return responses


# --- OpenAI -------------------------------------------------------------------------------------------

def test_openai_chat(fakes: tuple[Any, ...], http: httpx.Client, db: GatewayDB) -> None:
    hello = [{"role": "user", "content": "hi"}]
    refused = post_all(fakes, http, "/v1/chat/completions", [
        {"model": "gpt-4o", "messages": hello, "x_fake": {"status": 400}},
        {"model": "gpt-4o", "messages": hello, "stream": True, "x_fake": {"status": 400}},
        {"model": "gpt-4o", "messages": hello, "x_fake": {"status": 400, "answer_status": 200}},  # error in a 200
    ])
    assert refused[0].json()["error"]["param"] is not None  # the param was relayed, scrubbed
    assert_not_a_success(db, refused[2])
    fakes[1].set("an", echo=True, status=400)
    with httpx.Client(base_url=http.base_url, headers=http.headers, timeout=30) as client:
        response = client.post("/v1/chat/completions", json={"model": "claude-echo", "messages": hello})
        assert response.status_code == 400 and "[redacted]" in response.text, response.text
        assert_clean(fakes, answer_text(response))


def test_openai_chat_in_stream_errors(fakes: tuple[Any, ...], http: httpx.Client) -> None:
    hello = [{"role": "user", "content": "hi"}]
    fakes[1].set("an", echo=True, error_event_after=1)
    fakes[2].set("gm", echo=True, error_event_after=1)
    for model in ("gpt-4o", "claude-echo", "gemini-echo"):  # passed through, and translated twice
        body = {"model": model, "messages": hello, "stream": True, "x_fake": {"error_event_after": 1}}
        response = http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200 and "error" in response.text, response.text
        assert "[redacted]" in response.text, response.text
        assert_clean(fakes, answer_text(response))


def test_openai_embeddings(fakes: tuple[Any, ...], http: httpx.Client, db: GatewayDB) -> None:
    responses = post_all(fakes, http, "/v1/embeddings", [
        {"model": "text-embedding-3-small", "input": "x", "x_fake": {"status": 400}},
        {"model": "text-embedding-3-small", "input": "x", "x_fake": {"status": 400, "answer_status": 200}},
    ])
    assert_not_a_success(db, responses[1])


def test_openai_images_sync_and_streamed(fakes: tuple[Any, ...], http: httpx.Client) -> None:
    post_all(fakes, http, "/v1/images/generations", [
        {"model": "dall-e-3", "prompt": "x", "x_fake": {"status": 400}},
        {"model": "dall-e-3", "prompt": "x", "x_fake": {"status": 400, "answer_status": 200}},
        {"model": "gpt-image-1", "prompt": "x", "stream": True, "x_fake": {"status": 400}},
    ])
    streamed = http.post("/v1/images/generations", json={
        "model": "gpt-image-1", "prompt": "x", "stream": True, "partial_images": 1,
        "x_fake": {"status": 400, "error_event_after": 1}})
    # The fake's status only shapes its error event here: the stream itself starts with a 200.
    assert streamed.status_code in (200, 400), streamed.text
    assert_clean(fakes, answer_text(streamed))


def test_openai_image_task(fakes: tuple[Any, ...], http: httpx.Client) -> None:
    with WebhookReceiver() as receiver:
        submitted = http.post("/v1/images/generations", params={"async": "true", "webhook": receiver.url + "/hook"},
                              json={"model": "dall-e-3", "prompt": "x", "x_fake": {"status": 400}})
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["task_id"]
        deadline = time.monotonic() + 20
        while True:
            task = http.get(f"/v1/images/tasks/{task_id}")
            if task.json()["data"]["status"] == "FAILURE" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert task.json()["data"]["status"] == "FAILURE", task.text
        assert "[redacted]" in task.json()["data"]["fail_reason"]
        assert_clean(fakes, answer_text(task), receiver.wait(1))


# --- Anthropic and Gemini -----------------------------------------------------------------------------

def test_anthropic_messages(fakes: tuple[Any, ...], http: httpx.Client, db: GatewayDB) -> None:
    hello = [{"role": "user", "content": "hi"}]
    fakes[1].script("an", fakes[1].default_behavior().replace(echo=True, status=400),
                    fakes[1].default_behavior().replace(echo=True, status=400, answer_status=200),
                    fakes[1].default_behavior().replace(echo=True, error_event_after=1))
    responses = [http.post("/v1/messages", json={"model": "claude-echo", "max_tokens": 16, "messages": hello,
                                                 "stream": stream}) for stream in (False, False, True)]
    assert [r.status_code for r in responses] == [400, 502, 200], [r.text for r in responses]
    assert "[redacted]" in responses[2].text
    for response in responses:
        assert_clean(fakes, answer_text(response))
    assert_not_a_success(db, responses[1])


def test_gemini_generate_content(fakes: tuple[Any, ...], http: httpx.Client, db: GatewayDB) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    fakes[2].script("gm", fakes[2].default_behavior().replace(echo=True, status=400),
                    fakes[2].default_behavior().replace(echo=True, status=400, answer_status=200),
                    fakes[2].default_behavior().replace(echo=True, error_event_after=1))
    responses = [http.post("/v1beta/models/gemini-echo:generateContent", json=body),
                 http.post("/v1beta/models/gemini-echo:generateContent", json=body),
                 http.post("/v1beta/models/gemini-echo:streamGenerateContent?alt=sse", json=body)]
    # Google's error names its HTTP status in ``code`` (400 here): the error in a 200 is that refusal.
    assert [r.status_code for r in responses] == [400, 400, 200], [r.text for r in responses]
    assert "[redacted]" in responses[2].text
    for response in responses:
        assert_clean(fakes, answer_text(response))
    row = db.usage(responses[1].headers["x-request-id"])
    assert (row["end_reason"], row["cost_nano"]) == ("rejected", 0)


# --- Midjourney ---------------------------------------------------------------------------------------

def test_midjourney_submit_refusal(fakes: tuple[Any, ...], http: httpx.Client) -> None:
    for code in (24, 4, 23):
        fakes[3].set("leak", echo=True, submit_code=code)
        response = http.post("/mj/submit/imagine", json={"prompt": "a cat"})
        assert response.status_code in (400, 429), response.text
        assert "[redacted]" in response.json()["description"]
        assert_clean(fakes, answer_text(response))


def test_midjourney_task_that_fails_upstream(fakes: tuple[Any, ...], http: httpx.Client) -> None:
    fakes[3].set("leak", echo=True, fail=True)
    with WebhookReceiver() as receiver:
        submitted = http.post("/mj/submit/imagine", json={"prompt": "a cat", "notifyHook": receiver.url + "/h"})
        assert submitted.status_code == 200, submitted.text
        assert_clean(fakes, answer_text(submitted))
        task_id = submitted.json()["result"]
        deadline = time.monotonic() + 20
        while True:
            fetched = http.get(f"/mj/task/{task_id}/fetch")
            if fetched.json()["status"] in ("SUCCESS", "FAILURE") or time.monotonic() > deadline:
                break
            assert_clean(fakes, answer_text(fetched))
            time.sleep(0.05)
        assert fetched.json()["status"] == "FAILURE", fetched.text
        assert "[redacted]" in fetched.json()["failReason"]
        listed = http.post("/mj/task/list-by-condition", json={"ids": [task_id]})
        deliveries = receiver.wait(1)
        while deliveries[-1]["status"] != "FAILURE" and time.monotonic() < deadline:
            time.sleep(0.05)
            deliveries = receiver.wait(1)
    assert_clean(fakes, answer_text(fetched), answer_text(listed), deliveries)
