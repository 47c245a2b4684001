"""The leaked-key report as rich tables, for the console (``trailhouse access-key report``).

Every value is wrapped in ``rich.text.Text`` so that a string chosen by whoever held the key is
never read as console markup. Times, ids and addresses are never cut or folded: their columns are
as wide as their longest value, and a table that cannot fit the console is printed wider than it
(the terminal wraps the lines; the values stay whole for copying and grep).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..service.access_key_report import AccessKeyReport
from .report_sections import NOT_IN_RECORD, Cell, Section, sections, summary

__all__ = ["report_to_table"]

_WHOLE = frozenset({"time", "id", "ip", "num", "list"})
#: Columns the console leaves out: the same for every row of a key, or in the IP table already.
_CONSOLE_SKIPS = frozenset({"User", "User agent", "First resources"})
_FOLD_MIN = 12  # a wrapped column keeps at least this many characters (or its longest value)
_WORD_MAX = 64  # a wrapped column is as wide as its longest word (an id in a sentence) up to this


def _text(cells: Sequence[Cell]) -> Text:
    out = Text()
    for i, c in enumerate(cells):
        if i:
            out.append(" ")
        out.append(c.text, style="bold red" if c.strong else "")
    return out


def _rich_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> tuple[Table, int]:
    """The table, and the width it needs so that no time, id or address is folded."""
    table = Table(title=title, title_justify="left")
    keep = [
        i
        for i, h in enumerate(headers)
        # An empty column says nothing; with no rows the headers still show what is listed.
        if not rows or (h not in _CONSOLE_SKIPS and any(row[i].text for row in rows))
    ]
    need = 1
    for i in keep:
        h = headers[i]
        column = [row[i] for row in rows]
        longest = max((len(line) for c in column for line in c.text.split("\n")), default=0)
        if column and all(c.kind in _WHOLE for c in column):
            justify: Literal["left", "right"] = "right" if column[0].kind == "num" else "left"
            table.add_column(h, no_wrap=True, min_width=longest, justify=justify)
            need += max(longest, len(h)) + 3
        else:
            # Text wraps between words; only a word longer than _WORD_MAX is folded.
            word = max((len(w) for c in column for w in c.text.split()), default=0)
            width = max(min(max(longest, len(h)), _FOLD_MIN), min(word, _WORD_MAX))
            table.add_column(h, overflow="fold", min_width=width)
            need += width + 3
    for row in rows:
        # Text() is never parsed as markup: "[red]" in a user agent stays literal.
        table.add_row(*(_text([row[i]]) for i in keep))
    return table, need


def _summary_table(title: str, lines: Sequence[tuple[str, Sequence[Cell]]]) -> tuple[Table, int]:
    table = Table(title=title, title_justify="left")
    table.add_column("Field", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for label, cells in lines:
        table.add_row(Text(label), _text(cells))
    longest_label = max((len(label) for label, _ in lines), default=5)
    return table, longest_label + 3 + _FOLD_MIN + 3 + 1


def _print(console: Console, made: tuple[Table, int]) -> None:
    table, need = made
    if need <= console.width:
        console.print(table)
        return
    # Wider than the console rather than cut: the terminal wraps the lines, values stay whole.
    # (print(width=...) cannot exceed the console's width, so the console is widened for this table.)
    width = console.width
    console.width = need
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


def _section(console: Console, sec: Section) -> None:
    if sec.facts:
        _print(console, _summary_table(sec.title, sec.facts))
        if not sec.rows:
            return
    _print(console, _rich_table("" if sec.facts else sec.title, sec.headers, sec.rows))
    if sec.note:
        console.print(Text(sec.note, style="dim"))
    if sec.more:
        console.print(Text(f"… and {sec.more} more (--format json lists them all)", style="dim"))


def report_to_table(report: AccessKeyReport, console: Console) -> None:
    """Print the report as rich tables (for the CLI); a key not in the record gets the summary only."""
    title = f"AccessKey {report.access_key_id}" + ("" if report.found else f" — {NOT_IN_RECORD}")
    _print(console, _summary_table(title, summary(report)))
    if not report.found:
        return
    for sec in sections(report):
        _section(console, sec)
