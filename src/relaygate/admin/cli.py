"""``relaygate keys | channels | prices | usage``: the admin operations on the configured database.

The commands need no running server: they migrate the database, work on it directly through
``AdminService`` (the same code as the admin API), and bump the configuration version, so a running
gateway picks every change up within ``snapshot_poll_s``. ``keys create`` waits for that: it asks the
gateway at ``listen`` for ``/v1/models`` with the new key until it is accepted (up to
``snapshot_poll_s`` and a margin), and says plainly when no gateway answered or it did not accept
the key yet; the other changes say when they take effect. Exit status: 0 on success, 1 when the
operation failed (bad input, unknown item, a failed channel test), 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import orjson

from relaygate.admin.service import AdminService
from relaygate.cli_settings import settings_for_command
from relaygate.errors import GatewayError
from relaygate.settings import Settings

Action = Callable[[AdminService, argparse.Namespace], Awaitable[int]]
Command = Callable[[argparse.Namespace], int]


# --- running ------------------------------------------------------------------------------------

def _command(action: Action, *, needs_http: bool = False) -> Command:
    def run(args: argparse.Namespace) -> int:
        return asyncio.run(_session(settings_for_command(args), args, action, needs_http))

    return run


async def _session(settings: Settings, args: argparse.Namespace, action: Action, needs_http: bool) -> int:
    from relaygate.bootstrap import load_secret
    from relaygate.infra.http import HttpTransport, create_session
    from relaygate.server import prepare_database
    from relaygate.storage.crypto import SecretBox
    from relaygate.storage.engine import create_engine

    prepared = await prepare_database(settings, sync_config=False)
    if prepared.new_admin_key:
        print("relaygate: generated the admin credential; it is shown only this once:\n"
              f"  RELAYGATE_ADMIN_KEY={prepared.new_admin_key}", file=sys.stderr)
    engine = create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    session = create_session() if needs_http else None
    try:
        service = AdminService(engine, SecretBox(load_secret(settings)),
                               http=HttpTransport(session) if session is not None else None)
        args.settings = settings  # for the commands that talk to the running gateway
        return await action(service, args)
    except GatewayError as exc:
        print(f"relaygate: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if session is not None:
            await session.close()
        await engine.dispose()


# --- output -------------------------------------------------------------------------------------

def _print_json(payload: Any) -> None:
    print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- keys ---------------------------------------------------------------------------------------

async def _keys_create(admin: AdminService, args: argparse.Namespace) -> int:
    created = await admin.create_key(_given(name=args.name, quota_usd=args.quota_usd, models=_csv(args.models),
                                            ip_allow=_csv(args.ip_allow), expires_at=args.expires_at))
    if args.json:
        _print_json(created)
        return 0
    print(f"relaygate: created key {created['id']} ({created['name']}); the key is shown only this once:",
          file=sys.stderr)
    print(created["key"], flush=True)
    print(f"relaygate: {await _await_live_key(args.settings, created['key'])}", file=sys.stderr)
    return 0


def _gateway_url(settings: Settings) -> str:
    """Where this config's gateway answers locally (a wildcard listen address is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


async def _await_live_key(settings: Settings, key: str) -> str:
    """Wait until the gateway at ``listen`` accepts a new key (its snapshot poll has seen the change),
    so that the key works the moment this command returns; else say when it will."""
    base = _gateway_url(settings)
    later = (f"gateways using this database accept it within snapshot_poll_s ({settings.snapshot_poll_s:g} s) "
             "of their next poll")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.snapshot_poll_s + 2.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as http:
        while True:
            try:
                async with http.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"}) as answer:
                    status = answer.status
            except (aiohttp.ClientError, OSError, TimeoutError):
                return f"no gateway answered at {base}; {later}"
            if status == 200:
                return f"the gateway at {base} accepts the key now"
            if status != 401 or loop.time() > deadline:
                return f"the gateway at {base} does not accept the key yet (HTTP {status}); {later}"
            await asyncio.sleep(0.05)


def _when_live(args: argparse.Namespace) -> str:
    return (f"relaygate: running gateways apply this within snapshot_poll_s "
            f"({args.settings.snapshot_poll_s:g} s)")


