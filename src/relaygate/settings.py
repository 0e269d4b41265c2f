"""One typed settings object, read once at start.

Sources, later ones winning: built-in defaults, the YAML file given with ``--config``
(``${VAR}`` and ``${VAR:-default}`` read the environment), then ``RELAYGATE_*`` variables.
Request code never reads the environment; it is handed a ``Settings``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from relaygate.errors import ConfigError
from relaygate.hints import unknown_name

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

CHANNEL_FIELDS = ("name", "type", "base_url", "api_key", "models", "model_map", "priority", "weight", "enabled",
                  "options")
KEY_FIELDS = ("name", "key", "quota_usd", "models", "ip_allow", "expires_at", "enabled")

# Paths of an endpoint, which relaygate appends itself: a base_url ending in one would be called twice over
# (``…/v1/chat/completions/v1/chat/completions``) and answer 404 on every request.
_ENDPOINT_TAILS = ("/chat/completions", "/completions", "/messages", "/messages/count_tokens", "/embeddings",
                   "/images/generations", "/images/edits", "/images/variations", "/responses", "/models",
                   "/mj/submit/imagine")
_ENDPOINT_METHODS = re.compile(r":(stream)?generatecontent|:embedcontent|:batchembedcontents|:counttokens|/models/")


def endpoint_in_base_url(url: str) -> str | None:
    """What is wrong with a channel ``base_url`` that ends in an endpoint path, or None. relaygate adds
    the endpoint itself, so the URL must be the upstream's root (a trailing ``/v1`` is tolerated)."""
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").lower()
    tail = next((t for t in _ENDPOINT_TAILS if path.endswith(t)), None)
    if tail is None and not _ENDPOINT_METHODS.search(path.split("//", 1)[-1]):
        return None
    return ("base_url must be the upstream's root, such as https://api.openai.com (a trailing /v1 is fine), "
            "not an endpoint: relaygate appends /v1/chat/completions, /v1/messages, :generateContent and "
            "the others itself")

@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """An upstream declared in the config file; synced into the database at start."""

    name: str
    type: str
    base_url: str = ""
    api_key: str = ""
    models: tuple[str, ...] = ()
    model_map: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """A fixed client key declared in the config file (bootstrap and tests)."""

    name: str
    key: str
    quota_usd: str | None = None
    models: tuple[str, ...] = ("*",)
    ip_allow: tuple[str, ...] = ()
    expires_at: int | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 8080
    database: str = ""  # empty: sqlite in ``home``
    redis: str | None = None
    admin_key: str | None = None
    secret: str | None = None  # encrypts upstream keys at rest; generated into ``home`` when absent
    workers: int = 1
    log_level: str = "info"
    access_log: bool = True
    max_body_bytes: int = 32 * 1024 * 1024
    max_upstream_body_bytes: int = 64 * 1024 * 1024
    connect_timeout_s: float = 10.0
    first_byte_timeout_s: float = 300.0
    stream_idle_timeout_s: float = 300.0
    max_attempts: int = 3
    circuit_failures: int = 5
    circuit_cooldown_s: float = 30.0
    reserve_output_tokens: int = 1024
    unpriced_models: str = "reject"  # reject | free
    snapshot_poll_s: float = 1.0
    shutdown_timeout_s: float = 30.0
    header_read_timeout_s: float = 30.0  # a request head must be complete this long after connect / the last answer
    body_read_timeout_s: float = 120.0  # a request body must arrive whole this long after its head, else 408
    sqlite_synchronous: str = "normal"
    media_fetch_max_bytes: int = 20 * 1024 * 1024
    media_fetch_timeout_s: float = 20.0
    allow_private_media_urls: bool = False
    max_image_upload_bytes: int = 50 * 1024 * 1024  # one multipart image request (edits, variations)
    task_poll_s: float = 1.0  # how often each process looks for task work (async images, Midjourney)
    task_lease_s: float = 30.0  # a claimed task is another process's to take after this long without renewal
    task_timeout_s: float = 900.0  # an async task not finished this long after submit fails, refunded
    task_max_runs: int = 3  # an async image task interrupted (restart, crash) this often fails, refunded
    webhook_timeout_s: float = 10.0
    webhook_attempts: int = 5  # deliveries of a task's webhook before giving up (backoff doubles from 2 s)
    allow_private_webhooks: bool = False
    public_url: str | None = None  # how clients and upstreams reach this gateway (Midjourney callbacks, image links)
    mj_poll_s: float = 5.0  # how often unfinished Midjourney tasks are fetched from their upstream, per channel
    mj_task_timeout_s: float = 3600.0  # a Midjourney task not finished this long after submit fails, refunded
    mj_image_url_ttl_s: float = 3600.0  # lifetime of a signed /mj/image link
    mj_image_cache_bytes: int = 64 * 1024 * 1024  # finished task images kept in memory for /mj/image
    channels: tuple[ChannelConfig, ...] = ()
    prices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    keys: tuple[KeyConfig, ...] = ()

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.home / 'relaygate.db'}"

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in one string; an unset variable without a default is an error."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"config refers to ${{{name}}}, which is not set")

    return _VAR.sub(sub, text)


