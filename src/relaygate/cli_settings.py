"""The settings of one command-line run: the config file (``--config``), then the command's flags.

Below both ``cli.py`` (the commands) and ``admin/cli.py`` (the admin commands it adds), so neither
reaches into the other for it."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from relaygate.errors import ConfigError
from relaygate.settings import Settings, load_settings, parse_listen


def settings_for_command(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "listen", None):
        host, port = parse_listen(args.listen)
        settings = replace(settings, host=host, port=port)
    if getattr(args, "workers", None):
        settings = replace(settings, workers=args.workers)
    if not getattr(args, "log_level", None):  # --log-level wins over the file and RELAYGATE_LOG_LEVEL
        logging.getLogger().setLevel(log_level(settings.log_level))
    return settings


def log_level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ConfigError(f"log_level must be one of debug, info, warning, error, got {name!r}")
    return level
