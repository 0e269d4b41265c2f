"""Multipart image forms: reading with limits, re-emitting byte for byte, restoring stored forms."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import hashlib
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import MultipartReader, StreamReader, web
from aiohttp.test_utils import TestClient, TestServer

from relaygate.errors import BodyTooLarge, GatewayError, InvalidRequest
from relaygate.relay.multipart import (
    COPY_CHUNK_BYTES,
    EncodedForm,
    FilePart,
    ImageForm,
    sniff_image_type,
)
from relaygate.surfaces.multipart import read_image_form, read_image_request

BOUNDARY = "test-boundary-1234"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x01" * 500
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x02" * 300
MASK = b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 300
LIMIT = 10 * 1024 * 1024

# A part: (headers, body). Bodies are written verbatim between the boundaries.
Part = tuple[list[str], bytes]


def field(name: str, value: str | bytes) -> Part:
    body = value.encode() if isinstance(value, str) else value
    return [f'Content-Disposition: form-data; name="{name}"'], body


def file(name: str, filename: str, data: bytes, content_type: str = "image/png") -> Part:
    return [f'Content-Disposition: form-data; name="{name}"; filename="{filename}"',
            f"Content-Type: {content_type}"], data


def body_of(parts: Iterable[Part], boundary: str = BOUNDARY) -> bytes:
    out = bytearray()
    for headers, data in parts:
        out += f"--{boundary}\r\n".encode()
        for header in headers:
            out += header.encode() + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


class _Protocol:
    """The part of aiohttp's protocol a StreamReader calls for flow control: nothing to pause here."""

    _reading_paused = False

    def pause_reading(self, **_: Any) -> None:
        pass

    def resume_reading(self, **_: Any) -> None:
        pass


def reader_over(pieces: bytes | list[bytes], *, boundary: str = BOUNDARY,
                error: BaseException | None = None) -> MultipartReader:
    """A multipart reader over a body that has fully arrived (then ended, or failed with ``error``)."""
    stream = StreamReader(cast(Any, _Protocol()), 2**16, loop=asyncio.get_running_loop())
    for piece in [pieces] if isinstance(pieces, bytes) else pieces:
        stream.feed_data(piece)
    if error is not None:
        stream.set_exception(error)
    else:
        stream.feed_eof()
    return MultipartReader({"Content-Type": f"multipart/form-data; boundary={boundary}"}, stream)


async def parse(body: bytes, **limits: int) -> ImageForm:
    limits.setdefault("max_total_bytes", LIMIT)
    return await read_image_form(reader_over(body), **limits)


async def collect(encoded: EncodedForm) -> bytes:
    return b"".join([chunk async for chunk in encoded.chunks()])


async def collect_rest(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in chunks])


