"""The shared backend: PostgreSQL through psycopg 3 and a connection pool.

Layout (migrations/postgres/): the same tables as SQLite, with ``events`` and ``event_resources``
range-partitioned by event time, one partition per calendar month (UTC). Partitions are created a
few months ahead at open and on demand for whatever months a batch needs, old imports included;
``drop_expired_partitions`` removes the months wholly older than the retention period.

Concurrency, which is what differs from SQLite's single writer in one process:

* Commit order. ``read_log`` readers follow the log by seq, so a row must never become visible
  after a row with a higher seq: a reader that has moved past seq N would skip it forever. Every
  ingest transaction therefore takes the row lock on ``log_head`` (the seq counter) before it
  assigns seqs and holds it until commit. Writers on every node queue on that one row, so seqs are
  handed out and committed in the same order; PostgreSQL makes a commit visible before it releases
  the transaction's locks, so the next writer's rows always appear after. The cost is that ingest
  transactions run one at a time, like SQLite's; everything that can run outside the lock (term
  interning, partition creation, in-batch dedupe) does.
* Dedupe. ``event_ids`` (unpartitioned, primary key (account, event_key, event_id)) holds every
  stored event once. Under the log lock a plain look-up there is exact; the insert still says
  ``ON CONFLICT DO NOTHING`` so the constraint, not the lock, is what guarantees no event is
  stored twice.
* Terms are interned in their own short transactions, sorted (no deadlock between two writers
  inserting the same new values in different orders), with ``INSERT … ON CONFLICT DO NOTHING``
  then a SELECT for the ids that already existed. Committed term ids never change, so they are
  cached.
* Partitions are created as plain tables and then attached: ``ATTACH PARTITION`` takes only a
  SHARE UPDATE EXCLUSIVE lock on the parent, so it neither waits for nor blocks inserts and
  lookups in flight (``CREATE TABLE … PARTITION OF`` would take ACCESS EXCLUSIVE). Creators
  serialize on an advisory lock and re-check under it. Should a partition vanish between the check
  and the insert (another node applying retention), the insert fails and is retried once.
"""

from __future__ import annotations

import ipaddress
import math
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ..model.credentials import AccessKey, ApiToken, KeyStatus, TokenScope
from ..model.event import EventRecord
from ..model.query import (
    EventFilter,
    IpNetwork,
    Position,
    StoredEvent,
    UsageEntry,
    UsageKind,
    UsagePosition,
    WindowSummary,
)
from ..model.times import DAY_MS, now_ms
from . import codec
from .base import AppendResult, LogEntry, StoreError, StoreMissing, StoreUnavailable
from .budget import QueryBudget, current_budget
from .migrations import migrations_for
from .sql import build_find, build_usage, network_text_prefix, term_values, usage_entry
from .usage import usage_rows

__all__ = ["PostgresStore", "month_bounds", "month_of"]

Conn = psycopg.Connection[Any]

#: Months of partitions created ahead of the current one at open, so ingest rarely creates any.
AHEAD_MONTHS = 2
#: The tables partitioned by month; resources first, the order every transaction locks them in.
PARTITIONED = ("event_resources", "events")
_CONNECT_TIMEOUT_S = 5
#: The longest a caller waits for a pooled connection before StoreUnavailable.
_CHECKOUT_TIMEOUT_S = 5.0
#: After a failed checkout, callers fail at once for this long instead of each waiting again.
_BREAKER_S = 2.0
#: libpq settings that notice a dead peer: keepalives for an idle connection, and
#: tcp_user_timeout for one whose sent data is never acknowledged (a blackholed network).
_LIBPQ_LIVENESS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
#: How long retention waits for the ACCESS EXCLUSIVE lock a DROP needs before giving up for now.
_DROP_LOCK_TIMEOUT = "5s"
_BOUND_RE = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")

#: The event row of each ``i`` (seq, event_time) row. LATERAL with LIMIT (which keeps the planner
#: from flattening it into a join) makes it one index probe per row, which the executor prunes to
#: the single partition holding that time; a plain join may become a hash join over every partition.
_BY_SEQ = (
    " CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.seq = i.seq AND e.event_time = i.event_time"
    " LIMIT 1) e"
)

