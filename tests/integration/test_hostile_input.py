"""Malformed input from outside is a 4xx in the caller's dialect, never a 500 or aiohttp's plain text:
key material that is not text, odd bytes in paths and wrong methods, non-UTF-8 file names in stored
tasks, and requests whose head or body never completes. Sent over raw sockets, because well-behaved
clients refuse to send most of it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.png import make_png
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import ADMIN_KEY, Gateway
from tests.helpers.raw_http import RawAnswer, parse, read_until_closed, request_bytes, send

KEY = "sk-hostile-input-0123456789"
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
CHAT = b'{"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "header_read_timeout_s": HEADER_TIMEOUT_S,
        "body_read_timeout_s": BODY_TIMEOUT_S,
        "task_poll_s": 0.2,
        "channels": [{"name": "mock", "type": "mock", "models": ["mock-chat", "mock-image", "claude-mock",
                                                                "gemini-mock"]},
                     {"name": "mj", "type": "midjourney", "options": {"mock": True}}],
        "prices": {"mock-chat": {"per_call": "0.01"}, "claude-mock": {"per_call": "0.01"},
                   "gemini-mock": {"per_call": "0.01"}, "mock-image": {"per_image": "0.01"}},
        "keys": [{"name": "k", "key": KEY}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("hostile")), config).start()


# --- what each surface's error looks like ------------------------------------------------------------


def openai_code(answer: RawAnswer) -> str:
    error = answer.json()["error"]
    assert isinstance(error["message"], str) and error["type"]
    return str(error["code"])


def anthropic_code(answer: RawAnswer) -> str:
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"]
    return str(body["error"]["code"])


def gemini_code(answer: RawAnswer) -> str:
    error = answer.json()["error"]
    assert error["code"] == answer.status and error["status"]
    return str(error["details"][0]["reason"])


def mj_code(answer: RawAnswer) -> str:
    body = answer.json()
    assert isinstance(body["code"], int) and body["result"] is None
    return str(body["properties"]["error"])


CodeOf = Callable[[RawAnswer], str]

# One authenticated call per surface: (name, method, path, body, how the key is sent, code reader).
SURFACES: list[tuple[str, str, bytes, bytes, str, CodeOf]] = [
    ("openai", "POST", b"/v1/chat/completions", CHAT, "bearer", openai_code),
    ("anthropic", "POST", b"/v1/messages", b'{"model": "claude-mock", "max_tokens": 5, "messages": []}',
     "x-api-key", anthropic_code),
    ("gemini", "POST", b"/v1beta/models/gemini-mock:generateContent", b'{"contents": []}', "x-goog-api-key",
     gemini_code),
    ("images", "POST", b"/v1/images/generations", b'{"model": "mock-image", "prompt": "x"}', "bearer", openai_code),
    ("midjourney", "POST", b"/mj/submit/imagine", b'{"prompt": "a cat"}', "mj-api-secret", mj_code),
    ("admin", "GET", b"/api/keys", b"", "bearer", openai_code),
]


def _with_key(how: str, token: bytes) -> tuple[dict[str, bytes], bytes]:
    """Headers (and a query suffix) that present ``token`` the way ``how`` says."""
    if how == "bearer":
        return {"Authorization": b"Bearer " + token, "Content-Type": b"application/json"}, b""
    return {how: token, "Content-Type": b"application/json"}, b""


@pytest.mark.parametrize(("surface", "method", "path", "body", "how", "code_of"), SURFACES,
                         ids=[s[0] for s in SURFACES])
@pytest.mark.parametrize("token", [b"\xff\xfe", b"sk-\xc3\xa9t\xc3\xa9", b"sk-a\tb"], ids=["ff-fe", "utf8", "tab"])
def test_key_material_that_is_not_ascii_text_is_an_authentication_failure(
        gateway: Gateway, surface: str, method: str, path: bytes, body: bytes, how: str, code_of: CodeOf,
        token: bytes) -> None:
    headers, _ = _with_key(how, token)
    answer = send(gateway.port, method, path, headers, body)
    assert answer.status == 401, answer.body
    assert code_of(answer) == "invalid_api_key"


@pytest.mark.parametrize("how", ["bearer", "x-api-key", "x-goog-api-key", "query"])
def test_every_way_of_sending_a_key_refuses_raw_bytes(gateway: Gateway, how: str) -> None:
    path = b"/v1beta/models/gemini-mock:generateContent"
    if how == "query":
        answer = send(gateway.port, "POST", path + b"?key=%FF%FE", {"Content-Type": b"application/json"},
                      b'{"contents": []}')
        code_of: CodeOf = gemini_code
    else:
        headers, _ = _with_key(how, b"\xff\xfe")
        answer = send(gateway.port, "POST", b"/v1/messages" if how == "x-api-key" else path, headers,
                      b'{"contents": []}')
        code_of = anthropic_code if how == "x-api-key" else gemini_code
    assert answer.status == 401, answer.body
    assert code_of(answer) == "invalid_api_key"


def test_no_traceback_was_logged_for_bad_keys(gateway: Gateway) -> None:
    send(gateway.port, "GET", b"/v1/models", {"Authorization": b"Bearer \xff\xfe"})
    assert "UnicodeEncodeError" not in gateway.logs()


# --- paths no route serves ----------------------------------------------------------------------------

UNKNOWN_PATHS: list[tuple[str, bytes, CodeOf]] = [
    ("POST", b"/v1/chat/completions%0A", openai_code),
    ("POST", b"/chat/completions%0A%0D", openai_code),
    ("GET", b"/v1/chat/completions", openai_code),  # a wrong method
    ("POST", b"/v1/images/generations%0A", openai_code),
    ("GET", b"/v1/images/tasks/%0A/x", openai_code),
    ("POST", b"/v1/messages%0A", anthropic_code),
    ("GET", b"/v1/messages", anthropic_code),
    ("POST", b"/v1beta/models/gemini-mock:generateContent%0A/x", gemini_code),
    ("PUT", b"/v1beta/models", gemini_code),
    ("POST", b"/mj/submit/imagine%0A", mj_code),
    ("POST", b"/mj-fast/mj/submit/imagine%0A", mj_code),
    ("POST", b"/mj/task/%0A/fetch", mj_code),
    ("GET", b"/mj/submit/imagine", mj_code),
    ("GET", b"/api/prices/%0A", openai_code),
    ("DELETE", b"/api/keys/1", openai_code),
    ("GET", b"/%0A", openai_code),
]


@pytest.mark.parametrize(("method", "path", "code_of"), UNKNOWN_PATHS,
                         ids=[f"{m} {p.decode()}" for m, p, _ in UNKNOWN_PATHS])
def test_unknown_paths_and_wrong_methods_answer_in_the_surface_shape(gateway: Gateway, method: str, path: bytes,
                                                                      code_of: CodeOf) -> None:
    headers = {"Authorization": b"Bearer " + KEY.encode(), "Content-Type": b"application/json"}
    if path.startswith(b"/api"):
        headers["Authorization"] = b"Bearer " + ADMIN_KEY.encode()
    answer = send(gateway.port, method, path, headers, b"{}" if method != "GET" else b"")
    assert answer.status == 404, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert code_of(answer) == "unknown_url"


# --- bodies that never arrive whole -------------------------------------------------------------------

BODY_SURFACES = [s for s in SURFACES if s[1] == "POST"] + [
    ("admin", "POST", b"/api/keys", b'{"name": "x"}', "admin", openai_code),
    ("images-multipart", "POST", b"/v1/images/edits",
     b"--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx", "multipart", openai_code),
]


@pytest.mark.parametrize(("surface", "method", "path", "body", "how", "code_of"), BODY_SURFACES,
                         ids=[s[0] for s in BODY_SURFACES])
def test_a_body_that_stops_arriving_is_408_in_the_surface_shape(
        gateway: Gateway, surface: str, method: str, path: bytes, body: bytes, how: str, code_of: CodeOf) -> None:
    if how == "admin":
        headers = {"Authorization": b"Bearer " + ADMIN_KEY.encode(), "Content-Type": b"application/json"}
    elif how == "multipart":
        headers = {"Authorization": b"Bearer " + KEY.encode(), "Content-Type": b"multipart/form-data; boundary=b"}
    else:
        headers, _ = _with_key(how, KEY.encode())
    whole = request_bytes(method, path, headers, body + b" " * 100)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(whole[:-100])  # the head and most of the body; the last 100 bytes never come
        answer = parse(read_until_closed(sock))
    assert answer.status == 408, answer.body
    assert code_of(answer) == "body_timeout"


def test_a_body_that_stops_arriving_is_not_billed_nor_logged_as_a_bug(gateway: Gateway) -> None:
    db = GatewayDB(gateway.database)
    before = db.count_usage()
    headers, _ = _with_key("bearer", KEY.encode())
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(request_bytes("POST", b"/v1/chat/completions", headers, CHAT + b" " * 10)[:-10])
        assert parse(read_until_closed(sock)).status == 408
    assert db.count_usage() == before
    assert "Traceback" not in gateway.logs()


def test_a_request_head_that_stops_arriving_is_closed(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode())
        closed = read_until_closed(sock)  # the socket's own timeout fails the test if it stays open
    assert closed == b""


# --- form parts whose names are not text --------------------------------------------------------------

def _edit_form(disposition_tail: bytes) -> bytes:
    png = make_png(8, 8)
    return (b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nmock-image\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nred\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"image\"; " + disposition_tail
            + b"\r\nContent-Type: image/png\r\n\r\n" + png + b"\r\n--b--\r\n")


def _tasks(gateway: Gateway) -> int:
    return int(GatewayDB(gateway.database)._query("SELECT COUNT(*) AS n FROM tasks")[0]["n"])


@pytest.mark.parametrize("target", [b"/v1/images/edits", b"/v1/images/edits?async=true"], ids=["sync", "async"])
@pytest.mark.parametrize("tail", [b'filename="\xff.png"', b'filename="a.png"; x="\xfe"'],
                         ids=["filename", "other-param"])
def test_a_form_part_whose_headers_are_not_utf8_is_400_sync_and_async(gateway: Gateway, target: bytes,
                                                                      tail: bytes) -> None:
    before = _tasks(gateway)
    headers = {"Authorization": b"Bearer " + KEY.encode(), "Content-Type": b"multipart/form-data; boundary=b"}
    answer = send(gateway.port, "POST", target, headers, _edit_form(tail))
    assert answer.status == 400, answer.body
    assert openai_code(answer) == "invalid_multipart"
    assert _tasks(gateway) == before  # nothing stored half-way


@pytest.mark.parametrize("tail", ['filename="é-\u732b.png"'.encode(), b"filename*=UTF-8''%FF.png"],
                         ids=["utf8", "percent-encoded-byte"])  # the latter decodes to U+FFFD: text
def test_a_text_file_name_is_stored_and_the_task_runs(gateway: Gateway, tail: bytes) -> None:
    headers = {"Authorization": b"Bearer " + KEY.encode(), "Content-Type": b"multipart/form-data; boundary=b"}
    answer = send(gateway.port, "POST", b"/v1/images/edits?async=true", headers, _edit_form(tail))
    assert answer.status == 200, answer.body
    task_id = answer.json()["task_id"]
    deadline = time.monotonic() + 20
    while True:
        task = send(gateway.port, "GET", b"/v1/images/tasks/" + task_id.encode(),
                    {"Authorization": b"Bearer " + KEY.encode()}).json()["data"]
        if task["status"] in ("SUCCESS", "FAILURE") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert task["status"] == "SUCCESS", task
