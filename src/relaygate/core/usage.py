"""Token usage in one provider-neutral shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    """What one request consumed.

    ``input_tokens`` counts every prompt token, cached ones included (OpenAI's convention);
    ``cached_input_tokens`` and ``cache_write_tokens`` say how many of them were read from or written
    to a prompt cache. ``reasoning_tokens`` are part of ``output_tokens``. ``image_input_tokens`` are
    the prompt tokens that encode input images (image models such as ``gpt-image-1`` price them apart);
    they are part of ``input_tokens`` too.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    image_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


ZERO_USAGE = Usage()
