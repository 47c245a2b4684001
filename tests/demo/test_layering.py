"""The demo is a layer above the service: nothing below it imports ``trailhouse.demo``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trailhouse

PACKAGE = Path(trailhouse.__file__).parent


def _imports(path: Path) -> set[str]:
    """The absolute module names one source file imports (relative imports resolved)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("layer", ["model", "storage", "service", "api"])
def test_lower_layers_never_import_the_demo(layer: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in _imports(path) if m.startswith("trailhouse.demo"))
        for path in sorted((PACKAGE / layer).rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}
