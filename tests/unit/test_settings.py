"""settings.load_settings: defaults, the YAML file with ${VAR} and ${VAR:-default}, RELAYGATE_*
overrides, and ConfigError for anything it cannot use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from relaygate.errors import ConfigError
from relaygate.settings import Settings, interpolate, load_settings, parse_listen


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relaygate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, env={})
    assert settings == Settings()
    assert settings.listen == "127.0.0.1:8080"
    assert settings.database_url == f"sqlite:///{Path('./data') / 'relaygate.db'}"
    assert settings.unpriced_models == "reject"


def test_a_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
listen: 0.0.0.0:9090
home: /srv/relaygate
database: postgresql://rg@db/relaygate
admin_key: ${ADMIN}
max_attempts: 5
first_byte_timeout_s: 2.5
access_log: false
channels:
  - name: openai-main
    type: openai
    base_url: https://api.openai.com
    api_key: ${OPENAI_API_KEY}
    models: [gpt-4o, "gpt-4-gizmo-*"]
    model_map: {gpt-4-vision-preview: gpt-4o}
    priority: 10
    weight: 3
  - name: offline
    type: mock
    models: mock-gpt
    mock_chunk_delay_ms: 0
prices:
  gpt-4o: {input: 2.50, output: 10.00}
keys:
  - name: demo
    key: sk-demo
    quota_usd: 10.5
    models: [gpt-4o]
    ip_allow: [127.0.0.1]
    expires_at: 4102444800
""")
    settings = load_settings(path, env={"ADMIN": "rg-admin-x", "OPENAI_API_KEY": "sk-real"})
    assert (settings.host, settings.port, settings.home) == ("0.0.0.0", 9090, Path("/srv/relaygate"))
    assert settings.database_url == "postgresql://rg@db/relaygate"
    assert settings.admin_key == "rg-admin-x"
    assert (settings.max_attempts, settings.first_byte_timeout_s, settings.access_log) == (5, 2.5, False)
    main, offline = settings.channels
    assert main.api_key == "sk-real" and main.models == ("gpt-4o", "gpt-4-gizmo-*")
    assert dict(main.model_map) == {"gpt-4-vision-preview": "gpt-4o"}
    assert (main.priority, main.weight, dict(main.options)) == (10, 3, {})
    assert offline.models == ("mock-gpt",) and dict(offline.options) == {"mock_chunk_delay_ms": 0}
    assert dict(settings.prices["gpt-4o"]) == {"input": 2.5, "output": 10.0}
    [key] = settings.keys
    assert (key.quota_usd, key.models, key.ip_allow, key.expires_at) == ("10.5", ("gpt-4o",), ("127.0.0.1",),
                                                                         4102444800)


def test_interpolation() -> None:
    env = {"A": "alpha", "EMPTY": ""}
    assert interpolate("${A}-${B:-beta}-${EMPTY:-x}-${C:-}", env) == "alpha-beta--"
    assert interpolate("$A ${ A} $${A}", env) == "$A ${ A} $alpha"
    with pytest.raises(ConfigError, match="MISSING"):
        interpolate("key: ${MISSING}", env)


def test_a_default_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "listen: ${HOST:-127.0.0.2}:${PORT:-7000}\nlog_level: ${LEVEL:-debug}\n")
    assert load_settings(path, env={"PORT": "7100"}).listen == "127.0.0.2:7100"
    assert load_settings(path, env={}).log_level == "debug"


def test_environment_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "max_attempts: 2\naccess_log: true\nlisten: 127.0.0.1:1000\nredis: redis://x\n")
    settings = load_settings(path, env={
        "RELAYGATE_MAX_ATTEMPTS": "7", "RELAYGATE_ACCESS_LOG": "off", "RELAYGATE_LISTEN": "[::1]:2000",
        "RELAYGATE_STREAM_IDLE_TIMEOUT_S": "0.5", "RELAYGATE_HOME": "/tmp/rg", "RELAYGATE_REDIS": "",
        "RELAYGATE_ADMIN_KEY": "rg-admin-env", "UNRELATED": "1"})
    assert settings.max_attempts == 7
    assert settings.access_log is False
    assert (settings.host, settings.port) == ("::1", 2000)
    assert settings.stream_idle_timeout_s == 0.5
    assert settings.home == Path("/tmp/rg")
    assert settings.redis is None
    assert settings.admin_key == "rg-admin-env"


@pytest.mark.parametrize(("name", "value"), [("RELAYGATE_MAX_ATTEMPTS", "three"),
                                              ("RELAYGATE_FIRST_BYTE_TIMEOUT_S", "soon"),
                                              ("RELAYGATE_LISTEN", "nowhere")])
def test_bad_environment_values(name: str, value: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(None, env={name: value})


@pytest.mark.parametrize("text", [
    "listne: 127.0.0.1:8080\n",  # an unknown top-level key
    "max_attempts: three\n",
    "access_log: 'maybe'\n",
    "first_byte_timeout_s: true\n",
    "unpriced_models: maybe\n",
    "workers: 0\n",
    "sqlite_synchronous: off\n",
    "listen: 127.0.0.1\n",
    "listen: 127.0.0.1:70000\n",
    "- a list\n",
    "channels: [{name: x}]\n",
    "channels: [{type: openai}]\n",
    "channels: [{name: x, type: openai, model_map: [a]}]\n",
    "channels: [{name: x, type: openai, models: [1, 2]}]\n",
    "keys: [{name: k}]\n",
    "prices: [gpt-4o]\n",
    "key: [unclosed\n",
    "admin_key: ${NOT_SET}\n",
    "admin_key: \"rg-admin-\u00e9\"\n",  # no caller can send a key that is not printable ASCII
    "keys: [{name: k, key: \"sk-a\\tb\"}]\n",
])
def test_files_that_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, text), env={})


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="listne"):
        load_settings(write(tmp_path, "listne: 1\nmax_atempts: 2\n"), env={})


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ""), env={}) == replace(Settings(), home=tmp_path / "data")


