"""PostgreSQL's monthly partitions of ``events`` and ``event_resources``: their bounds, the catalogue,
creating months, packing their indexes once they are written no more, and dropping them.

Partitions are created as plain tables and then attached: ``ATTACH PARTITION`` takes only a SHARE
UPDATE EXCLUSIVE lock on the parent, so it neither waits for nor blocks inserts and lookups in
flight (``CREATE TABLE … PARTITION OF`` would take ACCESS EXCLUSIVE). Creators and droppers
serialize on an advisory lock and re-read the catalogue under it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from ..model.times import DAY_MS

__all__ = [
    "PARTITIONED",
    "advisory_lock",
    "catalogue",
    "create_months",
    "drop_month",
    "month_bounds",
    "month_of",
    "pack_months",
]

Conn = psycopg.Connection[Any]

#: The tables partitioned by month; resources first, the order every transaction locks them in.
PARTITIONED = ("event_resources", "events")
#: How long retention waits for the ACCESS EXCLUSIVE lock a DROP needs before giving up for now.
_DROP_LOCK_TIMEOUT = "5s"
#: A month's indexes are rebuilt packed once it has ended this long ago (late events are in).
PACK_AFTER_MS = DAY_MS
#: …and again only when its heap has grown by more than this factor since (old events imported).
REPACK_GROWTH = 1.25
_BOUND_RE = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


# -- months ------------------------------------------------------------------------------------
# Partition bounds need calendar months for any millisecond an event may carry, beyond what
# datetime represents (an eventTime with an offset can fall in year 0 or 10000): civil-date
# arithmetic on day numbers (H. Hinnant's algorithms) has no such limits.


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int]:
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month


def month_of(ms: int) -> int:
    """The month (UTC) an epoch-millisecond time falls in, as ``year * 12 + month - 1``."""
    year, month = _civil_from_days(ms // DAY_MS)
    return year * 12 + month - 1


def month_bounds(month: int) -> tuple[int, int]:
    """The epoch milliseconds [start, end) of a month numbered as ``month_of`` numbers it."""
    year, m0 = divmod(month, 12)
    next_year, next_m0 = divmod(month + 1, 12)
    return (
        _days_from_civil(year, m0 + 1, 1) * DAY_MS,
        _days_from_civil(next_year, next_m0 + 1, 1) * DAY_MS,
    )


def partition_name(table: str, month: int) -> str:
    year, m0 = divmod(month, 12)
    return f"{table}_{year:04d}_{m0 + 1:02d}" if year >= 0 else f"{table}_bc{-year:04d}_{m0 + 1:02d}"


def advisory_lock(conn: Conn, purpose: str) -> None:
    """A transaction-level advisory lock, scoped to the store's schema (several may share a database)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s::text || current_schema()))", (f"trailhouse.{purpose}.",)
    )


def catalogue(conn: Conn) -> dict[str, dict[int, str]]:
    """Table -> {month: partition name} for both partitioned tables, from the catalog."""
    found: dict[str, dict[int, str]] = {table: {} for table in PARTITIONED}
    rows = conn.execute(
        "SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
        " WHERE i.inhparent IN ('events'::regclass, 'event_resources'::regclass)"
    )
    for parent, name, bound in rows:
        match = _BOUND_RE.search(bound or "")
        if match:
            found[parent][month_of(int(match.group(1)))] = name
    return found


def create_months(conn: Conn, months: Iterable[int]) -> list[str]:
    """Create the partitions of ``months`` that do not exist yet, in one transaction; their names."""
    created: list[str] = []
    with conn.transaction():
        advisory_lock(conn, "partitions")
        existing = catalogue(conn)
        for month in months:
            start, end = month_bounds(month)
            for table in PARTITIONED:
                if month in existing[table]:
                    continue
                name = partition_name(table, month)
                # A plain table, then ATTACH: see the module docstring for the lock levels.
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
                    ).format(sql.Identifier(name), sql.Identifier(table))
                )
                conn.execute(
                    sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                        sql.Identifier(table), sql.Identifier(name), sql.Literal(start), sql.Literal(end)
                    )
                )
                created.append(name)
    return created


