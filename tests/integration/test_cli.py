"""``relaygate keys | channels | prices | usage`` on a SQLite database, with and without a server.

The commands run in this process through ``relaygate.cli.main`` (the same parser, exit codes and
output as the console script, without an interpreter start and imports per call); the tests that
prove the installed entry point and ``python -m relaygate`` run it as a subprocess (``cli_process``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

import relaygate
from relaygate.billing.money import nano_to_usd
from relaygate.cli import main
from tests.helpers.gateway import ADMIN_KEY, SECRET, Gateway, free_port

UPSTREAM_SECRET = "sk-cli-upstream-secret-0123456789abcdef"
CONFIG: dict[str, Any] = {
    "channels": [{"name": "mock", "type": "mock", "models": ["mock-gpt"], "mock_chunk_delay_ms": 0}],
    "prices": {"mock-gpt": {"input": "2.5", "output": "10"}},
}


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    # A port nobody listens on: `keys create` asks the gateway at `listen` whether it accepts the key.
    config = {"admin_key": ADMIN_KEY, "secret": SECRET, "home": str(tmp_path / "data"),
              "listen": f"127.0.0.1:{free_port()}", **CONFIG}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    # As on a deployed machine: the server (or `migrate`) has applied the file; operator commands do not.
    ok(cli(path, "migrate"))
    return path


def cli(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``relaygate --config CONFIG ARGS`` in this process, as a finished process would report it."""
    argv = ["--config", str(config), *args]
    out, err = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(["relaygate", *argv], code, out.getvalue(), err.getvalue())


