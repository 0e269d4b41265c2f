"""A light tap on a Gemini ``streamGenerateContent?alt=sse`` stream that is being passed through.

Every chunk is a ``GenerateContentResponse`` on a ``data:`` line (spec/gemini.md §4.2), forwarded as it
came, except one documented edit: an error chunk (``{"error": {...}}``) is re-written with its message
scrubbed (no upstream URL, address or key). Gemini has no terminator event, so nothing is held back:
a stream is complete once a candidate has a ``finishReason`` (or the prompt was blocked) and no error
came. On the way the tap notes the usage (the last ``usageMetadata``: it is cumulative), the finish
reasons, and a running token count of the generated text (for the offline count when the upstream
reports no usage; it stops once usage arrives).
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.chat import json_text
from relaygate.core.usage import Usage
from relaygate.dialects.gemini.errors import stream_error_frame
from relaygate.dialects.gemini.shared import usage_from_gemini
from relaygate.dialects.held import HeldFrames
from relaygate.dialects.passthrough import SSEPassthroughTap
from relaygate.dialects.sse import SSEEvent, data_frame, parse_event
from relaygate.scrub import NO_CHANNEL, Scrubber


class GeminiStreamTap(SSEPassthroughTap):
    def __init__(self, *, client_wants_usage: bool, scrubber: Scrubber = NO_CHANNEL, model: str = "") -> None:
        # client_wants_usage: Gemini always reports usage on its chunks, and nothing is removed.
        super().__init__(scrubber, model)
        self.usage: Usage | None = None
        self._held = HeldFrames()

    @property
    def completed(self) -> bool:
        """A finish reason (or a blocked prompt) came, and no error chunk."""
        return bool(self.finish_reasons) and self.error is None

    def final_frame(self) -> bytes:
        """The held-back last chunk (the one with the finish reason, which also carries the final
        usage), sent once the usage record is committed; Gemini has no terminator event."""
        return self._held.joined()

    def _forward(self, blocks: list[bytes]) -> bytes:
        out: list[bytes] = []
        for block in blocks:
            event = parse_event(block)
            if event is None:
                continue
            frame = self._frame(event)
            if self._held or (self.finish_reasons and self.error is None):
                self._held.add(frame)  # the last chunk, and anything after it, waits for the record
            else:
                out.append(frame)
        return b"".join(out)

    def _frame(self, event: SSEEvent) -> bytes:
        if event.data is None:
            return event.frame()  # comments pass through
        self.events += 1
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return event.frame()  # not ours to judge; the client sees exactly what the upstream sent
        if not isinstance(chunk, dict):
            return event.frame()
        if "error" in chunk and "candidates" not in chunk:
            return self._upstream_error(chunk["error"])
        usage = usage_from_gemini(chunk.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
            self._tally.stop()  # the upstream's count is billed (usage never goes back to None)
        candidates = chunk.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            if isinstance(candidate, dict):
                self._note_candidate(candidate)
        feedback = chunk.get("promptFeedback")
        blocked = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if isinstance(blocked, str) and blocked and not candidates:
            self.finish_reasons.add(blocked)  # a blocked prompt: no candidates, and the stream ends
        return event.frame()

    def _note_candidate(self, candidate: dict[str, Any]) -> None:
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            self.finish_reasons.add(reason)
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                self._tally.add(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                self._tally.add(str(call.get("name") or "") + json_text(call.get("args") or {}))

    @staticmethod
    def _safe_error_frame(error: dict[str, Any], scrubber: Scrubber) -> bytes:
        """The upstream's error chunk rebuilt from its code, message and status (scrubbed); ``details``
        (which may name projects, services and URLs) are left out."""
        message = error.get("message")
        code = error.get("code")
        safe = {"code": code if isinstance(code, int) and not isinstance(code, bool) else 500,
                "message": scrubber.message(message, "The upstream failed mid-stream."),
                "status": scrubber.optional(error.get("status")) or "INTERNAL"}
        return data_frame(orjson.dumps({"error": safe}))

    _gateway_error_frame = staticmethod(stream_error_frame)