async def _keys_list(admin: AdminService, args: argparse.Namespace) -> int:
    keys = await admin.list_keys()
    if args.json:
        _print_json(keys)
        return 0
    rows = [[k["id"], k["name"], k["hint"], "yes" if k["enabled"] else "no",
             k["quota_usd"] if k["quota_usd"] is not None else "unlimited", k["used_usd"]] for k in keys]
    print(_table(["ID", "NAME", "HINT", "ENABLED", "QUOTA_USD", "USED_USD"], rows))
    return 0


async def _keys_disable(admin: AdminService, args: argparse.Namespace) -> int:
    key = await admin.disable_key(await admin.resolve_key(args.ref))
    print(f"relaygate: disabled key {key['id']} ({key['name']})")
    print(_when_live(args), file=sys.stderr)
    return 0


# --- channels -----------------------------------------------------------------------------------

def _api_key(args: argparse.Namespace) -> str | None:
    if args.api_key_env is None:
        return str(args.api_key) if args.api_key is not None else None
    value = os.environ.get(args.api_key_env)
    if value is None:
        raise GatewayError(f"the environment variable {args.api_key_env} is not set")
    return value


async def _channels_add(admin: AdminService, args: argparse.Namespace) -> int:
    body = _given(name=args.name, type=args.type, base_url=args.base_url, api_key=_api_key(args),
                  models=_csv(args.models), priority=args.priority, weight=args.weight)
    channel = await admin.create_channel(body)
    if args.json:
        _print_json(channel)
        return 0
    print(f"relaygate: created channel {channel['id']} ({channel['name']}, {channel['type']})")
    print(_when_live(args), file=sys.stderr)
    return 0


async def _channels_list(admin: AdminService, args: argparse.Namespace) -> int:
    channels = await admin.list_channels()
    if args.json:
        _print_json(channels)
        return 0
    rows = [[c["id"], c["name"], c["type"], "yes" if c["enabled"] else "no", c["priority"], c["weight"],
             c["api_key_hint"] or "-", ",".join(c["models"])] for c in channels]
    print(_table(["ID", "NAME", "TYPE", "ENABLED", "PRIORITY", "WEIGHT", "KEY", "MODELS"], rows))
    return 0


async def _channels_disable(admin: AdminService, args: argparse.Namespace) -> int:
    channel = await admin.disable_channel(await admin.resolve_channel(args.ref))
    print(f"relaygate: disabled channel {channel['id']} ({channel['name']})")
    print(_when_live(args), file=sys.stderr)
    return 0


async def _channels_test(admin: AdminService, args: argparse.Namespace) -> int:
    result = await admin.test_channel(await admin.resolve_channel(args.ref))
    if args.json:
        _print_json(result)
    elif result["ok"]:
        print(f"ok: channel {result['name']} answered HTTP {result['status']} in {result['latency_ms']} ms")
    else:
        print(f"failed: channel {result['name']}: {result['error']} ({result['latency_ms']} ms)")
    return 0 if result["ok"] else 1


# --- prices -------------------------------------------------------------------------------------

_PRICE_OPTIONS = ("input", "output", "cached_input", "cache_write", "input_image", "per_call")


def _price_text(price: dict[str, Any]) -> str:
    parts = [f"{name} {price[name]}" for name in _PRICE_OPTIONS if price[name] is not None]
    if price.get("per_image"):
        parts.append(f"per_image {_image_amounts_text(price['per_image'])}")
    return ", ".join(parts)


def _image_amounts_text(amounts: dict[str, str] | None) -> str:
    return "-" if not amounts else ",".join(f"{key}={value}" for key, value in amounts.items())


