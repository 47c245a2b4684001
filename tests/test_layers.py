"""The layer rules of docs/architecture.md, checked against the code's imports.

The table under "Who may import whom" is the one statement of the rules: each row names a layer
(a package or module under ``src/trailhouse``) and, in backticks, what it may import. A backticked
name that is not ours (``sqlite3``, ``psycopg``, ``starlette``) is guarded: only the layers whose
row names it may import it. Every module belongs to a row. Module-level imports form no cycle.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "trailhouse"
DOC = ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Rule:
    layer: str
    ours: tuple[str, ...]
    outside: tuple[str, ...]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_ours(name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in MODULES if m)


def _rules() -> list[Rule]:
    text = DOC.read_text()
    section = text.split("## Who may import whom", 1)[1].split("\n## ", 1)[0]
    rules = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        layer = cells[0].strip("`").removesuffix("/").replace("/", ".").removesuffix(".py")
        named = re.findall(r"`([^`]+)`", cells[1])
        names = [n.removesuffix("/").replace("/", ".").removesuffix(".py") for n in named]
        rules.append(
            Rule(
                layer,
                tuple(n for n in names if _is_ours(n)),
                tuple(n for n in names if not _is_ours(n)),
            )
        )
    return rules


RULES = _rules()
GUARDED = {name.split(".")[0] for rule in RULES for name in rule.outside}


def _layer_of(module: str) -> Rule | None:
    matching = [r for r in RULES if module == r.layer or module.startswith(r.layer + ".")]
    return max(matching, key=lambda r: len(r.layer), default=None)


def _imports(module: str, path: Path, *, top_level_only: bool = False) -> list[tuple[str, int]]:
    """(imported name, line) for every import of ``module``, relative ones resolved; ours without
    the ``trailhouse.`` prefix."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: list[tuple[str, int]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                target = "trailhouse." + ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            target = target.rstrip(".")
            # ``from . import x`` imports the module x where one exists.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub.removeprefix("trailhouse.") in MODULES else target, node.lineno))
    return [(n.removeprefix("trailhouse.") if n.startswith("trailhouse.") else n, line) for n, line in found]


def _allowed(target: str, rule: Rule) -> bool:
    if target == rule.layer or target.startswith(rule.layer + "."):
        return True
    return any(target == name or target.startswith(name + ".") for name in rule.ours)


def test_the_table_is_there_and_names_real_layers() -> None:
    assert RULES, "docs/architecture.md has no 'Who may import whom' table"
    for rule in RULES:
        assert _is_ours(rule.layer), f"the table names {rule.layer!r}, which is not a module of ours"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m))
def test_module_imports_follow_the_table(module: str) -> None:
    rule = _layer_of(module)
    assert rule is not None, f"{module} belongs to no row of the table in docs/architecture.md"
    wrong: list[str] = []
    for name, line in dict.fromkeys(_imports(module, MODULES[module])):
        if name == "trailhouse":
            continue  # the package root holds the version only
        if _is_ours(name):
            if not _allowed(name, rule):
                wrong.append(f"line {line}: imports {name}")
        elif name.split(".")[0] in GUARDED and not any(
            name == o or name.startswith(o + ".") or name.split(".")[0] == o for o in rule.outside
        ):
            wrong.append(f"line {line}: imports {name}, which only some layers may")
    assert not wrong, f"{module} (layer {rule.layer}) breaks the table of docs/architecture.md: " + "; ".join(
        wrong
    )


def test_no_import_cycle() -> None:
    graph = {
        m: {n for n, _ in _imports(m, p, top_level_only=True) if n in MODULES and n != m}
        for m, p in MODULES.items()
        if m
    }
    # A package's __init__ importing its own submodules is how a package is assembled, not a cycle.
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not m or not d.startswith(m + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"module-level import cycles: {cycles}"
