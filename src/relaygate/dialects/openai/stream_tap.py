"""A light tap on an OpenAI chat stream that is being passed through.

It forwards the upstream's event bytes as they are, except three documented edits: the usage-only
chunk is dropped when the client did not ask for usage (we always ask the upstream for it), an
in-stream error event is rebuilt from its known fields, each scrubbed (no upstream URL, address or key), and
the ``[DONE]`` terminator is held back so that the usage record can be committed before the last byte.
On the way it notes the usage, the finish reasons, an in-stream error, and a running token count of the
generated text (for the offline count when the upstream reports no usage; it stops once usage arrives).
Most events are plain content deltas: a byte search tells them apart and they are forwarded unparsed,
their text counted later and only if the upstream never reports usage (``_UNCOUNTED_LIMIT``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from relaygate.core.usage import Usage
from relaygate.dialects.openai.errors import scrubbed_error, stream_error_frame
from relaygate.dialects.openai.usage import usage_from_openai
from relaygate.dialects.passthrough import SSEPassthroughTap
from relaygate.dialects.sse import SSEEvent, parse_event
from relaygate.scrub import NO_CHANNEL, Scrubber

DONE = b"[DONE]"


# Upstream events are mostly content deltas whose only use is the offline count, needed only if the
# upstream never reports usage (it is asked to). Those events pass on after a byte search, unparsed;
# their data waits here, up to this many bytes, and is parsed into the running count only when the
# bound is reached or the count is asked for. A stream that reports usage parses none of them.
_UNCOUNTED_LIMIT = 64 * 1024


class OpenAIStreamTap(SSEPassthroughTap):
    def __init__(self, *, client_wants_usage: bool, scrubber: Scrubber = NO_CHANNEL, model: str = "") -> None:
        super().__init__(scrubber, model)
        self._client_wants_usage = client_wants_usage
        self.usage: Usage | None = None
        self.saw_done = False
        self._uncounted: list[bytes] = []  # forwarded plain deltas not yet in the tally
        self._uncounted_bytes = 0

    @property
    def completed(self) -> bool:
        """The upstream ended the stream properly: ``[DONE]`` without an error event."""
        return self.saw_done and self.error is None

    def produced_tokens(self) -> int:
        self._count_uncounted()
        return self._tally.total()

    def final_frame(self) -> bytes:
        """The held-back terminator, sent once the usage record is committed."""
        return b"data: [DONE]\n\n"

    def _forward(self, blocks: list[bytes]) -> bytes:
        out: list[bytes] = []
        for block in blocks:
            if not block:
                continue
            if block.startswith(b"data: {") and b"\n" not in block and _NOTEWORTHY.search(block) is None:
                # A plain delta (one data line, nothing the meter reads but its text): forwarded as it came.
                self.events += 1
                if self.usage is None:
                    self._uncounted.append(block)
                    self._uncounted_bytes += len(block)
                    if self._uncounted_bytes > _UNCOUNTED_LIMIT:
                        self._count_uncounted()
                out.append(block + b"\n\n")
                continue
            event = parse_event(block)
            if event is not None:
                frame = self._frame(event)
                if frame:
                    out.append(frame)
        return b"".join(out)

    def _frame(self, event: SSEEvent) -> bytes:
        """The bytes to forward for one event: as it came, nothing, or an error event made safe."""
        data = event.data
        if data is None:
            return event.frame()  # comments such as ": keep-alive" pass through
        if data == DONE:
            self.saw_done = True
            return b""
        self.events += 1
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event.frame()  # not ours to judge; the client sees exactly what the upstream sent
        if not isinstance(chunk, dict):
            return event.frame()
        if "error" in chunk and "choices" not in chunk:
            return self._upstream_error(chunk["error"])
        usage = usage_from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
            self._tally.stop()  # the upstream's count is billed (usage never goes back to None)
            self._uncounted, self._uncounted_bytes = [], 0
        choices = chunk.get("choices")
        if isinstance(choices, list):
            self._note_finish_reasons(choices)
            if self.usage is None:
                self._count_choices(choices)
            if usage is not None and not choices and not self._client_wants_usage:
                return b""
        return event.frame()

    def _note_finish_reasons(self, choices: list[Any]) -> None:
        for choice in choices:
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.finish_reasons.add(str(choice["finish_reason"]))

    def _count_uncounted(self) -> None:
        uncounted, self._uncounted, self._uncounted_bytes = self._uncounted, [], 0
        for block in uncounted:
            try:
                chunk = orjson.loads(block[6:])
            except orjson.JSONDecodeError:
                continue
            choices = chunk.get("choices") if isinstance(chunk, dict) else None
            if isinstance(choices, list):
                self._count_choices(choices)

    def _count_choices(self, choices: list[Any]) -> None:
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            content = delta.get("content")
            if isinstance(content, str):
                self._tally.add(content)
            tool_calls = delta.get("tool_calls")
            for call in tool_calls if isinstance(tool_calls, list) else ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    self._tally.add(str(fn.get("name") or "") + str(fn.get("arguments") or ""))

    @staticmethod
    def _safe_error_frame(error: dict[str, Any], scrubber: Scrubber) -> bytes:
        """The upstream's in-stream error rebuilt from its known fields, every one scrubbed."""
        return b"data: " + orjson.dumps({"error": scrubbed_error(error, scrubber)}) + b"\n\n"

    _gateway_error_frame = staticmethod(stream_error_frame)


# What makes an event more than a plain delta: an error, or a usage report or finish reason that is not
# null (OpenAI sends ``"usage": null`` in every chunk of a stream that asked for usage). A key inside a
# JSON string has its quotes escaped, so this search has no false negatives on JSON as upstreams write
# it; a false positive only costs the full parse.
_NOTEWORTHY = re.compile(rb'"error"|"(?:usage|finish_reason)"\s*+:\s*+(?!null)')

