"""Who in api/ may import whom: the two wires stay apart and share only what api/ itself holds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[2] / "src" / "trailhouse" / "api"


def _module(path: Path) -> str:
    parts = path.relative_to(API.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved; ``from X import y`` gives X and X.y."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(API.rglob("*.py"))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(API)))
def test_import_rules(path: Path) -> None:
    module = _module(path)
    imports = _imports(path)
    ours = {i for i in imports if _within(i, "trailhouse")}
    if _within(module, "trailhouse.api.rpc"):
        assert not {i for i in ours if _within(i, "trailhouse.api.native")}, "rpc/ imports native/"
    elif _within(module, "trailhouse.api.native"):
        assert not {i for i in ours if _within(i, "trailhouse.api.rpc")}, "native/ imports rpc/"
    elif module != "trailhouse.api.app":
        # The shared modules serve both wires, so they may know neither.
        wires = {i for i in ours if _within(i, "trailhouse.api.rpc") or _within(i, "trailhouse.api.native")}
        assert not wires, f"{module} is shared but imports {sorted(wires)}"
    if _within(module, "trailhouse.api.rpc.operations"):
        # A handler reads wire parameters and returns a dict: no HTTP object reaches it.
        assert not {i for i in imports if _within(i, "starlette")}, "an operation imports starlette"
    # No SQL in api/: no driver, and of storage only its errors and the request budget. The app
    # alone opens the store a URL names (storage.open_store) when it is not handed one.
    assert not {i for i in imports if i.split(".")[0] in ("sqlite3", "psycopg", "psycopg_pool")}
    allowed = ("trailhouse.storage.base", "trailhouse.storage.budget")
    storage = {
        i for i in ours if _within(i, "trailhouse.storage") and not any(_within(i, a) for a in allowed)
    }
    if module == "trailhouse.api.app":
        storage -= {"trailhouse.storage", "trailhouse.storage.open_store"}
    assert not storage, f"{module} imports {sorted(storage)}"
    assert not {i for i in ours if _within(i, "trailhouse.cli")}, "api/ imports the CLI"
