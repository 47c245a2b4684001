"""The leaked-key report as rich tables, for the console (``trailhouse access-key report``).

Every value is wrapped in ``rich.text.Text`` so that a string chosen by whoever held the key is
never read as console markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..service.access_key_report import AccessKeyReport
from .report_sections import NOT_IN_RECORD, sections, summary

__all__ = ["report_to_table"]


def _rich_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    table = Table(title=title, title_justify="left")
    for h in headers:
        table.add_column(h, overflow="fold")
    for row in rows:
        # Text() is never parsed as markup: "[red]" in a user agent stays literal.
        table.add_row(*(Text(str(v)) for v in row))
    return table


def report_to_table(report: AccessKeyReport, console: Console) -> None:
    """Print the report as rich tables (for the CLI); a key not in the record gets the summary only."""
    title = f"AccessKey {report.access_key_id}" + ("" if report.found else f" — {NOT_IN_RECORD}")
    console.print(_rich_table(title, ["Field", "Value"], summary(report)))
    if not report.found:
        return
    for sec in sections(report):
        console.print(_rich_table(sec.title, sec.headers, sec.rows))
        if sec.note:
            console.print(Text(sec.note, style="dim"))
