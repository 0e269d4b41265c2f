"""Hypothesis strategies for hostile requests, built from each surface's real request shape.

A surface describes itself as a ``Surface``: its routes, a strategy for valid bodies, its credential
header and its error dialect. From that, ``bodies``, ``headers`` and ``paths`` build probes that break
one thing at a time (a field's type or size, the JSON itself, a header, the path or method), so that a
wrong answer points at what broke it. Classes listed in ``known.KNOWN_BROKEN`` are left out here and
sent by their own tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.harness import Probe
from tests.fuzz.known import broken

Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass(frozen=True)
class Route:
    method: bytes
    target: bytes
    valid_body: st.SearchStrategy[dict[str, Any]]  # what a well-behaved client sends here


@dataclass(frozen=True)
class Surface:
    name: str
    dialect: str
    routes: tuple[Route, ...]  # the real endpoints fuzzed
    key: str
    credential: bytes = b"Authorization"  # header carrying the key (with "Bearer " for Authorization)
    faulty: frozenset[str] = frozenset()  # models whose upstream fails (a 5xx, or an error sent with HTTP 200)
    own_unknown_paths: bool = False  # unknown paths under this surface already answer in its dialect
    content_type: bytes = b"application/json"

    def auth(self, token: bytes) -> tuple[bytes, bytes]:
        value = b"Bearer " + token if self.credential == b"Authorization" else token
        return self.credential, value

    def is_fault(self, target: bytes, body: bytes) -> bool:
        """Whether the request names a model whose upstream was told to fail (in its body or path)."""
        return any(model.encode() in target or f'"{model}"'.encode() in body for model in self.faulty)


# --- values -------------------------------------------------------------------------------------

_RAW = "\x00raw:"  # a string placeholder replaced by raw JSON text after encoding


def _raw(text: str) -> str:
    return _RAW + text


def encode(value: Any) -> bytes:
    """JSON text of ``value`` (lone surrogates kept as \\ud800 escapes), with raw placeholders spliced in."""
    text = json.dumps(value, ensure_ascii=True)
    marker = json.dumps(_RAW, ensure_ascii=True)[1:-1]
    while marker in text:
        start = text.index(marker) - 1
        end = text.index('"', start + len(marker) + 1)
        while text[end - 1] == "\\":
            end = text.index('"', end + 1)
        raw = json.loads(text[start:end + 1])[len(_RAW):]
        text = text[:start] + raw + text[end + 1:]
    return text.encode()


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["", " ", "\u0000", "\ud800", "\uffff", "é" * 3, "𝕏", "null", "-1", "1e309", "sk-"]),
)
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3)
                           | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=8)


@st.composite
def big_values(draw: Draw) -> Any:
    kind = draw(st.sampled_from(["text", "list", "deep", "number", "dict"]))
    size = draw(st.sampled_from([1_000, 70_000, 300_000]))
    if kind == "text":
        return draw(st.sampled_from(["x", "é", "\U0001f600", "\\"])) * size
    if kind == "list":
        return [draw(scalars)] * (size // 10)
    if kind == "deep":
        depth = draw(st.sampled_from([64, 200, 5_000, 60_000, *([] if broken("deep_json") else [600])]))
        return _raw("[" * depth + "]" * depth)
    if kind == "number":
        return _raw("9" * min(size, 20_000))
    return {f"k{i}": i for i in range(size // 100)}


hostile_values = st.one_of(json_values, json_values, big_values())


@st.composite
def mutated(draw: Draw, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with one to three fields (top-level or nested) replaced, deleted or added."""
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        target = body
        while True:
            keys = list(target) if isinstance(target, dict) else list(range(len(target))) \
                if isinstance(target, list) else []
            if not keys or draw(st.booleans()):
                break
            child = target[draw(st.sampled_from(keys))]
            if not isinstance(child, dict | list) or not child:
                break
            target = child
        if isinstance(target, dict):
            action = draw(st.sampled_from(["set", "set", "delete", "add"]))
            if action == "delete" and target:
                del target[draw(st.sampled_from(sorted(target)))]
            elif action == "add" or not target:
                target[draw(st.text(max_size=10))] = draw(hostile_values)
            else:
                target[draw(st.sampled_from(sorted(target)))] = draw(hostile_values)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(hostile_values)
    return body


