"""render/table.py's RowWriter on its own: tab-separated text for a pipe, and a terminal layout
that fits the width, keeps whole columns whole and wraps the rest without losing a character."""

from __future__ import annotations

import io

from trailhouse.render.table import Column, RowWriter

COLUMNS = (
    Column("time", whole=True),
    Column("name"),
    Column("id", whole=True, priority=2),
    Column("note", priority=1),
)
TIME, ID = "2026-11-29T08:00:00Z", "7D3C6A1E-0000-4000-8000-000000000001"


def _write(rows: list[list[str]], *, terminal: bool, width: int = 80) -> tuple[str, RowWriter]:
    stream = io.StringIO()
    writer = RowWriter(COLUMNS, stream, terminal=terminal, width=width)
    assert writer.write_all(rows) == len(rows)
    return stream.getvalue(), writer


def test_pipe_gets_one_line_per_row_with_tabs_and_newlines_flattened() -> None:
    text, _ = _write([[TIME, "a\tb", ID, "line1\nline2"]], terminal=False)
    assert text == f"time\tname\tid\tnote\n{TIME}\ta b\t{ID}\tline1 line2\n"


def test_nothing_is_written_for_no_rows() -> None:
    assert _write([], terminal=False)[0] == "" and _write([], terminal=True)[0] == ""


def test_terminal_wraps_long_text_and_keeps_ids_whole() -> None:
    long_name = "DescribeInstanceAttributeWithAVeryLongName" * 2
    text, writer = _write([[TIME, long_name, ID, "short"]], terminal=True, width=100)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert writer.hidden == ()
    assert TIME in lines[2] and ID in lines[2]  # on the row's first line, whole
    start = lines[0].index("name")
    stop = lines[0].index("id")
    assert "".join(line[start:stop].strip() for line in lines[2:]) == long_name


def test_narrow_terminal_leaves_out_columns_by_priority_and_says_which() -> None:
    text, writer = _write([[TIME, "x", ID, "note text"]], terminal=True, width=50)
    assert writer.hidden == ("id",)  # the highest priority number goes first
    assert ID not in text and TIME in text and "note text" in "".join(text.split("\n"))
    assert all(len(line) <= 50 for line in text.splitlines())
