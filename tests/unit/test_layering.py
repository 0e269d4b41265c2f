"""Imports point one way (docs/architecture.md, "Layout"). The layers themselves are import-linter's
contracts (``[tool.importlinter]``, run by ``scripts/check``); this checks what they cannot say about a
third-party module, nothing below the surfaces reads an aiohttp server request; and that the command line
is the top of the tree: no module imports ``relaygate.cli`` but ``__main__`` (``admin/cli.py`` used to,
for the private ``_settings``, while ``cli.py`` imports it)."""

from __future__ import annotations

import ast
from pathlib import Path

import relaygate

_PACKAGE = Path(relaygate.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _importers(folder: str, *prefixes: str) -> list[str]:
    return sorted(str(path.relative_to(_PACKAGE)) for path in (_PACKAGE / folder).rglob("*.py")
                  if any(name == p or name.startswith(p + ".") for name in _imports(path) for p in prefixes))


def test_nothing_below_the_surfaces_reads_a_server_request() -> None:
    below = [folder for folder in ("relay", "tasks", "upstream", "meter", "infra", "providers", "dialects", "routing")
             if _importers(folder, "aiohttp.web")]
    assert below == []


def test_only_main_imports_the_cli() -> None:
    importers = sorted(str(path.relative_to(_PACKAGE)) for path in _PACKAGE.rglob("*.py")
                       if "relaygate.cli" in _imports(path))
    assert importers == ["__main__.py"]
