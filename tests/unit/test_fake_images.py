"""The fakes' image endpoints speak spec/openai.md §5–7 and Gemini's image output (spec/gemini.md §3)
exactly, and their PNGs are real, so what gateway tests see is what a real upstream would send."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from google import genai
from google.genai import types

from tests.fakes.gemini_upstream import RESPONSE_ID, FakeGemini
from tests.fakes.openai_upstream import IMAGES_CREATED, FakeOpenAI
from tests.fakes.png import SIGNATURE, make_png, png_size

KEY = "AIza-fake-gemini-key"
IMAGE_MODEL = "/v1beta/models/gemini-2.5-flash-image"
DRAW = {"contents": [{"role": "user", "parts": [{"text": "draw a red square"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}
PNG_A = make_png(16, 16, (1, 2, 3))
PNG_B = make_png(32, 16, (4, 5, 6))
MASK = make_png(16, 16, (0, 0, 0))


@pytest.fixture
def http(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def gemini(gemini_server: FakeGemini) -> FakeGemini:
    gemini_server.reset()
    return gemini_server


@pytest.fixture
def ghttp(gemini: FakeGemini) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gemini.url, timeout=10, headers={"x-goog-api-key": KEY}) as client:
        yield client


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk, checking every CRC on the way."""
    out, at = [], len(SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + data)
        out.append((kind, data))
        at += 12 + length
    return out


def b64_png(text: str) -> bytes:
    png = base64.b64decode(text, validate=True)
    assert png.startswith(SIGNATURE)
    return png


# --- png ------------------------------------------------------------------------------------------


def test_make_png_writes_a_valid_png() -> None:
    png = make_png(3, 2, (10, 20, 30))
    assert png.startswith(SIGNATURE) and png_size(png) == (3, 2)
    parsed = chunks(png)
    assert [kind for kind, _ in parsed] == [b"IHDR", b"IDAT", b"IEND"]
    assert parsed[0][1] == struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0)
    assert zlib.decompress(parsed[1][1]) == (b"\x00" + bytes((10, 20, 30)) * 3) * 2
    assert png_size(make_png(1792, 1024)) == (1792, 1024)
    assert make_png(5, 5) != make_png(5, 5, (0, 0, 0))


