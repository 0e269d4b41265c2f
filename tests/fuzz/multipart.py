"""Hostile multipart bodies for the image edit and variation routes, built from the real form:
``model``, ``prompt``, ``n``, ``size`` and the ``image`` / ``image[]`` / ``mask`` files."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.fakes.png import make_png
from tests.fuzz.conftest import KEY
from tests.fuzz.harness import Probe
from tests.fuzz.known import broken

PNG = make_png(8, 8)
BOUNDARY = b"fuzzboundary7MA4YWxkTrZu0gW"
Part = tuple[bytes, bytes | None, bytes, bytes]  # field name, filename, content type, bytes


def form(parts: list[Part], boundary: bytes = BOUNDARY) -> bytes:
    out = b""
    for name, filename, content_type, data in parts:
        disposition = b'form-data; name="' + name + b'"' + (b'; filename="' + filename + b'"' if filename else b"")
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        out += (b"Content-Type: " + content_type + b"\r\n" if content_type else b"") + b"\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def multipart_probe(target: bytes, body: bytes, *, content_type: bytes | None = None,
                    auth: bytes = b"Bearer " + KEY.encode()) -> Probe:
    headers = ((b"Authorization", auth),
               (b"Content-Type", content_type or b"multipart/form-data; boundary=" + BOUNDARY))
    return Probe(b"POST", target, headers, body, "openai")


def valid_parts(model: str = "mock-image", filename: bytes = b"cat.png") -> list[Part]:
    return [(b"model", None, b"", model.encode()), (b"prompt", None, b"", b"a cat"),
            (b"image", filename, b"image/png", PNG)]


FILENAMES = [b"cat.png", b"", b"\xc3\xa9.png", b"a" * 3000 + b".png", b"../../etc/passwd", b'x".png', b"\x00.png",
             *([b"\xff.png", b"\xfe\xff"] if not broken("async_edit_non_utf8_filename") else [])]
SYNC_ONLY_FILENAMES = [b"\xff.png", b"\xfe\xff"]  # on the synchronous routes these work today
TEXT_VALUES = [b"", b"x" * 200_000, b"\xff\xfe", b"-1", b"99999999999999999999", b"1.5", b"null", b"\x00", "é".encode()]
FILE_BYTES = [PNG, b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", PNG * 50, b"\xff" * 1000]


@st.composite
def multipart_bodies(draw: Any) -> Probe:
    target = draw(st.sampled_from([b"/v1/images/edits", b"/v1/images/edits?async=true", b"/v1/images/variations",
                                   b"/images/edits"]))
    parts = valid_parts(draw(st.sampled_from(["mock-image", "dall-e-2", "gpt-image-1", "fake-gpt", "nope"])))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["filename", "value", "file", "name", "drop", "dup", "type", "extra"]))
        at = draw(st.integers(0, len(parts) - 1)) if parts else 0
        if not parts:
            break
        name, filename, content_type, data = parts[at]
        if action == "filename":
            sync = b"async" not in target
            names = FILENAMES + (SYNC_ONLY_FILENAMES if sync and broken("async_edit_non_utf8_filename") else [])
            parts[at] = (name, draw(st.sampled_from(names)), content_type, data)
        elif action == "value":
            parts[at] = (name, filename, content_type, draw(st.sampled_from(TEXT_VALUES)))
        elif action == "file":
            parts[at] = (name, filename or b"f.png", content_type, draw(st.sampled_from(FILE_BYTES)))
        elif action == "name":
            parts[at] = (draw(st.sampled_from([b"image[]", b"mask", b"images", b"\xc3\xa9", b"", b"n", b"size"])),
                         filename, content_type, data)
        elif action == "drop":
            del parts[at]
        elif action == "dup":
            parts.append(parts[at])
        elif action == "type":
            types = [b"text/plain", b"image/gif", b"x/y; a=b"]
            if b"async" not in target or not broken("async_edit_non_utf8_filename"):
                types.append(b"\xff")
            parts[at] = (name, filename, draw(st.sampled_from(types)), data)
        else:
            parts.append((draw(st.sampled_from([b"n", b"size", b"quality", b"response_format", b"stream", b"user"])),
                          None, b"", draw(st.sampled_from([b"2", b"1024x1024", b"hd", b"b64_json", b"true", b"x"]))))
    body = form(parts)
    frame = draw(st.sampled_from(["ok", "ok", "ok", "cut", "no-end", "other-boundary", "no-boundary", "json"]))
    content_type = None
    if frame == "cut":
        body = body[:draw(st.integers(0, max(len(body) - 1, 0)))]
    elif frame == "no-end":
        body = body.rsplit(b"--" + BOUNDARY + b"--", 1)[0]
    elif frame == "other-boundary":
        content_type = b"multipart/form-data; boundary=other"
    elif frame == "no-boundary":
        content_type = b"multipart/form-data"
    elif frame == "json":
        content_type = b"application/json"
    return multipart_probe(target, body, content_type=content_type)
