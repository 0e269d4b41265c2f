"""The skeleton the passthrough taps of the SSE chat dialects share (``dialects/<name>/stream_tap.py``).

Each reads the upstream's SSE events as they come (as their bytes, ``SSEDecoder.blocks``: a tap parses
only the events it must look into), forwards them with its dialect's documented edits,
and notes what the meter needs: an in-stream error (rebuilt from its known fields, scrubbed), the
finish reasons, and a running token count of the generated text. What differs per dialect — which
events are edited or held back, where usage is reported, when the stream is complete — is the
subclass's ``_forward``, ``completed`` and ``final_frame``; the per-chunk path is one call to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from relaygate.billing.tokenizer import TokenTally
from relaygate.dialects.sse import SSEDecoder
from relaygate.errors import GatewayError
from relaygate.scrub import Scrubber


class SSEPassthroughTap(ABC):
    def __init__(self, scrubber: Scrubber, model: str) -> None:
        self._decoder = SSEDecoder()
        self._scrubber = scrubber
        self.error: dict[str, Any] | None = None
        self.events = 0
        self.finish_reasons: set[str] = set()
        self._tally = TokenTally(model)  # the client's model name, as the meter counts

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to forward to the client for this upstream read (possibly empty)."""
        return self._forward(self._decoder.blocks(chunk))

    def finish(self) -> bytes:
        """Bytes to forward for anything left when the upstream closed."""
        return self._forward([self._decoder.flush_block()])

    def produced_tokens(self) -> int:
        return self._tally.total()

    def error_frame(self, error: GatewayError, request_id: str) -> bytes:
        """A gateway error as this dialect's in-stream error event (the stream's last)."""
        return self._gateway_error_frame(error, request_id)

    def _upstream_error(self, raw: Any) -> bytes:
        """Note the upstream's in-stream error; the frame that replaces it, rebuilt and scrubbed."""
        self.error = raw if isinstance(raw, dict) else {"message": str(raw)}
        return self._safe_error_frame(self.error, self._scrubber)

    @abstractmethod
    def _forward(self, blocks: list[bytes]) -> bytes:
        """The bytes to forward for these upstream events (each one's bytes; possibly empty blocks)."""

    @property
    @abstractmethod
    def completed(self) -> bool:
        """The upstream ended the stream properly, without an error."""

    @abstractmethod
    def final_frame(self) -> bytes:
        """The held-back last event, sent once the usage record is committed."""

    @staticmethod
    @abstractmethod
    def _safe_error_frame(error: dict[str, Any], scrubber: Scrubber) -> bytes:
        """The upstream's in-stream error rebuilt from its known fields, each scrubbed."""

    @staticmethod
    @abstractmethod
    def _gateway_error_frame(error: GatewayError, request_id: str) -> bytes:
        """The dialect's in-stream error event for a gateway error."""