_EVENT_COLUMNS = (
    "seq",
    "account",
    "event_time",
    "event_key",
    "request_key",
    "event_name",
    "event_type",
    "event_rw",
    "category",
    "service",
    "user_name",
    "access_key",
    "source_ip",
    "role_name",
    "sensitive",
    "error_code",
    "event_id",
    "request_id",
    "body",
)
_EVENT_TYPES = ["int8"] * 14 + ["int2", "int8", "bytea", "bytea", "bytea"]


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


def _partition_name(table: str, month: int) -> str:
    year, m0 = divmod(month, 12)
    return f"{table}_{year:04d}_{m0 + 1:02d}" if year >= 0 else f"{table}_bc{-year:04d}_{m0 + 1:02d}"


# -- the store ------------------------------------------------------------------------------------


class PostgresStore:
    """EventStore on PostgreSQL (see the module docstring for the concurrency design)."""

    in_process = False

    def __init__(
        self,
        url: str,
        *,
        retention_days: int = 400,
        pool_size: int = 10,
        ahead_months: int = AHEAD_MONTHS,
        create: bool = True,
    ) -> None:
        self.url = url
        self.retention_days = retention_days
        self._ahead_months = ahead_months
        self._closed = False
        #: What opening repaired in the data; PostgreSQL never stored an eventId twice (event_ids).
        self.repairs: list[str] = []
        #: The statement_timeout (ms) each pooled connection was last given for a budget.
        self._timeouts: weakref.WeakKeyDictionary[Conn, int] = weakref.WeakKeyDictionary()
        self._breaker_lock = threading.Lock()
        self._unavailable_until = 0.0
        # Term ids and partitions, once committed, stay true (until retention, which resets the
        # months): caching them saves a round trip per value or batch.
        self._term_cache: dict[str, int] = {}
        self._months: set[int] = set()
        #: Test seam: called inside an ingest transaction after its inserts, just before commit.
        self._before_commit: Callable[[], None] | None = None
        params = conninfo_to_dict(url)
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
        for name, value in _LIBPQ_LIVENESS.items():
            params.setdefault(name, value)
        try:
            # One direct connection first: it fails at once with the server's own message when the
            # database is unreachable, where the pool would retry quietly until a timeout.
            with psycopg.connect(make_conninfo(**params), autocommit=True) as conn:
                if not create and conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (
                    None,
                ):
                    raise StoreMissing(
                        "no store in this PostgreSQL database and schema: nothing has been stored there"
                        " (check --db or TRAILHOUSE_DB)"
                    )
                self._migrate(conn)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot open PostgreSQL database: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"cannot migrate PostgreSQL database: {exc}") from exc
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            make_conninfo(**params),
            min_size=1,
            max_size=pool_size,
            timeout=_CHECKOUT_TIMEOUT_S,
            open=False,
            kwargs={"autocommit": True},
            name="trailhouse",
        )
        try:
            self._pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
            now = now_ms()
            self._ensure_months(range(month_of(now), month_of(now) + ahead_months + 1))
        except psycopg.OperationalError as exc:
            self.close()
            raise StoreUnavailable(f"cannot open PostgreSQL database: {exc}") from exc
        except BaseException:
            self.close()
            raise

    # -- plumbing ------------------------------------------------------------------------------
    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Driver errors become QueryTimeout/QueryCancelled (the request's budget), StoreUnavailable
        (connection, timeouts, deadlocks) or StoreError."""
        if self._closed:
            raise StoreError("the store is closed")
        try:
            yield
        except psycopg.errors.QueryCanceled as exc:
            budget = current_budget()
            if budget is not None:
                raise budget.error() from exc
            raise StoreUnavailable(f"PostgreSQL cancelled the statement: {exc}") from exc
        except psycopg.OperationalError as exc:  # includes the pool's timeouts
            raise StoreUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error: {exc}") from exc

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        budget = current_budget()
        with self._translated(), self._checkout(budget) as conn:
            if budget is None:
                self._set_statement_timeout(conn, 0)
                yield conn
                return
            budget.check()
            remaining = budget.remaining_s()
            # Whole tenths of a second: a connection keeps its setting from one request to the next,
            # so most requests need no extra round trip.
            ms = 0 if remaining is None else max(100, math.ceil(remaining * 10) * 100)
            self._set_statement_timeout(conn, ms)
            with budget.on_cancel(lambda: conn.cancel_safe(timeout=2.0)):
                yield conn

    def _set_statement_timeout(self, conn: Conn, ms: int) -> None:
        if self._timeouts.get(conn, 0) != ms:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{ms}ms",))
            self._timeouts[conn] = ms

    @contextmanager
    def _checkout(self, budget: QueryBudget | None) -> Iterator[Conn]:
        """A pooled connection, or StoreUnavailable at once while the database has just failed us."""
        now = time.monotonic()
        if now < self._unavailable_until:
            raise StoreUnavailable("PostgreSQL is unavailable (a connection failed moments ago)")
        wait = _CHECKOUT_TIMEOUT_S
        if budget is not None and budget.remaining_s() is not None:
            wait = max(0.05, min(wait, budget.remaining_s() or 0.0))
        try:
            with self._pool.connection(timeout=wait) as conn:
                yield conn
        except PoolTimeout:
            # No connection to be had: the pool keeps reconnecting in the background; until the
            # breaker closes, callers are told at once instead of each waiting out the timeout.
            with self._breaker_lock:
                self._unavailable_until = time.monotonic() + _BREAKER_S
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()

    # -- migrations ------------------------------------------------------------------------------
    @staticmethod
    def _migrate(conn: Conn) -> None:
        """Apply pending migrations, each in its own transaction, under a per-schema advisory lock.

        The lock is taken before schema_migrations is even created, so two processes starting at
        once apply each migration exactly once.
        """
        for migration in migrations_for("postgres"):
            with conn.transaction():
                _advisory_lock(conn, "migrate")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (name text PRIMARY KEY, applied_ms bigint NOT NULL)"
                )
                done = conn.execute("SELECT 1 FROM schema_migrations WHERE name = %s", (migration.name,))
                if done.fetchone():
                    continue
                conn.execute(migration.sql)  # several statements: allowed without parameters
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, (extract(epoch FROM now()) * 1000))",
                    (migration.name,),
                )

    def applied_migrations(self) -> list[str]:
        with self._conn() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]

    # -- partitions ------------------------------------------------------------------------------
    def _partitions(self, conn: Conn) -> dict[str, dict[int, str]]:
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

    def partitions(self) -> list[tuple[str, int, int]]:
        """The partitions of ``events`` as (name, start ms, end ms), oldest first."""
        with self._conn() as conn:
            months = self._partitions(conn)["events"]
        return [(name, *month_bounds(m)) for m, name in sorted(months.items())]

    def ensure_partitions(self, start_ms: int, end_ms: int) -> list[str]:
        """Create the monthly partitions covering [start_ms, end_ms] that do not exist yet."""
        return self._ensure_months(range(month_of(start_ms), month_of(end_ms) + 1))

    def _ensure_months(self, months: Iterable[int]) -> list[str]:
        missing = sorted(set(months) - self._months)
        if not missing:
            return []
        created: list[str] = []
        with self._conn() as conn:
            with conn.transaction():
                _advisory_lock(conn, "partitions")
                existing = self._partitions(conn)
                for month in missing:
                    start, end = month_bounds(month)
                    for table in PARTITIONED:
                        if month in existing[table]:
                            continue
                        name = _partition_name(table, month)
                        # A plain table, then ATTACH: see the module docstring for the lock levels.
                        conn.execute(
                            sql.SQL(
                                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
                                " INCLUDING STORAGE)"
                            ).format(sql.Identifier(name), sql.Identifier(table))
                        )
                        conn.execute(
                            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                                sql.Identifier(table),
                                sql.Identifier(name),
                                sql.Literal(start),
                                sql.Literal(end),
                            )
                        )
                        created.append(name)
            self._months.update(missing)
        return created

    def drop_expired_partitions(self, now_ms: int) -> list[str]:
        """Drop the months that end before ``now_ms`` minus the retention period, with their events.

        Each month goes in one transaction: its event_ids rows (so the dedupe and the log forget
        those events too), then its two partitions. A DROP needs a brief ACCESS EXCLUSIVE lock
        on the parents; rather than queue every lookup behind a long one, it gives up after
        a few seconds with StoreUnavailable, and the next run tries again.
        """
        cutoff = now_ms - self.retention_days * DAY_MS
        dropped: list[str] = []
        with self._conn() as conn:
            candidates = self._partitions(conn)
            expired = sorted(
                m
                for m in {*candidates["events"], *candidates["event_resources"]}
                if month_bounds(m)[1] <= cutoff
            )
            for month in expired:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_DROP_LOCK_TIMEOUT))
                    )
                    _advisory_lock(conn, "partitions")
                    existing = self._partitions(conn)  # again, under the lock: another node may be at it
                    names = [existing[t][month] for t in PARTITIONED if month in existing[t]]
                    if month in existing["events"]:
                        conn.execute(
                            sql.SQL("DELETE FROM event_ids WHERE seq IN (SELECT seq FROM {})").format(
                                sql.Identifier(existing["events"][month])
                            )
                        )
                    for name in names:  # resources first: the order lookups lock the parents in
                        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                dropped.extend(names)
                self._months.discard(month)
        return dropped

    # -- terms ---------------------------------------------------------------------------------
    def _term_ids(self, values: Sequence[str]) -> list[int]:
        ids: list[int] = []
        missing: list[bytes] = []
        for value in values:
            cached = self._term_cache.get(value)
            if cached is None:
                missing.append(value.encode())
            else:
                ids.append(cached)
        if missing:
            with self._conn() as conn:
                rows = conn.execute("SELECT id, value FROM terms WHERE value = ANY(%b)", (missing,))
                for term_id, raw in rows:
                    self._term_cache[bytes(raw).decode()] = term_id
                    ids.append(term_id)
        return ids

    def _term_id(self, value: str) -> int | None:
        ids = self._term_ids([value])
        return ids[0] if ids else None

    def _term_range(self, prefix: str) -> list[tuple[int, str]]:
        """Every term starting with ``prefix``, through a range scan of the unique index."""
        with self._conn() as conn:
            if not prefix:
                rows = conn.execute("SELECT id, value FROM terms").fetchall()
            else:
                low = prefix.encode()
                # The last byte of UTF-8 text is never 0xFF, so incrementing it gives the upper bound.
                high = low[:-1] + bytes((low[-1] + 1,))
                rows = conn.execute(
                    "SELECT id, value FROM terms WHERE value >= %s AND value < %s", (low, high)
                ).fetchall()
        return [(term_id, bytes(raw).decode()) for term_id, raw in rows]

    def _prefix_term_ids(self, prefix: str) -> list[int]:
        return [term_id for term_id, _ in self._term_range(prefix)]

    def _network_term_ids(self, networks: tuple[IpNetwork, ...]) -> list[int]:
        ids: list[int] = []
        for network in networks:
            for term_id, value in self._term_range(network_text_prefix(network)):
                try:
                    if ipaddress.ip_address(value) in network:
                        ids.append(term_id)
                except ValueError:
                    continue
        return ids

    def _intern(self, values: set[str]) -> None:
        """Give every value a committed term id, race-free against other writers and nodes."""
        unknown = sorted(v.encode() for v in values if v not in self._term_cache)
        if not unknown:
            return
        with self._conn() as conn:
            # Arrays go as %b (binary): much cheaper to send than their quoted text form.
            # Sorted input: two writers inserting the same new values lock them in the same order.
            # DO NOTHING waits for a concurrent insert of the same value to commit, then skips it;
            # the SELECT (a new statement, a new snapshot) then sees that row.
            for term_id, raw in conn.execute(
                "INSERT INTO terms (value) SELECT v FROM unnest(%b::bytea[]) AS v ORDER BY v"
                " ON CONFLICT (value) DO NOTHING RETURNING id, value",
                (unknown,),
                binary=True,
            ):
                self._term_cache[bytes(raw).decode()] = term_id
            rest = [v for v in unknown if v.decode() not in self._term_cache]
            if rest:
                rows = conn.execute("SELECT id, value FROM terms WHERE value = ANY(%b)", (rest,), binary=True)
                for term_id, raw in rows:
                    self._term_cache[bytes(raw).decode()] = term_id
        if any(v not in self._term_cache for v in values):  # pragma: no cover - would be a bug
            raise StoreError("a term could not be interned")

    def _tid(self, value: str | None) -> int | None:
        return None if value is None else self._term_cache[value]

    # -- events --------------------------------------------------------------------------------
    def append(self, records: Sequence[EventRecord]) -> AppendResult:
        if not records:
            return AppendResult([], [])
        duplicates: list[int] = []
        fresh: list[tuple[int, EventRecord]] = []
        seen: set[tuple[str, str]] = set()
        for index, rec in enumerate(records):
            ident = (rec.account_id, rec.event_id)
            if ident in seen:
                duplicates.append(index)
            else:
                seen.add(ident)
                fresh.append((index, rec))
        self._intern(term_values(rec for _, rec in fresh))
        months = {month_of(rec.event_time_ms) for _, rec in fresh}
        for attempt in range(2):
            self._ensure_months(months)
            try:
                with self._conn() as conn, conn.transaction():
                    accepted, known = self._append_locked(conn, fresh)
                return AppendResult(accepted, sorted(duplicates + known))
            except StoreError as exc:
                # No partition for a row (the only check these inserts can violate): retention on
                # another node dropped a month since we looked. The message is localized; the
                # SQLSTATE is not.
                if attempt or not isinstance(exc.__cause__, psycopg.errors.CheckViolation):
                    raise
                self._months.clear()
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_locked(self, conn: Conn, fresh: list[tuple[int, EventRecord]]) -> tuple[list[int], list[int]]:
        """The ingest transaction proper. Returns (accepted indexes, indexes already stored)."""
        tid = self._tid
        # The log lock: held until commit, so seqs commit in the order they are handed out.
        row = conn.execute("SELECT last_seq FROM log_head WHERE id = 1 FOR UPDATE").fetchone()
        assert row is not None
        last_seq: int = row[0]
        stored = {
            (account, bytes(event_id))
            for account, event_id in conn.execute(
                "SELECT account, event_id FROM event_ids WHERE (account, event_key) IN"
                " (SELECT * FROM unnest(%b::bigint[], %b::bigint[]))",
                ([tid(r.account_id) for _, r in fresh], [r.event_key for _, r in fresh]),
                binary=True,
            )
        }
        known = [i for i, r in fresh if (tid(r.account_id), r.event_id.encode()) in stored]
        kept = [(i, r) for i, r in fresh if (tid(r.account_id), r.event_id.encode()) not in stored]
        if not kept:
            return [], known
        assigned = len(kept)
        seqs = list(range(last_seq + 1, last_seq + 1 + assigned))
        inserted = {
            seq
            for (seq,) in conn.execute(
                "INSERT INTO event_ids (account, event_key, event_id, event_time, seq)"
                " SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bytea[], %b::bigint[], %b::bigint[])"
                " ON CONFLICT DO NOTHING RETURNING seq",
                (
                    [tid(r.account_id) for _, r in kept],
                    [r.event_key for _, r in kept],
                    [r.event_id.encode() for _, r in kept],
                    [r.event_time_ms for _, r in kept],
                    seqs,
                ),
                binary=True,
            )
        }
        if len(inserted) < len(kept):
            # Only a writer that bypassed the log lock gets here; the constraint still holds, and
            # the skipped seqs are simply never used.
            known += [i for (i, _), seq in zip(kept, seqs, strict=True) if seq not in inserted]
            pairs = [(ir, seq) for ir, seq in zip(kept, seqs, strict=True) if seq in inserted]
            kept, seqs = [ir for ir, _ in pairs], [seq for _, seq in pairs]
        records = [r for _, r in kept]
        self._copy_rows(conn, records, seqs)
        usage = sorted(usage_rows(records, seqs, lambda v: self._term_cache.get(v)))
        if usage:
            # Sorted rows: a fixed lock order, should upserts ever run outside the log lock.
            conn.execute(
                "INSERT INTO key_usage AS u (account, access_key, kind, service, item, item_type, first_used,"
                " last_used, last_seq, source, calls, failed)"
                " SELECT * FROM unnest(%b::int8[], %b::int8[], %b::int2[], %b::int8[], %b::int8[],"
                " %b::int8[], %b::int8[], %b::int8[], %b::int8[], %b::text[], %b::int8[], %b::int8[])"
                " ON CONFLICT (account, access_key, kind, service, item, item_type) DO UPDATE SET"
                " first_used = LEAST(u.first_used, excluded.first_used),"
                " last_seq = CASE WHEN excluded.last_used >= u.last_used"
                " THEN excluded.last_seq ELSE u.last_seq END,"
                " source = CASE WHEN excluded.last_used >= u.last_used"
                " THEN excluded.source ELSE u.source END,"
                " last_used = GREATEST(u.last_used, excluded.last_used),"
                " calls = u.calls + excluded.calls, failed = u.failed + excluded.failed",
                [list(column) for column in zip(*usage, strict=True)],
                binary=True,
            )
        # Every seq handed out counts as used, even one a conflict skipped: seqs are never reused.
        conn.execute("UPDATE log_head SET last_seq = %s WHERE id = 1", (last_seq + assigned,))
        if self._before_commit is not None:
            self._before_commit()
        return [i for i, _ in kept], known

    def _copy_rows(self, conn: Conn, records: list[EventRecord], seqs: list[int]) -> None:
        tid = self._tid
        with conn.cursor() as cur:
            # Resources before events: every transaction locks the two parents in that order.
            resource_rows = [
                (seq, tid(rec.account_id), rec.event_time_ms, tid(rtype), tid(rname))
                for rec, seq in zip(records, seqs, strict=True)
                for rtype, rname in rec.resources
            ]
            if resource_rows:
                with cur.copy(
                    "COPY event_resources (seq, account, event_time, rtype, rname) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8"] * 5)
                    for resource_row in resource_rows:
                        copy.write_row(resource_row)
                pairs = sorted({(row[1], row[3]) for row in resource_rows})
                cur.execute(
                    "INSERT INTO account_resource_types (account, rtype)"
                    " SELECT * FROM unnest(%s::int8[], %s::int8[]) ON CONFLICT DO NOTHING",
                    ([a for a, _ in pairs], [t for _, t in pairs]),
                )
            with cur.copy(f"COPY events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_EVENT_TYPES)
                for rec, seq in zip(records, seqs, strict=True):
                    copy.write_row(
                        (
                            seq,
                            tid(rec.account_id),
                            rec.event_time_ms,
                            rec.event_key,
                            rec.request_key,
                            tid(rec.event_name),
                            tid(rec.event_type),
                            tid(rec.event_rw),
                            tid(rec.event_category),
                            tid(rec.service_name),
                            tid(rec.user_name),
                            tid(rec.access_key_id),
                            tid(rec.source_ip),
                            tid(rec.role_name),
                            _flag(rec.sensitive_action),
                            tid(rec.error_code),
                            rec.event_id.encode(),
                            None if rec.request_id is None else rec.request_id.encode(),
                            codec.pack(rec.body),
                        )
                    )

    def find_events(
        self, *, account_id: str, flt: EventFilter, after: Position | None, descending: bool, limit: int
    ) -> list[StoredEvent]:
        with self._translated():
            account_ref = self._term_id(account_id)
            if account_ref is None:
                return []
            query = self._build(flt, account_ref, after, descending, limit)
            if query is None:
                return []
            with self._conn() as conn:
                rows = conn.cursor(binary=True).execute(query[0], query[1]).fetchall()
        return [_stored_event(row) for row in rows]

    def _build(
        self, flt: EventFilter, account_ref: int, after: Position | None, descending: bool, limit: int
    ) -> tuple[str, list[object]] | None:
        query = build_find(
            flt,
            account_ref=account_ref,
            after=after,
            descending=descending,
            limit=limit,
            resolve=self._term_ids,
            resolve_prefix=self._prefix_term_ids,
            resolve_networks=self._network_term_ids,
            ph="%s",
            distinct_on=True,
        )
        if query is None:
            return None
        # The builder's only text parameters are eventId/requestId values, stored here as bytea.
        return query.sql, [p.encode() if isinstance(p, str) else p for p in query.params]

    def explain_find(
        self, *, account_id: str, flt: EventFilter, descending: bool = True, force_index: bool = False
    ) -> list[str]:
        """The query plan of a lookup (``EXPLAIN``, no costs), for tests that prove it is index-served.

        ``force_index`` turns sequential scans off for the plan, as SQLite's ``INDEXED BY`` does:
        the plan then shows that an index can serve the filter, whatever the statistics say.
        """
        with self._translated():
            account_ref = self._term_id(account_id) or 0
            # A page in the middle of the window: the shape of every query after the first page.
            after = Position(flt.end_ms, 1 << 62) if descending else Position(flt.start_ms, -1)
            query = self._build(flt, account_ref, after, descending, 50)
            if query is None:
                return []
            with self._conn() as conn, conn.transaction():
                if force_index:
                    conn.execute("SET LOCAL enable_seqscan = off")
                return [r[0] for r in conn.execute("EXPLAIN (COSTS OFF) " + query[0], query[1])]

    def maintain(self, *, now_ms: int) -> list[str]:
        """Partitions for the months ahead, drop those past retention."""
        ahead = range(month_of(now_ms), month_of(now_ms) + self._ahead_months + 1)
        done = [f"created {name}" for name in self._ensure_months(ahead)]
        done += [f"dropped {name}" for name in self.drop_expired_partitions(now_ms)]
        return done

    def analyze(self) -> None:
        """Refresh the planner's statistics (autovacuum does this in production; tests call it)."""
        with self._conn() as conn:
            conn.execute("ANALYZE terms, events, event_resources, event_ids, key_usage")

    def iter_events(
        self, *, account_id: str, flt: EventFilter, descending: bool, batch: int = 1000
    ) -> Iterator[StoredEvent]:
        after: Position | None = None
        while True:
            page = self.find_events(
                account_id=account_id, flt=flt, after=after, descending=descending, limit=batch
            )
            yield from page
            if len(page) < batch:
                return
            after = page[-1].position

    def resource_types(self, *, account_id: str) -> list[str]:
        with self._translated():
            account_ref = self._term_id(account_id)
            if account_ref is None:
                return []
            with self._conn() as conn:
                rows = conn.execute(
                    "SELECT t.value FROM account_resource_types a JOIN terms t ON t.id = a.rtype"
                    " WHERE a.account = %s",
                    (account_ref,),
                ).fetchall()
        return sorted(bytes(value).decode() for (value,) in rows)

    def summarize(self, *, account_id: str, start_ms: int, end_ms: int) -> WindowSummary:
        with self._translated():
            account_ref = self._term_id(account_id)
            if account_ref is None:
                return WindowSummary(0, None, None)
            with self._conn() as conn:
                row = conn.execute(
                    "SELECT count(*), min(event_time), max(event_time) FROM events"
                    " WHERE account = %s AND event_time >= %s AND event_time <= %s",
                    (account_ref, start_ms, end_ms),
                ).fetchone()
        assert row is not None
        return WindowSummary(row[0], row[1], row[2])

    def events_by_seq(self, *, account_id: str, seqs: Sequence[int]) -> dict[int, StoredEvent]:
        with self._translated():
            account_ref = self._term_id(account_id)
            if account_ref is None or not seqs:
                return {}
            with self._conn() as conn:
                # One probe per seq: event_ids gives its event time, which names the one partition
                # to read (see _BY_SEQ).
                rows = (
                    conn.cursor(binary=True)
                    .execute(
                        "SELECT e.seq, e.event_time, e.event_id, e.body FROM unnest(%b::bigint[]) AS s(seq)"
                        " CROSS JOIN LATERAL (SELECT seq, event_time FROM event_ids"
                        " WHERE seq = s.seq AND account = %s) i" + _BY_SEQ,
                        (sorted(set(seqs)), account_ref),
                    )
                    .fetchall()
                )
        return {row[0]: _stored_event(row) for row in rows}

    def read_log(self, *, after_seq: int, limit: int) -> list[LogEntry]:
        # Safe to follow by seq: seqs commit in order under the log lock (module docstring).
        with self._conn() as conn:
            rows = (
                conn.cursor(binary=True)
                .execute(
                    # The account name by a scalar subquery: one primary-key probe per row, where a
                    # join may be planned as a scan of every term per row.
                    "SELECT i.seq, (SELECT value FROM terms WHERE id = i.account), e.event_time, e.event_id,"
                    " e.body FROM (SELECT seq, event_time, account FROM event_ids WHERE seq > %s"
                    " ORDER BY seq LIMIT %s) i" + _BY_SEQ + " ORDER BY i.seq",
                    (after_seq, limit),
                )
                .fetchall()
            )
        return [LogEntry(row[0], bytes(row[1]).decode(), _stored_event(row[:1] + row[2:])) for row in rows]

    def count_events(self) -> int:
        """How many events the store holds, every account together."""
        with self._conn() as conn:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row is not None
        return int(row[0])

    # -- AccessKey usage -----------------------------------------------------------------------
    def usage(
        self,
        *,
        account_id: str,
        access_key_id: str,
        kind: UsageKind,
        service_name: str | None,
        since_ms: int,
        after: UsagePosition | None,
        limit: int,
    ) -> list[UsageEntry]:
        with self._translated():
            account_ref = self._term_id(account_id)
            key_ref = self._term_id(access_key_id)
            if account_ref is None or key_ref is None:
                return []
            service_ref = None
            if service_name is not None:
                service_ref = self._term_id(service_name)
                if service_ref is None:
                    return []
            query = build_usage(
                account_ref=account_ref,
                key_ref=key_ref,
                kind=kind,
                service_ref=service_ref,
                since_ms=since_ms,
                after=after,
                limit=limit,
                ph="%s",
            )
            with self._conn() as conn:
                rows = conn.execute(query.sql, query.params).fetchall()
        return [usage_entry(kind, row) for row in rows]

    # -- credentials ---------------------------------------------------------------------------
    def _write(self, query: str, params: Sequence[object]) -> int:
        with self._conn() as conn:
            return conn.execute(query, params).rowcount

    def _read(self, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(query, params).fetchall()

    _KEY_COLUMNS = "access_key_id, account_id, user_name, secret_sealed, status, allowed_actions, created_ms"
    _TOKEN_COLUMNS = "token_id, token_hash, account_ids, all_accounts, scopes, created_ms"

    def save_access_key(self, key: AccessKey) -> None:
        self._write(
            f"INSERT INTO access_keys ({self._KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                key.access_key_id,
                key.account_id,
                key.user_name,
                key.secret_sealed,
                str(key.status),
                ",".join(key.allowed_actions),
                key.created_ms,
            ),
        )

    @staticmethod
    def _key(row: Sequence[Any]) -> AccessKey:
        key_id, account, user, sealed, status, allowed, created = row
        return AccessKey(
            key_id,
            account,
            user,
            bytes(sealed),
            KeyStatus(status),
            tuple(a for a in allowed.split(",") if a),
            created,
        )

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        rows = self._read(
            f"SELECT {self._KEY_COLUMNS} FROM access_keys WHERE access_key_id = %s", (access_key_id,)
        )
        return self._key(rows[0]) if rows else None

    def list_access_keys(self, *, account_id: str | None) -> list[AccessKey]:
        if account_id is None:
            rows = self._read(f"SELECT {self._KEY_COLUMNS} FROM access_keys ORDER BY account_id, created_ms")
        else:
            rows = self._read(
                f"SELECT {self._KEY_COLUMNS} FROM access_keys WHERE account_id = %s ORDER BY created_ms",
                (account_id,),
            )
        return [self._key(r) for r in rows]

    def set_access_key_status(self, access_key_id: str, status: KeyStatus) -> bool:
        return (
            self._write(
                "UPDATE access_keys SET status = %s WHERE access_key_id = %s", (str(status), access_key_id)
            )
            > 0
        )

    def delete_access_key(self, access_key_id: str) -> bool:
        return self._write("DELETE FROM access_keys WHERE access_key_id = %s", (access_key_id,)) > 0

    def save_token(self, token: ApiToken) -> None:
        self._write(
            f"INSERT INTO api_tokens ({self._TOKEN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                token.token_id,
                token.token_hash,
                ",".join(token.account_ids),
                token.all_accounts,
                ",".join(token.scopes),
                token.created_ms,
            ),
        )

    @staticmethod
    def _token(row: Sequence[Any]) -> ApiToken:
        token_id, token_hash, accounts, all_accounts, scopes, created = row
        return ApiToken(
            token_id,
            bytes(token_hash),
            tuple(a for a in accounts.split(",") if a),
            bool(all_accounts),
            tuple(TokenScope(s) for s in scopes.split(",") if s),
            created,
        )

    def find_token(self, token_hash: bytes) -> ApiToken | None:
        rows = self._read(
            f"SELECT {self._TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = %s", (token_hash,)
        )
        return self._token(rows[0]) if rows else None

    def list_tokens(self) -> list[ApiToken]:
        rows = self._read(f"SELECT {self._TOKEN_COLUMNS} FROM api_tokens ORDER BY created_ms")
        return [self._token(r) for r in rows]

    def delete_token(self, token_id: str) -> bool:
        return self._write("DELETE FROM api_tokens WHERE token_id = %s", (token_id,)) > 0

    def meta_get_or_set(self, name: str, value: bytes) -> bytes:
        with self._conn() as conn:
            conn.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, value))
            # A separate statement: its snapshot sees a value another node committed meanwhile.
            row = conn.execute("SELECT value FROM meta WHERE name = %s", (name,)).fetchone()
        assert row is not None
        return bytes(row[0])


def _advisory_lock(conn: Conn, purpose: str) -> None:
    """A transaction-level advisory lock, scoped to the store's schema (several may share a database)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s::text || current_schema()))", (f"trailhouse.{purpose}.",)
    )


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _stored_event(row: Sequence[Any]) -> StoredEvent:
    """(seq, event_time, event_id, packed body) as read from events."""
    seq, event_time, event_id, body = row
    return StoredEvent(seq, event_time, bytes(event_id).decode(), codec.unpack(body))
