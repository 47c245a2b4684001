"""The embedded backend: one SQLite file in WAL mode.

One write connection, guarded by a lock, takes every write (``BEGIN IMMEDIATE``); reads use one
connection per thread and never block the writer. Commits use ``synchronous=FULL`` because an
acknowledged event must survive a power cut.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..model.event import EventRecord
from ..model.event_text import event_from_json
from ..model.query import EventFilter, Position, StoredEvent
from . import codec
from .base import AppendResult, LogEntry, LogLeaf, StoreError, StoreMissing, StoreUnavailable
from .budget import current_budget
from .group_commit import GroupCommit
from .sql import (
    DAY_BUCKETED_DRIVERS,
    EVENT_COLUMNS,
    ID_READERS,
    RESOURCE_COLUMNS,
    SQLITE,
    ConnectionTx,
    FindQuery,
    Placed,
    SqlStore,
    apply_migrations,
    day_windows,
    merge_usage,
    plan_batch,
    split_statements,
    sqlite_day,
    upsert_usage,
)
from .sql.delivery import DeliverySql
from .sql.leaf_tiles import convert_log_leaves
from .sql.merkle_log import MerkleLogSql, Run
from .sql.pending import PENDING_COLUMNS, pending_row, queued_leaves
from .sqlite_keys import MERGE_KEYS_AT, RecentKeys, RecentRow, recent_rows, stored_event_ids
from .sqlite_log import runner, writer_transaction
from .sqlite_repair import remove_duplicate_events
from .units import WriteUnit, build_unit, leaf_hash

__all__ = ["SqliteStore"]

log = logging.getLogger("trailhouse.storage")

#: How long a statement waits for a lock another process holds (a `trailhouse ingest` beside the
#: service commits in well under a second); past it the caller gets StoreUnavailable, not a hang.
_BUSY_TIMEOUT_S = 5.0
#: Virtual-machine steps between two looks at the request's time budget (~0.1 ms of work).
_PROGRESS_STEPS = 10_000

T = TypeVar("T")


def _budget_exhausted() -> int:
    """SQLite progress handler: non-zero interrupts the running statement."""
    budget = current_budget()
    return 1 if budget is not None and budget.exhausted() else 0


def _translate(exc: sqlite3.Error) -> StoreError:
    """A driver error as the store's: interrupted by the budget, locked, or anything else."""
    budget = current_budget()
    if isinstance(exc, sqlite3.OperationalError):
        if budget is not None and budget.exhausted():
            return budget.error()
        message = str(exc)
        if "locked" in message or "busy" in message:
            return StoreUnavailable(f"the SQLite database is locked by another process: {message}")
        if "unable to open" in message or "disk I/O" in message or "readonly" in message:
            return StoreUnavailable(f"the SQLite database cannot be used right now: {message}")
    return StoreError(f"SQLite error: {exc}")


@contextlib.contextmanager
def _guarding() -> Iterator[None]:
    """Driver errors leave as StoreError / StoreUnavailable / QueryTimeout / QueryCancelled."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(exc) from exc


def _translated(method: Callable[..., T]) -> Callable[..., T]:
    """``_guarding`` around a whole public store method."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with _guarding():
            return method(*args, **kwargs)

    return wrapper


