"""Hostile requests against Gemini's generateContent, streamGenerateContent, countTokens and embedContent
(2,000+ per run)."""

from __future__ import annotations

from tests.fuzz.harness import fuzz
from tests.fuzz.hostile import bodies, headers, paths
from tests.fuzz.surfaces import GEMINI
from tests.helpers.gateway import Gateway


def test_hostile_bodies(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, bodies(GEMINI), batches=50, batch_size=26)


def test_hostile_headers(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, headers(GEMINI), batches=16, batch_size=25)


def test_hostile_paths_and_methods(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, paths(GEMINI), batches=16, batch_size=25)