def _per_image_option(values: list[str] | None) -> str | dict[str, str] | None:
    """``--per-image 0.04`` (any size) or ``--per-image default=0.04 --per-image 1792x1024/hd=0.12``."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    amounts: dict[str, str] = {}
    for value in values:
        key, sep, amount = value.partition("=")
        if not sep:
            raise GatewayError("--per-image takes one amount, or KEY=USD entries (with a 'default').",
                               status=400, code="invalid_value", param="per_image")
        amounts[key] = amount
    return amounts


async def _prices_list(admin: AdminService, args: argparse.Namespace) -> int:
    prices = await admin.list_prices()
    if args.json:
        _print_json(prices)
        return 0
    rows = [[p["model"], *("-" if p[f] is None else p[f] for f in _PRICE_OPTIONS),
             _image_amounts_text(p["per_image"]), p["source"]] for p in prices]
    print(_table(["MODEL", "INPUT", "OUTPUT", "CACHED_INPUT", "CACHE_WRITE", "INPUT_IMAGE", "PER_CALL", "PER_IMAGE",
                  "SOURCE"], rows))
    return 0


async def _prices_set(admin: AdminService, args: argparse.Namespace) -> int:
    options = {f: getattr(args, f) for f in _PRICE_OPTIONS}
    price = await admin.put_price(args.pattern, _given(**options, per_image=_per_image_option(args.per_image)))
    if args.json:
        _print_json(price)
        return 0
    print(f"relaygate: set the price of {price['model']} ({_price_text(price)})")
    print(_when_live(args), file=sys.stderr)
    return 0


async def _prices_delete(admin: AdminService, args: argparse.Namespace) -> int:
    deleted = await admin.delete_price(args.pattern)
    if args.json:
        _print_json(deleted)
        return 0
    print(f"relaygate: deleted the price of {deleted['model']}")
    print(_when_live(args), file=sys.stderr)
    return 0


# --- usage --------------------------------------------------------------------------------------

async def _usage_filters(admin: AdminService, args: argparse.Namespace) -> dict[str, str]:
    key = args.key
    if key is not None and not key.isdigit():
        key = str(await admin.resolve_key(key))
    return _given(key_id=key, model=args.model, channel_id=args.channel, end_reason=args.end_reason,
                  request_id=args.request_id, client_request_id=args.client_request_id,
                  since=args.since, until=args.until)


async def _usage(admin: AdminService, args: argparse.Namespace) -> int:
    if args.view == "summary":
        return await _usage_summary(admin, args)
    params = await _usage_filters(admin, args)
    page = await admin.list_usage({**params, **_given(limit=args.limit, cursor=args.cursor)})
    if args.json:
        _print_json(page)
        return 0
    rows = [[u["id"], u["created_at"], u["request_id"], u["key_name"] or u["key_id"], u["model"],
             u["channel_name"] or "-", u["input_tokens"], u["output_tokens"], u["images"] or "-", u["cost_usd"],
             u["end_reason"]] for u in page["data"]]
    print(_table(["ID", "TIME", "REQUEST", "KEY", "MODEL", "CHANNEL", "IN", "OUT", "IMAGES", "COST_USD", "END"],
                 rows))
    if page["next_cursor"] is not None:
        print(f"(more: --cursor {page['next_cursor']})", file=sys.stderr)
    return 0


async def _usage_summary(admin: AdminService, args: argparse.Namespace) -> int:
    params = await _usage_filters(admin, args)
    summary = await admin.usage_summary({**params, **_given(group_by=args.group_by)})
    if args.json:
        _print_json(summary)
        return 0
    groups: list[str] = summary["group_by"]
    sums = ["requests", "input_tokens", "output_tokens", "cost_usd"]
    # Without groups the one data row is the total itself: only the labelled total row is printed,
    # under an unnamed label column.
    labels = [g.upper() for g in groups] or [""]
    rows = [[r.get(g) for g in groups] + [r[s] for s in sums] for r in summary["data"]] if groups else []
    rows.append(["TOTAL", *[""] * (len(labels) - 1), *[summary["total"][s] for s in sums]])
    print(_table([*labels, "REQUESTS", "IN", "OUT", "COST_USD"], rows))
    return 0


# --- parsers ------------------------------------------------------------------------------------

def _leaf(sub: Any, name: str, help_text: str, command: Command) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    parser.add_argument("--config", "-c", dest="config", default=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=command)
    return parser


def _add_keys(sub: Any) -> None:
    keys = sub.add_parser("keys", help="client keys").add_subparsers(dest="keys_action", required=True)
    create = _leaf(keys, "create", "create a key (printed only this once)", _command(_keys_create))
    create.add_argument("name")
    create.add_argument("--quota-usd", help="spend limit in USD (default: unlimited)")
    create.add_argument("--models", help="comma-separated model patterns (default: *)")
    create.add_argument("--ip-allow", help="comma-separated CIDR blocks (default: any address)")
    create.add_argument("--expires-at", type=int, help="unix seconds")
    _leaf(keys, "list", "list keys", _command(_keys_list))
    _leaf(keys, "disable", "disable a key", _command(_keys_disable)).add_argument("ref", metavar="ID|NAME")


def _add_channels(sub: Any) -> None:
    channels = sub.add_parser("channels", help="upstream channels").add_subparsers(dest="channels_action",
                                                                                 required=True)
    _leaf(channels, "list", "list channels", _command(_channels_list))
    add = _leaf(channels, "add", "add a channel", _command(_channels_add))
    add.add_argument("name")
    add.add_argument("--type", required=True, help="openai | mock | ...")
    add.add_argument("--base-url")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--api-key", help="the upstream key (visible in the process list; prefer --api-key-env)")
    secret.add_argument("--api-key-env", metavar="VAR", help="read the upstream key from this variable")
    add.add_argument("--models", help="comma-separated model patterns")
    add.add_argument("--priority", type=int)
    add.add_argument("--weight", type=int)
    _leaf(channels, "disable", "disable a channel", _command(_channels_disable)).add_argument("ref",
                                                                                           metavar="ID|NAME")
    test = _leaf(channels, "test", "call the upstream once (exit 1 when it fails)",
                 _command(_channels_test, needs_http=True))
    test.add_argument("ref", metavar="ID|NAME")


def _add_prices(sub: Any) -> None:
    prices = sub.add_parser("prices", help="model prices").add_subparsers(dest="prices_action", required=True)
    _leaf(prices, "list", "list prices", _command(_prices_list))
    put = _leaf(prices, "set", "create or replace the price of a model or pattern (options left out: 0 or none)",
                _command(_prices_set))
    put.add_argument("pattern", metavar="PATTERN", help="a model name or * pattern")
    put.add_argument("--input", metavar="USD", help="USD per 1M input tokens (default 0)")
    put.add_argument("--output", metavar="USD", help="USD per 1M output tokens (default 0)")
    put.add_argument("--cached-input", metavar="USD", help="USD per 1M cached input tokens (default: --input)")
    put.add_argument("--cache-write", metavar="USD", help="USD per 1M cache-write tokens (default: --input)")
    put.add_argument("--input-image", metavar="USD",
                     help="USD per 1M input tokens that encode images (image models; default: --input)")
    put.add_argument("--per-call", metavar="USD", help="USD per request; wins over every other price")
    put.add_argument("--per-image", metavar="[KEY=]USD", action="append",
                     help="USD per image: one amount, or repeated SIZE=USD, SIZE/QUALITY=USD, */QUALITY=USD with "
                          "default=USD; wins over token prices for image calls")
    delete = _leaf(prices, "delete", "remove a price", _command(_prices_delete))
    delete.add_argument("pattern", metavar="PATTERN")


def _add_usage(sub: Any) -> None:
    usage = _leaf(sub, "usage", "usage records (newest first), or 'usage summary'", _command(_usage))
    usage.add_argument("view", nargs="?", choices=["list", "summary"], default="list")
    usage.add_argument("--key", help="key id or name")
    usage.add_argument("--model")
    usage.add_argument("--channel", help="channel id")
    usage.add_argument("--end-reason")
    usage.add_argument("--request-id", help="relaygate's id of a request (the X-Request-Id it answered)")
    usage.add_argument("--client-request-id", help="the id a client sent (X-Client-Request-Id / X-Request-Id)")
    usage.add_argument("--since", help="unix seconds or ISO-8601")
    usage.add_argument("--until", help="unix seconds or ISO-8601")
    usage.add_argument("--limit", help="records per page (default 50, at most 1000)")
    usage.add_argument("--cursor", help="continue after a previous page")
    usage.add_argument("--group-by", help="for 'summary': comma-separated key_id, model, channel_id, day")


def add_commands(sub: Any) -> None:
    _add_keys(sub)
    _add_channels(sub)
    _add_prices(sub)
    _add_usage(sub)