def _is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` says another connection holds the database (busy timeout exhausted)."""
    return isinstance(exc, sqlite3.OperationalError) and any(word in str(exc) for word in ("locked", "busy"))


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only: it holds the audit record and secrets.

    SQLite gives its -wal and -shm files the database file's permissions.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


#: Each reading connection's page cache at most: a lookup touches a few dozen pages, and the
#: threads that read (the event loop, the thread pool) each hold a connection of their own.
READER_CACHE_MIB = 32


def _connect(path: str, cache_mib: int = READER_CACHE_MIB) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")  # allocated as pages are used
    # No mmap: the store's pages a connection has mapped count in the process's RSS, each
    # connection its own mapping of up to 2 GiB (+450 MB of RSS over a 1M-event ingest), which the
    # 1 GiB a process may use cannot hold at 10M; lookups through read() measured the same
    # (docs/benchmarks.md, "Memory").
    conn.execute("PRAGMA mmap_size=0")
    # A commit copies its dirty pages to the WAL; checkpointing every 1000 pages (the default)
    # copied the hot index pages into the database on nearly every ingest commit. 64 MiB of WAL
    # lets a page changed by many batches be checkpointed once.
    conn.execute("PRAGMA wal_autocheckpoint=16384")
    # The exact checks behind eventId and requestId hash hits (``Dialect.ids_in_sql``).
    for name, read in ID_READERS.values():
        conn.create_function(name, 1, _id_reader(read), deterministic=True)
    return conn


def _id_reader(read: Callable[[bytes], str | None]) -> Callable[[bytes | None], str | None]:
    """``read`` of an event row's packed body, as an SQL function: NULL for NULL, and for a body
    that cannot be read, which then matches no id (a lookup, or the dedupe of a whole batch, must
    not fail on one damaged row)."""

    def of_packed(packed: bytes | None) -> str | None:
        body = None if packed is None else codec.try_unpack(packed)
        return None if body is None else read(body)

    return of_packed


_UPSERT_USAGE = upsert_usage(SQLITE, f"VALUES ({SQLITE.marks(12)})")
_INSERT_EVENT = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({SQLITE.marks(len(EVENT_COLUMNS))})"
_INSERT_PENDING = f"INSERT INTO log_pending ({', '.join(PENDING_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"
_INSERT_RESOURCE = (
    f"INSERT INTO event_resources ({', '.join(RESOURCE_COLUMNS)})"
    f" VALUES ({SQLITE.marks(len(RESOURCE_COLUMNS))})"
)


class SqliteStore(SqlStore, MerkleLogSql, DeliverySql):
    """EventStore on a SQLite file."""

    in_process = True
    dialect = SQLITE

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        cache_mib: int = 256,
        merge_keys_at: int = MERGE_KEYS_AT,
    ) -> None:
        self.path = str(path)
        #: The writer's page cache; each reader's is at most READER_CACHE_MIB of it. SQLite allocates
        #: the cache as pages are used, so a process's memory grows to about this much and stays there.
        self._cache_mib = cache_mib
        self.url = f"sqlite:///{self.path}"
        #: What opening repaired in the data (one line each), for ``trailhouse migrate`` to report.
        self.repairs: list[str] = []
        if self.path != ":memory:":
            if not create and not Path(self.path).exists():
                raise StoreMissing(
                    f"no store at {self.url}: nothing has been stored there (check --db or TRAILHOUSE_DB)"
                )
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        self._write_lock = threading.Lock()
        # Bounded like the database's own busy wait: while another process holds the file, callers
        # queued behind one another must not wait a busy timeout each. Writes queued this long
        # behind our own are back-pressure too, so the message names both causes.
        self._group = GroupCommit(
            self._transaction,
            self._write_lock,
            closed=lambda: self._closed,
            wait_s=_BUSY_TIMEOUT_S,
            busy=lambda: StoreUnavailable(
                f"no write went through in {_BUSY_TIMEOUT_S:.0f} s: the SQLite database is locked"
                " by another process, or the writes queued ahead of this one are too slow"
            ),
            held_elsewhere=_is_locked,
        )
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        # Term ids are immutable once committed, so a cache of committed ones is always right.
        self._term_cache: dict[str, int] = {}
        self._recent_keys = RecentKeys(merge_keys_at)
        try:
            # Every ingested event changes a leaf page in each index; at 10M events those indexes are
            # gigabytes, and a page that falls out of the writer's cache must be read back first.
            self._writer = _connect(self.path, cache_mib=cache_mib)
            self._migrate()
        except sqlite3.Error as exc:
            error = _translate(exc)
            raise error.__class__(f"cannot open SQLite database {self.path}: {exc}") from exc

    # -- lifecycle -----------------------------------------------------------------------------
    def _migrate(self) -> None:
        w = self._writer
        w.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name TEXT PRIMARY KEY, applied_ms INTEGER NOT NULL)"
        )
        applied = {row[0] for row in w.execute("SELECT name FROM schema_migrations")}
        self.repairs += apply_migrations(
            SQLITE,
            execute=w.execute,
            transaction=lambda: _immediate(w),
            # executescript would commit on its own; run statements one by one inside our tx.
            statements=lambda script: split_statements(script, sqlite3.complete_statement),
            applied=applied,
            repairs={
                "0006_event_ids_unique_per_account": lambda: remove_duplicate_events(w, self._rebuild_usage),
                "0015_log_leaf_tiles": lambda: convert_log_leaves(runner(w), SQLITE.ph),
            },
        )

    def _rebuild_usage(self, conn: sqlite3.Connection, account: int, access_key: int) -> None:
        """Recompute one AccessKey's usage rows from its stored events."""
        conn.execute("DELETE FROM key_usage WHERE account = ? AND access_key = ?", (account, access_key))
        rows = conn.execute(
            "SELECT seq, body FROM events WHERE account = ? AND access_key = ? ORDER BY seq",
            (account, access_key),
        ).fetchall()
        records = [event_from_json(codec.unpack(body)) for _, body in rows]
        unit = build_unit(records)  # one AccessKey's events, each stored once: no repeats
        new_terms: dict[str, int] = {}
        self._intern(conn, set(unit.terms), new_terms)
        self._term_cache.update(new_terms)
        ids: list[int | None] = [None, *map(self._term_cache.__getitem__, unit.terms)]
        usage = Placed(unit, ids, [seq for seq, _ in rows]).usage_rows()
        if usage:
            conn.executemany(_UPSERT_USAGE, usage)

    def replay_reads(self) -> None:
        """None: SQLite's reads never wait on the network; the gateway runs them on the loop as they are."""
        return None

    @_translated
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            with contextlib.suppress(sqlite3.Error):
                # Unlimited, optimize re-analysed whole indexes: 12 s at 10M events, after a
                # 7-second ingest (bench run 20261123-160312-10m). Sampled statistics are enough:
                # lookups name their index anyway.
                self._writer.execute("PRAGMA analysis_limit=1000")
                self._writer.execute("PRAGMA optimize")
            self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            conn = _connect(self.path, cache_mib=min(READER_CACHE_MIB, self._cache_mib))
            conn.execute("PRAGMA query_only=ON")
            # Reads stop when the request's budget is spent (storage.budget): a broad lookup ends
            # with QueryTimeout instead of running on after its client was answered or left.
            conn.set_progress_handler(_budget_exhausted, _PROGRESS_STEPS)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # -- primitives of SqlStore ----------------------------------------------------------------
    def _guard(self) -> contextlib.AbstractContextManager[None]:
        return _guarding()

    def _read(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        return self._reader().execute(query, params).fetchall()

    def _write(self, query: str, params: Sequence[object]) -> int:
        with self._write_lock:
            if self._closed:
                raise StoreError("the store is closed")
            try:
                cur = self._writer.execute(query, params)
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"already stored: {exc}") from None
            return cur.rowcount

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[ConnectionTx]:
        with self._write_lock, _immediate(self._writer):
            yield ConnectionTx(self._writer)

    def _lookup_terms(self, values: Sequence[str]) -> Iterable[tuple[int, Any]]:
        conn = self._reader()
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            yield from conn.execute(
                f"SELECT id, value FROM terms WHERE value IN ({SQLITE.marks(len(chunk))})", chunk
            )

    def _intern(self, conn: sqlite3.Connection, values: set[str], new_terms: dict[str, int]) -> None:
        """Give every value a term id inside the current write transaction."""
        unknown = [v for v in values if v not in self._term_cache and v not in new_terms]
        if not unknown:
            return
        for start in range(0, len(unknown), 500):
            chunk = unknown[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for term_id, value in conn.execute(
                f"SELECT id, value FROM terms WHERE value IN ({marks})", chunk
            ):
                self._term_cache[value] = term_id
        missing = [v for v in unknown if v not in self._term_cache]
        if missing:
            # The single writer hands out ids itself: one executemany instead of a round trip per term.
            first = conn.execute("SELECT COALESCE(MAX(id), 0) FROM terms").fetchone()[0] + 1
            rows = [(first + offset, value) for offset, value in enumerate(missing)]
            conn.executemany("INSERT INTO terms(id, value) VALUES (?, ?)", rows)
            new_terms.update((value, term_id) for term_id, value in rows)

    # -- events --------------------------------------------------------------------------------
    def append(self, records: Sequence[EventRecord]) -> AppendResult:
        return self.append_units([build_unit(records)]) if records else AppendResult([], [])

    @_translated
    def append_units(self, units: Sequence[WriteUnit]) -> AppendResult:
        """Batches that arrive while another commits are written in one transaction with it
        (storage.group_commit)."""
        return self._group.append(units)

    def _transaction(self, units: Sequence[WriteUnit]) -> AppendResult:
        conn = self._writer
        new_terms: dict[str, int] = {}
        new_keys: list[RecentRow] = []
        self._bound_term_cache()
        with _immediate(conn):
            result = self._append_locked(conn, units, new_terms, new_keys)
        # Only committed ids and keys may enter the writer's caches.
        self._term_cache.update(new_terms)
        self._recent_keys.add(new_keys)
        if self._recent_keys.merge_due():
            self._merge_recent_keys()
        return result

    def _merge_recent_keys(self) -> None:
        """Move a slice of the recent eventId keys into ``event_keys`` (storage.sqlite_keys), in a
        transaction of its own: the batches before it are committed whatever becomes of it, and
        their callers must hear so, hence no exception leaves here."""
        conn = self._writer
        try:
            with _immediate(conn):
                top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
                merged = self._recent_keys.merge(conn, top)
        except Exception as exc:
            # Nothing is lost: the keys stay in event_keys_recent. The next try waits for a slice's
            # worth of new keys, so a merge that keeps failing does not slow every batch.
            self._recent_keys.merge_failed()
            log.warning("merging the recent eventId keys failed, to be retried: %s", exc)
            return
        self._recent_keys.merged(merged, top)

    def _append_locked(
        self,
        conn: sqlite3.Connection,
        units: Sequence[WriteUnit],
        new_terms: dict[str, int],
        new_keys: list[RecentRow],
    ) -> AppendResult:
        self._intern(conn, set().union(*(u.terms for u in units)), new_terms)
        cache = self._term_cache

        def tid(value: str) -> int:
            found = cache.get(value)
            return found if found is not None else new_terms[value]

        top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        self._recent_keys.sync(conn, top)
        plan = plan_batch(units, tid, lambda keys: stored_event_ids(conn, self._recent_keys, keys))
        if not plan.placed:
            return AppendResult([], plan.duplicates)
        placed = plan.place(top + 1)
        conn.executemany(_INSERT_EVENT, itertools.chain.from_iterable(p.event_rows() for p in placed))
        conn.execute(_INSERT_PENDING, pending_row(placed))
        new_keys += recent_rows(placed)
        conn.executemany(
            "INSERT INTO event_keys_recent (slice, gen, account, event_key, seq) VALUES (?, ?, ?, ?, ?)",
            new_keys,
        )
        resources = [row for p in placed for row in p.resource_rows()]
        if resources:
            conn.executemany(_INSERT_RESOURCE, resources)
            conn.executemany(
                "INSERT OR IGNORE INTO account_resource_types (account, rtype) VALUES (?, ?)",
                {(row[1], row[3]) for row in resources},
            )
        usage = merge_usage(placed)
        if usage:
            conn.executemany(_UPSERT_USAGE, usage)
        return AppendResult(plan.accepted, plan.duplicates)

    @_translated
    def find_events(
        self, *, account_id: str, flt: EventFilter, after: Position | None, descending: bool, limit: int
    ) -> list[StoredEvent]:
        return list(self._find(account_id, flt, after, descending, limit))

    def _find(
        self, account_id: str, flt: EventFilter, after: Position | None, descending: bool, limit: int | None
    ) -> Iterator[StoredEvent]:
        account_ref = self._term_id(account_id)
        if account_ref is None:
            return
        query = self._build_find(account_ref, flt, after, descending, limit)
        if query is None:
            return
        if query.driver not in DAY_BUCKETED_DRIVERS:
            yield from self._rows(query)
            return
        remaining = limit
        for day_flt, day in self._days(account_ref, flt, after, descending):
            query = self._build_find(account_ref, day_flt, after, descending, remaining, day)
            assert query is not None
            found = 0
            for event in self._rows(query):
                found += 1
                yield event
            if remaining is not None:
                remaining -= found
                if remaining <= 0:
                    return

    def _rows(self, query: FindQuery) -> Iterator[StoredEvent]:
        for seq, event_time, body in self._reader().execute(query.sql, query.params):
            yield StoredEvent(seq, event_time, codec.unpack(body))

    def _days(
        self, account_ref: int, flt: EventFilter, after: Position | None, descending: bool
    ) -> Iterator[tuple[EventFilter, int]]:
        """The window cut into UTC days, in the order of the walk, within the account's data."""
        lo, hi = flt.start_ms, flt.end_ms
        if after is not None:
            lo, hi = (lo, min(hi, after.event_time_ms)) if descending else (max(lo, after.event_time_ms), hi)
        conn = self._reader()
        ends = [
            conn.execute(
                f"SELECT event_time FROM events INDEXED BY events_time WHERE account = ?"
                f" ORDER BY event_time {order} LIMIT 1",
                (account_ref,),
            ).fetchone()
            for order in ("ASC", "DESC")
        ]
        if ends[0] is not None and ends[1] is not None:
            yield from day_windows(flt, max(lo, ends[0][0]), min(hi, ends[1][0]), descending=descending)

    @_translated
    def explain_find(self, *, account_id: str, flt: EventFilter, descending: bool = True) -> list[str]:
        """The query plan of a lookup, for tests that prove every filter is index-served.

        A day-bucketed lookup is shown as the query of one day (the last of the window).
        """
        account_ref = self._term_id(account_id) or 0
        after = Position(flt.end_ms, 1 << 62)
        query = self._build_find(account_ref, flt, after, descending, 50)
        if query is not None and query.driver in DAY_BUCKETED_DRIVERS:
            query = self._build_find(account_ref, flt, after, descending, 50, sqlite_day(flt.end_ms))
        if query is None:
            return []
        return [row[3] for row in self._reader().execute("EXPLAIN QUERY PLAN " + query.sql, query.params)]

    @_translated
    def events_by_seq(self, *, account_id: str, seqs: Sequence[int]) -> dict[int, StoredEvent]:
        account_ref = self._term_id(account_id)
        if account_ref is None or not seqs:
            return {}
        found: dict[int, StoredEvent] = {}
        unique = sorted(set(seqs))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self._reader().execute(
                f"SELECT seq, event_time, body FROM events WHERE account = ? AND seq IN"
                f" ({','.join('?' * len(chunk))})",
                [account_ref, *chunk],
            )
            for seq, event_time, body in rows:
                found[seq] = StoredEvent(seq, event_time, codec.unpack(body))
        return found

    @_translated
    def read_log(self, *, after_seq: int, limit: int) -> list[LogEntry]:
        # One writer commits in seq order, so a reader can never see seq N+1 before seq N.
        rows = self._reader().execute(
            "SELECT e.seq, t.value, e.event_time, e.body FROM events e"
            " JOIN terms t ON t.id = e.account WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            LogEntry(seq, account, StoredEvent(seq, event_time, codec.unpack(body)))
            for seq, account, event_time, body in rows
        ]

    @_translated
    def _read_log_leaves(self, *, after_seq: int, limit: int) -> list[LogLeaf]:
        # The queue ingest fills (log_pending, migration 0016), not events, whose pages hold the
        # bodies. No leaf: an event stored before migration 0011, whose body is read and hashed.
        reader = self._reader()
        names: dict[int, str] = {}  # the accounts' names once per batch (a handful)
        leaves: list[LogLeaf] = []
        append = leaves.append
        read = lambda sql, params: reader.execute(sql, params).fetchall()  # noqa: E731
        for seq, account, leaf in queued_leaves(read, "?", after_seq, limit):
            name = names.get(account)
            if name is None:
                name = names[account] = reader.execute(
                    "SELECT value FROM terms WHERE id = ?", (account,)
                ).fetchone()[0]
            if leaf is None:
                (body,) = reader.execute("SELECT body FROM events WHERE seq = ?", (seq,)).fetchone()
                leaf = leaf_hash(codec.unpack(body))
            append(LogLeaf(seq, name, leaf))
        return leaves

    def _log_transaction(self) -> contextlib.AbstractContextManager[Run]:
        return writer_transaction(self._write_lock, _BUSY_TIMEOUT_S, lambda: self._closed, self._writer)

    @_translated
    def maintain(self, *, now_ms: int) -> list[str]:
        """Refresh the planner's statistics. Events are kept until deleted: one file, no partitions."""
        with self._write_lock:
            if self._closed:
                return []
            self._writer.execute("PRAGMA optimize")
        return ["optimize"]

    @_translated
    def meta_get_or_set(self, name: str, value: bytes) -> bytes:
        with self._write_lock:
            self._writer.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (name, value))
            row = self._writer.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the database's write lock at once (``BEGIN IMMEDIATE``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # not after a Ctrl-C that lands once COMMIT is done: raise that one
            conn.execute("ROLLBACK")
        raise