@st.composite
def broken_json(draw: Draw, base: dict[str, Any]) -> bytes:
    """Bytes that are not one JSON object: cut, not UTF-8, another JSON type, noise."""
    text = encode(base)
    kind = draw(st.sampled_from(["cut", "byte", "bom", "other", "noise", "unclosed", "empty", "trailing"]))
    if kind == "cut":
        return text[:draw(st.integers(0, max(len(text) - 1, 0)))]
    if kind == "byte":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xfe\xff"])) + text[at:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + text
    if kind == "other":
        return draw(st.sampled_from([b"[]", b"null", b"1", b'"s"', b"NaN", b"Infinity", b"1e999", b"[" * 3000]))
    if kind == "noise":
        return draw(st.binary(max_size=300))
    if kind == "unclosed":
        return b'{"a":' * draw(st.sampled_from([10, 2_000, 50_000]))
    if kind == "empty":
        return b""
    return text + draw(st.sampled_from([b"x", b"{}", b"\x00", b"\n\n\n"]))


# --- probes -------------------------------------------------------------------------------------

CONTENT_TYPES = [b"application/json", b"application/json; charset=utf-8", b"application/json; charset=latin-1",
                 b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data",
                 b"multipart/form-data; boundary=x", b"application/octet-stream", b"*/*", b"", b"json"]


def probe(surface: Surface, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, *,
          chunked: bool = False, protocol: bool = False) -> Probe:
    return Probe(method, target, tuple(headers), body, surface.dialect, fault=surface.is_fault(target, body),
                 protocol=protocol, chunked=chunked)


@st.composite
def bodies(draw: Draw, surface: Surface) -> Probe:
    """A real route with the right key and a valid, mutated or broken body (or content type)."""
    route = draw(st.sampled_from(surface.routes))
    method, target, base = route.method, route.target, draw(route.valid_body)
    shape = draw(st.sampled_from(["valid", "mutated", "mutated", "mutated", "broken", "type"]))
    body = encode(base) if shape in ("valid", "type") else encode(draw(mutated(base))) if shape == "mutated" \
        else draw(broken_json(base))
    content_type = draw(st.sampled_from(CONTENT_TYPES)) if shape == "type" else surface.content_type
    headers = [surface.auth(surface.key.encode()), (b"Content-Type", content_type)]
    return probe(surface, method, target, headers, body, chunked=draw(st.booleans()) and draw(st.booleans()))


def _credentials(surface: Surface) -> list[tuple[list[tuple[bytes, bytes]], str | None]]:
    """Credential headers, each with its hostile class (None: none that is known to fail)."""
    key = surface.key.encode()
    name = surface.credential
    plain: list[list[tuple[bytes, bytes]]] = [
        [surface.auth(key)], [], [(name, b"")], [(name, b"Bearer")], [(name, b"Bearer  " + key)],
        [(name, b"Basic " + key)], [surface.auth(b"sk-" + b"a" * 5000)], [surface.auth("sk-clé-ünïcode".encode())],
        [surface.auth(key), surface.auth(b"sk-other")], [(b"Authorization", b"Bearer sk-wrong"), (b"x-api-key", key)],
        [surface.auth(key + b" ")],
    ]
    return [*((c, None) for c in plain), ([surface.auth(b"\x01\x02")], "protocol_error"),
            ([surface.auth(b"\xff\xfe")], "non_utf8_authorization"),
            ([surface.auth(key + b"\xc3")], "non_utf8_authorization")]