def cli_process(config: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relaygate", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return orjson.loads(ok(result))


def test_keys_create_list_and_disable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    created = cli(config, "keys", "create", "alice", "--quota-usd", "12.345", "--models", "mock-gpt,gpt-4o",
                  "--ip-allow", "10.0.0.0/8,127.0.0.1", "--expires-at", "4000000000")
    key = ok(created).strip()
    assert key.startswith("sk-") and len(key.splitlines()) == 1
    assert "shown only this once" in created.stderr

    listing = ok(cli(config, "keys", "list"))
    assert "alice" in listing and "12.345" in listing and key not in listing
    assert key[:5] in listing  # the hint
    keys = as_json(cli(config, "keys", "list", "--json"))
    assert keys[0] | {"created_at": 0, "updated_at": 0} == {
        "id": 1, "name": "alice", "hint": keys[0]["hint"], "enabled": True, "models": ["mock-gpt", "gpt-4o"],
        "ip_allow": ["10.0.0.0/8", "127.0.0.1"], "quota_nano": 12_345_000_000, "quota_usd": "12.345",
        "used_nano": 0, "used_usd": "0", "remaining_nano": 12_345_000_000, "remaining_usd": "12.345",
        "expires_at": 4_000_000_000, "source": "api", "created_at": 0, "updated_at": 0}

    assert "disabled key 1 (alice)" in ok(cli(config, "keys", "disable", "alice"))
    assert as_json(cli(config, "keys", "list", "--json"))[0]["enabled"] is False
    ok(cli(config, "keys", "create", "bob", "-c", str(config)))
    assert "disabled key 2 (bob)" in ok(cli(config, "keys", "disable", "2"))
    taken = cli(config, "keys", "create", "alice")  # a disabled key keeps its name
    assert taken.returncode == 1 and "A key named 'alice' already exists." in taken.stderr and taken.stdout == ""
    assert [k["name"] for k in as_json(cli(config, "keys", "list", "--json"))] == ["alice", "bob"]


def test_bad_input_exits_non_zero_with_a_message(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    bad_cidr = cli(config, "keys", "create", "x", "--ip-allow", "10.0.0.0/33")
    assert bad_cidr.returncode == 1 and "ip_allow" in bad_cidr.stderr
    sub_nano = cli(config, "keys", "create", "x", "--quota-usd", "0.0000000001")
    assert sub_nano.returncode == 1 and "nano-dollar" in sub_nano.stderr
    unknown = cli(config, "keys", "disable", "nobody")
    assert unknown.returncode == 1 and "No key" in unknown.stderr
    bad_type = cli(config, "channels", "add", "c", "--type", "bard", "--base-url", "http://h", "--models", "m")
    assert bad_type.returncode == 1 and "type" in bad_type.stderr
    duplicate = cli(config, "channels", "add", "mock", "--type", "mock")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    no_env = cli(config, "channels", "add", "c", "--type", "openai", "--base-url", "http://h",
                 "--api-key-env", "RELAYGATE_TEST_UNSET_VARIABLE")
    assert no_env.returncode == 1 and "RELAYGATE_TEST_UNSET_VARIABLE" in no_env.stderr
    bad_limit = cli(config, "usage", "--limit", "5000")
    assert bad_limit.returncode == 1 and "limit" in bad_limit.stderr
    assert as_json(cli(config, "keys", "list", "--json")) == []


def config_version(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "data" / "relaygate.db") as db:
        return int(db.execute("SELECT value FROM meta WHERE name = 'config_version'").fetchone()[0])


def test_prices_set_list_and_delete(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    version = config_version(tmp_path)
    set_ = cli(config, "prices", "set", "meta/llama-*", "--input", "0.000000001", "--output", "10.123456789",
               "--cached-input", "0", "--per-call", "0.5")
    assert ok(set_).strip() == ("relaygate: set the price of meta/llama-* "
                                "(input 0.000000001, output 10.123456789, cached_input 0, per_call 0.5)")
    assert config_version(tmp_path) == version + 1  # a running gateway reloads its prices

    prices = {p["model"]: p for p in as_json(cli(config, "prices", "list", "--json"))}
    assert prices["meta/llama-*"] | {"updated_at": 0} == {
        "model": "meta/llama-*", "input": "0.000000001", "output": "10.123456789", "cached_input": "0",
        "cache_write": None, "input_image": None, "per_call": "0.5", "per_image": None, "source": "api",
        "updated_at": 0}
    assert prices["mock-gpt"]["source"] == "config" and prices["mock-gpt"]["input"] == "2.5"
    table = ok(cli(config, "prices", "list")).splitlines()
    assert table[0].split() == ["MODEL", "INPUT", "OUTPUT", "CACHED_INPUT", "CACHE_WRITE", "INPUT_IMAGE", "PER_CALL",
                                "PER_IMAGE", "SOURCE"]
    assert table[1].split() == ["meta/llama-*", "0.000000001", "10.123456789", "0", "-", "-", "0.5", "-", "api"]
    assert table[2].split() == ["mock-gpt", "2.5", "10", "-", "-", "-", "-", "-", "config"]

    # `set` replaces the whole entry, like PUT; --json prints the price object.
    replaced = as_json(cli(config, "prices", "set", "meta/llama-*", "--cache-write", "3.75", "--json"))
    assert (replaced["input"], replaced["cached_input"], replaced["cache_write"], replaced["per_call"]) == (
        "0", None, "3.75", None)

    version = config_version(tmp_path)
    for args, message in [
        (["--input", "0.0000000001"], "'input' has more precision than one nano-dollar"),
        (["--output", "-1"], "'output' must be a non-negative number of USD"),
        (["--per-call", "ten"], "'per_call' must be a decimal number of USD"),
        (["--cached-input", "1e30"], "'cached_input' is too large"),
        ([], "Send at least one of: input, output, cached_input, cache_write, input_image, per_call, per_image"),
    ]:
        bad = cli(config, "prices", "set", "x", *args)
        assert bad.returncode == 1 and bad.stdout == "" and f"relaygate: {message}" in bad.stderr, (args, bad)
    assert config_version(tmp_path) == version

    assert ok(cli(config, "prices", "delete", "meta/llama-*")).strip() == "relaygate: deleted the price of meta/llama-*"
    assert config_version(tmp_path) == version + 1
    again = cli(config, "prices", "delete", "meta/llama-*")
    assert again.returncode == 1 and "No price for the pattern 'meta/llama-*'." in again.stderr
    assert [p["model"] for p in as_json(cli(config, "prices", "list", "--json", "-c", str(config)))] == ["mock-gpt"]


def test_prices_set_per_image_amounts(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    images = cli(config, "prices", "set", "dall-e-3", "--per-image", "default=0.04", "--per-image",
                 "1792x1024/hd=0.12", "--json")
    assert as_json(images)["per_image"] == {"1792x1024/hd": "0.12", "default": "0.04"}
    one = ok(cli(config, "prices", "set", "flux-*", "--per-image", "0.025")).strip()
    assert one == "relaygate: set the price of flux-* (input 0, output 0, per_image default=0.025)"
    no_default = cli(config, "prices", "set", "dall-e-3", "--per-image", "1792x1024=0.08")
    assert no_default.returncode == 1 and "'default'" in no_default.stderr


def test_channels_add_list_test_and_disable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {"RELAYGATE_TEST_UPSTREAM_KEY": UPSTREAM_SECRET}
    added = cli(config, "channels", "add", "dead", "--type", "openai", "--base-url", "http://127.0.0.1:1",
                "--api-key-env", "RELAYGATE_TEST_UPSTREAM_KEY", "--models", "gpt-4o,gpt-4o-mini",
                "--priority", "3", "--weight", "2", env=env)
    assert "created channel 2 (dead, openai)" in ok(added)

    listing = ok(cli(config, "channels", "list"))
    assert "dead" in listing and "gpt-4o,gpt-4o-mini" in listing and UPSTREAM_SECRET not in listing
    channels = {c["name"]: c for c in as_json(cli(config, "channels", "list", "--json"))}
    assert channels["dead"]["api_key_hint"] == "sk-cl…cdef" and channels["dead"]["priority"] == 3
    for stored in (tmp_path / "data").glob("relaygate.db*"):  # the database and its WAL
        assert UPSTREAM_SECRET.encode() not in stored.read_bytes()

    passed = cli(config, "channels", "test", "mock")
    assert passed.returncode == 0 and passed.stdout.startswith("ok: channel mock answered HTTP 200")
    failed = cli(config, "channels", "test", "dead")
    assert failed.returncode == 1 and failed.stdout.startswith("failed: channel dead:")
    assert "127.0.0.1" not in failed.stdout and UPSTREAM_SECRET not in failed.stdout
    by_id = cli(config, "channels", "test", "2", "--json")
    assert by_id.returncode == 1 and orjson.loads(by_id.stdout)["ok"] is False

    assert "disabled channel 2 (dead)" in ok(cli(config, "channels", "disable", "dead"))
    assert {c["name"]: c["enabled"] for c in as_json(cli(config, "channels", "list", "--json"))} == {
        "mock": True, "dead": False}


def wait_for_status(url: str, key: str, status: int, deadline_s: float = 10.0,
                    model: str = "mock-gpt") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "from the cli"}]}
    deadline = time.monotonic() + deadline_s
    while True:
        response = httpx.post(url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        time.sleep(0.1)


def test_a_key_made_by_the_cli_works_on_a_running_gateway(gateway_factory: type[Gateway], tmp_path: Path) -> None:
    gateway = gateway_factory(tmp_path, CONFIG).start()
    config = gateway.home / "config.yaml"  # the gateway's own config: same database and secret
    created = cli(config, "keys", "create", "from-cli", "--quota-usd", "1")
    key = ok(created).strip()
    assert f"the gateway at {gateway.url} accepts the key now" in created.stderr

    answered = wait_for_status(gateway.url, key, 200, deadline_s=0)  # at once: the command waited for it
    request_id = answered.headers["x-request-id"]

    page = as_json(cli(config, "usage", "--key", "from-cli", "--json"))
    assert [r["request_id"] for r in page["data"]] == [request_id]
    record = page["data"][0]
    assert record["cost_usd"] == nano_to_usd(record["cost_nano"]) and record["cost_nano"] > 0
    table = ok(cli(config, "usage", "--model", "mock-gpt", "--limit", "5"))
    assert request_id in table and record["cost_usd"] in table
    assert table.splitlines()[0].split()[-3:] == ["IMAGES", "COST_USD", "END"]

    summary = as_json(cli(config, "usage", "summary", "--group-by", "key_id,model", "--json"))
    assert [(r["model"], r["requests"], r["cost_nano"]) for r in summary["data"]] == [
        ("mock-gpt", 1, record["cost_nano"])]
    assert "TOTAL" in ok(cli(config, "usage", "summary", "--group-by", "model"))
    overall = ok(cli(config, "usage", "summary", "--key", "from-cli")).splitlines()  # the total, once
    assert [line.split() for line in overall] == [
        ["REQUESTS", "IN", "OUT", "COST_USD"],
        ["TOTAL", "1", str(record["input_tokens"]), str(record["output_tokens"]), record["cost_usd"]]]

    with gateway.admin() as admin:
        assert admin.get("/api/keys/1").json()["used_nano"] == record["cost_nano"]

    disabled = cli(config, "keys", "disable", "from-cli")
    assert "running gateways apply this within snapshot_poll_s (1 s)" in disabled.stderr
    refused = wait_for_status(gateway.url, key, 401)
    assert refused.json()["error"]["code"] == "key_disabled"


def test_a_price_set_by_the_cli_reaches_a_running_gateway(gateway_factory: type[Gateway], tmp_path: Path) -> None:
    channel = {"name": "mock", "type": "mock", "models": ["mock-gpt", "mock-new"], "mock_chunk_delay_ms": 0}
    gateway = gateway_factory(tmp_path, {**CONFIG, "channels": [channel], "snapshot_poll_s": 0.2}).start()
    config = gateway.home / "config.yaml"
    key = ok(cli(config, "keys", "create", "pricing")).strip()
    refused = wait_for_status(gateway.url, key, 403, model="mock-new")
    assert refused.json()["error"]["code"] == "model_price_missing"

    ok(cli(config, "prices", "set", "mock-*", "--per-call", "0.000123456"))
    request_id = wait_for_status(gateway.url, key, 200, model="mock-new").headers["x-request-id"]
    record = as_json(cli(config, "usage", "--model", "mock-new", "--json"))["data"][0]
    assert record["request_id"] == request_id and record["cost_nano"] == 123_456

    ok(cli(config, "prices", "delete", "mock-*"))
    wait_for_status(gateway.url, key, 403, model="mock-new")


def test_admin_key_reset_reaches_a_running_gateway(gateway_factory: type[Gateway], tmp_path: Path) -> None:
    """The credential made by `admin-key reset` works on a running gateway without a restart, and the
    old one stops working; the operator command does not touch what the server's config declared."""
    config = {"admin_key": None, "snapshot_poll_s": 0.2,
              "channels": [{"name": "mock", "type": "mock", "models": ["mock-gpt"]}]}
    gateway = gateway_factory(tmp_path, config).start()
    first = re.search(r"RELAYGATE_ADMIN_KEY=(\S+)", gateway.logs())
    assert first is not None
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"home": str(tmp_path / "data"), "secret": gateway.config["secret"]}))
    reset = subprocess.run([sys.executable, "-m", "relaygate", "--config", str(bare), "admin-key", "reset"],
                           capture_output=True, text=True, timeout=60, check=True)
    second = re.search(r"RELAYGATE_ADMIN_KEY=(\S+)", reset.stdout)
    assert second is not None and second.group(1) != first.group(1)
    # A later start does not print the credential; it says where it is and how to get a new one.
    gateway.stop()
    earlier = len(gateway.logs())
    gateway.start()
    restarted = gateway.logs()[earlier:]
    assert "RELAYGATE_ADMIN_KEY=" not in restarted
    assert (f"the admin credential was printed once when it was generated; it is stored hashed in "
            f"{tmp_path / 'data' / 'relaygate.db'}. 'relaygate admin-key reset' (with the same --config) "
            "prints a new one") in restarted
    deadline = time.monotonic() + 10
    while True:
        new_ok = httpx.get(gateway.url + "/api/channels", headers={"Authorization": f"Bearer {second.group(1)}"})
        if new_ok.status_code == 200:
            break
        assert time.monotonic() < deadline, new_ok.text
        time.sleep(0.1)
    assert [c["name"] for c in new_ok.json()["data"] if c["enabled"]] == ["mock"]
    old = httpx.get(gateway.url + "/api/channels", headers={"Authorization": f"Bearer {first.group(1)}"})
    assert old.status_code == 401


