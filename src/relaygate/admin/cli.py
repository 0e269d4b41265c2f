"""CLI commands for keys, channels and usage (filled in with the admin service)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: Any) -> None:
    _ = argparse
