"""Images and files inside a chat request: data URIs, media types, and URLs a target cannot take.

Converters never fetch. When a target dialect needs bytes and the request only has a URL (Gemini
takes only Google-hosted file URIs), the relay asks the target's ``<dialect>_urls_to_fetch`` for the
URLs, fetches them with its own checks (size, type, address), and calls :func:`inline_media` with
the results before converting.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from relaygate.core.chat import ChatRequest, FilePart, ImagePart, Message, Part, ToolResultPart

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)$", re.DOTALL)

# First bytes of base64 text for the image types every dialect accepts.
_MAGIC = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"),
          ("JVBERi0", "application/pdf"))


@dataclass(frozen=True, slots=True)
class InlineMedia:
    """Fetched bytes for one URL: base64 text (no ``data:`` prefix) and the media type."""

    media_type: str
    data: str


def parse_data_uri(url: str) -> InlineMedia | None:
    """``data:image/png;base64,iVBOR...`` → (media type, base64); None for anything else."""
    if not url.startswith("data:"):
        return None
    match = _DATA_URI.match(url)
    if match is None:
        return None
    data = match.group("data")
    return InlineMedia(match.group("type") or sniff_media_type(data) or "application/octet-stream", data)


def data_uri(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def sniff_media_type(data: str) -> str | None:
    """The media type of base64 ``data`` from its first bytes (png, jpeg, gif, webp, pdf)."""
    for prefix, media_type in _MAGIC:
        if data.startswith(prefix):
            return media_type
    return None


def decoded_text(data: str) -> str | None:
    """Base64 ``data`` as UTF-8 text; None when it is not."""
    try:
        return base64.b64decode(data, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def guess_media_type(url: str) -> str | None:
    """A media type from a URL's file extension (no I/O)."""
    return mimetypes.guess_type(url.split("?", 1)[0], strict=False)[0]


def _media_in(parts: tuple[Part, ...]) -> Iterator[ImagePart | FilePart]:
    for part in parts:
        if isinstance(part, ImagePart | FilePart):
            yield part
        elif isinstance(part, ToolResultPart):
            yield from (item for item in part.content if isinstance(item, ImagePart | FilePart))


def urls_to_fetch(req: ChatRequest, needs_fetch: Callable[[ImagePart | FilePart], bool]) -> list[str]:
    """URLs of media parts that have no inline data and that ``needs_fetch`` says the target cannot
    take, in order of appearance, without repeats."""
    urls: dict[str, None] = {}
    for message in req.messages:
        for part in _media_in(message.parts):
            if part.url and part.data is None and needs_fetch(part):
                urls.setdefault(part.url)
    return list(urls)


def _inlined(part: ImagePart | FilePart, fetched: Mapping[str, InlineMedia]) -> ImagePart | FilePart:
    media = fetched.get(part.url or "") if part.data is None else None
    return part if media is None else replace(part, media_type=media.media_type, data=media.data, url=None)


def _inline_part(part: Part, fetched: Mapping[str, InlineMedia]) -> Part:
    if isinstance(part, ImagePart | FilePart):
        return _inlined(part, fetched)
    if isinstance(part, ToolResultPart):
        content = tuple(_inlined(item, fetched) if isinstance(item, ImagePart | FilePart) else item
                        for item in part.content)
        return replace(part, content=content)
    return part


def inline_media(req: ChatRequest, fetched: Mapping[str, InlineMedia]) -> ChatRequest:
    """The request with every media part whose URL is in ``fetched`` carrying those bytes instead."""
    if not fetched:
        return req
    messages = tuple(Message(m.role, tuple(_inline_part(p, fetched) for p in m.parts), m.extras)
                     for m in req.messages)
    return replace(req, messages=messages)