def load_settings(config_path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    environ = dict(os.environ if env is None else env)
    data: dict[str, Any] = {}
    folder: Path | None = None
    if config_path is not None:
        path = Path(config_path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(raw) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping at the top level")
        # Substitute after parsing, inside string values only, so that a variable's value is never
        # read as YAML (an all-digit key stays a string; a value with ": " cannot break the file).
        data = _interpolate_tree(loaded, environ)
        folder = path.resolve().parent
    settings = _from_mapping(data)
    if folder is not None:
        settings = _beside_config(settings, folder)
    return _apply_env(settings, environ)


_RELATIVE_SQLITE = re.compile(r"^(sqlite[+a-z]*:///)(?!/)(?!:memory:)(.+)$")


def _beside_config(settings: Settings, folder: Path) -> Settings:
    """The file's relative paths (``home``, its default ``./data``, a SQLite database) as seen from the
    config file's folder, so that every command given the same ``--config`` uses the same data folder and
    credential, wherever it is run from. Paths from ``RELAYGATE_*`` variables stay relative to the
    working directory, like any path on a command line."""
    home = settings.home if settings.home.is_absolute() else folder / settings.home
    database = settings.database
    match = _RELATIVE_SQLITE.match(database)
    if match:
        database = match.group(1) + str(folder / match.group(2))
    return replace(settings, home=home, database=database)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(value, env) for value in node]
    return node


_SCALARS = {f.name for f in fields(Settings)} - {"channels", "prices", "keys", "host", "port", "home"}


def _from_mapping(data: Mapping[str, Any]) -> Settings:
    known = _SCALARS | {"listen", "channels", "prices", "keys", "home"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(unknown_name("setting", unknown[0], sorted(known)))
    types = {f.name: str(f.type) for f in fields(Settings)}
    kwargs: dict[str, Any] = {
        k: _coerce(k, types[k], data[k]) for k in _SCALARS if k in data and data[k] is not None
    }
    if "home" in data:
        kwargs["home"] = Path(str(data["home"]))
    if "listen" in data:
        kwargs["host"], kwargs["port"] = parse_listen(str(data["listen"]))
    kwargs["channels"] = tuple(_channel(c) for c in data.get("channels") or ())
    kwargs["keys"] = tuple(_key(k) for k in data.get("keys") or ())
    kwargs["prices"] = _prices(data.get("prices") or {})
    settings = Settings(**kwargs)
    _check_scalars(settings)
    return settings


def _coerce(name: str, type_name: str, value: Any) -> Any:
    """A file value as its setting's type: text as an environment variable would be read, whole
    numbers only where a count is meant, true/false only for switches."""
    if isinstance(value, str) and type_name != "str" and "str" not in type_name:
        return _cast(name, type_name, value)
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ConfigError(f"{name} must be a whole number")
        return int(value)
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number")
        return float(value)
    if type_name == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # an unquoted number where text is meant (an all-digit key)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be text")
    return value


def _is_key_text(text: str) -> bool:
    """Key material a caller can send in a header; the gate refuses anything else (auth/gate.py)."""
    return text.isascii() and text.isprintable() and text == text.strip()


def _check_scalars(settings: Settings) -> None:
    if settings.admin_key is not None and not _is_key_text(settings.admin_key):
        raise ConfigError("admin_key must be printable ASCII without surrounding spaces")
    if settings.unpriced_models not in ("reject", "free"):
        raise ConfigError("unpriced_models must be 'reject' or 'free'")
    at_least_one = ("workers", "max_attempts", "circuit_failures", "max_body_bytes", "max_upstream_body_bytes",
                    "max_image_upload_bytes", "task_max_runs", "webhook_attempts")
    if settings.mj_image_cache_bytes < 0:
        raise ConfigError("mj_image_cache_bytes must not be negative")
    if settings.public_url is not None and not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", settings.public_url):
        raise ConfigError("public_url must be an http(s) URL such as https://gateway.example.com")
    for name in at_least_one:
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    positive = ("connect_timeout_s", "first_byte_timeout_s", "stream_idle_timeout_s", "snapshot_poll_s",
                "task_poll_s", "task_lease_s", "task_timeout_s", "webhook_timeout_s", "mj_poll_s", "mj_task_timeout_s",
                "mj_image_url_ttl_s", "header_read_timeout_s", "body_read_timeout_s")
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be greater than 0")
    if settings.reserve_output_tokens < 0 or settings.circuit_cooldown_s < 0 or settings.shutdown_timeout_s < 0:
        raise ConfigError("reserve_output_tokens, circuit_cooldown_s and shutdown_timeout_s must not be negative")
    if settings.sqlite_synchronous not in ("normal", "full"):
        raise ConfigError("sqlite_synchronous must be 'normal' or 'full'")


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen must look like HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{what} must be a list of strings")
    return tuple(value)


def _channel(raw: Any) -> ChannelConfig:
    if not isinstance(raw, dict) or not raw.get("name") or not raw.get("type"):
        raise ConfigError("every channel needs at least a name and a type")
    name = str(raw["name"])
    kind = str(raw["type"])
    model_map = raw.get("model_map") or {}
    if not isinstance(model_map, dict):
        raise ConfigError(f"channel {name}: model_map must be a mapping")
    nested = raw.get("options") or {}
    if not isinstance(nested, dict):
        raise ConfigError(f"channel {name}: options must be a mapping")
    # Options may be written beside the channel's fields or under ``options:``; both are the same.
    options = {**{k: v for k, v in raw.items() if k not in CHANNEL_FIELDS}, **nested}
    _check_channel_names(name, kind, options)
    base_url = str(raw.get("base_url") or "")
    problem = endpoint_in_base_url(base_url)
    if problem:
        raise ConfigError(f"channel {name}: {problem}")
    return ChannelConfig(
        name=name,
        type=kind,
        base_url=base_url,
        api_key=str(raw.get("api_key") or ""),
        models=_str_list(raw.get("models"), f"channel {name}: models"),
        model_map={str(k): str(v) for k, v in model_map.items()},
        priority=_coerce(f"channel {name}: priority", "int", raw.get("priority", 0)),
        weight=_coerce(f"channel {name}: weight", "int", raw.get("weight", 1)),
        enabled=_coerce(f"channel {name}: enabled", "bool", raw.get("enabled", True)),
        options=options,
    )


def _check_channel_names(name: str, kind: str, options: Mapping[str, Any]) -> None:
    """A name that is neither a channel field nor an option of the channel's type is a typo (``model:``
    for ``models:``), which would otherwise be kept as an option nobody reads."""
    from relaygate.providers.registry import channel_options, known_kinds  # lazily: providers are heavy

    if kind not in known_kinds():
        raise ConfigError(f"channel {name}: {unknown_name('type', kind, known_kinds())}")
    allowed = channel_options(kind)
    unknown = sorted(map(str, set(options) - set(allowed)))
    if unknown:
        valid = [f for f in CHANNEL_FIELDS if f != "options"] + list(allowed)
        raise ConfigError(f"channel {name}: {unknown_name('field', unknown[0], valid)}")


def _prices(prices: Any) -> Mapping[str, Any]:
    from relaygate.billing.pricing import PRICE_FIELDS  # lazily: settings is read before anything else

    if not isinstance(prices, dict):
        raise ConfigError("prices must be a mapping of model pattern to price")
    for pattern, price in prices.items():
        unknown = sorted(map(str, set(price) - set(PRICE_FIELDS))) if isinstance(price, dict) else []
        if unknown:
            raise ConfigError(f"price {pattern}: {unknown_name('field', unknown[0], PRICE_FIELDS)}")
    return prices


def _key(raw: Any) -> KeyConfig:
    if not isinstance(raw, dict) or not raw.get("name") or not raw.get("key"):
        raise ConfigError("every key needs a name and a key")
    unknown = sorted(map(str, set(raw) - set(KEY_FIELDS)))
    if unknown:
        raise ConfigError(f"key {raw['name']}: {unknown_name('field', unknown[0], KEY_FIELDS)}")
    if not _is_key_text(str(raw["key"])):
        raise ConfigError(f"key {raw['name']}: the key must be printable ASCII (as callers send it in a header)")
    quota = raw.get("quota_usd")
    expires = raw.get("expires_at")
    return KeyConfig(
        name=str(raw["name"]),
        key=str(raw["key"]),
        quota_usd=None if quota is None else str(quota),
        models=_str_list(raw.get("models", ["*"]), f"key {raw['name']}: models") or ("*",),
        ip_allow=_str_list(raw.get("ip_allow"), f"key {raw['name']}: ip_allow"),
        expires_at=None if expires is None else _coerce(f"key {raw['name']}: expires_at", "int", expires),
        enabled=_coerce(f"key {raw['name']}: enabled", "bool", raw.get("enabled", True)),
    )


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    updates: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in ("channels", "prices", "keys", "host", "port"):
            continue
        raw = env.get("RELAYGATE_" + f.name.upper())
        if raw is None:
            continue
        updates[f.name] = _cast(f.name, str(f.type), raw)
    listen = env.get("RELAYGATE_LISTEN")
    if listen:
        updates["host"], updates["port"] = parse_listen(listen)
    return replace(settings, **updates) if updates else settings


def _cast(name: str, type_name: str, raw: str) -> Any:
    try:
        if name == "home":
            return Path(raw)
        if type_name == "int":
            return int(raw.strip())
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
    except ValueError as exc:
        raise ConfigError(f"RELAYGATE_{name.upper()} must be a {type_name}") from exc
    return raw or None if "None" in type_name else raw
