"""Images end to end: the official ``openai`` SDK (and raw HTTP where the SDK hides what must be
checked) → a relaygate process → the fake OpenAI and Gemini upstreams and the mock; every call's
usage record and the key's spend read back from the gateway's database."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.clients import UPSTREAM_KEY, raw, sdk
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.png import make_png, png_size
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway
from tests.helpers.webhook import WebhookReceiver

ALICE = "sk-alice-images-0123456789"
BOB = "sk-bob-images-0123456789"
NANO = 1_000_000_000


def images_config(fake: FakeOpenAI, gemini: FakeGemini, **settings: Any) -> dict[str, Any]:
    return {
        "task_poll_s": 0.2,
        "allow_private_webhooks": True,
        "max_image_upload_bytes": 400_000,
        "channels": [
            {"name": "openai-images", "type": "openai", "base_url": fake.channel_url("img"), "api_key": UPSTREAM_KEY,
             "models": ["dall-e-2", "dall-e-3", "gpt-image-1", "gpt-4-all", "house-painter"],
             "model_map": {"house-painter": "dall-e-2"}},
            {"name": "gemini-images", "type": "gemini", "base_url": gemini.url, "api_key": UPSTREAM_KEY,
             "models": ["gemini-2.5-flash-image"]},
            {"name": "mock", "type": "mock", "models": ["mock-image"]},
        ],
        "prices": {
            "dall-e-3": {"per_image": {"default": "0.04", "1792x1024": "0.08", "1024x1024/hd": "0.08"}},
            "dall-e-2": {"per_image": "0.02"},
            "house-painter": {"per_image": "0.03"},
            "gpt-image-1": {"input": 5, "input_image": 10, "output": 40},
            "gemini-2.5-flash-image": {"input": "0.3", "output": 30},
            "mock-image": {"per_image": "0.01"},
            "gpt-4-all": {"input": 30, "output": 60, "per_call": "0.05"},
        },
        "keys": [{"name": "alice", "key": ALICE, "quota_usd": "10"}, {"name": "bob", "key": BOB, "quota_usd": "10"}],
        **settings,
    }


@pytest.fixture(scope="module")
def gemini_upstream() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def gem(gemini_upstream: FakeGemini) -> FakeGemini:
    gemini_upstream.reset()
    return gemini_upstream


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, gemini_upstream: FakeGemini,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    home = Path(tmp_path_factory.mktemp("images"))
    return module_gateway_factory(home, images_config(fake_upstream, gemini_upstream)).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, gem: FakeGemini) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


def _rid(response: Any) -> str:
    return str(response.headers["x-request-id"])


def _png_file(name: str, side: int = 64, rgb: tuple[int, int, int] = (10, 200, 30)) -> tuple[str, bytes, str]:
    return (name, make_png(side, side, rgb), "image/png")


# --- generations ------------------------------------------------------------------------------------

def test_sdk_generate_dall_e_3_is_billed_per_image_by_size(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    client = sdk(gateway, ALICE)
    response = client.images.with_raw_response.generate(model="dall-e-3", prompt="a paper crane on a desk",
                                                        size="1792x1024", quality="standard")
    images = response.parse()
    assert len(images.data) == 1 and images.data[0].url and images.data[0].revised_prompt
    assert httpx.get(images.data[0].url).content[:8] == b"\x89PNG\r\n\x1a\n"  # the upstream's own URL
    sent = fake.image_requests()[-1]
    assert sent.path == "/img/v1/images/generations" and sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.json() == {"model": "dall-e-3", "prompt": "a paper crane on a desk", "size": "1792x1024",
                           "quality": "standard"}
    row = db.usage(_rid(response))
    assert (row["surface"], row["end_reason"], row["status"], row["images"]) == ("openai.images", "done", 200, 1)
    assert row["cost_nano"] == 80_000_000 and row["channel_name"] == "openai-images"


def test_sdk_generate_n_images_b64_and_quality_price(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    response = sdk(gateway, ALICE).images.with_raw_response.generate(
        model="dall-e-3", prompt="hd crane", quality="hd", response_format="b64_json")
    image = response.parse().data[0]
    assert image.b64_json and png_size(base64.b64decode(image.b64_json)) == (1024, 1024)
    assert db.usage(_rid(response))["cost_nano"] == 80_000_000  # 1024x1024/hd
    many = sdk(gateway, ALICE).images.with_raw_response.generate(model="dall-e-2", prompt="cats", n=3,
                                                                 size="256x256")
    assert len(many.parse().data) == 3
    row = db.usage(_rid(many))
    assert (row["images"], row["cost_nano"]) == (3, 3 * 20_000_000)


def test_gpt_image_1_is_billed_from_upstream_token_usage(gateway: Gateway, db: GatewayDB) -> None:
    response = sdk(gateway, ALICE).images.with_raw_response.generate(model="gpt-image-1", prompt="one two three",
                                                                     quality="low")
    result = response.parse()
    assert result.data[0].b64_json and result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (3, 272)
    row = db.usage(_rid(response))
    assert (row["input_tokens"], row["output_tokens"], row["usage_source"]) == (3, 272, "upstream")
    assert row["cost_nano"] == (3 * 5 + 272 * 40) * 1000  # USD per 1M tokens → nano per token × 1000


def test_model_map_renames_the_model_upstream(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    response = sdk(gateway, ALICE).images.with_raw_response.generate(model="house-painter", prompt="a barn")
    assert fake.image_requests()[-1].json()["model"] == "dall-e-2"
    assert db.usage(_rid(response))["cost_nano"] == 30_000_000  # the client's model's price


def test_mock_channel_makes_real_pngs(gateway: Gateway, db: GatewayDB) -> None:
    response = sdk(gateway, ALICE).images.with_raw_response.generate(model="mock-image", prompt="x", n=2,
                                                                     response_format="b64_json")
    data = response.parse().data
    assert [png_size(base64.b64decode(d.b64_json or "")) for d in data] == [(64, 64), (64, 64)]
    assert db.usage(_rid(response))["cost_nano"] == 2 * 10_000_000


def test_gemini_image_model_through_images_generate(gateway: Gateway, gem: FakeGemini, db: GatewayDB) -> None:
    response = sdk(gateway, ALICE).images.with_raw_response.generate(model="gemini-2.5-flash-image",
                                                                     prompt="a lighthouse", n=2, size="1536x1024")
    result = response.parse()
    assert len(result.data) == 2 and all(d.b64_json for d in result.data)
    sent = [r.json() for r in gem.generate_requests()]
    assert len(sent) == 2
    assert sent[0]["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"],
                                           "imageConfig": {"aspectRatio": "3:2"}}
    row = db.usage(_rid(response))
    # Two calls of the fake: 11 prompt tokens and 1294 candidate tokens each.
    assert (row["input_tokens"], row["output_tokens"], row["images"]) == (22, 2588, 2)
    assert row["cost_nano"] == -(-(22 * 300_000_000 + 2588 * 30 * NANO) // 1_000_000)


def test_gemini_refusal_is_a_content_policy_error_and_free(gateway: Gateway, gem: FakeGemini, db: GatewayDB) -> None:
    gem.set(finish_reason="IMAGE_SAFETY")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway, ALICE).images.generate(model="gemini-2.5-flash-image", prompt="forbidden")
    assert caught.value.code == "content_policy_violation"
    row = db.usage(_rid(caught.value.response))
    assert (row["end_reason"], row["cost_nano"]) == ("rejected", 0)


def test_upstream_failure_is_not_billed(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    fake.set("img", status=500)
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(gateway, ALICE).images.generate(model="dall-e-3", prompt="x")
    assert caught.value.status_code == 502
    assert UPSTREAM_KEY not in caught.value.response.text
    assert db.usage(_rid(caught.value.response))["cost_nano"] == 0


def test_chat_model_that_draws_is_billed_per_call(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    fake.set("img", content=("Here it is: ", "![cat](https://files.example.net/cat.png)"))
    response = sdk(gateway, ALICE).chat.completions.with_raw_response.create(
        model="gpt-4-all", messages=[{"role": "user", "content": "画一只猫"}])
    assert "![cat](https://files.example.net/cat.png)" in (response.parse().choices[0].message.content or "")
    row = db.usage(_rid(response))
    assert row["cost_nano"] == 50_000_000 and row["input_tokens"] > 0  # per_call wins over the token prices


# --- edits and variations ---------------------------------------------------------------------------

def test_sdk_edit_streams_files_through_byte_for_byte(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    first, second = make_png(32, 32, (1, 2, 3)), make_png(48, 48, (4, 5, 6))
    mask = make_png(32, 32, (0, 0, 0))
    response = sdk(gateway, ALICE).images.with_raw_response.edit(
        model="gpt-image-1", prompt="add a hat",
        image=[("a.png", first, "image/png"), ("b.png", second, "image/png")],
        mask=("mask.png", mask, "image/png"), quality="low")
    assert response.parse().data[0].b64_json
    form = fake.image_forms("edits")[-1]
    assert form.fields["model"] == "gpt-image-1" and form.fields["prompt"] == "add a hat"
    assert [(f.name, f.filename, f.sha256) for f in form.files] == [
        ("image[]", "a.png", hashlib.sha256(first).hexdigest()),
        ("image[]", "b.png", hashlib.sha256(second).hexdigest()),
        ("mask", "mask.png", hashlib.sha256(mask).hexdigest())]
    assert form.request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "content-length" in form.request.headers  # sent with a length, not chunked
    row = db.usage(_rid(response))
    assert row["image_input_tokens"] == 2 * 323 and row["input_tokens"] == 3 + 2 * 323
    assert row["cost_nano"] == (3 * 5 + 2 * 323 * 10 + 272 * 40) * 1000


def test_edit_with_model_map_rewrites_only_the_model_field(gateway: Gateway, fake: FakeOpenAI) -> None:
    image = make_png(64, 64)
    sdk(gateway, ALICE).images.edit(model="house-painter", prompt="paint it", image=("i.png", image, "image/png"))
    form = fake.image_forms("edits")[-1]
    assert form.fields["model"] == "dall-e-2" and form.files[0].sha256 == hashlib.sha256(image).hexdigest()


def test_variations(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    with pytest.warns(DeprecationWarning):  # the SDK marks variations deprecated; OpenAI still serves them
        response = sdk(gateway, ALICE).images.with_raw_response.create_variation(
            model="dall-e-2", image=("v.png", make_png(64, 64), "image/png"), n=2)
    assert len(response.parse().data) == 2
    assert fake.image_forms("variations")[-1].fields["n"] == "2"
    assert db.usage(_rid(response))["cost_nano"] == 2 * 20_000_000


# --- bad input ---------------------------------------------------------------------------------------

def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    return dict(body["error"])


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"model": "dall-e-3", "prompt": "x", "size": "512x512"}, "size", "invalid_value"),
    ({"model": "dall-e-3", "prompt": "x", "n": 2}, "n", "invalid_value"),
    ({"model": "dall-e-2", "prompt": "x", "n": "2"}, "n", "invalid_type"),
    ({"model": "dall-e-3"}, "prompt", "missing_prompt"),
    ({"model": "dall-e-3", "prompt": "x", "response_format": "png"}, "response_format", "invalid_value"),
    ({"model": "gpt-image-1", "prompt": "x", "quality": "hd"}, "quality", "invalid_value"),
    ({"model": "flux-pro", "prompt": "x", "size": "big"}, "size", "invalid_value"),
    ({"model": "dall-e-3", "prompt": "x", "stream": True}, "stream", "unsupported_parameter"),
])
def test_bad_generation_bodies_are_400(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB, body: dict[str, Any],
                                       param: str, code: str) -> None:
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        response = client.post("/v1/images/generations", json=body)
    assert response.status_code == 400
    assert (_error(response)["param"], _error(response)["code"]) == (param, code)
    assert fake.image_requests() == [] and db.key_used("alice") == before


def test_bad_multipart_requests_are_4xx(gateway: Gateway, fake: FakeOpenAI) -> None:
    with raw(gateway, ALICE) as client:
        no_file = client.post("/v1/images/edits", files={"prompt": (None, "x"), "model": (None, "dall-e-2")})
        assert (no_file.status_code, _error(no_file)["code"]) == (400, "missing_image")
        not_png = client.post("/v1/images/edits", data={"prompt": "x", "model": "dall-e-2"},
                              files={"image": ("i.png", b"GIF89a not really", "image/png")})
        assert (not_png.status_code, _error(not_png)["code"]) == (400, "invalid_image")
        broken = client.post("/v1/images/edits",
                             content=b"--zzz\r\nContent-Disposition: form-data; name=\"prompt\"\r\n",
                             headers={"Content-Type": "multipart/form-data; boundary=zzz"})
        assert (broken.status_code, _error(broken)["code"]) == (400, "invalid_multipart")
        json_body = client.post("/v1/images/edits", json={"prompt": "x"})
        assert (json_body.status_code, _error(json_body)["code"]) == (400, "invalid_multipart")
        huge = client.post("/v1/images/edits", data={"prompt": "x", "model": "dall-e-2"},
                           files={"image": ("i.png", make_png(8, 8) + b"\0" * 500_000, "image/png")})
        assert (huge.status_code, _error(huge)["code"]) == (413, "body_too_large")
        two = client.post("/v1/images/variations", files=[("image", ("a.png", make_png(8, 8), "image/png")),
                                                          ("image", ("b.png", make_png(8, 8), "image/png"))])
        assert (two.status_code, _error(two)["code"]) == (400, "invalid_value")
    assert fake.image_requests() == []


def test_unknown_model_and_no_images_api(gateway: Gateway) -> None:
    with raw(gateway, ALICE) as client:
        unknown = client.post("/v1/images/generations", json={"model": "nope", "prompt": "x"})
        assert (unknown.status_code, _error(unknown)["code"]) == (404, "model_not_found")
        no_key = httpx.post(gateway.url + "/v1/images/generations", json={"model": "dall-e-3", "prompt": "x"})
        assert (no_key.status_code, _error(no_key)["code"]) == (401, "missing_api_key")


# --- async tasks -------------------------------------------------------------------------------------

def wait_task(client: httpx.Client, task_id: str, *, until: tuple[str, ...] = ("SUCCESS", "FAILURE"),
              timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/images/tasks/{task_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        if data["status"] in until or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def test_async_generation_submit_poll_result(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        submitted = client.post("/v1/images/generations?async=true",
                                json={"model": "dall-e-3", "prompt": "slow crane", "x_fake": {"delay_s": 0.8}})
        assert submitted.status_code == 200 and set(submitted.json()) == {"task_id"}
        task_id = submitted.json()["task_id"]
        assert db.key_used("alice") == before + 40_000_000  # held at submit
        early = client.get(f"/v1/images/tasks/{task_id}").json()
        assert early["code"] == "success" and early["data"]["status"] in ("SUBMITTED", "IN_PROGRESS")
        done = wait_task(client, task_id)
    assert done["status"] == "SUCCESS" and done["progress"] == "100%" and done["action"] == "generate"
    assert done["task_id"] == task_id and done["fail_reason"] == ""
    assert done["submit_time"] <= done["start_time"] <= done["finish_time"]
    assert done["data"]["data"][0]["url"].startswith(fake.url)
    row = db.usage(_rid(submitted))
    assert (row["end_reason"], row["cost_nano"], row["images"]) == ("done", 40_000_000, 1)
    assert db.key_used("alice") == before + 40_000_000  # settled once: the hold became the cost


def test_async_failure_is_refunded(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    fake.set("img", status=500)
    before = db.key_used("alice")
    with raw(gateway, ALICE) as client:
        submitted = client.post("/v1/images/generations?async=true", json={"model": "dall-e-3", "prompt": "x"})
        done = wait_task(client, submitted.json()["task_id"])
    assert done["status"] == "FAILURE" and "upstream failed" in done["fail_reason"] and done["data"] is None
    row = db.usage(_rid(submitted))
    assert (row["end_reason"], row["cost_nano"]) == ("upstream_error", 0)
    assert db.key_used("alice") == before  # the hold was returned


def test_async_edit_keeps_its_files_until_it_runs(gateway: Gateway, fake: FakeOpenAI) -> None:
    image = make_png(40, 40, (9, 9, 9))
    with raw(gateway, ALICE) as client:
        submitted = client.post("/v1/images/edits", params={"async": "true"},
                                data={"prompt": "hat", "model": "dall-e-2"},
                                files={"image": ("i.png", image, "image/png")})
        assert submitted.status_code == 200, submitted.text
        done = wait_task(client, submitted.json()["task_id"])
    assert done["status"] == "SUCCESS" and done["action"] == "edit"
    assert fake.image_forms("edits")[-1].files[0].sha256 == hashlib.sha256(image).hexdigest()


def test_a_key_sees_only_its_own_tasks(gateway: Gateway) -> None:
    with raw(gateway, ALICE) as alice, raw(gateway, BOB) as bob:
        task_id = alice.post("/v1/images/generations?async=true",
                             json={"model": "mock-image", "prompt": "mine"}).json()["task_id"]
        foreign = bob.get(f"/v1/images/tasks/{task_id}")
        unknown = bob.get("/v1/images/tasks/0123456789abcdef0123456789abcdef")
        assert foreign.status_code == unknown.status_code == 404
        assert _error(foreign)["code"] == _error(unknown)["code"] == "task_not_found"
        assert "mine" not in foreign.text
        assert wait_task(alice, task_id)["status"] == "SUCCESS"


def test_webhook_receives_the_final_task(gateway: Gateway) -> None:
    with WebhookReceiver() as receiver, raw(gateway, ALICE) as client:
        task_id = client.post("/v1/images/generations", params={"async": "true", "webhook": receiver.url + "/hook"},
                              json={"model": "mock-image", "prompt": "notify me"}).json()["task_id"]
        delivered = receiver.wait(1)
    assert delivered[0]["data"]["task_id"] == task_id and delivered[0]["data"]["status"] == "SUCCESS"
    assert delivered[0]["data"]["data"]["data"][0]["url"].startswith("data:image/png;base64,")


def test_webhook_address_checks(gateway: Gateway) -> None:
    with raw(gateway, ALICE) as client:
        bad = client.post("/v1/images/generations", params={"async": "true", "webhook": "ftp://example.com/x"},
                          json={"model": "mock-image", "prompt": "x"})
    assert (bad.status_code, _error(bad)["code"]) == (400, "invalid_webhook")


# --- streamed images ---------------------------------------------------------------------------------

def test_sdk_streamed_generation_forwards_partials_and_bills_usage(gateway: Gateway, fake: FakeOpenAI,
                                                                   db: GatewayDB) -> None:
    client = sdk(gateway, ALICE)
    response = client.images.with_raw_response.generate(model="gpt-image-1", prompt="one two", quality="low",
                                                        stream=True, partial_images=2)
    events = list(response.parse())
    assert [e.type for e in events] == ["image_generation.partial_image", "image_generation.partial_image",
                                        "image_generation.completed"]
    completed = events[-1]
    assert completed.type == "image_generation.completed" and completed.usage.output_tokens == 272
    assert png_size(base64.b64decode(completed.b64_json)) == (1024, 1024)
    assert fake.image_requests()[-1].json()["stream"] is True
    row = db.usage(_rid(response))
    assert (row["end_reason"], row["images"], row["input_tokens"], row["output_tokens"]) == ("done", 1, 2, 272)
    assert row["cost_nano"] == (2 * 5 + 272 * 40) * 1000


def test_sdk_streamed_edit(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    stream = sdk(gateway, ALICE).images.edit(model="gpt-image-1", prompt="hat", image=("a.png", make_png(16, 16),
                                                                                       "image/png"), stream=True)
    events = list(stream)
    assert [e.type for e in events] == ["image_edit.completed"]
    assert fake.image_forms("edits")[-1].fields["stream"] == "true"


def test_streams_from_channels_that_do_not_stream_are_whole_images(gateway: Gateway, gem: FakeGemini,
                                                                   db: GatewayDB) -> None:
    response = sdk(gateway, ALICE).images.with_raw_response.generate(model="gemini-2.5-flash-image",
                                                                     prompt="a kite", stream=True)
    events = list(response.parse())
    assert [e.type for e in events] == ["image_generation.completed"]
    assert events[0].b64_json and events[0].usage.output_tokens == 1294
    assert db.usage(_rid(response))["images"] == 1


def test_a_stream_cut_before_its_image_is_reported_and_not_billed_per_image(gateway: Gateway, fake: FakeOpenAI,
                                                                             db: GatewayDB) -> None:
    fake.set("img", cut_after=1)
    with raw(gateway, ALICE) as client:
        response = client.post("/v1/images/generations", json={"model": "gpt-image-1", "prompt": "x", "stream": True,
                                                               "partial_images": 2})
    assert response.status_code == 200
    assert "image_generation.partial_image" in response.text and '"code":"stream_cut"' in response.text
    assert "image_generation.completed" not in response.text
    row = db.usage(response.headers["x-request-id"])
    assert (row["end_reason"], row["images"], row["output_tokens"]) == ("stream_cut", 0, 0)


def test_async_and_stream_together_are_refused(gateway: Gateway) -> None:
    with raw(gateway, ALICE) as client:
        response = client.post("/v1/images/generations?async=true",
                               json={"model": "gpt-image-1", "prompt": "x", "stream": True})
    assert (response.status_code, _error(response)["code"]) == (400, "unsupported_parameter")