@pytest.mark.parametrize("data", [b"", b"GIF89a" + b"\x00" * 30, SIGNATURE + b"\x00\x00\x00\x0dIEND" + b"\x00" * 8])
def test_png_size_refuses_what_is_not_a_png(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(data)


@pytest.mark.parametrize(("width", "height", "rgb"), [(0, 4, (1, 2, 3)), (4, 9000, (1, 2, 3)), (4, 4, (1, 2, 256))])
def test_make_png_refuses_impossible_images(width: int, height: int, rgb: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        make_png(width, height, rgb)


# --- OpenAI generations -----------------------------------------------------------------------------


def test_generation_urls_are_served(http: httpx.Client, fake: FakeOpenAI) -> None:
    response = http.post("/v1/images/generations", json={"model": "dall-e-2", "prompt": "a crane", "n": 2,
                                                         "size": "512x512"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["created", "data"] and body["created"] == IMAGES_CREATED
    urls = [item["url"] for item in body["data"]]
    assert [list(item) for item in body["data"]] == [["url"], ["url"]]
    assert len(set(urls)) == 2 and all(u.startswith(fake.url + "/files/") and u.endswith(".png") for u in urls)
    assert set(fake.published_files()) == set(urls)
    for url in urls:
        image = httpx.get(url)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert png_size(image.content) == (512, 512) and image.content == fake.published_files()[url]
    assert [r.path for r in fake.file_requests()] == [httpx.URL(u).path for u in urls]
    assert [r.json()["prompt"] for r in fake.image_requests()] == ["a crane"]
    fake.forget_files()
    assert httpx.get(urls[0]).status_code == 404


def test_dall_e_3_b64_json_and_revised_prompt(http: httpx.Client) -> None:
    body = http.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "a lighthouse",
                                                     "size": "1792x1024", "response_format": "b64_json"}).json()
    [item] = body["data"]
    assert list(item) == ["b64_json", "revised_prompt"]
    assert png_size(b64_png(item["b64_json"])) == (1792, 1024)
    assert item["revised_prompt"] == "A vivid rendering of: a lighthouse"
    assert "usage" not in body
    defaulted = http.post("/v1/images/generations", json={"prompt": "x"}).json()  # dall-e-2, url, 1024x1024
    assert list(defaulted["data"][0]) == ["url"] and png_size(httpx.get(defaulted["data"][0]["url"]).content) == (
        1024, 1024)


def test_gpt_image_generation_answers_b64_with_usage(http: httpx.Client, fake: FakeOpenAI) -> None:
    body = http.post("/a/v1/images/generations", json={"model": "gpt-image-1", "prompt": "a paper crane on a desk",
                                                       "n": 2, "response_format": "url"}).json()
    assert list(body) == ["created", "data", "background", "output_format", "quality", "size", "usage"]
    assert [list(item) for item in body["data"]] == [["b64_json"], ["b64_json"]]
    assert png_size(b64_png(body["data"][0]["b64_json"])) == (1024, 1024)
    assert (body["background"], body["output_format"], body["quality"], body["size"]) == (
        "opaque", "png", "high", "1024x1024")
    assert body["usage"] == {"input_tokens": 6, "input_tokens_details": {"text_tokens": 6, "image_tokens": 0},
                             "output_tokens": 2 * 4160, "total_tokens": 6 + 2 * 4160}
    low = http.post("/v1/images/generations", json={"model": "gpt-image-1-mini", "prompt": "two words",
                                                    "quality": "low", "size": "1536x1024", "background": "transparent",
                                                    "output_format": "webp"}).json()
    assert (low["background"], low["output_format"], low["quality"], low["size"]) == (
        "transparent", "webp", "low", "1536x1024")
    assert low["usage"]["output_tokens"] == 408 and low["usage"]["input_tokens"] == 2
    assert png_size(b64_png(low["data"][0]["b64_json"])) == (1536, 1024)
    assert [r.prefix for r in fake.image_requests("generations")] == ["a", ""]
    fake.set("", image_output_tokens=100, image_text_tokens=7, omit_usage=False)
    fixed = http.post("/v1/images/generations", json={"model": "gpt-image-1", "prompt": "p", "quality": "medium"})
    assert fixed.json()["usage"]["total_tokens"] == 107
    fake.set("", omit_usage=True)
    assert "usage" not in http.post("/v1/images/generations", json={"model": "gpt-image-1", "prompt": "p"}).json()


@pytest.mark.parametrize(("body", "message", "param", "code"), [
    ({"model": "dall-e-2"}, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"),
    ({"model": "dall-e-2", "prompt": "x", "n": 11}, "Invalid 'n': integer must be between 1 and 10, got 11.", "n",
     "invalid_value"),
    ({"model": "dall-e-2", "prompt": "x", "n": 0}, "Invalid 'n': integer must be between 1 and 10, got 0.", "n",
     "invalid_value"),
    ({"model": "dall-e-3", "prompt": "x", "n": 2}, "You must provide n=1 for this model.", "n", "invalid_value"),
    ({"model": "dall-e-2", "prompt": "x", "size": "1792x1024"},
     "Invalid value: '1792x1024'. Supported sizes for dall-e-2 are 256x256, 512x512, 1024x1024.", "size",
     "invalid_value"),
    ({"model": "dall-e-2", "prompt": "x", "response_format": "png"},
     "Invalid value: 'png'. Supported values are: 'url' and 'b64_json'.", "response_format", "invalid_value"),
])
def test_invalid_generations_get_openai_errors(http: httpx.Client, body: dict[str, Any], message: str, param: str,
                                               code: str) -> None:
    response = http.post("/v1/images/generations", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                         "code": code}}


def test_generation_behaviours(http: httpx.Client, fake: FakeOpenAI) -> None:
    fake.set("slow", delay_s=0.3)
    fake.set("down", status=503, error_message="The engine is currently overloaded, please try again later.")
    started = time.monotonic()
    assert http.post("/slow/v1/images/generations", json={"prompt": "x"}).status_code == 200
    assert time.monotonic() - started >= 0.3
    down = http.post("/down/v1/images/generations", json={"prompt": "x"})
    assert down.status_code == 503 and down.json()["error"]["type"] == "server_error"
    marked = http.post("/v1/images/generations", json={"prompt": "x", "x_fake": {"status": 429}})
    assert marked.status_code == 429 and marked.json()["error"]["code"] == "rate_limit_exceeded"
    broken = http.post("/v1/images/generations", json={"prompt": "x", "x_fake": {"raw_body": '{"created": 1, "da'}})
    assert broken.status_code == 200 and broken.content == b'{"created": 1, "da'
    red = http.post("/v1/images/generations", json={"prompt": "x", "model": "gpt-image-1",
                                                    "x_fake": {"image_rgb": [0, 255, 0]}}).json()
    assert b64_png(red["data"][0]["b64_json"]) == make_png(1024, 1024, (0, 255, 0))
    not_json = http.post("/v1/images/generations", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"


# --- OpenAI edits and variations (multipart) --------------------------------------------------------


def test_edits_record_the_form_and_files(http: httpx.Client, fake: FakeOpenAI) -> None:
    files = [("image[]", ("a.png", PNG_A, "image/png")), ("image[]", ("b.png", PNG_B, "image/png")),
             ("mask", ("mask.png", MASK, "image/png"))]
    response = http.post("/b/v1/images/edits", files=files,
                         data={"model": "gpt-image-1", "prompt": "add a hat", "quality": "low"})
    assert response.status_code == 200
    body = response.json()
    assert body["usage"] == {"input_tokens": 3 + 2 * 323,
                             "input_tokens_details": {"text_tokens": 3, "image_tokens": 2 * 323},
                             "output_tokens": 272, "total_tokens": 3 + 2 * 323 + 272}
    assert png_size(b64_png(body["data"][0]["b64_json"])) == (1024, 1024)
    [form] = fake.image_forms()
    assert form.endpoint == "edits" and form.prefix == "b"
    assert form.fields == {"model": "gpt-image-1", "prompt": "add a hat", "quality": "low"}
    assert [(f.name, f.filename, f.content_type, f.size, f.sha256) for f in form.files] == [
        ("image[]", "a.png", "image/png", len(PNG_A), hashlib.sha256(PNG_A).hexdigest()),
        ("image[]", "b.png", "image/png", len(PNG_B), hashlib.sha256(PNG_B).hexdigest()),
        ("mask", "mask.png", "image/png", len(MASK), hashlib.sha256(MASK).hexdigest())]
    assert [png_size(f.data) for f in form.images] == [(16, 16), (32, 16)]
    assert [f.filename for f in form.files_named("mask")] == ["mask.png"]
    [recorded] = fake.image_requests("edits")
    assert form.request is recorded and recorded.path == "/b/v1/images/edits"
    assert recorded.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert PNG_B in recorded.body  # the raw body is kept as sent


def test_dall_e_2_edit_with_a_single_image(http: httpx.Client, fake: FakeOpenAI) -> None:
    response = http.post("/v1/images/edits", files={"image": ("a.png", PNG_A, "image/png")},
                         data={"prompt": "a hat", "response_format": "b64_json", "size": "256x256"})
    body = response.json()
    assert list(body) == ["created", "data"] and png_size(b64_png(body["data"][0]["b64_json"])) == (256, 256)
    assert [f.name for f in fake.image_forms("edits")[0].files] == ["image"]


def test_invalid_edits(http: httpx.Client, fake: FakeOpenAI) -> None:
    no_prompt = http.post("/v1/images/edits", files={"image": ("a.png", PNG_A, "image/png")}, data={"n": "1"})
    assert no_prompt.status_code == 400
    assert no_prompt.json() == {"error": {"message": "Missing required parameter: 'prompt'.",
                                          "type": "invalid_request_error", "param": "prompt",
                                          "code": "missing_required_parameter"}}
    no_image = http.post("/v1/images/edits", files={"mask": ("m.png", MASK, "image/png")}, data={"prompt": "x"})
    assert no_image.status_code == 400 and no_image.json()["error"]["param"] == "image"
    bad_n = http.post("/v1/images/edits", files={"image": ("a.png", PNG_A, "image/png")},
                      data={"prompt": "x", "n": "many"})
    assert bad_n.status_code == 400 and bad_n.json()["error"]["param"] == "n"
    as_json = http.post("/v1/images/edits", json={"prompt": "x"})
    assert as_json.status_code == 400
    assert as_json.json()["error"]["message"] == ("Invalid Content-Type header (application/json), expected "
                                                  "multipart/form-data.")
    broken = http.post("/v1/images/edits", content=b"--abc\r\nContent-Disposition: form-data; name=\"prompt\"",
                       headers={"content-type": "multipart/form-data; boundary=abc"})
    assert broken.status_code == 400
    assert broken.json()["error"]["message"] == "We could not parse the multipart/form-data body of your request."
    # Refused forms are recorded too; bodies that are no form at all are only in the requests.
    assert len(fake.image_forms("edits")) == 3 and len(fake.image_requests("edits")) == 5


def test_variations(http: httpx.Client, fake: FakeOpenAI) -> None:
    image = {"image": ("a.png", PNG_A, "image/png")}
    urls = http.post("/v1/images/variations", files=image, data={"model": "dall-e-2", "n": "2", "size": "256x256"})
    assert [list(item) for item in urls.json()["data"]] == [["url"], ["url"]]
    assert png_size(httpx.get(urls.json()["data"][1]["url"]).content) == (256, 256)
    b64 = http.post("/v1/images/variations", files=image, data={"response_format": "b64_json"}).json()
    assert list(b64) == ["created", "data"] and list(b64["data"][0]) == ["b64_json"]
    missing = http.post("/v1/images/variations", files={"other": ("a.png", PNG_A, "image/png")}, data={"n": "1"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_required_parameter"
    assert [f.fields for f in fake.image_forms("variations")] == [
        {"model": "dall-e-2", "n": "2", "size": "256x256"}, {"response_format": "b64_json"}, {"n": "1"}]


def test_form_behaviours(http: httpx.Client, fake: FakeOpenAI) -> None:
    image = {"image": ("a.png", PNG_A, "image/png")}
    started = time.monotonic()
    slow = http.post("/v1/images/edits", files=image, data={"prompt": "x", "x_fake": '{"delay_s": 0.3}'})
    assert slow.status_code == 200 and time.monotonic() - started >= 0.3
    fake.script("c", fake.set("c").replace(status=500))
    failed = http.post("/c/v1/images/variations", files=image)
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
    assert http.post("/c/v1/images/variations", files=image).status_code == 200
    assert fake.image_forms()[0].fields["x_fake"] == '{"delay_s": 0.3}'  # recorded as received


def test_the_openai_sdk_reads_the_fake_directly(fake: FakeOpenAI) -> None:
    with openai.OpenAI(api_key="sk-x", base_url=fake.url + "/v1", max_retries=0) as client:
        generated = client.images.generate(model="gpt-image-1", prompt="a crane", quality="medium")
        assert generated.usage is not None and generated.usage.output_tokens == 1056
        assert generated.data and png_size(b64_png(generated.data[0].b64_json or "")) == (1024, 1024)
        edited = client.images.edit(model="gpt-image-1", prompt="a hat",
                                    image=[("a.png", PNG_A, "image/png"), ("b.png", PNG_B, "image/png")])
        assert edited.usage is not None and edited.usage.input_tokens_details.image_tokens == 2 * 323
    assert [f.name for f in fake.image_forms("edits")[0].files] == ["image[]", "image[]"]
    fake.set("", status=400, error_message="Your request was rejected by the safety system.",
             error_code="moderation_blocked")
    with openai.OpenAI(api_key="sk-x", base_url=fake.url + "/v1", max_retries=0) as client, \
            pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-1", prompt="x")
    assert caught.value.code == "moderation_blocked"


# --- Gemini image output ----------------------------------------------------------------------------


def test_gemini_image_output(ghttp: httpx.Client, gemini: FakeGemini) -> None:
    photo = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG_A).decode()}}
    body = {**DRAW, "contents": [{"role": "user", "parts": [{"text": "make it red"}, photo, photo]}]}
    response = ghttp.post(f"{IMAGE_MODEL}:generateContent", json=body)
    assert response.status_code == 200
    answer = response.json()
    [candidate] = answer["candidates"]
    text, image = candidate["content"]["parts"]
    assert text == {"text": "Here is your image."} and list(image) == ["inlineData"]
    assert image["inlineData"]["mimeType"] == "image/png"
    assert png_size(b64_png(image["inlineData"]["data"])) == (1024, 1024)
    assert (candidate["finishReason"], candidate["index"], candidate["content"]["role"]) == ("STOP", 0, "model")
    assert answer["usageMetadata"] == {
        "promptTokenCount": 11 + 2 * 258, "candidatesTokenCount": 4 + 1290, "totalTokenCount": 11 + 516 + 4 + 1290,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}, {"modality": "IMAGE", "tokenCount": 516}],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 4}, {"modality": "IMAGE", "tokenCount": 1290}]}
    assert (answer["modelVersion"], answer["responseId"]) == ("gemini-2.5-flash-image", RESPONSE_ID)
    assert gemini.generate_requests()[0].json() == body


