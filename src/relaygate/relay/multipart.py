"""Multipart image requests (``/v1/images/edits``, ``/v1/images/variations``): read, check, re-emit.

The relay must stream these forms through without re-encoding the files (spec images-async §1), and a
request may be up to ``max_image_upload_bytes`` (50 MiB by default), so nothing here holds a form
whole in memory: file parts are copied as they arrive into one spool per form, a
``SpooledTemporaryFile`` that stays in memory for small forms and moves to an anonymous temp file
past ``SPOOL_MEMORY_BYTES``. Text fields are small and bounded, and kept as ``str``.

Re-emitting builds a new body with a new boundary: text fields (with the upstream's model name and
whatever else a translator overrides), then the files, read back from the spool in pieces. The body's
exact length is known in advance, so the upstream gets a ``Content-Length`` rather than chunked
encoding, which some image upstreams refuse.

Spool reads and writes are synchronous: they touch memory or the page cache in pieces of at most
``COPY_CHUNK_BYTES``, which costs less than handing each piece to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import (
    BadContentDispositionHeader,
    BadContentDispositionParam,
    content_disposition_filename,
    parse_content_disposition,
)

from relaygate.errors import BodyTooLarge, InvalidRequest

SPOOL_MEMORY_BYTES = 1024 * 1024  # a form's files stay in memory up to this size, then go to disk
COPY_CHUNK_BYTES = 64 * 1024  # the piece size for reading parts in and streaming files out
HEAD_BYTES = 16  # enough leading bytes of a file to recognise every image format we sniff

IMAGE_FIELDS = frozenset({"image", "image[]"})
MASK_FIELD = "mask"
FILE_FIELDS = IMAGE_FIELDS | {MASK_FIELD}

DEFAULT_MAX_FIELD_BYTES = 128 * 1024  # a 32,000-character gpt-image-1 prompt in CJK is ~96 KB of UTF-8
DEFAULT_MAX_FILES = 16 + 1  # gpt-image-1 takes up to 16 images, plus one mask
DEFAULT_MAX_FIELDS = 64  # the spec defines ~15 text fields; this bounds the per-part overhead

_OCTET_STREAM = "application/octet-stream"
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}
# Part bodies whose transfer encoding we copy as is; anything else (base64, quoted-printable, long
# deprecated for form-data by RFC 7578 §4.7) would reach the upstream still encoded.
_IDENTITY_TRANSFER_ENCODINGS = frozenset({"", "binary", "8bit", "7bit"})
# What aiohttp's multipart reader raises on a body that is not well-formed (3.14: ValueError for a
# missing or wrong boundary and for a body that ends early, BadHttpMessage for broken part headers,
# RuntimeError for a bad ``_charset_`` part, and its Content-Disposition warnings where warnings are
# errors, as under our tests) or that stopped arriving (ConnectionResetError when the client goes away
# mid-body). Only aiohttp calls are guarded, so our own bugs are never mistaken for a client's
# malformed body.
_MALFORMED = (ValueError, LookupError, RuntimeError, HttpProcessingError, BadContentDispositionHeader,
              BadContentDispositionParam)
_CUT_SHORT = (ConnectionError, asyncio.IncompleteReadError)


def sniff_image_type(head: bytes) -> str | None:
    """The image type that ``head`` (a file's first bytes; 12 are enough) starts like, from the
    format's magic bytes, or None: the declared content type and file name are the client's word,
    these bytes are what an upstream will actually decode."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


@dataclass(frozen=True, slots=True)
class FilePart:
    """One file of a form: its part headers as received, and where its bytes are in the form's spool."""

    name: str
    filename: str
    content_type: str
    offset: int
    size: int
    detected_type: str | None = None  # sniff_image_type of the first bytes; the caller decides what to refuse


class ImageForm:
    """A parsed multipart image request: text fields, and files kept in a spool.

    Owns its spool: close it (or use ``with``) when the request is done. The spool is an anonymous
    temporary file, so even a form that is never closed leaves nothing on disk once collected.
    ``fields`` and ``files`` are complete once the form is returned by ``read_image_form`` or
    ``build``; change ``fields`` freely, but file bytes only come from the spool.
    """

    def __init__(self, *, spool_memory_bytes: int = SPOOL_MEMORY_BYTES) -> None:
        self.fields: dict[str, str] = {}
        self.files: list[FilePart] = []
        # Lives as long as the form, not a block: closed by close() / __exit__.
        self._spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=spool_memory_bytes, mode="w+b", prefix="relaygate-form-")
        self._end = 0

    @classmethod
    def build(cls, fields: Mapping[str, str], files: Iterable[tuple[str, str, str, bytes]], *,
              spool_memory_bytes: int = SPOOL_MEMORY_BYTES) -> ImageForm:
        """A form from stored parts: ``fields`` in order, ``files`` as (name, filename, content type,
        bytes). For restoring a persisted task's form and for tests; no client-facing checks, since
        the data was checked when first received. Raises ValueError for a content type that could not
        be sent as a header."""
        form = cls(spool_memory_bytes=spool_memory_bytes)
        try:
            form.fields.update(fields)
            for name, filename, content_type, data in files:
                _check_header_value(content_type)
                offset = form._end
                form._append(data)
                form._add_file(name, filename, content_type, offset, data[:HEAD_BYTES])
        except BaseException:
            form.close()
            raise
        return form

    def images(self) -> list[FilePart]:
        """The image files (``image`` or ``image[]`` parts), in arrival order."""
        return [part for part in self.files if part.name in IMAGE_FIELDS]

    def mask(self) -> FilePart | None:
        """The first ``mask`` file, if any."""
        return next((part for part in self.files if part.name == MASK_FIELD), None)

    def read_file(self, part: FilePart) -> bytes:
        """A file's bytes, whole: for translators that must inline them (e.g. base64 for Gemini)."""
        return b"".join(self._iter_file(part, COPY_CHUNK_BYTES))

    def file_tuples(self) -> Iterator[tuple[str, str, str, bytes]]:
        """(name, filename, content type, bytes) per file, in order, one file in memory at a time:
        what ``build`` takes back."""
        for part in self.files:
            yield part.name, part.filename, part.content_type, self.read_file(part)

    def encode(self, overrides: Mapping[str, str | None] | None = None) -> EncodedForm:
        """This form as a new multipart body for an upstream.

        Text fields keep their order; ``overrides`` replaces a field's value in place, adds a missing
        field after the others, or drops a field when the value is None (e.g. ``response_format`` for
        an upstream that refuses it). Files follow, byte for byte with their name, filename and
        content type. Overriding a file field is a bug, so it raises ValueError.
        """
        fields = _apply_overrides(self.fields, overrides or {})
        boundary = "relaygate-" + secrets.token_hex(16)  # 128 random bits: never found inside a file
        segments: list[bytes | FilePart] = []
        text = bytearray()
        for name, value in fields.items():
            text += _part_head(boundary, name, None, None) + value.encode() + b"\r\n"
        for part in self.files:
            text += _part_head(boundary, part.name, part.filename, part.content_type)
            segments += [bytes(text), part]
            text = bytearray(b"\r\n")
        text += f"--{boundary}--\r\n".encode()
        segments.append(bytes(text))
        return EncodedForm(self, f"multipart/form-data; boundary={boundary}", tuple(segments))

    @property
    def on_disk(self) -> bool:
        """Whether the spool has moved from memory to a temporary file."""
        return not isinstance(self._spool._file, io.BytesIO)

    def close(self) -> None:
        """Release the spool; the form's files cannot be read after this. Safe to call twice."""
        self._spool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _append(self, data: bytes) -> None:
        """Add bytes to the end of the spool (seeking first, since reads move the position)."""
        self._spool.seek(self._end)
        self._spool.write(data)
        self._end += len(data)

    def _add_file(self, name: str, filename: str, content_type: str, offset: int, head: bytes) -> FilePart:
        part = FilePart(name=name, filename=filename, content_type=content_type, offset=offset,
                        size=self._end - offset, detected_type=sniff_image_type(head))
        self.files.append(part)
        return part

    def _iter_file(self, part: FilePart, chunk_size: int) -> Iterator[bytes]:
        """A file's bytes in pieces. Each piece seeks and reads with no await in between, so several
        readers (two ``chunks()`` iterators, say) can take turns on the one spool."""
        position, end = part.offset, part.offset + part.size
        while position < end:
            self._spool.seek(position)
            piece = self._spool.read(min(chunk_size, end - position))
            if not piece:
                raise ValueError("the form's spool is shorter than its parts (was it closed?)")
            position += len(piece)
            yield piece


