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
  interning, partition creation, in-batch dedupe) does. Within one process the batches that
  arrive while a transaction runs are written together in the next (``group_commit``): at 10M
  events a transaction of 4,000 events cost the server about a fifth less per event than four
  of 1,000 (docs/benchmarks.md, "Group commit on PostgreSQL").
* Dedupe. ``event_ids`` (unpartitioned, primary key (event_key, account, n)) holds every stored
  event once, by the 64-bit hash of its eventId; ``n`` numbers the distinct eventIds of an account
  that share a hash (0 unless two ever collide). A hash hit is compared exactly against the
  eventId of the event's body (its one copy since migration 0016), so the dedupe is exact on the
  eventId whatever its time. Under
  the log lock that look-up is exact, so the new rows go in by ``COPY``; the constraint, not the
  lock, is still what guarantees no event is stored twice: the same eventId gets the same
  (event_key, account, n) from any writer, so a row a writer without the lock committed meanwhile
  fails the batch's COPY, and the retry reports it.
* Terms are interned in their own short transactions, sorted (no deadlock between two writers
  inserting the same new values in different orders): a SELECT for the values stored already,
  then ``INSERT … ON CONFLICT DO NOTHING`` for the others and a SELECT for those another writer
  inserted meanwhile. Committed term ids never change, so they are cached. Ids are int4
  (migration 0013) and a conflicting insert still draws one from the sequence, hence the
  SELECT first: a restarted node re-interning what it has seen draws none. Past 2,147,483,647
  terms a new term is refused with ``StoreError`` (``TermIdsExhausted``).
* Partitions are created and dropped without blocking ingest or lookups (``pg_partitions``).
  Should a partition vanish between the check and the insert (another node applying retention),
  the insert fails and is retried once.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ..model.event import EventRecord, event_id_of
from ..model.query import EventFilter, Position, StoredEvent
from ..model.times import DAY_MS, now_ms
from . import codec
from .base import (
    AppendResult,
    LogAppend,
    LogEntry,
    LogLeaf,
    LogView,
    StoreError,
    StoreMissing,
    StoreUnavailable,
)
from .budget import QueryBudget, current_budget
from .group_commit import GroupCommit
from .pg_partitions import (
    PACK_AFTER_MS,
    advisory_lock,
    catalogue,
    create_months,
    drop_month,
    month_bounds,
    month_of,
    pack_months,
)
from .pg_replay import (
    SET_STATEMENT_TIMEOUT,
    PgReplayReads,
    checkout_wait_s,
    pool_options,
    statement_timeout_ms,
)
from .replay import NotReplayable, Statement, current_replay
from .sql import (
    EVENT_COLUMNS,
    POSTGRES,
    RESOURCE_COLUMNS,
    ConnectionTx,
    Placed,
    SqlStore,
    StoredIds,
    apply_migrations,
    merge_usage,
    plan_batch,
    upsert_usage,
)
from .sql.delivery import DeliverySql
from .sql.leaf_tiles import convert_log_leaves
from .sql.merkle_log import MerkleLogSql, Run
from .sql.pending import PENDING_COLUMNS, pending_row, queued_leaves
from .units import WriteUnit, build_unit, leaf_hash

__all__ = ["TERM_ID_MAX", "PostgresStore", "TermIdsExhausted", "month_bounds", "month_of"]

Conn = psycopg.Connection[Any]

#: The highest ``n`` of event_ids (int2): distinct eventIds of one account sharing a 64-bit hash.
_MAX_COLLISIONS = 32767
#: The highest term id (int4, migration 0013).
TERM_ID_MAX = 2**31 - 1

#: Months of partitions created ahead of the current one at open, so ingest rarely creates any.
AHEAD_MONTHS = 2
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
#: The event row of each ``i`` (seq, event_time) row. LATERAL with LIMIT (which keeps the planner
#: from flattening it into a join) makes it one index probe per row, which the executor prunes to
#: the single partition holding that time; a plain join may become a hash join over every partition.
_BY_SEQ = (
    " CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.seq = i.seq AND e.event_time = i.event_time"
    " LIMIT 1) e"
)

