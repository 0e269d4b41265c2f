"""OpenAI's ``POST /v1/images/generations`` and ``/v1/images/edits`` (spec/openai.md §5–6) served by a
Gemini image-output model through ``generateContent`` (spec/gemini.md §2–3): pure converters.

One ``generateContent`` call asks for one image; ``n`` is the caller's, which makes ``n`` calls, reads
each answer with :func:`gemini_images_response` and writes them all as one OpenAI answer with
:func:`openai_images_response`.

What an OpenAI images request can say and Gemini cannot:

- ``size`` becomes an aspect ratio only (``imageConfig.aspectRatio``): the pixel size is the model's.
  DALL·E 3's 1792x1024 / 1024x1792 (7:4) are read as 16:9 / 9:16; any other ``WxH`` must reduce to a
  ratio Gemini offers (:data:`SUPPORTED_RATIOS`), else ``400 invalid_value`` (param ``size``).
  ``auto`` or no size: the model's choice.
- ``quality``, ``style``, ``background``, ``moderation``, ``output_format``, ``output_compression``,
  ``input_fidelity`` and ``user`` are ignored: Gemini has no such settings. The answer's
  ``output_format`` says the format Gemini actually sent (the bytes are never converted).
- ``response_format: "url"`` is answered with ``b64_json``: Gemini returns bytes, not URLs.
- A mask has no Gemini parameter: it is sent as one more image after the others, and a sentence
  (:data:`MASK_INSTRUCTION`) after the prompt tells the model that its transparent area is the area to
  edit. Best effort: the model may change more or less than the masked area.
- Streaming (``stream``, ``partial_images``) is not offered here.

Upstream answers are read in both field spellings (``inlineData`` / ``inline_data``, ``mimeType`` /
``mime_type``...), as Gemini-compatible upstreams built on the SDKs may send snake_case.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relaygate.core.chat import FinishReason
from relaygate.core.usage import Usage
from relaygate.core.wire import as_dict, as_list, as_str, count
from relaygate.dialects.gemini.shared import FINISH_IN, pick, usage_from_gemini
from relaygate.dialects.openai.images import openai_images_usage
from relaygate.errors import InvalidRequest

SUPPORTED_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
"""The ``imageConfig.aspectRatio`` values Gemini image models take."""

# DALL·E 3's wide and tall sizes are 7:4, which Gemini does not offer; 16:9 is the nearest shape.
_SIZE_RATIOS = {"1792x1024": "16:9", "1024x1792": "9:16"}


def _reduced(width: int, height: int) -> tuple[int, int]:
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


# Gemini's names by the reduced ratio they stand for: a size is matched by its shape (21:9 is 7:3).
_RATIO_NAMES = {_reduced(*map(int, ratio.split(":"))): ratio for ratio in SUPPORTED_RATIOS}
_SIZE = re.compile(r"([0-9]+)[xX]([0-9]+)")

MASK_INSTRUCTION = ("The last image above is a mask for the first image: edit only the area where the mask "
                    "is transparent, and keep the rest of the first image unchanged.")
"""Said after the prompt when an edit has a mask (Gemini has no mask parameter)."""

NO_IMAGE = "NO_IMAGE"
"""``blocked_reason`` of an answer that finished normally without an image (Gemini's own word for it)."""

# Finish reasons that say nothing about why no image came.
_PLAIN_FINISH = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED"})
_FILTER_REASONS = frozenset(word for word, reason in FINISH_IN.items() if reason is FinishReason.CONTENT_FILTER)
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/webp": "webp"}
_SNAKE_PIECE = re.compile(r"_([a-z])")


@dataclass(frozen=True, slots=True)
class ImageInput:
    """An input image of an edit, or its mask: the file's bytes and media type."""

    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class GeminiImages:
    """What one ``generateContent`` answer holds for an images request.

    ``images`` are (mime type, base64 data as received) pairs; ``text`` is the model's text besides
    them; ``blocked_reason`` says why no image came (``promptFeedback.blockReason``, else the
    candidate's ``finishReason``, else :data:`NO_IMAGE`) and is None when images came.
    """

    images: tuple[tuple[str, str], ...]
    text: str
    usage: Usage | None
    blocked_reason: str | None

    @property
    def content_filtered(self) -> bool:
        """Whether a safety filter stopped the image (the words the chat converters read as
        content_filter), as opposed to the model making none for another reason."""
        return self.blocked_reason in _FILTER_REASONS


# --- requests ---------------------------------------------------------------------------------------

def images_request_to_gemini(body: Mapping[str, Any], images: Sequence[ImageInput] = (),
                             mask: ImageInput | None = None) -> dict[str, Any]:
    """The ``generateContent`` body for one image of an OpenAI images request (``images`` and ``mask``
    are an edit's files, read from its multipart body by the caller). Raises ``InvalidRequest`` for a
    missing prompt or a size Gemini cannot make."""
    prompt = _prompt(body.get("prompt"))
    ratio = gemini_aspect_ratio(body.get("size"))
    parts = [_inline(image) for image in images]
    if mask is not None:
        parts.append(_inline(mask))
        prompt = f"{prompt}\n\n{MASK_INSTRUCTION}"
    parts.append({"text": prompt})
    # TEXT as well as IMAGE: Gemini image models refuse IMAGE alone, and say in text why no image came.
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def gemini_aspect_ratio(size: Any) -> str | None:
    """Gemini's ``aspectRatio`` for an OpenAI ``size`` (None: ``auto`` or no size, the model chooses).
    Raises ``InvalidRequest`` (param ``size``) for a size that is not ``WxH`` or whose ratio Gemini
    does not offer."""
    if size is None or size == "auto":
        return None
    if not isinstance(size, str):
        raise InvalidRequest("size: must be a string such as '1024x1024', or 'auto'", param="size",
                             code="invalid_type")
    if size in _SIZE_RATIOS:
        return _SIZE_RATIOS[size]
    match = _SIZE.fullmatch(size)
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not width or not height:
        raise InvalidRequest(f"size: {size!r} is not WIDTHxHEIGHT (such as '1024x1024') or 'auto'", param="size",
                             code="invalid_value")
    reduced = _reduced(width, height)
    if reduced not in _RATIO_NAMES:
        raise InvalidRequest(f"size: {size} has the aspect ratio {reduced[0]}:{reduced[1]}, which Gemini image "
                             "models cannot make; use 'auto' or a size with one of these ratios: "
                             + ", ".join(SUPPORTED_RATIOS), param="size", code="invalid_value")
    return _RATIO_NAMES[reduced]


def _prompt(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise InvalidRequest("prompt: required, a non-empty string", param="prompt",
                         code="missing_field" if value is None else "invalid_type" if not isinstance(value, str)
                         else "invalid_value")


def _inline(image: ImageInput) -> dict[str, Any]:
    return {"inlineData": {"mimeType": image.mime_type, "data": base64.b64encode(image.data).decode("ascii")}}


# --- responses --------------------------------------------------------------------------------------

def gemini_images_response(parsed: Mapping[str, Any]) -> GeminiImages:
    """The images, text, usage and (when no image came) the reason of a ``GenerateContentResponse``.
    Every candidate is read. Thought parts are left out: thinking image models draft images in them,
    which are not the answer. An inline part without a mime type is taken as PNG."""
    candidates = [as_dict(c) for c in as_list(pick(parsed, "candidates"))]
    images: list[tuple[str, str]] = []
    texts: list[str] = []
    for candidate in candidates:
        for part in (as_dict(p) for p in as_list(as_dict(pick(candidate, "content")).get("parts"))):
            if part.get("thought") is True:
                continue
            inline = as_dict(pick(part, "inlineData"))
            mime_type = as_str(pick(inline, "mimeType")) or "image/png"
            data = as_str(inline.get("data"))
            if data and mime_type.lower().startswith("image/"):
                images.append((mime_type, data))
            elif text := as_str(part.get("text")):
                texts.append(text)
    return GeminiImages(images=tuple(images), text="".join(texts), usage=_usage(pick(parsed, "usageMetadata")),
                        blocked_reason=_blocked_reason(parsed, candidates, bool(images)))


def _blocked_reason(parsed: Mapping[str, Any], candidates: list[dict[str, Any]], has_images: bool) -> str | None:
    prompt_block = as_str(pick(as_dict(pick(parsed, "promptFeedback")), "blockReason"))
    if prompt_block:
        return prompt_block
    if has_images:
        return None
    finishes = (as_str(pick(candidate, "finishReason")) for candidate in candidates)
    return next((word for word in finishes if word and word not in _PLAIN_FINISH), NO_IMAGE)


def _usage(raw: Any) -> Usage | None:
    """``usage_from_gemini``'s reading, plus the prompt tokens of the input images."""
    metadata = {_camel(key): value for key, value in as_dict(raw).items()}
    usage = usage_from_gemini(metadata)
    if usage is None:
        return None
    details = (as_dict(detail) for detail in as_list(metadata.get("promptTokensDetails")))
    image_tokens = sum(count(pick(detail, "tokenCount")) for detail in details if detail.get("modality") == "IMAGE")
    return dataclasses.replace(usage, image_input_tokens=min(image_tokens, usage.input_tokens))


def _camel(name: str) -> str:
    return _SNAKE_PIECE.sub(lambda match: match.group(1).upper(), name)


def sum_usage(usages: Iterable[Usage | None]) -> Usage | None:
    """The usage of several calls together; None when none of them reported any."""
    known = [usage for usage in usages if usage is not None]
    if not known:
        return None
    return Usage(**{field.name: sum(getattr(usage, field.name) for usage in known)
                    for field in dataclasses.fields(Usage)})


def openai_images_response(results: Sequence[GeminiImages], *, created: int,
                           output_format: str | None) -> dict[str, Any]:
    """The OpenAI images answer for the ``results`` of the ``n`` calls: every image, in order, as
    ``b64_json``. ``output_format`` (the client's, if any) is written only when the first image's mime
    type names no format; ``usage`` (gpt-image-1's shape, summed) only when some call reported usage."""
    images = [image for result in results for image in result.images]
    body: dict[str, Any] = {"created": created, "data": [{"b64_json": data} for _, data in images]}
    actual = _FORMATS.get(images[0][0].lower()) if images else None
    written = actual or (output_format if output_format in _FORMATS.values() else None)
    if written is not None:
        body["output_format"] = written
    usage = sum_usage(result.usage for result in results)
    if usage is not None:
        body["usage"] = openai_images_usage(usage)
    return body
