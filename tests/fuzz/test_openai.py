"""Hostile requests against OpenAI's chat completions and embeddings (2,000+ per run)."""

from __future__ import annotations

from tests.fuzz.harness import fuzz
from tests.fuzz.hostile import bodies, headers, paths
from tests.fuzz.surfaces import OPENAI
from tests.helpers.gateway import Gateway


def test_hostile_bodies(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, bodies(OPENAI), batches=50, batch_size=26)


def test_hostile_headers(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, headers(OPENAI), batches=16, batch_size=25)


def test_hostile_paths_and_methods(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, paths(OPENAI), batches=16, batch_size=25)
