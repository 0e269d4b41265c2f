"""Anthropic content blocks to and from neutral parts (used for requests and responses alike)."""

from __future__ import annotations

import base64
from typing import Any

from relaygate.core.chat import (
    FilePart,
    ImagePart,
    OpaquePart,
    Part,
    RedactedThinkingPart,
    ResultContent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    extras_of,
    json_object,
    json_text,
    make_extras,
)
from relaygate.core.media import decoded_text, sniff_media_type
from relaygate.core.wire import as_dict, as_list, as_str, leftovers
from relaygate.dialects.anthropic.shared import D

_DOCUMENT_FIELDS = frozenset({"type", "source", "title"})


def _image_in(block: dict[str, Any]) -> Part:
    source = as_dict(block.get("source"))
    extras = make_extras(D, leftovers(block, frozenset({"type", "source"})))
    if source.get("type") == "base64":
        return ImagePart(as_str(source.get("media_type")), str(source.get("data") or ""), extras=extras)
    if source.get("type") == "url":
        return ImagePart(url=str(source.get("url") or ""), extras=extras)
    return OpaquePart(D, block)  # a Files-API id means nothing elsewhere


def _document_in(block: dict[str, Any]) -> Part:
    source = as_dict(block.get("source"))
    kind = source.get("type")
    title = as_str(block.get("title"))
    extras = make_extras(D, leftovers(block, _DOCUMENT_FIELDS))
    if kind == "base64":
        return FilePart(as_str(source.get("media_type")), str(source.get("data") or ""), filename=title, extras=extras)
    if kind == "text":  # plain text travels base64-encoded like any other file
        data = base64.b64encode(str(source.get("data") or "").encode()).decode()
        return FilePart(as_str(source.get("media_type")) or "text/plain", data, filename=title, extras=extras)
    if kind == "url":
        return FilePart(url=str(source.get("url") or ""), filename=title, extras=extras)
    return OpaquePart(D, block)


def _result_in(block: dict[str, Any]) -> ToolResultPart:
    content = block.get("content")
    items: tuple[Part, ...] = (TextPart(content),) if isinstance(content, str) else tuple(
        block_in(as_dict(item)) for item in as_list(content))
    kept = tuple(item for item in items if isinstance(item, TextPart | ImagePart | FilePart))
    extras = make_extras(D, leftovers(block, frozenset({"type", "tool_use_id", "content", "is_error"})))
    return ToolResultPart(str(block.get("tool_use_id") or ""), kept, block.get("is_error") is True, extras=extras)


def block_in(block: dict[str, Any]) -> Part:
    """One content block as a neutral part; blocks with no neutral meaning become ``OpaquePart``."""
    kind = block.get("type")
    if kind == "text":
        return TextPart(str(block.get("text") or ""), make_extras(D, leftovers(block, frozenset({"type", "text"}))))
    if kind == "image":
        return _image_in(block)
    if kind == "document":
        return _document_in(block)
    if kind == "tool_use":
        extras = make_extras(D, leftovers(block, frozenset({"type", "id", "name", "input"})))
        return ToolCallPart(str(block.get("id") or ""), str(block.get("name") or ""),
                            json_text(as_dict(block.get("input"))), extras)
    if kind == "tool_result":
        return _result_in(block)
    if kind == "thinking":
        signature = as_str(block.get("signature")) or None
        return ThinkingPart(str(block.get("thinking") or ""), signature, D if signature else None)
    if kind == "redacted_thinking":
        return RedactedThinkingPart(str(block.get("data") or ""), D)
    return OpaquePart(D, block)


def blocks_in(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    return [block_in(as_dict(block)) for block in as_list(content)]


# -- out ---------------------------------------------------------------------------------------------

def _image_out(part: ImagePart) -> dict[str, Any] | None:
    if part.data is not None:
        media_type = part.media_type or sniff_media_type(part.data) or "image/png"
        source: dict[str, Any] = {"type": "base64", "media_type": media_type, "data": part.data}
    elif part.url:
        source = {"type": "url", "url": part.url}
    else:
        return None
    return {"type": "image", "source": source, **extras_of(part.extras, D)}


def _document_source(part: FilePart) -> dict[str, Any] | None:
    media_type = part.media_type or sniff_media_type(part.data or "") or "application/pdf"
    if part.data is None:
        return {"type": "url", "url": part.url} if part.url else None
    if media_type == "application/pdf":
        return {"type": "base64", "media_type": media_type, "data": part.data}
    if media_type.startswith("text/"):
        text = decoded_text(part.data)
        return {"type": "text", "media_type": "text/plain", "data": text} if text is not None else None
    return None  # audio and other files: Anthropic reads PDFs and text only


def _document_out(part: FilePart) -> dict[str, Any] | None:
    source = _document_source(part)
    if source is None:
        return None
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.filename:
        block["title"] = part.filename
    return {**block, **extras_of(part.extras, D)}


def content_out(parts: tuple[Part, ...] | tuple[ResultContent, ...]) -> str | list[dict[str, Any]]:
    """A block list, or a bare string when it comes to one plain text block."""
    blocks = [block for part in parts if (block := block_out(part)) is not None]
    if len(blocks) == 1 and blocks[0].keys() == {"type", "text"} and blocks[0]["type"] == "text":
        return str(blocks[0]["text"])
    return blocks


def _result_out(part: ToolResultPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id}
    content = content_out(part.content)
    if content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return {**block, **extras_of(part.extras, D)}


def block_out(part: Part) -> dict[str, Any] | None:
    """A neutral part as a request block; None when Anthropic cannot take it (foreign signatures,
    audio, empty text)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text, **extras_of(part.extras, D)} if part.text else None
    if isinstance(part, ImagePart):
        return _image_out(part)
    if isinstance(part, FilePart):
        return _document_out(part)
    if isinstance(part, ToolCallPart):
        block = {"type": "tool_use", "id": part.id, "name": part.name, "input": json_object(part.arguments)}
        return {**block, **extras_of(part.extras, D)}
    if isinstance(part, ToolResultPart):
        return _result_out(part)
    if isinstance(part, ThinkingPart):
        own = part.origin == D and part.signature
        return {"type": "thinking", "thinking": part.text, "signature": part.signature} if own else None
    if isinstance(part, RedactedThinkingPart):
        return {"type": "redacted_thinking", "data": part.data} if part.origin == D else None
    return dict(part.data) if part.origin == D else None
