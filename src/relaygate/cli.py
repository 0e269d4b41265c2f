"""``relaygate serve | migrate | admin-key | keys | channels | prices | usage``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from relaygate import __version__
from relaygate.cli_settings import log_level, settings_for_command
from relaygate.errors import ConfigError


def _cmd_serve(args: argparse.Namespace) -> int:
    from relaygate.server import run

    run(settings_for_command(args))
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from relaygate.server import prepare_database, show_new_admin_key

    show_new_admin_key(asyncio.run(prepare_database(settings_for_command(args))))
    print("relaygate: database is up to date and the config file is applied")
    return 0


def _cmd_admin_key(args: argparse.Namespace) -> int:
    from relaygate.bootstrap import ensure_home, reset_admin_key
    from relaygate.server import prepare_database
    from relaygate.storage.engine import create_engine

    settings = settings_for_command(args)
    ensure_home(settings)
    asyncio.run(prepare_database(settings, sync_config=False))

    async def reset() -> str:
        engine = create_engine(settings.database_url)
        try:
            return await reset_admin_key(engine)
        finally:
            await engine.dispose()

    key = asyncio.run(reset())
    print(f"RELAYGATE_ADMIN_KEY={key}")
    if settings.admin_key:
        print("note: admin_key is set in the config or environment, and it takes precedence", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaygate", description="A self-hosted AI API gateway.")
    parser.add_argument("--config", "-c", help="YAML config file (see docs/configuration.md)")
    parser.add_argument("--log-level", default=None, help="debug | info | warning | error")
    parser.add_argument("--version", action="version", version=f"relaygate {__version__}")
    # ``--listen`` is read before or after ``serve`` (``relaygate --listen :9000 serve`` too).
    parser.add_argument("--listen", default=None, help="HOST:PORT to serve on (default 127.0.0.1:8080)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS)
    serve.add_argument("--listen", default=argparse.SUPPRESS, help="HOST:PORT (default 127.0.0.1:8080)")
    serve.add_argument("--workers", type=int, help="processes sharing the port (default 1)")
    serve.set_defaults(func=_cmd_serve)
    migrate = sub.add_parser("migrate", help="apply database migrations and sync the config file")
    migrate.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS)
    migrate.set_defaults(func=_cmd_migrate)
    admin_key = sub.add_parser("admin-key", help="admin credential")
    admin_key.add_argument("action", choices=["reset"])
    admin_key.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS)
    admin_key.set_defaults(func=_cmd_admin_key)
    from relaygate.admin import cli as admin_cli

    admin_cli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        logging.basicConfig(level=log_level(args.log_level or "info"), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)
        code = args.func(args)
    except ConfigError as exc:
        print(f"relaygate: configuration error: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)
