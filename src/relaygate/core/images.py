"""One image request in neutral terms: what to make, how many, at which size and quality.

The request's own fields stay in ``params`` exactly as the client sent them (a JSON body, or the text
fields of a multipart form); only what routing and billing need is lifted out and checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ImageOperation(StrEnum):
    GENERATE = "generate"  # POST /v1/images/generations (JSON)
    EDIT = "edit"  # POST /v1/images/edits (multipart)
    VARIATION = "variation"  # POST /v1/images/variations (multipart)


@dataclass(frozen=True, slots=True)
class ImageJob:
    operation: ImageOperation
    model: str
    prompt: str | None
    n: int
    size: str  # "1024x1024", "auto"...: as asked, or the model's default
    quality: str  # "standard", "hd", "low"...: as asked, or the model's default
    response_format: str | None  # "url" | "b64_json" | None (the upstream's default)
    params: dict[str, Any]  # the client's fields (JSON body or form text fields), ``model`` filled in
    stream: bool = False  # the answer as SSE events (GPT image models' partial images)

    @property
    def multipart(self) -> bool:
        return self.operation is not ImageOperation.GENERATE
