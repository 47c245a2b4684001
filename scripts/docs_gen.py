"""Generated parts of the docs: the operation table, the settings table and the CLI reference.

``python scripts/docs_gen.py`` (``make docs``) rewrites them in the checkout this script sits in;
``--check`` only reports stale files; ``tests/test_docs.py`` fails when they are stale.
A generated block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``.

A repository tool, not part of the installed package: it writes the repository's docs/.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer.core
import typer.main

__all__ = ["BLOCKS", "render_block", "update_file"]

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = {
    "docs/compatibility.md": ["operations"],
    "docs/cli.md": ["cli"],
    "docs/configuration.md": ["settings"],
}


def _operations() -> str:
    from trailhouse.api.rpc.dispatch import compatibility_table

    return compatibility_table()


def _settings() -> str:
    from trailhouse.settings import Settings

    lines = ["| setting | environment | flag | default | meaning |", "|---|---|---|---|---|"]
    for row in Settings.table():
        flag = f"`{row.flag}`" if row.flag else "—"
        lines.append(f"| `{row.attr}` | `{row.env}` | {flag} | {row.default} | {row.meaning} |")
    return "\n".join(lines) + "\n"


def _cli() -> str:
    from trailhouse.cli import app

    # Plain help text (rich would print boxes to the terminal instead of returning text).
    typer.core.HAS_RICH = False
    root = typer.main.get_command(app)
    parts: list[str] = []

    def walk(command: typer.core.TyperCommand | typer.core.TyperGroup, path: list[str]) -> None:
        with command.context_class(command, info_name=" ".join(path), terminal_width=100) as ctx:
            text = command.get_help(ctx)
        parts.append(f"### `{' '.join(path)}`\n\n```text\n{text.rstrip()}\n```\n")
        if isinstance(command, typer.core.TyperGroup):
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    walk(_typer_command(sub), [*path, name])

    walk(_typer_command(root), ["trailhouse"])
    return "\n".join(parts)


def _typer_command(command: object) -> typer.core.TyperCommand | typer.core.TyperGroup:
    if not isinstance(command, typer.core.TyperCommand | typer.core.TyperGroup):
        raise TypeError(f"not a typer command: {command!r}")  # every command of the app is typer's
    return command


RENDERERS = {"operations": _operations, "settings": _settings, "cli": _cli}


def render_block(name: str) -> str:
    return RENDERERS[name]()


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{name} -->\n)(.*?)(<!-- /generated:{name} -->)", re.S)


def update_file(path: Path, names: list[str], check: bool = False) -> bool:
    """Rewrite the blocks of one file; with ``check`` only report whether it is current."""
    text = path.read_text(encoding="utf-8")
    new = text
    for name in names:
        pattern = _pattern(name)
        if not pattern.search(new):
            raise SystemExit(f"{path}: no generated block {name!r}")
        new = pattern.sub(lambda m: m.group(1) + render_block(name) + m.group(3), new)  # noqa: B023
    if check:
        return new == text
    if new != text:
        path.write_text(new, encoding="utf-8")
    return True


def main() -> int:
    if not (ROOT / "docs").is_dir():
        print(
            f"{ROOT / 'docs'} does not exist: this script rewrites a checkout's docs, so run it as "
            "scripts/docs_gen.py inside a Trailhouse checkout",
            file=sys.stderr,
        )
        return 2
    check = "--check" in sys.argv
    stale = [f for f, names in BLOCKS.items() if not update_file(ROOT / f, names, check=check)]
    if stale:
        print("stale: " + ", ".join(stale) + " (run python scripts/docs_gen.py)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
