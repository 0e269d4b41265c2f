"""OpenAI images requests served by Gemini image models: the golden request and answer files in
``golden/images/`` (``RELAYGATE_UPDATE_GOLDEN=1`` rewrites the expected ones), the size → aspect
ratio table, and the reading of usage and of answers without an image."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.core.usage import Usage
from relaygate.dialects.gemini.images import (
    MASK_INSTRUCTION,
    NO_IMAGE,
    SUPPORTED_RATIOS,
    GeminiImages,
    ImageInput,
    gemini_aspect_ratio,
    gemini_images_response,
    images_request_to_gemini,
    openai_images_response,
    sum_usage,
)
from relaygate.errors import InvalidRequest
from tests.unit.dialects.helpers import CREATED, GOLDEN, check, load

IMAGES = GOLDEN / "images"
FIRST = ImageInput(b"\x89PNG\r\n\x1a\nfirst image", "image/png")
SECOND = ImageInput(b"\xff\xd8\xff\xe0second image", "image/jpeg")
MASK = ImageInput(b"\x89PNG\r\n\x1a\nmask", "image/png")
ANSWERS = ("image", "image_snake", "prompt_blocked", "image_safety", "text_only")


def answer(case: str) -> GeminiImages:
    return gemini_images_response(load(IMAGES / f"gemini.{case}.json"))


def result(*images: tuple[str, str], usage: Usage | None = None) -> GeminiImages:
    return GeminiImages(images=images, text="", usage=usage, blocked_reason=None)


# --- requests ---------------------------------------------------------------------------------------

def test_generate_request() -> None:
    """One image, the size as a ratio; quality, style, background, output_format... are not sent."""
    check(IMAGES / "openai.generate.to_gemini.json", images_request_to_gemini(load(IMAGES / "openai.generate.json")))


def test_edit_request_with_two_images_and_a_mask() -> None:
    body = images_request_to_gemini(load(IMAGES / "openai.edit.json"), [FIRST, SECOND], MASK)
    check(IMAGES / "openai.edit.to_gemini.json", body)
    parts = body["contents"][0]["parts"]
    assert [p["inlineData"]["mimeType"] for p in parts[:3]] == ["image/png", "image/jpeg", "image/png"]
    assert parts[3] == {"text": f"Put a red knitted hat on the cat\n\n{MASK_INSTRUCTION}"}


def test_edit_without_a_mask_says_nothing_of_one() -> None:
    parts = images_request_to_gemini({"prompt": "p"}, [FIRST])["contents"][0]["parts"]
    assert parts[1] == {"text": "p"}
    assert len(parts) == 2


@pytest.mark.parametrize(("size", "ratio"), [
    ("1024x1024", "1:1"), ("1536x1024", "3:2"), ("1024x1536", "2:3"), ("1792x1024", "16:9"), ("1024x1792", "9:16"),
    ("256x256", "1:1"), ("512x512", "1:1"), ("1920x1080", "16:9"), ("1080x1920", "9:16"),
    ("2520x1080", "21:9"), ("1680x720", "21:9"), ("1024x768", "4:3"), ("768x1024", "3:4"), ("1024x1280", "4:5"),
    ("1280x1024", "5:4"), ("800X800", "1:1"),
])
def test_size_becomes_an_aspect_ratio(size: str, ratio: str) -> None:
    assert gemini_aspect_ratio(size) == ratio
    config = images_request_to_gemini({"prompt": "p", "size": size})["generationConfig"]
    assert config == {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": ratio}}


@pytest.mark.parametrize("fields", [{}, {"size": "auto"}, {"size": None}])
def test_auto_or_no_size_leaves_the_ratio_to_the_model(fields: dict[str, Any]) -> None:
    config = images_request_to_gemini({"prompt": "p", **fields})["generationConfig"]
    assert config == {"responseModalities": ["TEXT", "IMAGE"]}


def test_a_ratio_gemini_does_not_offer_is_refused_naming_the_ones_it_does() -> None:
    with pytest.raises(InvalidRequest) as caught:
        images_request_to_gemini({"prompt": "p", "size": "2560x1080"})  # sold as 21:9, but 64:27
    error = caught.value
    assert (error.param, error.code, error.status) == ("size", "invalid_value", 400)
    assert "64:27" in error.message
    assert all(ratio in error.message for ratio in SUPPORTED_RATIOS)


@pytest.mark.parametrize(("size", "code"), [
    ("big", "invalid_value"), ("1024", "invalid_value"), ("0x1024", "invalid_value"), ("1024x1024px", "invalid_value"),
    ("", "invalid_value"), (1024, "invalid_type"), (["1024x1024"], "invalid_type"),
])
def test_a_size_that_is_not_width_x_height_is_refused(size: Any, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        gemini_aspect_ratio(size)
    assert (caught.value.param, caught.value.code) == ("size", code)


@pytest.mark.parametrize(("body", "code"), [
    ({}, "missing_field"), ({"prompt": ""}, "invalid_value"), ({"prompt": 3}, "invalid_type"),
])
def test_a_prompt_is_required(body: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        images_request_to_gemini(body)
    assert (caught.value.param, caught.value.code) == ("prompt", code)


# --- answers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ANSWERS)
def test_answer(case: str) -> None:
    check(IMAGES / f"gemini.{case}.parsed.json", answer(case))


def test_thought_parts_are_not_the_answer() -> None:
    image = answer("image")
    assert image.images == (("image/png", load(IMAGES / "gemini.image.json")["candidates"][0]["content"]["parts"][3]
                             ["inlineData"]["data"]),)
    assert image.text == "Here is the cat in a red knitted hat."
    assert image.blocked_reason is None
    assert not image.content_filtered


def test_both_spellings_read_the_same() -> None:
    snake = answer("image_snake")
    assert snake.images == (("image/png", "iVBORw0KGgoSECOND"),)
    assert snake.usage == Usage(input_tokens=7, output_tokens=1290)


def test_usage_counts_thoughts_as_output_and_input_image_tokens_apart() -> None:
    assert answer("image").usage == Usage(input_tokens=528, output_tokens=1300 + 220, reasoning_tokens=220,
                                          image_input_tokens=516)
    tool_use = {"usageMetadata": {"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "cachedContentTokenCount": 4,
                                  "promptTokensDetails": [{"modality": "IMAGE", "tokenCount": 6}]}}
    assert gemini_images_response(tool_use).usage == Usage(input_tokens=15, cached_input_tokens=4,
                                                           image_input_tokens=6)
    assert gemini_images_response({"candidates": []}).usage is None


@pytest.mark.parametrize(("case", "reason", "filtered"), [
    ("prompt_blocked", "PROHIBITED_CONTENT", True), ("image_safety", "IMAGE_SAFETY", True),
    ("text_only", NO_IMAGE, False),
])
def test_why_no_image_came(case: str, reason: str, filtered: bool) -> None:
    got = answer(case)
    assert (got.images, got.blocked_reason, got.content_filtered) == ((), reason, filtered)


@pytest.mark.parametrize(("finish", "reason"), [
    ("SAFETY", "SAFETY"), ("IMAGE_PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT"), ("NO_IMAGE", NO_IMAGE),
    ("MAX_TOKENS", "MAX_TOKENS"), ("FINISH_REASON_UNSPECIFIED", NO_IMAGE), (None, NO_IMAGE),
])
def test_a_finish_without_an_image_is_the_reason(finish: str | None, reason: str) -> None:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": "no"}]}}
    if finish is not None:
        candidate["finishReason"] = finish
    assert gemini_images_response({"candidates": [candidate]}).blocked_reason == reason


def test_an_empty_or_malformed_answer_has_no_image() -> None:
    for parsed in ({}, {"candidates": "x"}, {"candidates": [{"content": {"parts": [{"inlineData": {"data": 5}}]}}]}):
        got = gemini_images_response(parsed)
        assert (got.images, got.text, got.blocked_reason) == ((), "", NO_IMAGE)


def test_only_image_inline_data_is_an_image() -> None:
    parts = [{"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0"}}, {"inlineData": {"data": "iVBOR"}},
             {"inlineData": {"mimeType": "image/webp", "data": "UklGR"}}]
    got = gemini_images_response({"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]})
    assert got.images == (("image/png", "iVBOR"), ("image/webp", "UklGR"))


# --- the OpenAI answer ------------------------------------------------------------------------------

def test_openai_answer_for_n_2() -> None:
    results = [answer("image"), answer("image_snake")]
    check(IMAGES / "n2.openai_response.json", openai_images_response(results, created=CREATED, output_format="webp"))


def test_output_format_is_what_gemini_sent_else_what_was_asked() -> None:
    jpeg = result(("image/jpeg", "/9j/"))
    assert openai_images_response([jpeg], created=1, output_format="png")["output_format"] == "jpeg"
    assert openai_images_response([result(("image/WEBP", "UklGR"))], created=1, output_format=None)["output_format"] \
        == "webp"
    assert openai_images_response([result(("image/gif", "R0lG"))], created=1, output_format="png")["output_format"] \
        == "png"
    assert "output_format" not in openai_images_response([result(("image/gif", "R0lG"))], created=1,
                                                         output_format=None)
    assert "output_format" not in openai_images_response([], created=1, output_format="bmp")


def test_openai_answer_without_usage_or_images() -> None:
    assert openai_images_response([result()], created=7, output_format=None) == {"created": 7, "data": []}


def test_sum_usage() -> None:
    one = Usage(input_tokens=10, output_tokens=100, reasoning_tokens=5, image_input_tokens=4)
    two = Usage(input_tokens=3, output_tokens=50, cached_input_tokens=1)
    assert sum_usage([one, None, two]) == Usage(input_tokens=13, output_tokens=150, cached_input_tokens=1,
                                                reasoning_tokens=5, image_input_tokens=4)
    assert sum_usage([None, None]) is None
    assert sum_usage([]) is None
