"""Multipart image requests (``/v1/images/edits``, ``/v1/images/variations``) as the images use case
holds them: a plain form (text fields, and files in a spool) that it re-emits to upstreams.

The relay must stream these forms through without re-encoding the files (spec images-async §1), and a
request may be up to ``max_image_upload_bytes`` (50 MiB by default), so nothing here holds a form
whole in memory: the surface (``surfaces/multipart.py``) copies file parts as they arrive into one
spool per form, a ``SpooledTemporaryFile`` that stays in memory for small forms and moves to an
anonymous temp file past ``SPOOL_MEMORY_BYTES``. Text fields are small and bounded, and kept as ``str``.

Re-emitting builds a new body with a new boundary: text fields (with the upstream's model name and
whatever else a translator overrides), then the files, read back from the spool in pieces. The body's
exact length is known in advance, so the upstream gets a ``Content-Length`` rather than chunked
encoding, which some image upstreams refuse.

Spool reads and writes are synchronous: they touch memory or the page cache in pieces of at most
``COPY_CHUNK_BYTES``, which costs less than handing each piece to a thread.
"""

from __future__ import annotations

import io
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

SPOOL_MEMORY_BYTES = 1024 * 1024  # a form's files stay in memory up to this size, then go to disk
COPY_CHUNK_BYTES = 64 * 1024  # the piece size for reading parts in and streaming files out
HEAD_BYTES = 16  # enough leading bytes of a file to recognise every image format we sniff

IMAGE_FIELDS = frozenset({"image", "image[]"})
MASK_FIELD = "mask"
FILE_FIELDS = IMAGE_FIELDS | {MASK_FIELD}


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
    ``fields`` and ``files`` are complete once the form is returned by the surface's ``read_image_form`` or
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
                offset = form.size
                form.write(data)
                form.add_file(name, filename, content_type, offset, data[:HEAD_BYTES])
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

    @property
    def size(self) -> int:
        """The bytes written to the spool so far: where the next file's bytes start."""
        return self._end

    def write(self, data: bytes) -> None:
        """Add bytes to the end of the spool (seeking first, since reads move the position): a file's
        bytes as they arrive, followed by ``add_file`` once it is complete."""
        self._spool.seek(self._end)
        self._spool.write(data)
        self._end += len(data)

    def add_file(self, name: str, filename: str, content_type: str, offset: int, head: bytes) -> FilePart:
        """Record the file whose bytes were written since ``offset`` (``head``: its first bytes, sniffed)."""
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
