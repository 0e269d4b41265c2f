"""Reading a multipart image request (``/v1/images/edits``, ``/v1/images/variations``) as it arrives,
with limits, into the plain ``ImageForm`` the images use case takes (``relay/multipart.py``: the spool
and the re-emission). The surface parses; nothing below it reads an aiohttp request.

File parts are copied into the form's spool as they arrive, so a form of up to
``max_image_upload_bytes`` is never held whole in memory; text fields are small and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

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
from relaygate.relay.multipart import (
    COPY_CHUNK_BYTES,
    FILE_FIELDS,
    HEAD_BYTES,
    SPOOL_MEMORY_BYTES,
    ImageForm,
    sniff_image_type,
)

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
    offset, head = form.size, b""
    while not part.at_eof():
        with _malformed_as_invalid():
            chunk = await part.read_chunk(COPY_CHUNK_BYTES)
        budget.take(len(chunk))
        form.write(chunk)
        if len(head) < HEAD_BYTES:
            head += chunk[:HEAD_BYTES - len(head)]
    detected = sniff_image_type(head)
    declared = part.headers.get(hdrs.CONTENT_TYPE, "").strip()
    content_type = declared or detected or _OCTET_STREAM
    # A part under a file name but without a filename (raw bytes): upstreams want one, and some judge
    # the format by its extension.
    form.add_file(name, filename if filename is not None else _default_filename(name, detected),
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