#: ``EVENT_COLUMNS``' types for the binary COPY, which must match the columns exactly: term ids
#: are int4 (migration 0013), the seq, the time and the two hashes int8.
_EVENT_TYPES = ["int8", "int4", "int8", "int8", "int8"] + ["int4"] * 9 + ["int2", "int4", "bytea"]
_RESOURCE_TYPES = ["int8", "int4", "int8", "int4", "int4"]

#: Usage rows arrive as one array per column (``USAGE_COLUMNS`` order): one statement a batch.
_UPSERT_USAGE = upsert_usage(
    POSTGRES,
    "SELECT * FROM unnest(%b::int4[], %b::int4[], %b::int2[], %b::int4[], %b::int4[],"
    " %b::int4[], %b::int8[], %b::int8[], %b::int8[], %b::text[], %b::int8[], %b::int8[])",
)


class TermIdsExhausted(StoreError):
    """Every int4 term id has been issued: a value never stored before cannot become a term."""


#: The log's queue gives its file back once drained when the file is at least this large
#: (``PostgresStore._shrink_log_queue``), looked at no more often than every QUEUE_SHRINK_EVERY_S.
QUEUE_SHRINK_BYTES = 8 << 20
QUEUE_SHRINK_EVERY_S = 60.0


class PostgresStore(SqlStore, MerkleLogSql, DeliverySql):
    """EventStore on PostgreSQL (see the module docstring for the concurrency design)."""

    in_process = False
    dialect = POSTGRES

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
        # A caller waits for the batches ahead of its own as it waited for the log lock before:
        # each transaction is bounded by its budget's statement timeout.
        self._group = GroupCommit(self._transaction, threading.Lock(), closed=lambda: self._closed)
        #: When the sequencer next looks whether the log's drained queue should give its file back.
        self._next_queue_shrink = 0.0
        self._queue_shrink_bytes = QUEUE_SHRINK_BYTES
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(f"not a PostgreSQL URL that libpq understands: {exc}") from exc
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
        for name, value in _LIBPQ_LIVENESS.items():
            params.setdefault(name, value)
        # No JIT compilation: every statement here is short, but one whose estimated cost passes
        # jit_above_cost (the dedupe look-up of a 20k-event ingest batch) spent 100-300 ms
        # compiling before it ran for 3-60 (docs/benchmarks.md). A URL that sets jit wins.
        options = str(params.get("options") or "")
        if "jit=" not in options:
            params["options"] = f"{options} -c jit=off".strip()
        try:
            # One direct connection first: it fails at once with the server's own message when the
            # database is unreachable, where the pool would retry quietly until a timeout.
            with psycopg.connect(make_conninfo("", **params), autocommit=True) as conn:
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
        self._conninfo = make_conninfo("", **params)
        self._pool_size = pool_size
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            self._conninfo,
            **pool_options(max_size=pool_size, checkout_timeout_s=_CHECKOUT_TIMEOUT_S, name="trailhouse"),
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
        if current_replay() is not None:
            # A replayed answer never blocks on a connection: what is not one read goes to a thread.
            raise NotReplayable("a store call that needs a connection of its own")
        budget = current_budget()
        with self._translated(), self._checkout(budget) as conn:
            if budget is None:
                self._set_statement_timeout(conn, 0)
                yield conn
                return
            budget.check()
            self._set_statement_timeout(conn, statement_timeout_ms(budget.remaining_s()))
            with budget.on_cancel(lambda: conn.cancel_safe(timeout=2.0)):
                yield conn

    def _set_statement_timeout(self, conn: Conn, ms: int) -> None:
        if self._timeouts.get(conn, 0) != ms:
            conn.execute(SET_STATEMENT_TIMEOUT, (f"{ms}ms",))
            self._timeouts[conn] = ms

    @contextmanager
    def _checkout(self, budget: QueryBudget | None) -> Iterator[Conn]:
        """A pooled connection, or StoreUnavailable at once while the database has just failed us."""
        now = time.monotonic()
        if now < self._unavailable_until:
            raise StoreUnavailable("PostgreSQL is unavailable (a connection failed moments ago)")
        wait = checkout_wait_s(_CHECKOUT_TIMEOUT_S, None if budget is None else budget.remaining_s())
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

        @contextmanager
        def locked() -> Iterator[None]:
            with conn.transaction():
                advisory_lock(conn, "migrate")
                yield

        # The migrations recorded already are skipped without the lock (a record is never
        # removed); the others are checked again under it.
        recorded = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied = (
            {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            if recorded and recorded[0]
            else set()
        )
        apply_migrations(
            POSTGRES,
            # A migration is several statements: allowed without parameters only.
            execute=lambda query, params: conn.execute(query, params or None),
            transaction=locked,
            statements=lambda script: [script],
            applied=applied,
            repairs={"0014_log_leaf_tiles": lambda: convert_log_leaves(_runner(conn), POSTGRES.ph)},
        )

    # -- partitions ------------------------------------------------------------------------------
    def partitions(self) -> list[tuple[str, int, int]]:
        """The partitions of ``events`` as (name, start ms, end ms), oldest first."""
        with self._conn() as conn:
            months = catalogue(conn)["events"]
        return [(name, *month_bounds(m)) for m, name in sorted(months.items())]

    def ensure_partitions(self, start_ms: int, end_ms: int) -> list[str]:
        """Create the monthly partitions covering [start_ms, end_ms] that do not exist yet."""
        return self._ensure_months(range(month_of(start_ms), month_of(end_ms) + 1))

    def _ensure_months(self, months: Iterable[int]) -> list[str]:
        missing = sorted(set(months) - self._months)
        if not missing:
            return []
        with self._conn() as conn:
            created = create_months(conn, missing)
            self._months.update(missing)
        return created

    def drop_expired_partitions(self, now_ms: int) -> list[str]:
        """Drop the months that end before ``now_ms`` minus the retention period, with their events.

        Each month goes in a transaction of its own (``pg_partitions.drop_month``); one that cannot
        get its lock soon raises StoreUnavailable, and the next run tries again.
        """
        cutoff = now_ms - self.retention_days * DAY_MS
        dropped: list[str] = []
        with self._conn() as conn:
            candidates = catalogue(conn)
            expired = sorted(
                m
                for m in {*candidates["events"], *candidates["event_resources"]}
                if month_bounds(m)[1] <= cutoff
            )
            for month in expired:
                dropped.extend(drop_month(conn, month))
                self._months.discard(month)
        return dropped

    # -- primitives of SqlStore ----------------------------------------------------------------
    def _guard(self) -> AbstractContextManager[None]:
        return self._translated()

    def _write(self, query: str, params: Sequence[object]) -> int:
        with self._conn() as conn:
            return conn.execute(query, params).rowcount

    def _read(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        replay = current_replay()
        if replay is not None:
            with self._translated():
                rows: list[Any] = replay.result(Statement(query, params, binary=False))
                return rows
        with self._conn() as conn:
            return conn.execute(query, params).fetchall()

    def _read_rows(self, query: str, params: Sequence[object]) -> list[Any]:
        return self._read_binary(query, params)

    def _read_binary(self, query: str, params: Sequence[object]) -> list[Any]:
        """Rows in binary form: bytea and arrays cost less to send than their text forms."""
        replay = current_replay()
        if replay is not None:
            with self._translated():
                binary_rows: list[Any] = replay.result(Statement(query, params, binary=True))
                return binary_rows
        with self._conn() as conn:
            return conn.cursor(binary=True).execute(query, params).fetchall()

    def replay_reads(self) -> PgReplayReads:
        """Asynchronous connections for answers replayed on an event loop (storage.replay)."""
        return PgReplayReads(self._conninfo, max_size=self._pool_size, checkout_timeout_s=_CHECKOUT_TIMEOUT_S)

    @contextmanager
    def _write_transaction(self) -> Iterator[ConnectionTx]:
        """One transaction, serialised with every other trail write of this schema by an advisory
        lock: the limits checked inside (trails per region, one open history job) hold across nodes."""
        with self._conn() as conn, conn.transaction():
            advisory_lock(conn, "trails")
            yield ConnectionTx(conn)

    def _lookup_terms(self, values: Sequence[str]) -> Iterable[tuple[int, Any]]:
        # One read (replayable on the event loop: storage.replay).
        return self._read(
            "SELECT id, value FROM terms WHERE value = ANY(%b)", ([v.encode() for v in values],)
        )

    def _intern(self, values: set[str]) -> dict[str, int]:
        """Give every value a committed term id, race-free against other writers and nodes.

        Returns the ids of ``values`` for this batch alone: appends run concurrently and the shared
        cache may be emptied (``_bound_term_cache``) while another batch is between its look-ups.
        """
        cache = self._term_cache
        ids: dict[str, int] = {}
        unknown: list[bytes] = []
        for v in values:
            found = cache.get(v)
            if found is None:
                unknown.append(v.encode())
            else:
                ids[v] = found
        if not unknown:
            return ids
        unknown.sort()
        with self._conn() as conn:
            # Arrays go as %b (binary): much cheaper to send than their quoted text form.
            # The values stored already first: an INSERT that conflicts still draws an id from
            # the (int4) sequence, and a node that restarts re-interns everything it sees.
            self._cache_terms(conn, unknown, ids)
            new = [v for v in unknown if v.decode() not in ids]
            if new:
                # Sorted input: two writers inserting the same new values lock them in the same
                # order. DO NOTHING waits for a concurrent insert of the same value to commit,
                # then skips it; the SELECT (a new statement, a new snapshot) then sees that row.
                try:
                    inserted = conn.execute(
                        "INSERT INTO terms (value) SELECT v FROM unnest(%b::bytea[]) AS v ORDER BY v"
                        " ON CONFLICT (value) DO NOTHING RETURNING id, value",
                        (new,),
                        binary=True,
                    ).fetchall()
                except psycopg.errors.SequenceGeneratorLimitExceeded as exc:
                    raise TermIdsExhausted(
                        f"the store has issued {TERM_ID_MAX:,} term ids, as many as its int4 term ids"
                        " can number: events with attribute values it has never stored cannot be"
                        " ingested (docs/deployment.md)"
                    ) from exc
                for term_id, raw in inserted:
                    ids[bytes(raw).decode()] = cache[bytes(raw).decode()] = term_id
                rest = [v for v in new if v.decode() not in ids]
                if rest:
                    self._cache_terms(conn, rest, ids)
        if any(v not in ids for v in values):  # pragma: no cover - would be a bug
            raise StoreError("a term could not be interned")
        return ids

    def _cache_terms(self, conn: Conn, values: list[bytes], ids: dict[str, int]) -> None:
        rows = conn.execute("SELECT id, value FROM terms WHERE value = ANY(%b)", (values,), binary=True)
        for term_id, raw in rows:
            ids[bytes(raw).decode()] = self._term_cache[bytes(raw).decode()] = term_id

    # -- events --------------------------------------------------------------------------------
    def append(self, records: Sequence[EventRecord]) -> AppendResult:
        return self.append_units([build_unit(records)]) if records else AppendResult([], [])

    def append_units(self, units: Sequence[WriteUnit]) -> AppendResult:
        """Batches that arrive while another commits are written in one transaction with it
        (storage.group_commit): under the log lock transactions commit one at a time anyway."""
        return self._group.append(units)

    def _transaction(self, units: Sequence[WriteUnit]) -> AppendResult:
        self._bound_term_cache()
        ids = self._intern(set().union(*(u.terms for u in units)))
        months = set(map(month_of, itertools.chain.from_iterable(u.event_time for u in units)))
        for attempt in range(2):
            self._ensure_months(months)
            try:
                with self._conn() as conn, conn.transaction():
                    return self._append_locked(conn, units, ids)
            except StoreError as exc:
                # No partition for a row (the only check these inserts can violate): retention on
                # another node dropped a month since we looked. The message is localized; the
                # SQLSTATE is not.
                # Or an event another writer stored outside the log lock (the event_ids COPY):
                # the retry's look-up finds it.
                if attempt or not isinstance(
                    exc.__cause__, (psycopg.errors.CheckViolation, psycopg.errors.UniqueViolation)
                ):
                    raise
                self._months.clear()
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_locked(self, conn: Conn, units: Sequence[WriteUnit], ids: dict[str, int]) -> AppendResult:
        """The ingest transaction proper."""
        # The log lock: held until commit, so seqs commit in the order they are handed out.
        row = conn.execute("SELECT last_seq FROM log_head WHERE id = 1 FOR UPDATE").fetchone()
        assert row is not None
        last_seq: int = row[0]
        taken: dict[tuple[int | None, int], int] = {}  # (account, hash) -> the highest n stored
        plan = plan_batch(units, ids.__getitem__, lambda keys: self._stored_event_ids(conn, keys, taken))
        if not plan.placed:
            return AppendResult([], plan.duplicates)
        placed = plan.place(last_seq + 1)
        # COPY, not INSERT … ON CONFLICT: under the log lock the look-up above is exact, and the
        # primary key still refuses a second copy of an event. A writer that bypassed the lock
        # makes the COPY fail, the whole transaction with it (nothing written); append() retries
        # once, and the look-up then reports those events as already stored.
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY event_ids (event_key, event_time, seq, account, n) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int8", "int8", "int8", "int4", "int2"])
            for p, slots in zip(placed, _slots(placed, taken), strict=True):
                for id_row in zip(
                    p.unit.event_key, p.unit.event_time, p.seqs, p.accounts(), slots, strict=True
                ):
                    copy.write_row(id_row)
        self._copy_rows(conn, placed)
        usage = sorted(merge_usage(placed))
        if usage:
            # Sorted rows: a fixed lock order, should upserts ever run outside the log lock.
            conn.execute(
                _UPSERT_USAGE,
                [list(column) for column in zip(*usage, strict=True)],
                binary=True,
            )
        # Every seq handed out is used: the COPY wrote them all or the transaction failed.
        conn.execute("UPDATE log_head SET last_seq = %s WHERE id = 1", (last_seq + plan.events,))
        if self._before_commit is not None:
            self._before_commit()
        return AppendResult(plan.accepted, plan.duplicates)

    @staticmethod
    def _stored_event_ids(
        conn: Conn, keys: list[tuple[int | None, int]], taken: dict[tuple[int | None, int], int]
    ) -> StoredIds:
        """The stored eventIds behind (account, eventId hash) pairs, under the log lock; ``taken``
        gets the highest ``n`` of each pair stored (a row whose event cannot be read matches no
        eventId, but its n is taken).

        event_ids holds hashes only: each hit's eventId is read from its event's body (one probe
        of the partition its time names).
        """
        found: StoredIds = {}
        for account, key, n, body in conn.execute(
            # One primary-key probe per event: as an IN list (or a LATERAL the planner may flatten
            # into a join), a batch of 20k could become a hash join over a scan of all of
            # event_ids, whose cost grows with the store. OFFSET 0 keeps the subquery a probe.
            "SELECT x.account, x.event_key, x.n, e.body FROM unnest(%b::int8[], %b::int4[])"
            " AS k(key, account) CROSS JOIN LATERAL (SELECT * FROM event_ids x"
            " WHERE x.event_key = k.key AND x.account = k.account OFFSET 0) x LEFT JOIN LATERAL"
            " (SELECT body FROM events e WHERE e.seq = x.seq AND e.event_time = x.event_time"
            " LIMIT 1) e ON true",
            ([k for _, k in keys], [a for a, _ in keys]),
            binary=True,
        ):
            taken[account, key] = max(n, taken.get((account, key), -1))
            readable = None if body is None else codec.try_unpack(bytes(body))
            if readable is not None:
                found.setdefault((account, key), set()).add(event_id_of(readable))
        return found

    def _copy_rows(self, conn: Conn, placed: list[Placed]) -> None:
        with conn.cursor() as cur:
            # Resources before events: every transaction locks the two parents in that order.
            resources = [row for p in placed for row in p.resource_rows()]
            if resources:
                with cur.copy(
                    f"COPY event_resources ({', '.join(RESOURCE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(_RESOURCE_TYPES)
                    for resource_row in resources:
                        copy.write_row(resource_row)
                pairs = sorted({(row[1], row[3]) for row in resources})
                cur.execute(
                    "INSERT INTO account_resource_types (account, rtype)"
                    " SELECT * FROM unnest(%s::int4[], %s::int4[]) ON CONFLICT DO NOTHING",
                    ([a for a, _ in pairs], [t for _, t in pairs]),
                )
            with cur.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_EVENT_TYPES)
                for p in placed:
                    for event_row in p.event_rows():
                        copy.write_row(event_row)
            # The leaves the sequencer has yet to log, in the events' transaction (migration 0015).
            cur.execute(
                f"INSERT INTO log_pending ({', '.join(PENDING_COLUMNS)}) VALUES (%s, %s, %s, %s, %s)",
                pending_row(placed),
            )

    def find_events(
        self, *, account_id: str, flt: EventFilter, after: Position | None, descending: bool, limit: int
    ) -> list[StoredEvent]:
        with self._translated():
            # The account's id is known before planning (cached after the first request): with it
            # unknown, the planner read the whole account through the eventId index.
            account_ref = self._term_id(account_id)
            if account_ref is None:
                return []
            found: list[StoredEvent] = []
            while True:
                # A filter value the term cache does not hold is looked up by the page's own statement.
                query = self._build_find(account_ref, flt, after, descending, limit, terms_in_sql=True)
                if query is None:
                    return found
                rows = self._read_binary(query.sql, query.params)
                if not query.unchecked_ids:
                    return [_stored_event(row) for row in rows]
                for seq, event_time, packed in rows:
                    body = codec.try_unpack(packed)  # a body that cannot be read holds no id
                    if body is not None and query.holds_ids(event := StoredEvent(seq, event_time, body)):
                        found.append(event)
                if len(rows) < limit or len(found) >= limit:
                    return found[:limit]
                # A hash hit held another eventId or requestId (a 64-bit collision, which
                # ``holds_ids`` dropped): the page is filled from the rows after it.
                after = Position(rows[-1][1], rows[-1][0])

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
            query = self._build_find(account_ref, flt, after, descending, 50, terms_in_sql=True)
            if query is None:
                return []
            with self._conn() as conn, conn.transaction():
                if force_index:
                    conn.execute("SET LOCAL enable_seqscan = off")
                return [r[0] for r in conn.execute("EXPLAIN (COSTS OFF) " + query.sql, query.params)]

    def maintain(self, *, now_ms: int) -> list[str]:
        """Partitions for the months ahead, drop those past retention, vacuum the log's queue, pack
        the indexes of the months that have ended (``pg_partitions.pack_months``)."""
        ahead = range(month_of(now_ms), month_of(now_ms) + self._ahead_months + 1)
        done = [f"created {name}" for name in self._ensure_months(ahead)]
        done += [f"dropped {name}" for name in self.drop_expired_partitions(now_ms)]
        try:
            with self._conn() as conn:
                # The log's queue turns over every event (log_pending, migration 0015): its dead
                # rows are reclaimed here as well as by autovacuum, which a server may run without.
                conn.execute("VACUUM log_pending")
                done += [
                    f"packed the indexes of {name}" for name in pack_months(conn, now_ms - PACK_AFTER_MS)
                ]
        except StoreError as exc:
            # E.g. a deadlock with a session locking the table (docs/deployment.md): the months
            # are packed at the next run; what was created and dropped is still reported.
            done.append(f"packing indexes failed, to be tried again at the next run: {exc}")
        return done

    def analyze(self) -> None:
        """Refresh the planner's statistics (autovacuum does this in production; tests call it)."""
        with self._conn() as conn:
            conn.execute("ANALYZE terms, events, event_resources, event_ids, key_usage")

    def events_by_seq(self, *, account_id: str, seqs: Sequence[int]) -> dict[int, StoredEvent]:
        with self._translated():
            account_ref = self._term_id(account_id)
            if account_ref is None or not seqs:
                return {}
            # One probe per seq: event_ids gives its event time, which names the one partition to
            # read (see _BY_SEQ).
            rows = self._read_binary(
                "SELECT e.seq, e.event_time, e.body FROM unnest(%b::bigint[]) AS s(seq)"
                " CROSS JOIN LATERAL (SELECT seq, event_time FROM event_ids"
                " WHERE seq = s.seq AND account = %s) i" + _BY_SEQ,
                (sorted(set(seqs)), account_ref),
            )
        return {row[0]: _stored_event(row) for row in rows}

    def newest_seq(self) -> int:
        # The seq counter row: one primary-key read, where MAX(seq) walks an index.
        with self._conn() as conn:
            row = conn.execute("SELECT last_seq FROM log_head WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def read_log(self, *, after_seq: int, limit: int) -> list[LogEntry]:
        # Safe to follow by seq: seqs commit in order under the log lock (module docstring).
        rows = self._read_binary(
            # The account name by a scalar subquery: one primary-key probe per row, where a join
            # may be planned as a scan of every term per row.
            "SELECT i.seq, (SELECT value FROM terms WHERE id = i.account), e.event_time, e.body"
            " FROM (SELECT seq, event_time, account FROM event_ids WHERE seq > %s"
            " ORDER BY seq LIMIT %s) i" + _BY_SEQ + " ORDER BY i.seq",
            (after_seq, limit),
        )
        return [LogEntry(row[0], bytes(row[1]).decode(), _stored_event(row[:1] + row[2:])) for row in rows]

    def _read_log_leaves(self, *, after_seq: int, limit: int) -> list[LogLeaf]:
        # The queue ingest fills (log_pending, migration 0015), in the order seqs commit (under
        # the log lock, as events). No leaf: an event stored before migration 0009, whose body is
        # read (event_ids names its partition) and hashed.
        queued = list(queued_leaves(self._read_binary, "%s", after_seq, limit))
        missing = [seq for seq, _, leaf in queued if leaf is None]
        bodies: dict[int, bytes] = {}
        if missing:
            bodies = {
                seq: bytes(body)
                for seq, body in self._read_binary(
                    "SELECT i.seq, e.body FROM (SELECT seq, event_time FROM event_ids"
                    " WHERE seq = ANY(%b::bigint[])) i" + _BY_SEQ,
                    (missing,),
                )
            }
        names: dict[int, str] = {}
        for account in {account for _, account, _ in queued}:
            names[account] = bytes(
                self._read_binary("SELECT value FROM terms WHERE id = %s", (account,))[0][0]
            ).decode()
        return [
            LogLeaf(seq, names[account], leaf if leaf is not None else leaf_hash(codec.unpack(bodies[seq])))
            for seq, account, leaf in queued
        ]

    def log_sequence(self, step: Callable[[list[LogLeaf], LogView], LogAppend], *, limit: int) -> int:
        done = super().log_sequence(step, limit=limit)
        if done < limit and time.monotonic() >= self._next_queue_shrink:
            self._next_queue_shrink = time.monotonic() + QUEUE_SHRINK_EVERY_S
            self._shrink_log_queue()
        return done

    def _shrink_log_queue(self) -> bool:
        """Give back the file of the log's queue once the sequencer has drained it; whether it did.

        Why: ``log_pending`` holds every leaf between ingest and the sequencer. After a bulk load
        that is millions of leaves (41 B/event at 10M), and the file keeps that size once drained:
        VACUUM frees the rows but cannot cut the file short while new rows land in its pages. An
        empty queue is truncated instead, under a lock taken only if free within 50 ms (ingest that
        writes meanwhile waits that long at most), and only if it is empty under that lock: nothing
        queued by a transaction that committed in between is ever lost.
        """
        with self._translated(), self._conn() as conn:
            row = conn.execute("SELECT pg_table_size('log_pending')").fetchone()
            if row is None or int(row[0]) < self._queue_shrink_bytes:
                return False
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '50ms'")
                    conn.execute("LOCK TABLE log_pending IN ACCESS EXCLUSIVE MODE")
                    if conn.execute("SELECT 1 FROM log_pending LIMIT 1").fetchone() is not None:
                        return False
                    conn.execute("TRUNCATE log_pending")
            except psycopg.errors.LockNotAvailable:
                return False  # ingest is writing: the next look, a minute on
        return True

    @contextmanager
    def _log_transaction(self) -> Iterator[Run]:
        """The sequencer's transaction, holding the log_sequencer row: one sequencer across nodes."""
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT 1 FROM log_sequencer WHERE id = 1 FOR UPDATE")
            yield _runner(conn)

    def meta_get_or_set(self, name: str, value: bytes) -> bytes:
        with self._conn() as conn:
            conn.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, value))
            # A separate statement: its snapshot sees a value another node committed meanwhile.
            row = conn.execute("SELECT value FROM meta WHERE name = %s", (name,)).fetchone()
        assert row is not None
        return bytes(row[0])


def _runner(conn: Conn) -> Run:
    """A statement runner on ``conn``: the sequencer's, and the log migration's data step."""

    def run(sql: str, params: Sequence[Any], many: bool) -> list[Any]:
        if many:
            with conn.cursor() as cur:
                cur.executemany(sql, params)
            return []
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []

    return run


def _stored_event(row: Sequence[Any]) -> StoredEvent:
    """(seq, event_time, packed body) as read from events."""
    seq, event_time, body = row
    return StoredEvent(seq, event_time, codec.unpack(body))


def _slots(placed: list[Placed], taken: dict[tuple[int | None, int], int]) -> list[list[int]]:
    """Each new event's ``n`` in event_ids, by unit: 0, unless its (account, hash) is taken, in
    the store or earlier in the batch (another eventId on the same 64-bit hash): the next free."""
    pairs = [list(zip(p.accounts(), p.unit.event_key, strict=True)) for p in placed]
    every = [pair for unit_pairs in pairs for pair in unit_pairs]
    if not taken and len(set(every)) == len(every):
        return [[0] * len(unit_pairs) for unit_pairs in pairs]
    slots: list[list[int]] = []
    for unit_pairs in pairs:
        unit_slots: list[int] = []
        for pair in unit_pairs:
            n = taken.get(pair, -1) + 1
            if n > _MAX_COLLISIONS:  # pragma: no cover - 32,768 eventIds on one 64-bit hash
                raise StoreError("too many eventIds of one account share one 64-bit hash")
            taken[pair] = n
            unit_slots.append(n)
        slots.append(unit_slots)
    return slots
