"""Gemini ``Part`` objects to and from neutral parts (used for requests, responses and streams).

Gemini's ``thoughtSignature`` rides on the part it belongs to (a function call, a text); in the core
it is a :class:`ThinkingPart` with no text, placed just before that part, and the way out puts it
back on the next part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.core.chat import (
    FilePart,
    ImagePart,
    OpaquePart,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    extras_of,
    is_synthetic_call_id,
    json_object,
    json_text,
    make_extras,
    synthetic_call_id,
)
from relaygate.core.media import guess_media_type
from relaygate.core.wire import as_dict, as_list, as_str, leftovers
from relaygate.dialects.gemini.shared import D, pick, spellings

SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented stand-in for a missing thought signature (history from another model): Gemini 3
refuses a model turn whose first function call has none. It reads back as no signature.
https://ai.google.dev/gemini-api/docs/thought-signatures#faqs"""

_DATA_FIELDS = spellings(("text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall",
                          "functionResponse"))


class CallIds:
    """Ids for function calls that came without one (deterministic from ``base`` and a counter), and
    the matching of id-less function responses to earlier calls of the same name, in order."""

    def __init__(self, base: str = "") -> None:
        self._base = base
        self._count = 0
        self._pending: list[tuple[str, str]] = []  # (name, id) of calls not answered yet

    def call(self, raw_id: str | None, name: str) -> str:
        call_id = raw_id or synthetic_call_id(*([self._base] if self._base else []), self._count)
        self._count += 1
        self._pending.append((name, call_id))
        return call_id

    def result(self, raw_id: str | None, name: str) -> str:
        match = next((i for i, (n, c) in enumerate(self._pending) if (c == raw_id if raw_id else n == name)), None)
        if match is not None:
            return self._pending.pop(match)[1]
        return raw_id or synthetic_call_id(*([self._base] if self._base else []), "result", name)


# Protobuf's JSON form of bytes takes base64 in either alphabet, padded or not, and google-genai writes
# the URL-safe one unpadded; the core (and OpenAI data URLs, Anthropic base64 sources) hold the standard
# alphabet, padded.
_URL_SAFE = str.maketrans("-_", "+/")


def standard_base64(data: str) -> str:
    """``data`` in standard, padded base64, whichever alphabet and padding it came in."""
    if "-" in data or "_" in data:
        data = data.translate(_URL_SAFE)
    return data + "=" * (-len(data) % 4) if "=" not in data else data


def _media_in(part: Mapping[str, Any], extras: dict[str, Any]) -> Part:
    inline = as_dict(pick(part, "inlineData"))
    if inline:
        media_type = as_str(pick(inline, "mimeType"))
        kind = ImagePart if (media_type or "").startswith("image/") else FilePart
        return kind(media_type, standard_base64(str(inline.get("data") or "")), extras=make_extras(D, extras))
    file = as_dict(pick(part, "fileData"))
    media_type, uri = as_str(pick(file, "mimeType")), str(pick(file, "fileUri") or "")
    kind = ImagePart if (media_type or guess_media_type(uri) or "").startswith("image/") else FilePart
    return kind(media_type, url=uri, extras=make_extras(D, extras))


def _result_in(response: dict[str, Any], ids: CallIds) -> ToolResultPart:
    name = str(response.get("name") or "")
    value = as_dict(response.get("response"))
    call_id = ids.result(as_str(response.get("id")), name)
    only = next(iter(value)) if len(value) == 1 else None
    if only in ("result", "error") and isinstance(value[only], str):  # Google's own wrapping of plain text
        return ToolResultPart(call_id, (TextPart(value[only]),), only == "error", name)
    return ToolResultPart(call_id, (TextPart(json_text(value)),), False, name)