class EncodedForm:
    """A form ready to send: its Content-Type, exact length, and body.

    Send with ``Content-Type: content_type`` and ``Content-Length: str(length)``; ``chunks()`` gives
    a fresh body each call, so a failover can send the same form again. Valid while the ImageForm it
    came from is open.
    """

    __slots__ = ("_form", "_segments", "content_type", "length")

    def __init__(self, form: ImageForm, content_type: str, segments: tuple[bytes | FilePart, ...]) -> None:
        self._form = form
        self._segments = segments
        self.content_type = content_type
        self.length = sum(len(s) if isinstance(s, bytes) else s.size for s in segments)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, from the start, in pieces of at most ``COPY_CHUNK_BYTES`` for file data."""
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield segment
            else:
                for piece in self._form._iter_file(segment, COPY_CHUNK_BYTES):
                    yield piece


async def read_image_request(request: web.Request, *, max_total_bytes: int,
                             max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
                             max_files: int = DEFAULT_MAX_FILES,
                             max_fields: int = DEFAULT_MAX_FIELDS) -> ImageForm:
    """``read_image_form`` for a server request: refuses a body that is not multipart/form-data, and
    one whose declared length is over the limit before reading any of it."""
    if request.content_type != "multipart/form-data":
        raise InvalidRequest("This endpoint takes a multipart/form-data body.", code="invalid_multipart")
    if request.content_length is not None and request.content_length > max_total_bytes:
        raise _too_large(max_total_bytes)
    with _malformed_as_invalid():
        reader = await request.multipart()
    return await read_image_form(reader, max_total_bytes=max_total_bytes, max_field_bytes=max_field_bytes,
                                 max_files=max_files, max_fields=max_fields)


async def read_image_form(reader: MultipartReader, *, max_total_bytes: int,
                          max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
                          max_files: int = DEFAULT_MAX_FILES,
                          max_fields: int = DEFAULT_MAX_FIELDS,
                          spool_memory_bytes: int = SPOOL_MEMORY_BYTES) -> ImageForm:
    """Read a multipart image form as it arrives, checking its shape on the way.

    Raises BodyTooLarge past ``max_total_bytes`` (part bodies and headers counted as they arrive);
    InvalidRequest with code ``invalid_multipart`` for a body that is not well-formed multipart
    form-data (wrong boundary, cut short, nested multipart, a part without a name or with a transfer
    encoding); and with code ``invalid_value`` (``param`` the field's name, when there is one) for a
    file under a name other than ``image``, ``image[]`` or ``mask``, more than ``max_files`` files or
    ``max_fields`` text fields, a text field repeated, over ``max_field_bytes`` or not UTF-8. The
    form's spool is closed when anything goes wrong, cancellation included.
    """
    budget = _Budget(max_total_bytes)
    limits = _Limits(max_field_bytes=max_field_bytes, max_files=max_files, max_fields=max_fields)
    framing = _boundary_line_bytes(reader)
    form = ImageForm(spool_memory_bytes=spool_memory_bytes)
    try:
        while (part := await _next_part(reader)) is not None:
            budget.take(framing + _header_bytes(part))
            _check_header_text(part)
            name, filename = _disposition(part)
            if filename is not None or name in FILE_FIELDS:
                await _read_file(form, part, name, filename, budget, limits)
            else:
                await _read_field(form, part, name, budget, limits)
    except BaseException:
        form.close()
        raise
    return form


@dataclass(frozen=True, slots=True)
class _Limits:
    max_field_bytes: int
    max_files: int
    max_fields: int


class _Budget:
    """The bytes a form may still take; counted as parts arrive, so an oversized upload stops early."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise _too_large(self.limit)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")


