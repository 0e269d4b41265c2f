"""A light tap on an OpenAI chat stream that is being passed through.

It forwards the upstream's event bytes as they are, except three documented edits: the usage-only
chunk is dropped when the client did not ask for usage (we always ask the upstream for it), an
in-stream error event is rebuilt from its known fields, each scrubbed (no upstream URL, address or key), and
the ``[DONE]`` terminator is held back so that the usage record can be committed before the last byte.
On the way it notes the usage, the finish reasons, an in-stream error, and a running token count of the
generated text (for the offline count when the upstream reports no usage; it stops once usage arrives).
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.billing.tokenizer import TokenTally
from relaygate.core.usage import Usage
from relaygate.dialects.openai.errors import scrubbed_error
from relaygate.dialects.openai.usage import usage_from_openai
from relaygate.scrub import NO_CHANNEL, Scrubber
from relaygate.sse import SSEDecoder, SSEEvent

DONE = b"[DONE]"


class OpenAIStreamTap:
    def __init__(self, *, client_wants_usage: bool, scrubber: Scrubber = NO_CHANNEL, model: str = "") -> None:
        self._decoder = SSEDecoder()
        self._scrubber = scrubber
        self._client_wants_usage = client_wants_usage
        self.usage: Usage | None = None
        self.saw_done = False
        self.finish_reasons: set[str] = set()
        self.error: dict[str, Any] | None = None
        self.events = 0
        self._tally = TokenTally(model)  # the client's model name, as the meter counts

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to forward to the client for this upstream read (possibly empty)."""
        return self._forward(self._decoder.feed(chunk))

    def finish(self) -> bytes:
        """Bytes to forward for anything left when the upstream closed."""
        return self._forward(self._decoder.flush())

    @property
    def completed(self) -> bool:
        """The upstream ended the stream properly: ``[DONE]`` without an error event."""
        return self.saw_done and self.error is None

    def produced_tokens(self) -> int:
        return self._tally.total()

    def final_frame(self) -> bytes:
        """The held-back terminator, sent once the usage record is committed."""
        return b"data: [DONE]\n\n"

    def _forward(self, events: list[SSEEvent]) -> bytes:
        return b"".join(self._frame(event) for event in events)

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
            self.error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            return _scrubbed_error_frame(self.error, self._scrubber)
        usage = usage_from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
            self._tally.stop()  # the upstream's count is billed (usage never goes back to None)
        choices = chunk.get("choices")
        if isinstance(choices, list):
            self._note_choices(choices)
            if usage is not None and not choices and not self._client_wants_usage:
                return b""
        return event.frame()

    def _note_choices(self, choices: list[Any]) -> None:
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                self.finish_reasons.add(str(choice["finish_reason"]))
            delta = choice.get("delta")
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


def _scrubbed_error_frame(error: dict[str, Any], scrubber: Scrubber) -> bytes:
    """The upstream's in-stream error rebuilt from its known fields, every one scrubbed."""
    return b"data: " + orjson.dumps({"error": scrubbed_error(error, scrubber)}) + b"\n\n"