def test_keys_create_says_when_no_gateway_answers(tmp_path: Path) -> None:
    created = cli(write_config(tmp_path), "keys", "create", "nobody-listening")
    assert created.returncode == 0 and created.stdout.startswith("sk-")
    assert "no gateway answered at http://127.0.0.1:" in created.stderr
    assert "accept it within snapshot_poll_s (1 s)" in created.stderr


def test_the_cli_run_elsewhere_uses_the_data_folder_beside_its_config(tmp_path: Path) -> None:
    """A config with the default (relative) home, used from two working directories: one data folder,
    one admin credential, and the installed entry point (``python -m relaygate``) as a new user runs it."""
    site = tmp_path / "site"
    site.mkdir()
    config = site / "relaygate.yaml"
    config.write_text(yaml.safe_dump({"listen": f"127.0.0.1:{free_port()}", **CONFIG}), encoding="utf-8")
    first = cli_process(Path("relaygate.yaml"), "migrate", cwd=site)
    assert first.returncode == 0 and "RELAYGATE_ADMIN_KEY=" in first.stdout, first.stderr
    (tmp_path / "elsewhere").mkdir()
    created = cli_process(config, "keys", "create", "from-elsewhere", cwd=tmp_path / "elsewhere")
    assert created.returncode == 0 and created.stdout.startswith("sk-"), created.stderr
    assert "RELAYGATE_ADMIN_KEY" not in created.stdout + created.stderr  # no fresh credential
    assert not (tmp_path / "elsewhere" / "data").exists()
    listed = orjson.loads(ok(cli_process(Path("site/relaygate.yaml"), "keys", "list", "--json", cwd=tmp_path)))
    assert [k["name"] for k in listed] == ["from-elsewhere"]


def test_version_and_listen_on_either_side_of_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    version = subprocess.run([sys.executable, "-m", "relaygate", "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"relaygate {relaygate.__version__}"
    served: list[str] = []
    monkeypatch.setattr("relaygate.server.run", lambda settings: served.append(settings.listen))
    for argv in (["--listen", "127.0.0.1:9101", "serve"], ["serve", "--listen", "127.0.0.1:9102"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
    assert served == ["127.0.0.1:9101", "127.0.0.1:9102"]