@contextlib.contextmanager
def _malformed_as_invalid() -> Iterator[None]:
    """Turn what aiohttp's multipart reader raises on a bad body into the client's error. The message
    is ours: aiohttp's quotes the body's lines, which may be long and are the client's anyway."""
    try:
        yield
    except _CUT_SHORT as exc:
        raise InvalidRequest("The request body ended before the multipart form was complete.",
                             code="invalid_multipart") from exc
    except _MALFORMED as exc:
        raise InvalidRequest("The request body is not well-formed multipart/form-data: check the boundary "
                             "and that the body is complete.", code="invalid_multipart") from exc


async def _next_part(reader: MultipartReader) -> BodyPartReader | None:
    with _malformed_as_invalid():
        part = await reader.next()
    if part is None or isinstance(part, BodyPartReader):
        return part
    raise InvalidRequest("A form part is itself multipart; send each file as its own part.",
                         code="invalid_multipart")


def _boundary_line_bytes(reader: MultipartReader) -> int:
    """What each part's boundary line takes on the wire: CRLF ``--boundary`` CRLF."""
    boundary = parse_mimetype(reader.headers.get(hdrs.CONTENT_TYPE, "")).parameters.get("boundary", "")
    return len(boundary) + 6


def _header_bytes(part: BodyPartReader) -> int:
    """About what the part's headers took on the wire: ``name: value`` CRLF each, then a blank line."""
    return sum(len(k) + len(v.encode("utf-8", "surrogateescape")) + 4 for k, v in part.headers.items()) + 2


