"""A light tap on an Anthropic Messages stream that is being passed through.

It forwards the upstream's events as they are (spec/anthropic.md §4), except two documented edits: an
``error`` event is rebuilt from its type and message, both scrubbed (no upstream URL, address or key), and the
``message_stop`` event is held back (``final_frame``) so that the usage record can be committed
before the last byte. On the way it notes the usage (input and cache counts from ``message_start``,
the cumulative ``message_delta`` usage on top), the stop reasons, an error event, and a running token
count of the generated text. ``message_start`` reports the input exactly but only the first output
tokens (1 or 2): until ``message_delta`` brings the final output count, the usage shown has the larger
of the reported output and the running count, so a stream cut or left early is billed for what was
delivered, not for 2 tokens. Counting stops at ``message_delta``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from relaygate.core.usage import Usage
from relaygate.dialects.anthropic.errors import stream_error_frame
from relaygate.dialects.anthropic.shared import usage_from_anthropic
from relaygate.dialects.held import HeldFrames
from relaygate.dialects.passthrough import SSEPassthroughTap
from relaygate.dialects.sse import SSEEvent, named_frame, parse_event
from relaygate.scrub import NO_CHANNEL, Scrubber

MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


class AnthropicStreamTap(SSEPassthroughTap):
    def __init__(self, *, client_wants_usage: bool, scrubber: Scrubber = NO_CHANNEL, model: str = "") -> None:
        # client_wants_usage: Anthropic always reports usage in the stream, and nothing is removed.
        super().__init__(scrubber, model)
        self._reported: Usage | None = None
        self._final = False  # message_delta brought the upstream's final output count
        self.saw_stop = False
        self._held = HeldFrames()
        self._usage: dict[str, Any] = {}

    @property
    def completed(self) -> bool:
        """The upstream ended the stream properly: ``message_stop`` without an error event."""
        return self.saw_stop and self.error is None

    @property
    def usage(self) -> Usage | None:
        """The upstream's usage; before ``message_delta``, with the running count as the output when it
        is larger (``message_start``'s output count is only the first token or two). Never back to None."""
        reported = self._reported
        if reported is None or self._final:
            return reported
        counted = self._tally.total()
        return replace(reported, output_tokens=counted) if counted > reported.output_tokens else reported

    def final_frame(self) -> bytes:
        """The held-back ``message_stop`` (as the upstream sent it), sent once the usage record is
        committed; the canonical one if none came."""
        return self._held.joined() or MESSAGE_STOP

    def _forward(self, blocks: list[bytes]) -> bytes:
        out: list[bytes] = []
        for block in blocks:
            event = parse_event(block)
            if event is None:
                continue
            after_stop = self.saw_stop
            frame = self._frame(event)
            # Nothing should follow message_stop; if something does, it stays behind it.
            if after_stop:
                self._held.add(frame)
            else:
                out.append(frame)
        return b"".join(out)

    def _frame(self, event: SSEEvent) -> bytes:
        """The bytes to forward for one event: as it came, nothing (held), or an error made safe."""
        if event.data is None:
            return event.frame()  # comments pass through
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self.events += 1
            return event.frame()  # not ours to judge; the client sees exactly what the upstream sent
        kind = payload.get("type", event.event) if isinstance(payload, dict) else event.event
        if kind == "message_stop":
            self.saw_stop = True
            self._held.add(event.frame())
            return b""
        self.events += 1
        if not isinstance(payload, dict):
            return event.frame()
        if kind == "error":
            return self._upstream_error(payload.get("error"))
        self._note(kind, payload)
        return event.frame()

    def _note(self, kind: Any, payload: dict[str, Any]) -> None:
        if kind == "message_start":
            message = payload.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            self._merge_usage(usage, final=False)
        elif kind == "message_delta":
            self._merge_usage(payload.get("usage"), final=True)
            delta = payload.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if isinstance(reason, str) and reason:
                self.finish_reasons.add(reason)
        elif kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                self._tally.add(block["name"])
        elif kind == "content_block_delta":
            self._note_delta(payload.get("delta"))

    def _merge_usage(self, raw: Any, *, final: bool) -> None:
        """``message_delta`` usage is cumulative and may repeat the input counts: the latest non-null
        value of each field wins."""
        if isinstance(raw, dict):
            self._usage.update({key: value for key, value in raw.items() if value is not None})
            self._reported = usage_from_anthropic(self._usage) or self._reported
            if final and self._reported is not None and "output_tokens" in raw:
                self._final = True
                self._tally.stop()  # the upstream's final count is billed

    def _note_delta(self, delta: Any) -> None:
        if not isinstance(delta, dict):
            return
        for kind, field in (("text_delta", "text"), ("thinking_delta", "thinking"),
                            ("input_json_delta", "partial_json")):
            if delta.get("type") == kind and isinstance(delta.get(field), str):
                self._tally.add(delta[field])

    @staticmethod
    def _safe_error_frame(error: dict[str, Any], scrubber: Scrubber) -> bytes:
        """The upstream's error event rebuilt from its type and message, both scrubbed."""
        message = error.get("message")
        safe = {"type": scrubber.optional(error.get("type")) or "api_error",
                "message": scrubber.message(message, "The upstream failed mid-stream.")}
        return named_frame("error", orjson.dumps({"type": "error", "error": safe}))

    _gateway_error_frame = staticmethod(stream_error_frame)
