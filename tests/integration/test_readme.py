"""The README's quick start as written: its config file, `keys create` from the CLI, and every python
snippet run against that gateway with the printed key (the stream prints no `None`, the edit example
makes its own image)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.gateway import Gateway

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_snippets_run_as_written(gateway_factory: type[Gateway], tmp_path: Path) -> None:
    config: dict[str, Any] = yaml.safe_load(blocks("yaml")[0])
    assert [c["type"] for c in config["channels"]] == ["mock"]
    gateway = gateway_factory(tmp_path, {k: v for k, v in config.items() if k != "listen"}).start()
    created = subprocess.run([sys.executable, "-m", "relaygate", "--config", str(gateway.home / "config.yaml"),
                              "keys", "create", "alice", "--quota-usd", "5"],
                             capture_output=True, text=True, timeout=60, check=True)
    key = created.stdout.strip()
    snippets = "\n".join(blocks("python")).replace("sk-...", key).replace("127.0.0.1:8080", f"127.0.0.1:{gateway.port}")
    work = tmp_path / "snippets"
    work.mkdir()
    run = subprocess.run([sys.executable, "-c", snippets], capture_output=True, text=True, timeout=120, cwd=work)
    assert run.returncode == 0, run.stderr
    assert "None" not in run.stdout.replace("=None", "")  # reprs print fields set to None; the stream may not
    assert "Mock reply from mock-gpt: hi\n" in run.stdout  # the stream's text, whole, then a newline
    assert "1 edited image(s)" in run.stdout and (work / "crane.png").stat().st_size > 0