async def reparse(encoded: EncodedForm) -> ImageForm:
    boundary = encoded.content_type.split("boundary=", 1)[1]
    return await read_image_form(reader_over(await collect(encoded), boundary=boundary), max_total_bytes=LIMIT)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def email_parts(content_type: str, body: bytes) -> list[tuple[str | None, str | None, str, bytes]]:
    """The form as Python's email package reads it: a parser that shares no code with aiohttp."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    assert message.is_multipart() and not message.defects
    out = []
    for part in cast(Any, message).iter_parts():
        payload = part.get_payload(decode=True)
        out.append((part.get_param("name", header="content-disposition"), part.get_filename(),
                    part.get_content_type(), payload))
    return out


def expect_invalid(info: pytest.ExceptionInfo[InvalidRequest], code: str, param: str | None = None) -> None:
    assert info.value.code == code
    assert info.value.status == 400
    assert info.value.param == param


# -- reading ------------------------------------------------------------------------------------------------


async def test_image_mask_and_fields() -> None:
    body = body_of([field("prompt", "a red fox, 狐狸"), field("model", "gpt-image-1"), file("image", "fox.png", PNG),
                    file("mask", "mask.png", MASK), field("n", "2")])
    with await parse(body) as form:
        assert form.fields == {"prompt": "a red fox, 狐狸", "model": "gpt-image-1", "n": "2"}
        assert list(form.fields) == ["prompt", "model", "n"]
        [image] = form.images()
        assert (image.name, image.filename, image.content_type) == ("image", "fox.png", "image/png")
        assert image.size == len(PNG)
        assert image.detected_type == "image/png"
        assert form.read_file(image) == PNG
        mask = form.mask()
        assert mask is not None and form.read_file(mask) == MASK
        assert [part.name for part in form.files] == ["image", "mask"]
        assert not form.on_disk


async def test_repeated_image_parts_keep_their_order() -> None:
    images = [("a.png", PNG), ("b.jpg", JPEG), ("c.webp", WEBP)]
    body = body_of([field("prompt", "merge"), *(file("image[]", n, d, "image/x") for n, d in images)])
    with await parse(body) as form:
        assert [(p.filename, p.size) for p in form.images()] == [(n, len(d)) for n, d in images]
        assert [form.read_file(p) for p in form.images()] == [d for _, d in images]
        assert [p.detected_type for p in form.images()] == ["image/png", "image/jpeg", "image/webp"]
        assert form.mask() is None


async def test_body_arriving_in_small_pieces() -> None:
    body = body_of([field("prompt", "p"), file("image", "x.png", PNG * 40)])
    pieces = [body[i:i + 997] for i in range(0, len(body), 997)]
    with await read_image_form(reader_over(pieces), max_total_bytes=LIMIT) as form:
        assert form.read_file(form.images()[0]) == PNG * 40


async def test_image_part_without_filename_is_still_a_file() -> None:
    body = body_of([(['Content-Disposition: form-data; name="image"'], PNG)])
    with await parse(body) as form:
        [image] = form.images()
        assert (image.filename, image.content_type) == ("image.png", "image/png")


async def test_unknown_file_field_is_refused() -> None:
    body = body_of([field("prompt", "p"), file("file", "x.png", PNG)])
    with pytest.raises(InvalidRequest) as info:
        await parse(body)
    expect_invalid(info, "invalid_value", "file")


async def test_repeated_text_field_is_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse(body_of([field("model", "a"), field("model", "b")]))
    expect_invalid(info, "invalid_value", "model")


async def test_bad_utf8_field_is_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse(body_of([field("prompt", b"caf\xe9")]))
    expect_invalid(info, "invalid_value", "prompt")


async def test_long_field_is_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse(body_of([field("prompt", "x" * 101)]), max_field_bytes=100)
    expect_invalid(info, "invalid_value", "prompt")


async def test_too_many_files_or_fields() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse(body_of([file("image[]", f"{i}.png", PNG) for i in range(4)]), max_files=3)
    expect_invalid(info, "invalid_value", "image[]")
    with pytest.raises(InvalidRequest) as info:
        await parse(body_of([field(f"f{i}", "v") for i in range(4)]), max_fields=3)
    expect_invalid(info, "invalid_value", "f3")


async def test_total_limit_stops_reading_and_closes_the_spool(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[ImageForm] = []
    real_close = ImageForm.close

    def close(self: ImageForm) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(ImageForm, "close", close)
    body = body_of([field("prompt", "p"), file("image", "big.png", PNG * 100)])
    with pytest.raises(BodyTooLarge) as info:
        await parse(body, max_total_bytes=len(PNG) * 50)
    assert (info.value.status, info.value.code) == (413, "body_too_large")
    assert str(len(PNG) * 50) in info.value.message
    assert len(closed) == 1
    # Part headers count too: a body just over the limit is refused even if its file alone would fit.
    small = body_of([file("image", "x.png", PNG)])
    with pytest.raises(BodyTooLarge):
        await parse(small, max_total_bytes=len(PNG) + 10)
    with await parse(small, max_total_bytes=len(small)) as form:
        assert form.files[0].size == len(PNG)


@pytest.mark.parametrize("cut", [3, 25, 60, 120, 400, -40, -10])
async def test_truncated_body_is_invalid_multipart(cut: int) -> None:
    body = body_of([field("prompt", "p"), file("image", "x.png", PNG)])
    with pytest.raises(InvalidRequest) as info:
        await read_image_form(reader_over(body[:cut]), max_total_bytes=LIMIT)
    expect_invalid(info, "invalid_multipart")


async def test_body_cut_by_the_connection_is_invalid_multipart() -> None:
    body = body_of([field("prompt", "p"), file("image", "x.png", PNG)])
    reader = reader_over(body[:300], error=ConnectionResetError("Connection lost"))
    with pytest.raises(InvalidRequest) as info:
        await read_image_form(reader, max_total_bytes=LIMIT)
    expect_invalid(info, "invalid_multipart")


async def test_wrong_boundary_and_bad_parts_are_invalid_multipart() -> None:
    body = body_of([field("prompt", "p")], boundary="other")
    with pytest.raises(InvalidRequest) as info:
        await parse(body)
    expect_invalid(info, "invalid_multipart")

    nested = body_of([(["Content-Disposition: form-data; name=\"files\"",
                        "Content-Type: multipart/mixed; boundary=inner"],
                       body_of([file("image", "x.png", PNG)], boundary="inner"))])
    no_name = body_of([(["Content-Disposition: form-data"], b"x")])
    not_form_data = body_of([(['Content-Disposition: attachment; name="prompt"'], b"x")])
    garbled = body_of([(['Content-Disposition: form-data; name="a" b'], b"x")])
    base64 = body_of([(['Content-Disposition: form-data; name="image"; filename="x.png"',
                        "Content-Transfer-Encoding: base64"], b"iVBORw0KGgo=")])
    for bad in (nested, no_name, not_form_data, garbled, base64):
        with pytest.raises(InvalidRequest) as info:
            await parse(bad)
        assert info.value.code == "invalid_multipart"


async def test_quoted_filenames_are_read_as_sent() -> None:
    body = body_of([
        file("image[]", 'back\\"slash.png', PNG),  # RFC 2616-style escaping: aiohttp unescapes it
        file("image[]", "browser%22style.png", PNG),  # WHATWG escaping: a literal %22, kept as is
        (["Content-Disposition: form-data; name=\"image[]\"; filename*=utf-8''%E7%8B%90.png",
          "Content-Type: image/png"], PNG),
    ])
    with await parse(body) as form:
        assert [p.filename for p in form.files] == ['back"slash.png', "browser%22style.png", "狐.png"]


# -- encoding -----------------------------------------------------------------------------------------------


async def test_encoded_form_reparses_to_the_same_form_with_overrides() -> None:
    body = body_of([field("prompt", "line one\r\nline two"), field("model", "my-alias"),
                    field("response_format", "url"), file("image[]", "a.png", PNG),
                    file("image[]", "b.jpg", JPEG, "image/jpeg"), file("mask", "m.png", MASK)])
    with await parse(body) as form:
        encoded = form.encode({"model": "gpt-image-1", "quality": "high", "response_format": None})
        assert encoded.content_type.startswith("multipart/form-data; boundary=")
        assert BOUNDARY not in encoded.content_type
        with await reparse(encoded) as again:
            assert list(again.fields.items()) == [("prompt", "line one\r\nline two"), ("model", "gpt-image-1"),
                                                  ("quality", "high")]
            assert [(p.name, p.filename, p.content_type) for p in again.files] == [
                (p.name, p.filename, p.content_type) for p in form.files]
            assert [sha(again.read_file(p)) for p in again.files] == [sha(d) for d in (PNG, JPEG, MASK)]
        # Another parser agrees, fields first, then files.
        parts = email_parts(encoded.content_type, await collect(encoded))
        assert [(name, filename, ctype) for name, filename, ctype, _ in parts] == [
            ("prompt", None, "text/plain"), ("model", None, "text/plain"), ("quality", None, "text/plain"),
            ("image[]", "a.png", "image/png"), ("image[]", "b.jpg", "image/jpeg"), ("mask", "m.png", "image/png")]
        assert [data for *_, data in parts][3:] == [PNG, JPEG, MASK]
        # The client's form is unchanged by encoding.
        assert form.fields["model"] == "my-alias"


async def test_chunks_can_be_sent_again_and_length_is_exact() -> None:
    with ImageForm.build({"prompt": "p", "model": "m"}, [("image", "a.png", "image/png", PNG * 100),
                                                        ("mask", "m.png", "image/png", MASK)]) as form:
        encoded = form.encode({"model": "upstream"})
        first, second = await collect(encoded), await collect(encoded)
        assert first == second
        assert encoded.length == len(first)
        # Two sends in flight at once (their reads interleave on one spool) still give the same bytes.
        one, two = encoded.chunks(), encoded.chunks()
        a, b = bytearray(), bytearray()
        async for piece in one:
            a += piece
            b += await anext(two, b"")
        b += await collect_rest(two)
        assert bytes(a) == bytes(b) == first
        # A second encoding has its own boundary.
        assert form.encode().content_type != encoded.content_type


async def test_large_file_spills_to_disk_and_streams_in_pieces() -> None:
    big = PNG + bytes(range(256)) * 12_000  # ~3 MiB, past the 1 MiB in-memory threshold
    body = body_of([field("prompt", "p"), file("image", "big.png", big)])
    with await parse(body) as form:
        assert form.on_disk
        assert sha(form.read_file(form.images()[0])) == sha(big)
        encoded = form.encode({"model": "gpt-image-1"})
        pieces = [piece async for piece in encoded.chunks()]
        assert max(len(p) for p in pieces) <= COPY_CHUNK_BYTES
        assert sum(map(len, pieces)) == encoded.length
        with await reparse(encoded) as again:
            assert sha(again.read_file(again.files[0])) == sha(big)


async def test_names_and_filenames_are_escaped_as_browsers_do() -> None:
    files = [("image[]", 'say "hi"\r\n.png', "image/png", PNG), ("image[]", "狐.png", "image/png", PNG)]
    with ImageForm.build({'we"ird\nname': "v"}, files) as form:
        raw = await collect(form.encode())
        assert b'name="we%22ird%0Aname"' in raw
        assert b'filename="say %22hi%22%0D%0A.png"' in raw
        assert 'filename="狐.png"'.encode() in raw
        with await reparse(form.encode()) as again:
            assert list(again.fields) == ["we%22ird%0Aname"]
            assert [p.filename for p in again.files] == ["say %22hi%22%0D%0A.png", "狐.png"]


async def test_overriding_a_file_field_is_a_bug() -> None:
    with ImageForm.build({}, [("image", "a.png", "image/png", PNG)]) as form, pytest.raises(ValueError):
        form.encode({"image": "x"})


# -- stored forms -------------------------------------------------------------------------------------------


async def test_build_and_file_tuples_round_trip() -> None:
    files = [("image[]", "a.png", "image/png", PNG), ("image[]", "b.jpg", "image/jpeg", JPEG),
             ("mask", "m.png", "image/png", MASK), ("image[]", "empty.png", "image/png", b"")]
    with ImageForm.build({"prompt": "p", "n": "1"}, files) as form:
        assert form.fields == {"prompt": "p", "n": "1"}
        assert list(form.file_tuples()) == files
        assert [p.detected_type for p in form.files] == ["image/png", "image/jpeg", "image/png", None]
        assert form.files[1] == FilePart(name="image[]", filename="b.jpg", content_type="image/jpeg",
                                         offset=len(PNG), size=len(JPEG), detected_type="image/jpeg")
        with ImageForm.build(form.fields, form.file_tuples()) as copy:
            assert list(copy.file_tuples()) == files
    with pytest.raises(ValueError):
        ImageForm.build({}, [("image", "a.png", "image/png\r\nX-Injected: 1", PNG)])


async def test_closed_form_cannot_be_read() -> None:
    form = ImageForm.build({}, [("image", "a.png", "image/png", PNG)])
    form.close()
    form.close()
    with pytest.raises(ValueError):
        form.read_file(form.files[0])


def test_sniffing() -> None:
    assert sniff_image_type(PNG[:16]) == "image/png"
    assert sniff_image_type(JPEG[:16]) == "image/jpeg"
    assert sniff_image_type(WEBP[:16]) == "image/webp"
    assert sniff_image_type(b"GIF89a\x01\x00") == "image/gif"
    assert sniff_image_type(b"GIF87a") == "image/gif"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff_image_type(b"%PDF-1.7") is None
    assert sniff_image_type(b"\x89PN") is None
    assert sniff_image_type(b"") is None


# -- through a real server ----------------------------------------------------------------------------------


def _app(seen: list[BaseException | ImageForm], limit: int = LIMIT) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        try:
            form = await read_image_request(request, max_total_bytes=limit)
        except GatewayError as error:
            seen.append(error)
            return web.json_response({"code": error.code, "param": error.param}, status=error.status)
        seen.append(form)
        with form:
            return web.json_response({"fields": form.fields, "files": [
                [p.name, p.filename, p.content_type, sha(form.read_file(p))] for p in form.files]})

    app = web.Application()
    app.router.add_post("/v1/images/edits", handle)
    return app


async def test_aiohttp_client_form_through_a_server() -> None:
    seen: list[BaseException | ImageForm] = []
    async with TestClient(TestServer(_app(seen))) as client:
        data = aiohttp.FormData()
        data.add_field("prompt", "a fox")
        data.add_field("model", "gpt-image-1")
        data.add_field("image[]", PNG * 1000, filename="a.png", content_type="image/png")
        data.add_field("image[]", JPEG, filename="b.jpg", content_type="image/jpeg")
        response = await client.post("/v1/images/edits", data=data)
        assert response.status == 200
        assert await response.json() == {"fields": {"prompt": "a fox", "model": "gpt-image-1"}, "files": [
            ["image[]", "a.png", "image/png", sha(PNG * 1000)], ["image[]", "b.jpg", "image/jpeg", sha(JPEG)]]}

        # An encoded form is itself a body the gateway accepts, sent with an exact Content-Length.
        form = seen[-1]
        assert isinstance(form, ImageForm)
        with ImageForm.build(form.fields, [("image", "c.png", "image/png", PNG)]) as rebuilt:
            encoded = rebuilt.encode({"model": "dall-e-2"})
            response = await client.post("/v1/images/edits", data=encoded.chunks(), headers={
                "Content-Type": encoded.content_type, "Content-Length": str(encoded.length)})
            assert response.status == 200
            assert (await response.json())["fields"]["model"] == "dall-e-2"

        response = await client.post("/v1/images/edits", json={"prompt": "p"})
        assert (response.status, (await response.json())["code"]) == (400, "invalid_multipart")
        response = await client.post("/v1/images/edits", data=b"x", headers={"Content-Type": "multipart/form-data"})
        assert (response.status, (await response.json())["code"]) == (400, "invalid_multipart")


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    seen: list[BaseException | ImageForm] = []
    async with TestClient(TestServer(_app(seen, limit=1000))) as client:
        body = body_of([file("image", "x.png", PNG)])
        response = await client.post("/v1/images/edits", data=body, headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert (response.status, (await response.json())["code"]) == (413, "body_too_large")


async def test_client_leaving_mid_upload_cancels_the_read_and_closes_the_spool(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp cancels a handler whose client went away; the half-read form must not outlive it."""
    closed: list[ImageForm] = []
    real_close = ImageForm.close

    def close(self: ImageForm) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(ImageForm, "close", close)
    started, outcome = asyncio.Event(), asyncio.get_running_loop().create_future()

    async def handle(request: web.Request) -> web.Response:
        started.set()
        try:
            await read_image_request(request, max_total_bytes=LIMIT)
        except BaseException as exc:
            outcome.set_result(exc)
            raise
        return web.Response()

    app = web.Application()
    app.router.add_post("/", handle)
    async with TestClient(TestServer(app)) as client:
        body = body_of([field("prompt", "p"), file("image", "x.png", PNG * 100)])
        _, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(f"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n"
                     f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n".encode() + body[:5000])
        await writer.drain()
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.05)  # let the handler read what was sent and wait for more
        writer.close()
        await writer.wait_closed()
        error = await asyncio.wait_for(outcome, 5)
    assert isinstance(error, asyncio.CancelledError | InvalidRequest)
    assert len(closed) == 1