def test_gemini_image_variants(ghttp: httpx.Client) -> None:
    snake = {"contents": DRAW["contents"], "generation_config": {"response_modalities": ["IMAGE"]},
             "x_fake": {"image_text": "", "image_count": 2, "image_size": [64, 32]}}
    parts = ghttp.post(f"{IMAGE_MODEL}:generateContent", json=snake).json()["candidates"][0]["content"]["parts"]
    assert [png_size(b64_png(p["inlineData"]["data"])) for p in parts] == [(64, 32), (64, 32)]
    usage = ghttp.post(f"{IMAGE_MODEL}:generateContent", json=snake).json()["usageMetadata"]
    assert usage == {"promptTokenCount": 11, "candidatesTokenCount": 2580, "totalTokenCount": 2591,
                     "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}],
                     "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 2580}]}
    text_only = ghttp.post(f"{IMAGE_MODEL}:generateContent", json={"contents": DRAW["contents"]}).json()
    assert text_only["candidates"][0]["content"]["parts"] == [{"text": "Bonjour!"}]  # no IMAGE modality asked


def test_gemini_image_refusals(ghttp: httpx.Client) -> None:
    refused = ghttp.post(f"{IMAGE_MODEL}:generateContent",
                         json={**DRAW, "x_fake": {"finish_reason": "IMAGE_SAFETY"}}).json()
    assert refused["candidates"] == [{"finishReason": "IMAGE_SAFETY", "index": 0}]
    assert refused["usageMetadata"] == {"promptTokenCount": 11, "totalTokenCount": 11,
                                        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}]}
    blocked = ghttp.post(f"{IMAGE_MODEL}:generateContent", json={**DRAW, "x_fake": {"blocked": "SAFETY"}}).json()
    assert "candidates" not in blocked and blocked["promptFeedback"]["blockReason"] == "SAFETY"


