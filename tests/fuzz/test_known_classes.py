"""Each hostile class of ``known.KNOWN_BROKEN``, sent on its own: a strict xfail while it is listed there
(fixed on another branch, or found here and reported), a normal test once its name is removed."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import Probe, check
from tests.fuzz.hostile import Surface, encode
from tests.fuzz.known import known_class
from tests.fuzz.multipart import form, multipart_probe, valid_parts
from tests.fuzz.surfaces import ADMIN, ANTHROPIC, GEMINI, IMAGES_JSON, MIDJOURNEY, OPENAI
from tests.helpers.gateway import Gateway

SURFACES = {s.name: s for s in (OPENAI, ANTHROPIC, GEMINI, MIDJOURNEY, ADMIN, IMAGES_JSON)}
EXAMPLE_BODIES = {
    "openai": {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
    "anthropic": {"model": "mock-gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    "gemini": {"contents": [{"parts": [{"text": "hi"}]}]},
    "midjourney": {"prompt": "a lighthouse"},
    "admin": {"name": "k"},
    "images": {"model": "mock-image", "prompt": "a cat"},
}


def _probe(surface: Surface, *, method: bytes | None = None, suffix: bytes = b"", auth: bytes | None = None,
           extra: tuple[tuple[bytes, bytes], ...] = (), body: bytes | None = None, model: str | None = None,
           protocol: bool = False) -> Probe:
    route = surface.routes[0]
    payload = dict(EXAMPLE_BODIES[surface.name])
    target = route.target
    if model is not None:
        payload["model"] = model
        target = target.replace(b"mock-gpt", model.encode())
    headers = ((surface.auth(auth) if auth is not None else surface.auth(surface.key.encode())),
               (b"Content-Type", b"application/json"), *extra)
    path, sep, query = target.partition(b"?")
    target, raw = path + suffix + sep + query, body if body is not None else encode(payload)
    return Probe(method or route.method, target, headers, raw, surface.dialect, protocol=protocol,
                 fault=surface.is_fault(target, raw))


ALL = list(SURFACES)


@pytest.mark.parametrize(("klass", "surface"), [
    *(known_class("non_utf8_authorization", s) for s in ALL),
    *(known_class("newline_path", s) for s in ALL),
    *(known_class("unknown_path_shape", s) for s in ("anthropic", "gemini", "midjourney")),
    *(known_class("upstream_error_with_200", s) for s in ("openai", "anthropic", "gemini")),
    *(known_class("protocol_error", s) for s in ("openai",)),
    *(known_class("oversized_header", s) for s in ("openai",)),
    *(known_class("bad_content_encoding", s) for s in ("openai", "midjourney")),
    *(known_class("deep_json", s) for s in ("midjourney",)),
])
def test_known_class(fuzz_gateway: Gateway, klass: str, surface: str) -> None:
    check(fuzz_gateway, PROBES[klass](SURFACES[surface]))


def _unknown_path(s: Surface) -> list[Probe]:
    gemini_unknown = [_probe(s, suffix=b"/x")] if s.name == "gemini" else []
    return [_probe(s, suffix=b"x"), _probe(s, method=b"GET"), _probe(s, method=b"PUT"), *gemini_unknown]


ERR200_MODEL = {"openai": "err200-gpt", "anthropic": "err200-claude", "gemini": "err200-gemini"}
DEEP = b"[" * 600 + b"]" * 600
PROBES = {
    "non_utf8_authorization": lambda s: [_probe(s, auth=b"\xff\xfe"), _probe(s, auth=s.key.encode() + b"\xc3")],
    "newline_path": lambda s: [_probe(s, suffix=b"%0A"), _probe(s, suffix=b"/%0A"), _probe(s, suffix=b"%0A%0D")],
    "unknown_path_shape": _unknown_path,
    "upstream_error_with_200": lambda s: [_probe(s, model=ERR200_MODEL[s.name])],
    "protocol_error": lambda s: [_probe(s, method=b"FOO", protocol=True),
                                 _probe(s, extra=((b"Bad Header", b"x"),), protocol=True),
                                 _probe(s, extra=((b"X-Null", b"a\x00b"),), protocol=True)],
    "oversized_header": lambda s: [_probe(s, extra=((b"X-Big", b"x" * 9000),), protocol=True),
                                   _probe(s, auth=b"sk-" + b"a" * 9000, protocol=True)],
    # HTTP-level framing: refused by the surface that reads the body (invalid_body), or by the HTTP server
    # when the body came with the head and failed to decode before any route was chosen (malformed_http).
    "bad_content_encoding": lambda s: [_probe(s, extra=((b"Content-Encoding", b"gzip"),), protocol=True),
                                       _probe(s, extra=((b"Content-Encoding", b"br"),), protocol=True)],
    "deep_json": lambda s: [_probe(s, body=encode(EXAMPLE_BODIES[s.name])[:-1] + b', "x": ' + DEEP + b"}")],
}


@pytest.mark.parametrize(("klass", "filename"), [
    known_class("async_edit_non_utf8_filename", "filename"), known_class("async_edit_non_utf8_filename", "type"),
])
def test_known_async_edit_class(fuzz_gateway: Gateway, klass: str, filename: str) -> None:
    parts = valid_parts(filename=b"\xff.png")
    if filename == "type":
        parts = [*valid_parts()[:2], (b"image", b"cat.png", b"\xff", valid_parts()[2][3])]
    check(fuzz_gateway, [multipart_probe(b"/v1/images/edits?async=true", form(parts))])
