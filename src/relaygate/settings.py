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

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

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
    sqlite_synchronous: str = "normal"
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
    """Replace ``${VAR}`` / ``${VAR:-default}``; an unset variable without a default is an error."""

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
    if config_path is not None:
        path = Path(config_path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(interpolate(raw, environ)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping at the top level")
        data = loaded
    settings = _from_mapping(data)
    return _apply_env(settings, environ)


_SCALARS = {f.name for f in fields(Settings)} - {"channels", "prices", "keys", "host", "port", "home"}


def _from_mapping(data: Mapping[str, Any]) -> Settings:
    known = _SCALARS | {"listen", "channels", "prices", "keys", "home"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {k: data[k] for k in _SCALARS if k in data and data[k] is not None}
    if "home" in data:
        kwargs["home"] = Path(str(data["home"]))
    if "listen" in data:
        kwargs["host"], kwargs["port"] = parse_listen(str(data["listen"]))
    kwargs["channels"] = tuple(_channel(c) for c in data.get("channels") or ())
    kwargs["keys"] = tuple(_key(k) for k in data.get("keys") or ())
    prices = data.get("prices") or {}
    if not isinstance(prices, dict):
        raise ConfigError("prices must be a mapping of model pattern to price")
    kwargs["prices"] = prices
    settings = Settings(**kwargs)
    _check_scalars(settings)
    return settings


def _check_scalars(settings: Settings) -> None:
    for f in fields(Settings):
        value = getattr(settings, f.name)
        expected = f.type if isinstance(f.type, str) else ""
        if expected in ("int", "float") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"{f.name} must be a number")
        if expected == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{f.name} must be true or false")
    if settings.unpriced_models not in ("reject", "free"):
        raise ConfigError("unpriced_models must be 'reject' or 'free'")
    if settings.workers < 1:
        raise ConfigError("workers must be at least 1")
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
    known = {"name", "type", "base_url", "api_key", "models", "model_map", "priority", "weight", "enabled"}
    return ChannelConfig(
        name=name,
        type=kind,
        base_url=str(raw.get("base_url") or ""),
        api_key=str(raw.get("api_key") or ""),
        models=_str_list(raw.get("models"), f"channel {name}: models"),
        model_map={str(k): str(v) for k, v in model_map.items()},
        priority=int(raw.get("priority", 0)),
        weight=int(raw.get("weight", 1)),
        enabled=bool(raw.get("enabled", True)),
        options={k: v for k, v in raw.items() if k not in known},
    )


def _key(raw: Any) -> KeyConfig:
    if not isinstance(raw, dict) or not raw.get("name") or not raw.get("key"):
        raise ConfigError("every key needs a name and a key")
    quota = raw.get("quota_usd")
    expires = raw.get("expires_at")
    return KeyConfig(
        name=str(raw["name"]),
        key=str(raw["key"]),
        quota_usd=None if quota is None else str(quota),
        models=_str_list(raw.get("models", ["*"]), f"key {raw['name']}: models") or ("*",),
        ip_allow=_str_list(raw.get("ip_allow"), f"key {raw['name']}: ip_allow"),
        expires_at=None if expires is None else int(expires),
        enabled=bool(raw.get("enabled", True)),
    )


_ENV_CASTS: dict[str, type] = {"workers": int, "max_attempts": int, "max_body_bytes": int}


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
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            return raw.strip().lower() in ("1", "true", "yes", "on")
    except ValueError as exc:
        raise ConfigError(f"RELAYGATE_{name.upper()} must be a {type_name}") from exc
    return raw or None if "None" in type_name else raw