def _is_text(value: str) -> bool:
    """Whether a decoded header value is real text: aiohttp keeps bytes that are not UTF-8 as lone
    surrogates, which no database, JSON document or log line can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_header_text(part: BodyPartReader) -> None:
    """A part's headers (its name, filename, content type) become stored text when the form is kept for
    an async task: refused here when they are not UTF-8, for sync and async requests alike, as text
    fields that are not UTF-8 are."""
    for header, value in part.headers.items():
        if not _is_text(value):
            raise InvalidRequest(f"A form part's {header} header is not valid UTF-8 text.",
                                 code="invalid_multipart")


def _disposition(part: BodyPartReader) -> tuple[str, str | None]:
    """The part's field name and filename (None: not a file), from its Content-Disposition, and a check
    that its body is sent as is."""
    with warnings.catch_warnings():
        # aiohttp warns (RuntimeWarning) on a malformed header and returns no parameters; that is the
        # client's error, reported below, not something for our logs.
        warnings.simplefilter("ignore")
        kind, params = parse_content_disposition(part.headers.get(hdrs.CONTENT_DISPOSITION))
        name = content_disposition_filename(params, "name")
        filename = content_disposition_filename(params, "filename")
    if kind != "form-data" or not name:
        raise InvalidRequest("Every form part needs a Content-Disposition of form-data with a name.",
                             code="invalid_multipart")
    if not _is_text(name) or (filename is not None and not _is_text(filename)):  # ``filename*`` is decoded here
        raise InvalidRequest("A form part's name or filename is not valid UTF-8 text.", code="invalid_multipart")
    encoding = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING, "").strip().lower()
    if encoding not in _IDENTITY_TRANSFER_ENCODINGS:
        raise InvalidRequest(f"The form part {name!r} has a Content-Transfer-Encoding of {encoding!r}; "
                             "send the bytes as they are.", param=name, code="invalid_multipart")
    return name, filename


async def _read_file(form: ImageForm, part: BodyPartReader, name: str, filename: str | None,
                     budget: _Budget, limits: _Limits) -> None:
    """Copy a file part into the spool as it arrives."""
    if name not in FILE_FIELDS:
        raise InvalidRequest(f"Unexpected file field {name!r}: files go in image, image[] or mask.",
                             param=name, code="invalid_value")
    if len(form.files) >= limits.max_files:
        raise InvalidRequest(f"A form may carry at most {limits.max_files} files.", param=name,
                             code="invalid_value")
    offset, head = form._end, b""
    while not part.at_eof():
        with _malformed_as_invalid():
            chunk = await part.read_chunk(COPY_CHUNK_BYTES)
        budget.take(len(chunk))
        form._append(chunk)
        if len(head) < HEAD_BYTES:
            head += chunk[:HEAD_BYTES - len(head)]
    detected = sniff_image_type(head)
    declared = part.headers.get(hdrs.CONTENT_TYPE, "").strip()
    content_type = declared or detected or _OCTET_STREAM
    # A part under a file name but without a filename (raw bytes): upstreams want one, and some judge
    # the format by its extension.
    form._add_file(name, filename if filename is not None else _default_filename(name, detected),
                   content_type, offset, head)


def _default_filename(name: str, detected: str | None) -> str:
    return name.removesuffix("[]") + _EXTENSIONS.get(detected or "", "")


async def _read_field(form: ImageForm, part: BodyPartReader, name: str, budget: _Budget,
                      limits: _Limits) -> None:
    """Read a text field, bounded by ``max_field_bytes``, as UTF-8."""
    if name in form.fields:
        raise InvalidRequest(f"The field {name!r} is given more than once.", param=name, code="invalid_value")
    if len(form.fields) >= limits.max_fields:
        raise InvalidRequest(f"A form may carry at most {limits.max_fields} text fields.", param=name,
                             code="invalid_value")
    data = bytearray()
    while not part.at_eof():
        with _malformed_as_invalid():
            chunk = await part.read_chunk(COPY_CHUNK_BYTES)
        budget.take(len(chunk))
        data += chunk
        if len(data) > limits.max_field_bytes:
            raise InvalidRequest(f"The field {name!r} is longer than {limits.max_field_bytes} bytes.",
                                 param=name, code="invalid_value")
    try:
        form.fields[name] = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The field {name!r} is not valid UTF-8 text.", param=name,
                             code="invalid_value") from exc


def _apply_overrides(fields: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    for name in overrides:
        if name in FILE_FIELDS:
            raise ValueError(f"cannot override the file field {name!r}")
    merged = {**fields, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


def _part_head(boundary: str, name: str, filename: str | None, content_type: str | None) -> bytes:
    """A part's boundary line and headers, up to and including the blank line."""
    disposition = f'form-data; name="{_quote(name)}"'
    if filename is not None:
        disposition += f'; filename="{_quote(filename)}"'
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return (head + "\r\n").encode("utf-8", "surrogateescape")


def _quote(value: str) -> str:
    """A name or filename inside a quoted header parameter, escaped as browsers do (WHATWG
    multipart/form-data, referenced by RFC 7578 §4.2): no backslashes, which servers disagree on."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _check_header_value(value: str) -> None:
    if any(ch in value for ch in "\r\n\0"):
        raise ValueError(f"content type {value!r} cannot be sent as a header")
