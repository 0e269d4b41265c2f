"""The mock's images: ``/v1/images/generations``, ``/edits`` and ``/variations`` answered in process in
OpenAI's format, with a real PNG (a small square whose colour is derived from the prompt, so the same
prompt always gives the same image).

``response_format: "b64_json"`` (and every ``gpt-image*`` model, as OpenAI does) gets the PNG as base64;
``url`` gets it as a ``data:image/png;base64,...`` URL, since an offline mock has nowhere to host files.
``gpt-image*`` models report usage as OpenAI does (prompt tokens counted offline; 272 / 1056 / 4160
output tokens per image for low / medium / high-or-auto quality); ``dall-e-3`` adds a ``revised_prompt``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import zlib
from collections.abc import Mapping

from relaygate.billing.tokenizer import count_text

_SIDE = 64
_OUTPUT_TOKENS = {"low": 272, "medium": 1056}
_HIGH_TOKENS = 4160


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, uncompressed-filter PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _colour(seed: str, index: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{seed}\x00{index}".encode()).digest()
    return digest[0], digest[1], digest[2]


def images_reply(operation: str, fields: Mapping[str, object]) -> dict[str, object]:
    model = str(fields.get("model") or "dall-e-2")
    prompt = str(fields.get("prompt") or "")
    n = _int(fields.get("n"), 1)
    gpt_image = model.startswith("gpt-image")
    as_base64 = gpt_image or fields.get("response_format") == "b64_json"
    data: list[dict[str, object]] = []
    for index in range(n):
        encoded = base64.b64encode(png(_SIDE, _SIDE, _colour(f"{operation}:{prompt}", index))).decode()
        item: dict[str, object] = {"b64_json": encoded} if as_base64 else {"url": "data:image/png;base64," + encoded}
        if model == "dall-e-3":
            item["revised_prompt"] = f"A mock rendering of: {prompt}"
        data.append(item)
    answer: dict[str, object] = {"created": int(time.time()), "data": data}
    if gpt_image:
        quality = str(fields.get("quality") or "auto")
        per_image = _OUTPUT_TOKENS.get(quality, _HIGH_TOKENS)
        text_tokens = count_text(prompt, "gpt-4o")
        answer.update(background=fields.get("background") or "opaque", output_format="png",
                      quality=quality if quality != "auto" else "high", size=fields.get("size") or "1024x1024",
                      usage={"input_tokens": text_tokens, "output_tokens": per_image * n,
                             "total_tokens": text_tokens + per_image * n,
                             "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0}})
    return answer


def _int(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return default
