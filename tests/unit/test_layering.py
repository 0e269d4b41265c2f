"""Imports point one way (docs/architecture.md, "Layout"): the generic task machinery (``tasks/``) knows
no use case and no surface; surfaces reach tasks and upstreams only through the use cases in
``relay/``; nothing below the surfaces reads an aiohttp server request."""

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


def test_tasks_import_no_use_case_and_no_surface() -> None:
    assert _importers("tasks", "relaygate.relay", "relaygate.surfaces") == []


def test_surfaces_reach_tasks_and_providers_only_through_use_cases() -> None:
    assert _importers("surfaces", "relaygate.tasks", "relaygate.providers") == []


def test_nothing_below_the_surfaces_reads_a_server_request() -> None:
    below = [folder for folder in ("relay", "tasks", "providers", "dialects", "routing")
             if _importers(folder, "aiohttp.web")]
    assert below == []