def drop_month(conn: Conn, month: int) -> list[str]:
    """Drop one month in one transaction: its event_ids rows (so the dedupe and the log forget those
    events too), then its two partitions; their names.

    A DROP needs a brief ACCESS EXCLUSIVE lock on the parents; rather than queue every lookup
    behind a long one, it gives up after a few seconds (the caller's StoreUnavailable).
    """
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_DROP_LOCK_TIMEOUT)))
        advisory_lock(conn, "partitions")
        existing = catalogue(conn)  # again, under the lock: another node may be at it
        names = [existing[t][month] for t in PARTITIONED if month in existing[t]]
        if month in existing["events"]:
            conn.execute(
                sql.SQL("DELETE FROM event_ids WHERE seq IN (SELECT seq FROM {})").format(
                    sql.Identifier(existing["events"][month])
                )
            )
        for name in names:  # resources first: the order lookups lock the parents in
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
        conn.execute("DELETE FROM partition_packs WHERE name = ANY(%s)", (names,))
    return names


def pack_months(conn: Conn, ended_before_ms: int) -> list[str]:
    """Rebuild the indexes of the partitions of months that ended before ``ended_before_ms`` and
    are not packed yet (or have grown by ``REPACK_GROWTH`` since); their names.

    Why: a B-tree splits a full page other than the rightmost 50:50, and most of these indexes
    take each key's new entries at the end of that key's range (its newest time), in the middle
    of the index, so the left half of every split never fills again: after a bulk load the
    indexes keyed by event name, type, service, user and AccessKey were 50-55 % full
    (docs/benchmarks.md, "PostgreSQL"). A month no longer written keeps them so until rebuilt;
    ``REINDEX … CONCURRENTLY`` rebuilds them full (fillfactor 100) without blocking ingest or
    lookups.

    ``conn`` is in autocommit (REINDEX CONCURRENTLY runs outside a transaction). One node packs at
    a time (a session advisory lock, skipped when taken); a rebuild that fails leaves invalid
    copies of the indexes, which are dropped before the error is raised.
    """
    lock = "SELECT pg_try_advisory_lock(hashtext('trailhouse.pack.' || current_schema()))"
    if not conn.execute(lock).fetchone()[0]:  # type: ignore[index]
        return []
    packed: list[str] = []
    try:
        rows = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), pg_relation_size(c.oid), p.heap_bytes"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " LEFT JOIN partition_packs p ON p.name = c.relname"
            " WHERE i.inhparent IN ('event_resources'::regclass, 'events'::regclass) ORDER BY c.relname"
        ).fetchall()
        for name, bound, heap, heap_then in rows:
            match = _BOUND_RE.search(bound or "")
            if not match or not heap or int(match.group(2)) > ended_before_ms:
                continue
            if heap_then is not None and heap <= heap_then * REPACK_GROWTH:
                continue
            try:
                # Full pages: a month that has ended takes few inserts, and a late event that
                # lands on a full page costs one split.
                indexes = conn.execute(
                    "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
                    (name,),
                ).fetchall()
                for (index,) in indexes:
                    conn.execute(sql.SQL("ALTER INDEX {} SET (fillfactor = 100)").format(sql.SQL(index)))
                conn.execute(sql.SQL("REINDEX TABLE CONCURRENTLY {}").format(sql.Identifier(name)))
            except psycopg.Error:
                _drop_invalid_indexes(conn, name)
                raise
            conn.execute(
                "INSERT INTO partition_packs VALUES (%s, %s, (extract(epoch FROM now()) * 1000)::bigint)"
                " ON CONFLICT (name) DO UPDATE SET heap_bytes = excluded.heap_bytes,"
                " packed_ms = excluded.packed_ms",
                (name, heap),
            )
            packed.append(name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext('trailhouse.pack.' || current_schema()))")
    return packed


def _drop_invalid_indexes(conn: Conn, table: str) -> None:
    """The half-built copies a failed REINDEX CONCURRENTLY leaves (``…_ccnew``), dropped."""
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace AND NOT i.indisvalid",
        (table,),
    ).fetchall()
    for (index,) in rows:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.SQL(index)))
