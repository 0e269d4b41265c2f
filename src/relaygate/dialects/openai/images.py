"""Checks of OpenAI image requests (spec/openai.md §5–7), before anything is reserved or sent.

The known OpenAI models are held to OpenAI's own rules (sizes, qualities, ``n``, prompt lengths), so a
mistake is a clear 400 here rather than an upstream refusal after a reservation. Other image models
reached through the same routes (``flux-*``, ``imagen-*``, Gemini image models...) get the generic
checks: a ``WxH`` or ``auto`` size, ``n`` from 1 to 10. Multipart fields arrive as text; numbers are
read from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relaygate.core.images import ImageJob, ImageOperation
from relaygate.core.usage import Usage
from relaygate.core.wire import count
from relaygate.errors import InvalidRequest

DEFAULT_MODEL = "dall-e-2"  # OpenAI's default when no model is named (new-api fills it the same way)
RESPONSE_FORMATS = ("url", "b64_json")
_SIZE = re.compile(r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$")


@dataclass(frozen=True, slots=True)
class _Family:
    sizes: tuple[str, ...] | None  # None: any WxH or auto
    qualities: tuple[str, ...] | None  # None: any short word
    default_size: str
    default_quality: str
    max_n: int
    max_prompt: int


_DALL_E_2 = _Family(("256x256", "512x512", "1024x1024"), ("standard",), "1024x1024", "standard", 10, 1000)
_DALL_E_3 = _Family(("1024x1024", "1792x1024", "1024x1792"), ("standard", "hd"), "1024x1024", "standard", 1, 4000)
_GPT_IMAGE = _Family(("1024x1024", "1536x1024", "1024x1536", "auto"), ("low", "medium", "high", "auto"),
                     "auto", "auto", 10, 32000)
_OTHER = _Family(None, None, "auto", "auto", 10, 32000)


def _family(model: str) -> _Family:
    if model == "dall-e-2":
        return _DALL_E_2
    if model == "dall-e-3":
        return _DALL_E_3
    if model.startswith("gpt-image"):
        return _GPT_IMAGE
    return _OTHER


def check_image_request(operation: ImageOperation, params: Mapping[str, Any], *, form: bool) -> ImageJob:
    """The checked job for a generations body (``form=False``) or the text fields of an edits or
    variations form (``form=True``); raises ``InvalidRequest`` naming the field."""
    fields = dict(params)
    model = _text(fields, "model", required=False) or DEFAULT_MODEL
    fields["model"] = model
    family = _family(model)
    prompt = _prompt(fields, operation, family)
    n = _count(fields, family, form=form)
    size = _choice(fields, "size", family.sizes, family.default_size, model)
    if family.sizes is None and size != "auto" and not _SIZE.match(size):
        raise InvalidRequest("'size' must look like 1024x1024, or be 'auto'.", param="size", code="invalid_value")
    quality = _choice(fields, "quality", family.qualities, family.default_quality, model)
    response_format = _text(fields, "response_format", required=False)
    if response_format is not None and response_format not in RESPONSE_FORMATS:
        raise InvalidRequest("'response_format' must be 'url' or 'b64_json'.", param="response_format",
                             code="invalid_value")
    if model == "dall-e-3":
        _choice(fields, "style", ("vivid", "natural"), "vivid", model)
    stream = _streaming(fields, form=form)
    if stream:
        _check_streaming(fields, operation, model, form=form)
    return ImageJob(operation, model, prompt, n, size, quality, response_format, fields, stream)


def _text(fields: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"'{name}' is required.", param=name, code=f"missing_{name}")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string.", param=name, code="invalid_type")
    return value


def _prompt(fields: Mapping[str, Any], operation: ImageOperation, family: _Family) -> str | None:
    if operation is ImageOperation.VARIATION:
        return None
    prompt = _text(fields, "prompt", required=True)
    assert prompt is not None
    if not prompt.strip():
        raise InvalidRequest("'prompt' must not be empty.", param="prompt", code="invalid_value")
    if len(prompt) > family.max_prompt:
        raise InvalidRequest(f"'prompt' is longer than this model's limit of {family.max_prompt} characters.",
                             param="prompt", code="invalid_value")
    return prompt


def _count(fields: Mapping[str, Any], family: _Family, *, form: bool) -> int:
    raw = fields.get("n")
    if raw is None:
        return 1
    if form and isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidRequest("'n' must be a whole number.", param="n", code="invalid_type")
    if not 1 <= raw <= family.max_n:
        limit = "1" if family.max_n == 1 else f"between 1 and {family.max_n}"
        raise InvalidRequest(f"'n' must be {limit} for this model.", param="n", code="invalid_value")
    return raw


def _choice(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...] | None, default: str, model: str) -> str:
    value = _text(fields, name, required=False)
    if value is None:
        return default
    if allowed is not None and value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(allowed)} for {model}.", param=name,
                             code="invalid_value")
    if allowed is None and not (0 < len(value) <= 32):
        raise InvalidRequest(f"'{name}' must be a short word.", param=name, code="invalid_value")
    return value


def _check_streaming(fields: Mapping[str, Any], operation: ImageOperation, model: str, *, form: bool) -> None:
    """Streams are GPT image models' (partial images as they are drawn); DALL·E and variations have none."""
    if model in ("dall-e-2", "dall-e-3") or operation is ImageOperation.VARIATION:
        raise InvalidRequest(f"Streaming is not available for {model} or for variations; send the request "
                             "without 'stream'.", param="stream", code="unsupported_parameter")
    partial = fields.get("partial_images")
    if partial is None:
        return
    if form and isinstance(partial, str) and partial.strip().isdigit():
        partial = int(partial.strip())
    if isinstance(partial, bool) or not isinstance(partial, int) or not 0 <= partial <= 3:
        raise InvalidRequest("'partial_images' must be a whole number from 0 to 3.", param="partial_images",
                             code="invalid_value")


def _streaming(fields: Mapping[str, Any], *, form: bool) -> bool:
    value = fields.get("stream")
    if form:
        return isinstance(value, str) and value.strip().lower() == "true"
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest("'stream' must be true or false.", param="stream", code="invalid_type")
    return bool(value)


def openai_usage(parsed: dict[str, Any]) -> Usage | None:
    """gpt-image-1's ``usage``: input tokens (text and image), output tokens (image)."""
    raw = parsed.get("usage")
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details")
    image_tokens = details.get("image_tokens") if isinstance(details, dict) else None
    return Usage(input_tokens=count(raw.get("input_tokens")), output_tokens=count(raw.get("output_tokens")),
                 image_input_tokens=count(image_tokens))


def openai_images_usage(usage: Usage) -> dict[str, Any]:
    """gpt-image-1's ``usage``: input tokens split into text and image tokens."""
    return {"input_tokens": usage.input_tokens,
            "input_tokens_details": {"text_tokens": max(usage.input_tokens - usage.image_input_tokens, 0),
                                     "image_tokens": usage.image_input_tokens},
            "output_tokens": usage.output_tokens, "total_tokens": usage.total_tokens}