EXTRA_HEADERS: list[tuple[list[tuple[bytes, bytes]], str | None]] = [
    ([], None), ([(b"X-Request-Id", b"r" * 500)], None), ([(b"X-Request-Id", "ид-é".encode())], None),
    ([(b"X-Request-Id", b"\xff\xfe")], None), ([(b"X-Request-Id", b"")], None),
    ([(b"Accept-Encoding", b"\xff")], None), ([(b"X-Forwarded-For", b"::1, 999.1.1.1, \xff")], None),
    ([(b"Content-Type", b"application/json\xff")], None), ([(b"Expect", b"100-continue")], None),
    ([(b"anthropic-version", b"\xff")], None), ([(b"X-Stainless-Arch", b"x" * 7000)], None),
    ([(b"Content-Encoding", b"gzip")], "bad_content_encoding"),
    ([(b"Content-Encoding", b"br, deflate")], "bad_content_encoding"),
    ([(b"Bad Header", b"x")], "protocol_error"), ([(b"X-Null", b"a\x00b")], "protocol_error"),
    ([(b"\xff", b"x")], "protocol_error"), ([(b"X-Big", b"x" * 9000)], "oversized_header"),
]


def allowed(cases: list[tuple[Any, str | None]], surface: Surface | None = None) -> list[tuple[Any, str | None]]:
    """The cases whose class is not known to fail on this branch."""
    return [(case, klass) for case, klass in cases if klass is None or not broken(klass)
            or (klass == "unknown_path_shape" and surface is not None and surface.own_unknown_paths)]


@st.composite
def headers(draw: Draw, surface: Surface) -> Probe:
    """A real route and a valid body with hostile headers: credentials, request ids, encodings, junk."""
    route = draw(st.sampled_from(surface.routes))
    method, target, body = route.method, route.target, encode(draw(route.valid_body))
    creds, creds_class = draw(st.sampled_from(allowed(_credentials(surface))))
    extra, extra_class = draw(st.sampled_from(allowed(EXTRA_HEADERS)))
    own_type = any(name.lower() == b"content-type" for name, _ in extra)
    all_headers = [*creds, *([] if own_type else [(b"Content-Type", surface.content_type)]), *extra]
    protocol = bool({"protocol_error", "oversized_header"} & {creds_class, extra_class})
    return probe(surface, method, target, all_headers, body, protocol=protocol)


PATH_SUFFIXES: list[tuple[bytes, str | None]] = [
    (b"", None), (b"/", "unknown_path_shape"), (b"%00", "unknown_path_shape"), (b"%ff", "unknown_path_shape"),
    (b"%2F..%2F", "unknown_path_shape"), (b"x", "unknown_path_shape"), (b"%0A", "newline_path"),
    (b"%0D", "unknown_path_shape"), (b"%0A%0D", "newline_path"), (b"/%0A", "newline_path"),
    (b"?" + b"a=" * 2000, None), (b"?%ff=%fe&&=&async=maybe&key_id=", None), (b"?\xff", "protocol_error"),
    (b"/" + b"a" * 6000, "unknown_path_shape"), (b"#frag", "protocol_error"),
]
METHODS: list[tuple[bytes, str | None]] = [
    (b"GET", "unknown_path_shape"), (b"PUT", "unknown_path_shape"), (b"DELETE", "unknown_path_shape"),
    (b"PATCH", "unknown_path_shape"), (b"OPTIONS", "unknown_path_shape"), (b"HEAD", None),
    (b"FOO", "protocol_error"), (b"post", "protocol_error"),
]


@st.composite
def paths(draw: Draw, surface: Surface) -> Probe:
    """A real route's path bent (suffixes, encodings, long, query junk) or an odd method, valid body."""
    route = draw(st.sampled_from(surface.routes))
    method, target = route.method, route.target
    if draw(st.booleans()):
        suffix, klass = draw(st.sampled_from(allowed(PATH_SUFFIXES, surface)))
        target = _with_suffix(target, suffix)
    else:
        method, klass = draw(st.sampled_from(allowed(METHODS, surface)))
    body = encode(draw(route.valid_body))
    all_headers = [surface.auth(surface.key.encode()), (b"Content-Type", surface.content_type)]
    return probe(surface, method, target, all_headers, body, protocol=klass == "protocol_error")


def _with_suffix(target: bytes, suffix: bytes) -> bytes:
    path, sep, query = target.partition(b"?")
    if suffix.startswith((b"?", b"#")):
        return path + suffix
    return path + suffix + sep + query
