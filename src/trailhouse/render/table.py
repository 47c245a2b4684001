"""Rows for a reader: a table on a terminal, tab-separated text in a pipe, never a value cut short.

The CLI's listings go through ``RowWriter``. It writes each row as it comes (a search over a large
store shows its first rows at once), and:

* when stdout is not a terminal (``| grep``, ``> file``), writes plain tab-separated values: a
  header line, then one line per row, whole values, no padding, no colour; tabs and newlines
  inside a value become spaces so a row stays one line;
* on a terminal, lays the rows out in columns sized from the first rows. A column marked
  ``whole`` (ids, times, addresses) is never wrapped or cut; the others wrap inside their cell.
  When the whole columns alone do not fit the terminal, the lowest-priority columns are left out
  (their names are returned by ``hidden`` so the caller can say so); a value is never truncated.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Column", "RowWriter", "tsv_cell"]

#: Rows read before the terminal layout is fixed; later rows wrap inside the widths chosen.
SAMPLE_ROWS = 50
#: ... or rows read within this long, so a slow search still shows its first rows promptly.
SAMPLE_SECONDS = 0.5
#: Output is pushed out at least this often, so a reader at the other end of a pipe sees rows as found.
FLUSH_SECONDS = 0.2
GAP = "  "
MIN_WRAP_WIDTH = 8


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    #: Never wrapped: ids, times, IP addresses (a wrapped id cannot be copied, nor a time read).
    whole: bool = False
    #: Lower is kept longer when the terminal is too narrow for every column.
    priority: int = 0


def tsv_cell(value: str) -> str:
    return value.replace("\t", " ").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces where it can be."""
    if len(text) <= width:
        return [text]
    lines: list[str] = []
    rest = text
    while len(rest) > width:
        cut = rest.rfind(" ", 0, width + 1)
        if cut <= 0:
            cut = width
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        lines.append(rest)
    return lines


class RowWriter:
    """Write rows of ``columns`` to ``stream``: ``terminal`` picks the layout (``width`` is its width)."""

    def __init__(self, columns: Sequence[Column], stream: TextIO, *, terminal: bool, width: int = 80) -> None:
        self.columns = tuple(columns)
        self.stream = stream
        self.terminal = terminal
        self.width = max(width, 20)
        self.count = 0
        self.hidden: tuple[str, ...] = ()
        self._pending: list[Sequence[str]] = []
        self._widths: list[int] | None = None
        self._shown: list[int] = []
        self._first_at = 0.0
        self._flushed_at = 0.0

    def write_all(self, rows: Iterable[Sequence[str]]) -> int:
        for row in rows:
            self.write(row)
        self.close()
        return self.count

    def write(self, row: Sequence[str]) -> None:
        self.count += 1
        if not self.terminal:
            if self.count == 1:
                self._line("\t".join(c.name for c in self.columns))
            self._line("\t".join(tsv_cell(v) for v in row))
            return
        if self._widths is None:
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending.append(row)
            if len(self._pending) >= SAMPLE_ROWS or time.monotonic() - self._first_at > SAMPLE_SECONDS:
                self._lay_out()
            return
        self._print_row(row)

    def close(self) -> None:
        """Print what is still held for the layout (fewer rows than the sample)."""
        if self.terminal and self._widths is None and self._pending:
            self._lay_out()
        self.stream.flush()

    # ------------------------------------------------------------------------------- terminal layout

    def _lay_out(self) -> None:
        natural = [
            max([len(c.name), *(len(row[i]) for row in self._pending)]) for i, c in enumerate(self.columns)
        ]
        least = [len(c.name) if c.whole else max(MIN_WRAP_WIDTH, len(c.name)) for c in self.columns]
        shown = list(range(len(self.columns)))
        # Leave out the lowest-priority columns until what must stay whole fits.
        while True:
            need = sum(natural[i] if self.columns[i].whole else least[i] for i in shown)
            need += len(GAP) * (len(shown) - 1)
            if need <= self.width or len(shown) == 1:
                break
            drop = max(shown, key=lambda i: (self.columns[i].priority, i))
            shown.remove(drop)
        self.hidden = tuple(self.columns[i].name for i in range(len(self.columns)) if i not in shown)
        widths = list(natural)
        room = self.width - len(GAP) * (len(shown) - 1)
        room -= sum(natural[i] for i in shown if self.columns[i].whole)
        wrapping = [i for i in shown if not self.columns[i].whole]
        # Narrow the widest wrapping column, a character at a time, until the row fits: the
        # narrow ones (a user name, an error code) keep their width, a long one wraps.
        while wrapping and sum(widths[i] for i in wrapping) > room:
            widest = max(wrapping, key=lambda i: widths[i] - least[i])
            if widths[widest] <= least[widest]:
                break
            widths[widest] -= 1
        self._widths, self._shown = widths, shown
        self._print_row([c.name for c in self.columns])
        self._line(GAP.join("─" * min(widths[i], natural[i]) for i in shown).rstrip())
        for row in self._pending:
            self._print_row(row)
        self._pending = []

    def _print_row(self, row: Sequence[str]) -> None:
        assert self._widths is not None
        cells: list[list[str]] = []
        for i in self._shown:
            value = row[i].replace("\n", " ")
            # A whole column never wraps: a value longer than the sample's widens its line instead.
            cells.append([value] if self.columns[i].whole else _wrap(value, self._widths[i]))
        for parts in itertools.zip_longest(*cells, fillvalue=""):
            line = GAP.join(part.ljust(self._widths[i]) for part, i in zip(parts, self._shown, strict=True))
            self._line(line.rstrip())

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        now = time.monotonic()
        if self.count <= 1 or now - self._flushed_at > FLUSH_SECONDS:
            self.stream.flush()
            self._flushed_at = now


def rows_of(values: Iterable[Sequence[object]]) -> Iterator[list[str]]:
    """Rows of any values as text ('' for None)."""
    for row in values:
        yield ["" if v is None else str(v) for v in row]