def test_gemini_image_stream_and_behaviours(ghttp: httpx.Client, gemini: FakeGemini) -> None:
    response = ghttp.post(f"{IMAGE_MODEL}:streamGenerateContent", params={"alt": "sse"}, json=DRAW)
    frames = [orjson.loads(f[6:]) for f in response.content.split(b"\n\n") if f]
    assert [list(c["candidates"][0]["content"]["parts"][0]) for c in frames] == [["text"], ["inlineData"]]
    assert [c["candidates"][0].get("finishReason") for c in frames] == [None, "STOP"]
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in frames] == [4, 1294]  # cumulative
    gemini.set("", status=429)
    assert ghttp.post(f"{IMAGE_MODEL}:generateContent", json=DRAW).status_code == 429
    gemini.set("", delay_s=0.3)
    started = time.monotonic()
    assert ghttp.post(f"{IMAGE_MODEL}:generateContent", json=DRAW).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_the_genai_sdk_reads_gemini_images(gemini: FakeGemini) -> None:
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=gemini.url, api_version="v1beta"))
    answer = client.models.generate_content(
        model="gemini-2.5-flash-image", contents="draw",
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]))
    assert answer.candidates and answer.candidates[0].content and answer.candidates[0].content.parts
    blob = answer.candidates[0].content.parts[1].inline_data
    assert blob is not None and blob.data is not None and png_size(blob.data) == (1024, 1024)
    usage = answer.usage_metadata
    assert usage is not None and usage.candidates_tokens_details is not None
    assert [(d.modality, d.token_count) for d in usage.candidates_tokens_details] == [
        (types.MediaModality.TEXT, 4), (types.MediaModality.IMAGE, 1290)]
