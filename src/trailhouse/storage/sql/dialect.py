"""What the two SQL dialects spell differently, as one object each backend hands the shared SQL.

The tables are the same on both; SQLite keeps strings as TEXT where PostgreSQL keeps the event
and term strings as bytea, and each has its own placeholders, scalar min/max and clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["POSTGRES", "SQLITE", "Dialect"]


@dataclass(frozen=True, slots=True)
class Dialect:
    #: The folder of its migrations (``storage/migrations/<name>``).
    name: str
    #: The driver's parameter placeholder.
    ph: str
    #: Scalar (two-argument) minimum and maximum.
    least: str
    greatest: str
    #: The current time in epoch milliseconds, as an SQL expression.
    now_ms: str
    #: Column types of the bookkeeping tables.
    text_type: str
    int_type: str
    #: Whether terms are stored as bytes (bytea) rather than text.
    bytes_text: bool
    #: Whether a flag column is a real boolean (else 0/1).
    booleans: bool
    #: Lookups name the index to use (SQLite's ``INDEXED BY``): its planner has no statistics on a
    #: fresh file.
    index_hints: bool
    #: The resource join keeps one row per event with ``DISTINCT ON`` (PostgreSQL has no bare
    #: columns under GROUP BY).
    distinct_on: bool
    #: Some indexes lead with the UTC day, so a lookup may probe a window day by day.
    day_buckets: bool
    #: The keyset predicate is the row comparison ``(event_time, seq) < (a, b)``. PostgreSQL turns
    #: it into one index range bound; the expanded ``t <= a AND (t < a OR seq < b)`` it gets only
    #: as a filter, which without statistics it may answer from a scan of the whole window (70 ms
    #: against 0.05 ms for a page 5 pages deep at 1M events, docs/benchmarks.md). SQLite keeps the
    #: expanded form its plans were measured with.
    row_keyset: bool
    #: key_usage has ``last_day`` (the UTC day of last_used) and its indexes end there, not at
    #: last_used, so that usage upserts can be HOT (PostgreSQL migration 0012): a usage page
    #: bounds the days it needs and sorts their rows (``build_usage``).
    usage_day: bool
    #: eventId lookups read ``event_ids`` (hash, account -> seq, time) and then the event's row;
    #: events has no eventId index (PostgreSQL migration 0013).
    event_ids_lookup: bool = False
    #: eventId lookups take their seqs from ``event_keys`` and ``event_keys_recent``, the dedupe
    #: tables merged in bulk (SQLite migration 0018; ``storage.sqlite_keys``).
    event_keys_merged: bool = False
    #: The event row keeps neither the eventId nor the requestId text (migrations sqlite/0014,
    #: sqlite/0017, postgres/0016): the body is their one copy, and a hash hit (``event_key``,
    #: ``request_key``) is checked against it. SQLite checks in the statement itself, with the
    #: functions every connection registers (``event_id_of``, ``request_id_of``); PostgreSQL cannot
    #: read a packed body, so the store checks the rows a statement returns (``FindQuery.ids``).
    ids_in_sql: bool = False

    def marks(self, n: int) -> str:
        """``n`` placeholders, comma-separated."""
        return ", ".join([self.ph] * n)

    def text(self, value: str) -> str | bytes:
        """A string as the driver stores it in an event or term column."""
        return value.encode() if self.bytes_text else value

    def flag(self, value: bool) -> bool | int:
        return value if self.booleans else int(value)


SQLITE = Dialect(
    name="sqlite",
    ph="?",
    least="MIN",
    greatest="MAX",
    now_ms="CAST(strftime('%s','now') AS INTEGER) * 1000",
    text_type="TEXT",
    int_type="INTEGER",
    bytes_text=False,
    booleans=False,
    index_hints=True,
    distinct_on=False,
    day_buckets=True,
    row_keyset=False,
    usage_day=False,
    ids_in_sql=True,
    event_keys_merged=True,
)

POSTGRES = Dialect(
    name="postgres",
    ph="%s",
    least="LEAST",
    greatest="GREATEST",
    now_ms="(extract(epoch FROM now()) * 1000)",
    text_type="text",
    int_type="bigint",
    bytes_text=True,
    booleans=True,
    index_hints=False,
    distinct_on=True,
    day_buckets=False,
    row_keyset=True,
    usage_day=True,
    event_ids_lookup=True,
)
