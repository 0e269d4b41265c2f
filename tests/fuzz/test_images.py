"""Hostile requests against the image routes: multipart edits and variations (sync and async), and
JSON generations (2,000+ per run)."""

from __future__ import annotations

from tests.fuzz.harness import fuzz
from tests.fuzz.hostile import bodies, headers, paths
from tests.fuzz.multipart import multipart_bodies
from tests.fuzz.surfaces import IMAGES_JSON
from tests.helpers.gateway import Gateway


def test_hostile_multipart(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, multipart_bodies(), batches=48, batch_size=25)


def test_hostile_generation_bodies(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, bodies(IMAGES_JSON), batches=20, batch_size=25)


def test_hostile_headers(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, headers(IMAGES_JSON), batches=8, batch_size=25)


def test_hostile_paths_and_methods(fuzz_gateway: Gateway) -> None:
    fuzz(fuzz_gateway, paths(IMAGES_JSON), batches=8, batch_size=25)