@pytest.mark.parametrize(("value", "expected"), [("127.0.0.1:8080", ("127.0.0.1", 8080)),
                                                 (":9000", ("127.0.0.1", 9000)),
                                                 ("[::]:443", ("::", 443)), ("example.org:1", ("example.org", 1))])
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("text", ["max_attempts: 2.5\n", "workers: 1.5\n", "circuit_failures: 0.5\n"])
def test_a_fraction_where_a_count_is_required_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, text), env={})


def test_variables_are_substituted_inside_strings_after_parsing(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("admin_key: ${ADMIN}\nmax_attempts: ${ATTEMPTS}\nchannels:\n"
                    "  - {name: a, type: openai, base_url: '${URL}', api_key: '${KEY}', priority: '${PRIO}'}\n")
    env = {"ADMIN": "12345", "ATTEMPTS": "4", "URL": "http://x: y", "KEY": "yes", "PRIO": "2"}
    settings = load_settings(path, env=env)
    assert settings.admin_key == "12345"
    assert settings.max_attempts == 4
    channel = settings.channels[0]
    assert (channel.base_url, channel.api_key, channel.priority) == ("http://x: y", "yes", 2)


@pytest.mark.parametrize("text", [
    "access_log: maybe\n", "connect_timeout_s: 0\n", "channels: [{name: a, type: mock, enabled: 'nope'}]\n",
])
def test_bad_scalar_values_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(path, env={})


def test_channel_options_beside_the_fields_or_under_options_are_the_same(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("channels:\n"
                    "  - {name: a, type: midjourney, forward_mode: true, options: {image_proxy: true}}\n"
                    "  - name: b\n    type: mock\n    options: {dialect: gemini}\n", encoding="utf-8")
    a, b = load_settings(path, env={}).channels
    assert dict(a.options) == {"forward_mode": True, "image_proxy": True}
    assert dict(b.options) == {"dialect": "gemini"}
    path.write_text("channels:\n  - {name: a, type: mock, options: [1]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="options must be a mapping"):
        load_settings(path, env={})


def test_public_url_must_be_an_http_url(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("public_url: gateway.example.com\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="public_url"):
        load_settings(path, env={})
    path.write_text("public_url: https://gw.example.com/base\n", encoding="utf-8")
    assert load_settings(path, env={}).public_url == "https://gw.example.com/base"


# --- a first run without traps (issue 10 item 4) --------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("listne: 127.0.0.1:8080\n", "unknown setting 'listne' (did you mean 'listen'?)"),
    ("channels: [{name: c, type: mock, model: [m]}]\n",
     "channel c: unknown field 'model' (did you mean 'models'?)"),
    ("channels: [{name: c, type: mock, models: [m], mock_chunk_delay: 0}]\n",
     "channel c: unknown field 'mock_chunk_delay' (did you mean 'mock_chunk_delay_ms'?)"),
    ("channels: [{name: c, type: mock, models: [m], options: {dialekt: gemini}}]\n",
     "channel c: unknown field 'dialekt' (did you mean 'dialect'?)"),
    # an option of another type is unknown for this one
    ("channels: [{name: c, type: openai, base_url: 'http://h', models: [m], api_version: v1}]\n",
     "channel c: unknown field 'api_version'"),
    ("channels: [{name: c, type: opneai, base_url: 'http://h', models: [m]}]\n",
     "channel c: unknown type 'opneai' (did you mean 'openai'?)"),
    ("prices: {m: {inptu: 1}}\n", "price m: unknown field 'inptu' (did you mean 'input'?)"),
    ("keys: [{name: k, key: sk-x, quota: 5}]\n", "key k: unknown field 'quota' (did you mean 'quota_usd'?)"),
])
def test_unknown_names_are_errors_naming_the_closest_valid_one(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), env={})
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("url", ["https://api.openai.com/v1/chat/completions", "https://relay.example/chat/completions",
                                 "https://api.anthropic.com/v1/messages", "https://api.openai.com/v1/embeddings/",
                                 "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0:generateContent"])
def test_a_base_url_that_ends_in_an_endpoint_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="channel c: base_url must be the upstream's root"):
        load_settings(write(tmp_path, f"channels: [{{name: c, type: openai, base_url: '{url}', models: [m]}}]\n"),
                      env={})


@pytest.mark.parametrize("url", ["https://api.openai.com", "https://api.openai.com/v1", "http://h:8000/openai/v1",
                                 "https://generativelanguage.googleapis.com"])
def test_a_root_base_url_is_accepted(tmp_path: Path, url: str) -> None:
    settings = load_settings(write(tmp_path, f"channels: [{{name: c, type: openai, base_url: '{url}'}}]\n"), env={})
    assert settings.channels[0].base_url == url


def test_relative_paths_in_the_file_are_beside_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command given the same --config uses one data folder, wherever it is run from."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_settings(write(tmp_path, ""), env={}).home == tmp_path / "data"
    assert load_settings(write(tmp_path, "home: state\n"), env={}).home == tmp_path / "state"
    assert load_settings(write(tmp_path, "home: /srv/rg\n"), env={}).home == Path("/srv/rg")
    database = load_settings(write(tmp_path, "database: sqlite:///./db/x.db\n"), env={}).database_url
    assert database == f"sqlite:///{tmp_path / 'db' / 'x.db'}"
    # A variable is read like a command-line path: from the working directory.
    assert load_settings(write(tmp_path, ""), env={"RELAYGATE_HOME": "here"}).home == Path("here")