def part_in(part: Mapping[str, Any], ids: CallIds) -> list[Part]:
    """One Gemini part as neutral parts (two when it carries a thought signature)."""
    signature = as_str(pick(part, "thoughtSignature"))
    signature = None if signature == SKIP_SIGNATURE else signature
    extras = leftovers(part, _DATA_FIELDS)
    text = as_str(part.get("text"))
    if text is not None and part.get("thought") is True:
        return [ThinkingPart(text, signature, D)]
    out: list[Part] = [ThinkingPart("", signature, D)] if signature else []
    call = as_dict(pick(part, "functionCall"))
    response = as_dict(pick(part, "functionResponse"))
    if text is not None:
        out.append(TextPart(text, make_extras(D, extras)))
    elif call:
        name = str(call.get("name") or "")
        out.append(ToolCallPart(ids.call(as_str(call.get("id")), name), name, json_text(as_dict(call.get("args"))),
                                make_extras(D, extras)))
    elif response:
        out.append(_result_in(response, ids))
    elif pick(part, "inlineData") is not None or pick(part, "fileData") is not None:
        out.append(_media_in(part, extras))
    else:
        out.append(OpaquePart(D, part))  # executableCode, codeExecutionResult...
    return out


def parts_in(raw: Any, ids: CallIds) -> list[Part]:
    return [p for part in as_list(raw) if isinstance(part, dict) for p in part_in(part, ids)]


# -- out ---------------------------------------------------------------------------------------------

def media_out(part: ImagePart | FilePart) -> dict[str, Any] | None:
    if part.data is not None:
        media_type = part.media_type or ("image/png" if isinstance(part, ImagePart) else "application/octet-stream")
        return {"inlineData": {"mimeType": media_type, "data": part.data}, **extras_of(part.extras, D)}
    if not part.url:
        return None
    url_type = part.media_type or guess_media_type(part.url)
    file = {"mimeType": url_type, "fileUri": part.url} if url_type else {"fileUri": part.url}
    return {"fileData": file, **extras_of(part.extras, D)}


def _result_response(part: ToolResultPart) -> dict[str, Any]:
    text = "".join(item.text for item in part.content if isinstance(item, TextPart))
    if part.is_error:
        return {"error": text}
    value = json_object(text) if text.lstrip().startswith("{") else {}
    return value or {"result": text}


def result_out(part: ToolResultPart, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """A function response (``response`` must be an object), then any media of the result as parts
    of their own: Gemini's function responses carry no images."""
    response: dict[str, Any] = {"name": names.get(part.call_id) or part.name or part.call_id,
                                "response": _result_response(part)}
    if not is_synthetic_call_id(part.call_id):
        response["id"] = part.call_id
    media = [m for item in part.content if isinstance(item, ImagePart | FilePart) and (m := media_out(item))]
    return [{"functionResponse": response}, *media]


def _call_out(part: ToolCallPart) -> dict[str, Any]:
    call: dict[str, Any] = {"name": part.name, "args": json_object(part.arguments)}
    if not is_synthetic_call_id(part.id):
        call["id"] = part.id
    return {"functionCall": call, **extras_of(part.extras, D)}


def _one_out(part: Part, names: Mapping[str, str], show_thoughts: bool) -> list[dict[str, Any]]:
    if isinstance(part, TextPart):
        return [{"text": part.text, **extras_of(part.extras, D)}]
    if isinstance(part, ThinkingPart):
        if not part.text or not (show_thoughts or part.origin == D):
            return []
        signed = {"thoughtSignature": part.signature} if part.origin == D and part.signature else {}
        return [{"text": part.text, "thought": True, **signed}]
    if isinstance(part, ImagePart | FilePart):
        return [m] if (m := media_out(part)) else []
    if isinstance(part, ToolCallPart):
        return [_call_out(part)]
    if isinstance(part, ToolResultPart):
        return result_out(part, names)
    if isinstance(part, OpaquePart) and part.origin == D:
        return [dict(part.data)]
    return []  # redacted thinking and other dialects' blocks


def parts_out(parts: tuple[Part, ...], names: Mapping[str, str], *, show_thoughts: bool) -> list[dict[str, Any]]:
    """Neutral parts as Gemini parts. A Gemini signature on an empty thinking part goes onto the next
    part; thinking from another dialect is shown (``show_thoughts``, for responses) or dropped."""
    out: list[dict[str, Any]] = []
    signature: str | None = None
    for part in parts:
        if isinstance(part, ThinkingPart) and not part.text and part.origin == D and part.signature:
            signature = part.signature
            continue
        for item in _one_out(part, names, show_thoughts):
            if signature is not None:
                item = {**item, "thoughtSignature": signature}
                signature = None
            out.append(item)
    if signature is not None:
        out.append({"text": "", "thoughtSignature": signature})
    return out
