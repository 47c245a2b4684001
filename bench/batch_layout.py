"""Prototype: batch-level storage for SQLite (issue 15), measured against the current SqliteStore.

    python -m bench.batch_layout --events 1000000          # both stores, same data, one run
    python -m bench.batch_layout --events 300000 --profile # and cProfile of the prototype's ingest
    python -m bench.batch_layout --events 1000000 --dedupe-cost  # the prototype with/without event_ids

A self-contained layout in its own SQLite file (WAL, ``synchronous=FULL``, one transaction per
batch, as the real store). Per batch it writes:

* ``blocks``: the batch's events in arrival order, cut into blocks of at most ``BLOCK_EVENTS``; a
  block is one row keyed by its first seq, its blob the offsets of its events then each event
  packed alone by the product's codec (zstd with dictionary v1), so a hit reads one frame through
  incremental blob I/O instead of decoding a whole block;
* ``postings``: one row per (account, attribute, value, UTC day) the batch touches, its blob the
  (time, seq, flags) of the batch's events with that value, sorted by (time, seq). Attribute 0 is
  "every event" (the time index). EventRW is not a posting list but a flag bit on every entry.
  The key leads with (account, day, batch), so a batch's rows are appended together; ``batches``
  lists each (account, day) a batch touched with its time range, and a lookup probes
  (batch, attribute, value) for each batch of the day;
* ``event_ids``: the exact eventId dedupe, one entry per event keyed (account, key_hash) -> seq,
  whatever the event's day; a hash hit is confirmed against the stored body;
* ``key_usage``: the product's per-batch fold (``usage_rows``) upserted into the product's table.

Lookups (newest first, keyset cursor) walk the window's days from the newest, read the posting
rows of that day whose time range can still contribute, take at most a page from each (bisect to
the cursor, then backwards) and merge; then read the page's frames. ``check`` compares every
page of every shape with the current store's answer (same event ids, same order).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import cProfile
import heapq
import io
import itertools
import json
import pstats
import sqlite3
import statistics
import struct
import subprocess
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from trailhouse.model.event import EventRecord
from trailhouse.model.query import Attr, EventFilter, Position, UsageKind
from trailhouse.service.ingest import decode_ndjson, validate_items
from trailhouse.storage import codec
from trailhouse.storage.sql import SQLITE, sqlite_day, upsert_usage
from trailhouse.storage.sql.find import build_usage
from trailhouse.storage.sql.rows import Placed
from trailhouse.storage.sqlite import SqliteStore
from trailhouse.storage.units import build_unit, split_repeats

__all__ = ["BatchStore", "Shape", "check_shapes", "main", "shapes_for"]

BENCH = Path(__file__).resolve().parent
BLOCK_EVENTS = 1024
#: Posting blobs above this size are zstd-compressed (level 1); small ones stay raw.
COMPRESS_OVER = 512
ALL = 0  # the attribute id of "every event"
POSTED: dict[Attr, int] = {
    Attr.EVENT_NAME: 1,
    Attr.SERVICE_NAME: 2,
    Attr.USER_NAME: 3,
    Attr.ACCESS_KEY_ID: 4,
    Attr.SOURCE_IP: 5,
    Attr.RESOURCE_NAME: 6,
    Attr.ROLE_NAME: 7,
    Attr.EVENT_TYPE: 8,
    Attr.ERROR_CODE: 9,
    Attr.RESOURCE_TYPE: 10,
}
#: EventRW as flag bits of every posting entry (two common values: a list of its own would be half
#: the events), so EventRW+EventName reads the EventName list only.
RW_FLAGS = {"Write": 1, "Read": 2}

SCHEMA = """
CREATE TABLE IF NOT EXISTS terms (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS blocks (first_seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    account INTEGER NOT NULL, day INTEGER NOT NULL, first_seq INTEGER NOT NULL,
    min_time INTEGER NOT NULL, max_time INTEGER NOT NULL,
    PRIMARY KEY (account, day, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS postings (
    account INTEGER NOT NULL, day INTEGER NOT NULL, first_seq INTEGER NOT NULL,
    attr INTEGER NOT NULL, value INTEGER NOT NULL,
    min_time INTEGER NOT NULL, max_time INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (account, day, first_seq, attr, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_ids (
    account INTEGER NOT NULL, key INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (account, key, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_usage (
    account INTEGER NOT NULL, access_key INTEGER NOT NULL, kind INTEGER NOT NULL,
    service INTEGER NOT NULL, item INTEGER NOT NULL, item_type INTEGER NOT NULL,
    first_used INTEGER NOT NULL, last_used INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    source TEXT NOT NULL, calls INTEGER NOT NULL, failed INTEGER NOT NULL,
    PRIMARY KEY (account, access_key, kind, service, item, item_type)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS key_usage_recent
    ON key_usage (account, access_key, kind, service, last_used DESC, item, item_type);
CREATE INDEX IF NOT EXISTS key_usage_any_service
    ON key_usage (account, access_key, kind, last_used DESC, item, item_type, service);
"""
_UPSERT_USAGE = upsert_usage(SQLITE, f"VALUES ({SQLITE.marks(12)})")


class _EventId(msgspec.Struct):
    eventId: str  # noqa: N815 - the wire name


_EVENT_ID = msgspec.json.Decoder(_EventId)


def _pack_postings(entries: list[tuple[int, int, int]], first_seq: int) -> bytes:
    """(time, seq, flags) sorted by (time, seq) as three arrays: times, seq offsets, flags."""
    times = array("q", [e[0] for e in entries])
    offsets = array("I", [e[1] - first_seq for e in entries])
    flags = array("B", [e[2] for e in entries])
    raw = times.tobytes() + offsets.tobytes() + flags.tobytes()
    if len(raw) > COMPRESS_OVER:
        return b"\x01" + _ZC.compress(raw)
    return b"\x00" + raw


def _unpack_postings(blob: bytes, n: int, first_seq: int) -> tuple[array[int], array[int], bytes]:
    raw = _ZD.decompress(blob[1:]) if blob[0] == 1 else blob[1:]
    times = array("q")
    times.frombytes(raw[: 8 * n])
    offsets = array("I")
    offsets.frombytes(raw[8 * n : 12 * n])
    return times, offsets, raw[12 * n : 13 * n]


_ZC = zstandard.ZstdCompressor(level=1, write_content_size=True, write_checksum=False)
_ZD = zstandard.ZstdDecompressor()


@dataclass
class Page:
    seqs: list[int]
    times: list[int]
    event_ids: list[str]
    bodies: list[bytes]


@dataclass
class BatchStore:
    """The prototype layout: append a batch, look up a page, read usage."""

    path: str
    dedupe: bool = True
    conn: sqlite3.Connection = field(init=False)
    terms: dict[str, int] = field(init=False, default_factory=dict)
    block_starts: list[int] = field(init=False, default_factory=list)
    next_seq: int = field(init=False, default=1)
    #: Counters of what the writes were, for the report.
    written: collections.Counter[str] = field(init=False, default_factory=collections.Counter)
    #: Seconds spent in each step of ``append`` (wall clock), to say what dominates.
    spent: collections.Counter[str] = field(init=False, default_factory=collections.Counter)
    _mark: float = field(init=False, default=0.0)

    def _lap(self, step: str) -> None:
        now = time.perf_counter()
        self.spent[step] += now - self._mark
        self._mark = now

    def __post_init__(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "cache_size=-1048576",
            "mmap_size=2147418112",
            "wal_autocheckpoint=16384",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.executescript(SCHEMA)
        self.terms = {v: i for i, v in self.conn.execute("SELECT id, value FROM terms")}
        self.block_starts = [
            r[0] for r in self.conn.execute("SELECT first_seq FROM blocks ORDER BY first_seq")
        ]
        last = self.conn.execute(
            "SELECT first_seq + n FROM blocks ORDER BY first_seq DESC LIMIT 1"
        ).fetchone()
        self.next_seq = last[0] if last else 1

    def close(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    # -- ingest ----------------------------------------------------------------------------------
    def _intern(self, values: set[str], new: dict[str, int]) -> None:
        missing = sorted(v for v in values if v not in self.terms)
        if missing:
            first = self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM terms").fetchone()[0]
            rows = list(enumerate(missing, start=first))
            self.conn.executemany("INSERT INTO terms (id, value) VALUES (?, ?)", rows)
            new.update((v, i) for i, v in rows)
            self.terms.update(new)

    def _duplicates(self, fresh: list[tuple[int, EventRecord]]) -> set[int]:
        """Indexes of ``fresh`` whose (account, eventId) is stored already, whatever its day."""
        by_account: dict[int, dict[int, list[int]]] = {}
        for n, (_, rec) in enumerate(fresh):
            by_account.setdefault(self.terms[rec.account_id], {}).setdefault(rec.event_key, []).append(n)
        dup: set[int] = set()
        for account, keys in by_account.items():
            unique = list(keys)
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                hits = self.conn.execute(
                    "SELECT key, seq FROM event_ids WHERE account = ?"
                    f" AND key IN ({SQLITE.marks(len(chunk))})",
                    [account, *chunk],
                ).fetchall()
                for key, seq in hits:  # a hash hit: confirm on the stored eventId
                    stored = self._bodies([seq])[0][0]
                    for n in keys[key]:
                        if fresh[n][1].event_id == stored:
                            dup.add(n)
        return dup

    def append(self, records: Sequence[EventRecord]) -> tuple[int, int]:
        """Store a batch in one transaction; (accepted, duplicates)."""
        conn = self.conn
        new: dict[str, int] = {}
        self._mark = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        try:
            firsts, dup_in_batch = split_repeats(records)
            fresh = [(i, records[i]) for i in firsts]
            self._intern({rec.account_id for _, rec in fresh} | {""}, new)
            self._lap("begin, split, terms")
            dup = self._duplicates(fresh) if self.dedupe else set()
            self._lap("eventId dedupe: look-up")
            kept = [rec for n, (_, rec) in enumerate(fresh) if n not in dup]
            if kept:
                self._write(kept, new)
            conn.execute("COMMIT")
            self._lap("COMMIT (WAL write, fsync)")
        except BaseException:
            conn.execute("ROLLBACK")
            for value in new:
                self.terms.pop(value, None)
            raise
        return len(kept), len(dup) + len(dup_in_batch)

    def _write(self, kept: list[EventRecord], new: dict[str, int]) -> None:
        conn, tid = self.conn, self.terms
        values: set[str] = set()
        for rec in kept:
            values.update(
                v
                for v in (
                    rec.event_name,
                    rec.service_name,
                    rec.user_name,
                    rec.access_key_id,
                    rec.source_ip,
                    rec.role_name,
                    rec.event_type,
                    rec.error_code,
                )
                if v
            )
            for rtype, rname in rec.resources:
                values.add(rtype)
                values.add(rname)
        self._intern(values, new)
        self._lap("begin, split, terms")
        first_seq = self.next_seq
        seqs = range(first_seq, first_seq + len(kept))
        # Blocks: arrival order, each event packed alone so that a hit decodes one frame.
        blocks = []
        for start in range(0, len(kept), BLOCK_EVENTS):
            frames = [codec.pack(rec.body) for rec in kept[start : start + BLOCK_EVENTS]]
            offsets = array("I", [0])
            head = 4 * (len(frames) + 1)
            for frame in frames:
                offsets.append(offsets[-1] + len(frame))
            blob = array("I", [head + o for o in offsets]).tobytes() + b"".join(frames)
            blocks.append((first_seq + start, len(frames), blob))
        self._lap("blocks: zstd per event")
        conn.executemany("INSERT INTO blocks (first_seq, n, data) VALUES (?, ?, ?)", blocks)
        self._lap("blocks: INSERT")
        # Postings: one list per (account, attribute, value, day) of this batch.
        lists: dict[tuple[int, int, int, int], list[tuple[int, int, int]]] = {}
        for rec, seq in zip(kept, seqs, strict=False):
            t = rec.event_time_ms
            account = tid[rec.account_id]
            day = sqlite_day(t)
            entry = (t, seq, RW_FLAGS.get(rec.event_rw or "", 0))
            lists.setdefault((account, ALL, 0, day), []).append(entry)
            for attr, value in (
                (1, rec.event_name),
                (2, rec.service_name),
                (3, rec.user_name),
                (4, rec.access_key_id),
                (5, rec.source_ip),
                (7, rec.role_name),
                (8, rec.event_type),
                (9, rec.error_code),
            ):
                if value:
                    lists.setdefault((account, attr, tid[value], day), []).append(entry)
            for attr, value_set in ((6, {r[1] for r in rec.resources}), (10, {r[0] for r in rec.resources})):
                for value in value_set:
                    if value:
                        lists.setdefault((account, attr, tid[value], day), []).append(entry)
        self._lap("postings: group")
        rows = []
        for (account, attr, value, day), entries in lists.items():
            entries.sort()
            rows.append(
                (
                    account,
                    day,
                    first_seq,
                    attr,
                    value,
                    entries[0][0],
                    entries[-1][0],
                    len(entries),
                    _pack_postings(entries, first_seq),
                )
            )
        self._lap("postings: sort, pack")
        # Keyed by (account, day, batch) first: a batch's rows are contiguous at the end of the
        # day's range, so a commit dirties a few pages, not one page per distinct value.
        conn.executemany("INSERT INTO postings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?)",
            [(r[0], r[1], r[2], r[5], r[6]) for r in rows if r[3] == ALL],
        )
        self._lap("postings: INSERT")
        if self.dedupe:
            conn.executemany(
                "INSERT INTO event_ids (account, key, seq) VALUES (?, ?, ?)",
                [(tid[rec.account_id], rec.event_key, seq) for rec, seq in zip(kept, seqs, strict=False)],
            )
        self._lap("eventId dedupe: INSERT")
        # The product's fold, through a unit (which packs the bodies again: since the write units,
        # this lap holds more than the fold the results of bda8438 timed).
        unit = build_unit(kept)
        usage = Placed(unit, [None, *map(tid.get, unit.terms)], seqs).usage_rows()
        self._lap("usage: fold (usage_rows)")
        if usage:
            conn.executemany(_UPSERT_USAGE, usage)
        self._lap("usage: upsert")
        self.block_starts.extend(b[0] for b in blocks)
        self.next_seq = first_seq + len(kept)
        self.written.update(
            events=len(kept), blocks=len(blocks), posting_rows=len(rows), usage_rows=len(usage), batches=1
        )

    # -- lookups ---------------------------------------------------------------------------------
    def _bodies(self, seqs: Sequence[int]) -> list[tuple[str, bytes]]:
        """(eventId, body) of each seq: one blob handle per block, one frame read per event."""
        frames: dict[int, bytes] = {}
        by_block: dict[int, list[int]] = {}
        for seq in seqs:
            by_block.setdefault(
                self.block_starts[bisect.bisect_right(self.block_starts, seq) - 1], []
            ).append(seq)
        for first, members in by_block.items():
            with self.conn.blobopen("blocks", "data", first, readonly=True) as blob:
                for seq in members:
                    blob.seek(4 * (seq - first))
                    start, end = struct.unpack("<II", blob.read(8))
                    blob.seek(start)
                    frames[seq] = blob.read(end - start)
        out = []
        for seq in seqs:
            body = codec.unpack(frames[seq])
            out.append((_EVENT_ID.decode(body).eventId, body))
        return out

    def find(self, account_id: str, flt: EventFilter, after: Position | None, limit: int) -> Page:
        """A page newest first: ``limit`` events of ``flt`` before ``after``."""
        account = self.terms.get(account_id)
        attr, value_ids, want_flags = ALL, [0], 0
        for a, values in flt.equals.items():
            if a is Attr.EVENT_RW:
                want_flags = RW_FLAGS[values[0]]
            else:
                attr = POSTED[a]
                value_ids = [self.terms[v] for v in values if v in self.terms]
        if account is None or not value_ids:
            return Page([], [], [], [])
        hi_time, hi_seq = (flt.end_ms, 1 << 62) if after is None else (after.event_time_ms, after.seq)
        hi_time = min(hi_time, flt.end_ms)
        if after is not None and after.event_time_ms > flt.end_ms:
            hi_seq = 1 << 62
        lo = flt.start_ms
        found: list[tuple[int, int]] = []
        marks = SQLITE.marks(len(value_ids))
        for day in range(sqlite_day(hi_time), sqlite_day(lo) - 1, -1):
            need = limit - len(found)
            if need <= 0:
                break
            rows = self.conn.execute(
                "SELECT max_time, min_time, first_seq, n, value FROM postings WHERE account = ? AND day = ?"
                " AND first_seq IN (SELECT first_seq FROM batches WHERE account = ? AND day = ?"
                f" AND min_time <= ? AND max_time >= ?) AND attr = ? AND value IN ({marks})"
                " AND min_time <= ? AND max_time >= ? ORDER BY max_time DESC",
                [account, day, account, day, hi_time, lo, attr, *value_ids, hi_time, lo],
            ).fetchall()
            cands: list[tuple[int, int]] = []
            for max_time, _min_time, first_seq, n, value in rows:
                if len(cands) >= need and max_time < cands[need - 1][0]:
                    break  # every later row is older than the page's oldest candidate
                blob = self.conn.execute(
                    "SELECT data FROM postings WHERE account = ? AND day = ? AND first_seq = ? AND attr = ?"
                    " AND value = ?",
                    (account, day, first_seq, attr, value),
                ).fetchone()[0]
                times, offsets, flags = _unpack_postings(blob, n, first_seq)
                i = bisect.bisect_left(times, hi_time)
                while i < n and times[i] == hi_time and first_seq + offsets[i] < hi_seq:
                    i += 1
                taken = 0
                for j in range(i - 1, -1, -1):
                    t = times[j]
                    if t < lo or taken >= need:
                        break
                    if want_flags and not flags[j] & want_flags:
                        continue
                    cands.append((t, first_seq + offsets[j]))
                    taken += 1
                cands = heapq.nlargest(need, cands)
            found.extend(cands)
        bodies = self._bodies([s for _, s in found])
        return Page(
            [s for _, s in found], [t for t, _ in found], [e for e, _ in bodies], [b for _, b in bodies]
        )

    def usage_ips(
        self, account_id: str, key: str, service: str | None, limit: int
    ) -> list[tuple[str, int, int]]:
        """GetAccessKeyLastUsedIps' first page from the folded usage: (ip, last used, calls)."""
        query = build_usage(
            account_ref=self.terms.get(account_id, -1),
            key_ref=self.terms.get(key, -1),
            kind=UsageKind.IP,
            service_ref=None if service is None else self.terms.get(service, -1),
            since_ms=0,
            after=None,
            limit=limit,
            dialect=SQLITE,
        )
        return [(row[1], row[4], row[5]) for row in self.conn.execute(query.sql, query.params)]


# ------------------------------------------------------------------------------------ comparison


@dataclass(frozen=True)
class Shape:
    name: str
    flt: EventFilter


def shapes_for(records: Iterable[EventRecord], window_days: int = 7) -> tuple[str, list[Shape]]:
    """The busiest account and the lookup shapes of bench/shapes.py over its last ``window_days``."""
    recs = list(records)
    account = collections.Counter(r.account_id for r in recs).most_common(1)[0][0]
    mine = [r for r in recs if r.account_id == account]
    end = max(r.event_time_ms for r in mine)
    start = end - window_days * 86_400_000
    window = [r for r in mine if r.event_time_ms >= start]

    def top(values: Iterable[str | None]) -> str:
        return collections.Counter(v for v in values if v).most_common(1)[0][0]

    keys = collections.Counter(r.access_key_id for r in window if r.access_key_id)
    cold = min(keys.items(), key=lambda kv: (abs(kv[1] - 10), kv[0]))[0]
    writes = [r for r in window if r.event_rw == "Write"]
    picks: list[tuple[str, dict[Attr, tuple[str, ...]]]] = [
        ("none", {}),
        ("EventName", {Attr.EVENT_NAME: (top(r.event_name for r in window),)}),
        ("ServiceName", {Attr.SERVICE_NAME: (top(r.service_name for r in window),)}),
        ("User", {Attr.USER_NAME: (top(r.user_name for r in window),)}),
        ("EventAccessKeyId hot", {Attr.ACCESS_KEY_ID: (keys.most_common(1)[0][0],)}),
        ("EventAccessKeyId cold", {Attr.ACCESS_KEY_ID: (cold,)}),
        ("SourceIpAddress", {Attr.SOURCE_IP: (top(r.source_ip for r in window),)}),
        ("ResourceName", {Attr.RESOURCE_NAME: (top(n for r in window for _, n in r.resources),)}),
        (
            "EventRW+EventName",
            {Attr.EVENT_RW: ("Write",), Attr.EVENT_NAME: (top(r.event_name for r in writes),)},
        ),
    ]
    return account, [Shape(name, EventFilter(start, end, equals)) for name, equals in picks]


def _current_page(
    store: SqliteStore, account: str, flt: EventFilter, after: Position | None, limit: int
) -> Page:
    events = store.find_events(account_id=account, flt=flt, after=after, descending=True, limit=limit)
    return Page(
        [e.seq for e in events],
        [e.event_time_ms for e in events],
        [e.event_id for e in events],
        [e.body for e in events],
    )


def check_shapes(
    current: SqliteStore, proto: BatchStore, account: str, shapes: Sequence[Shape], *, pages: int, limit: int
) -> dict[str, Position | None]:
    """Walk ``pages`` pages of every shape in both stores; every page must hold the same events.

    Returns the cursor of each shape's last page walked (the "deep page" of the timings)."""
    deep: dict[str, Position | None] = {}
    for shape in shapes:
        after: Position | None = None
        for number in range(1, pages + 1):
            want = _current_page(current, account, shape.flt, after, limit)
            got = proto.find(account, shape.flt, after, limit)
            if (want.event_ids, want.seqs, want.bodies) != (got.event_ids, got.seqs, got.bodies):
                raise AssertionError(
                    f"{shape.name} page {number}: {got.event_ids[:3]}… != {want.event_ids[:3]}…"
                )
            if len(want.seqs) < limit:
                break
            deep[shape.name] = after = Position(want.times[-1], want.seqs[-1])
    return deep


# ----------------------------------------------------------------------------------- measurement


def _batches(path: str, size: int) -> Iterator[list[EventRecord]]:
    with open(path, "rb") as f:
        items = decode_ndjson(f)
        while chunk := list(itertools.islice(items, size)):
            yield validate_items(chunk, may_write=lambda _a: True)[0]


def _written() -> int:
    """Bytes this process has caused to be written to disk (WAL, checkpoints)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes"):
            return int(line.split()[1])
    return 0


def _ingest(append: Any, path: str, size: int, limit: int | None = None) -> dict[str, float]:
    """Decode (the product's path) and append ``path`` in batches of ``size``; events/s."""
    done, started, written = 0, time.perf_counter(), _written()
    with open(path, "rb") as f:
        items = decode_ndjson(itertools.islice(f, limit) if limit else f)
        while chunk := list(itertools.islice(items, size)):
            records = validate_items(chunk, may_write=lambda _a: True)[0]
            append(records)
            done += len(records)
    seconds = time.perf_counter() - started
    return {
        "events": done,
        "seconds": round(seconds, 2),
        "events_per_s": round(done / seconds),
        "disk_write_bytes_per_event": round((_written() - written) / done),
    }


def _size(path: Path) -> int:
    return sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists())


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _timings(fn: Any, n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 3),
        "p99": round(samples[int(len(samples) * 0.99) - 1], 3),
    }


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _table_bytes(conn: sqlite3.Connection) -> dict[str, int]:
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {name: size for name, size in rows}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.batch_layout", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--queries", type=int, default=200, help="timed queries per shape and page")
    p.add_argument("--pages", type=int, default=10, help="the deep page is this page of 50")
    p.add_argument("--profile", action="store_true", help="also cProfile the prototype's ingest")
    p.add_argument(
        "--dedupe-cost",
        action="store_true",
        help="only ingest: the prototype with and without its eventId dedupe, alternating per phase",
    )
    p.add_argument("--work", type=Path, default=BENCH / "work")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    from .dataset import day_floor, ensure_dataset

    ds = ensure_dataset(
        BENCH / "data",
        seed=7,
        count=args.events,
        end_day_ms=day_floor(1796515200000),
        http_events=50_000,
        file_events=50_000,
    )
    assert ds.slice_http is not None and ds.slice_file is not None
    args.work.mkdir(parents=True, exist_ok=True)
    if args.dedupe_cost:
        dedupe_cost(ds, args)
        return
    out: dict[str, Any] = {"events": args.events, "uptime_before": _uptime(), "ingest": {}, "disk": {}}
    print(out["uptime_before"], flush=True)
    cur_path, proto_path = args.work / "batch-current.db", args.work / "batch-proto.db"
    _fresh(cur_path)
    _fresh(proto_path)
    current, proto = SqliteStore(cur_path), BatchStore(str(proto_path))
    resend = ds.parts[0].path
    out["ingest"]["decode only (no store)"] = _ingest(lambda _r: None, ds.parts[0].path, 20_000, 200_000)
    # Phase by phase, the current store then the prototype, so both see about the same load.
    appends = (("current", current.append), ("prototype", proto.append))
    for part in ds.part_paths:
        for name, store_append in appends:
            out["ingest"].setdefault(name, {}).setdefault("bulk parts", []).append(
                _ingest(store_append, part, 20_000)
            )
    for name, _ in appends:
        phases = out["ingest"][name]
        phases["bulk, batches of 20,000 (file-like)"] = sum_phases(phases.pop("bulk parts"))
    for phase, path, size, limit in (
        ("full store, batches of 1,000 (HTTP-like)", ds.slice_http.path, 1_000, None),
        ("full store, batches of 20,000 (file-like)", ds.slice_file.path, 20_000, None),
        ("re-sent, 20,000 stored events in batches of 1,000", resend, 1_000, 20_000),
    ):
        for name, store_append in appends:
            out["ingest"][name][phase] = _ingest(store_append, path, size, limit)
    for name, _ in appends:
        print(name, json.dumps(out["ingest"][name]), flush=True)
    total = args.events + 100_000
    current._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    proto.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for name, path, conn in (("current", cur_path, current._writer), ("prototype", proto_path, proto.conn)):
        out["disk"][name] = {
            "bytes_per_event": round(_size(path) / total, 1),
            "tables_bytes_per_event": {k: round(v / total, 1) for k, v in _table_bytes(conn).items()},
        }
    out["prototype_writes"] = dict(proto.written)
    busy = sum(proto.spent.values())
    out["prototype_append_seconds"] = {k: round(v, 2) for k, v in proto.spent.most_common()}
    out["prototype_append_share"] = {k: f"{100 * v / busy:.1f} %" for k, v in proto.spent.most_common()}
    print(json.dumps(out["prototype_append_share"]), flush=True)
    print(json.dumps(out["disk"]), flush=True)

    since = ds.main_end_ms - 8 * 86_400_000
    records = [r for b in _batches(ds.parts[-1].path, 20_000) for r in b if r.event_time_ms >= since]
    account, shapes = shapes_for(records)
    deep = check_shapes(current, proto, account, shapes, pages=args.pages, limit=50)
    out["checked"] = (
        f"{len(shapes)} shapes, {args.pages} pages of 50 each: identical event ids, seqs and bodies"
    )
    out["queries"] = {}
    for shape in shapes:
        row: dict[str, Any] = {}
        for label, after in (("page 1", None), (f"page {args.pages}", deep.get(shape.name))):
            row[label + " current"] = _timings(
                lambda after=after, shape=shape: _current_page(current, account, shape.flt, after, 50),
                args.queries,
            )
            row[label + " prototype"] = _timings(
                lambda after=after, shape=shape: proto.find(account, shape.flt, after, 50), args.queries
            )
        out["queries"][shape.name] = row
        print(shape.name, json.dumps(row), flush=True)
    key = shapes[4].flt.equals[Attr.ACCESS_KEY_ID][0]
    want = [
        (u.item, u.last_used_ms, u.calls)
        for u in current.usage(
            account_id=account,
            access_key_id=key,
            kind=UsageKind.IP,
            service_name=None,
            since_ms=0,
            after=None,
            limit=50,
        )
    ]
    assert proto.usage_ips(account, key, None, 50) == want, "usage differs"
    out["queries"]["GetAccessKeyLastUsedIps hot key (store call)"] = {
        "page 1 current": _timings(
            lambda: current.usage(
                account_id=account,
                access_key_id=key,
                kind=UsageKind.IP,
                service_name=None,
                since_ms=0,
                after=None,
                limit=50,
            ),
            args.queries,
        ),
        "page 1 prototype": _timings(lambda: proto.usage_ips(account, key, None, 50), args.queries),
    }
    out["uptime_after"] = _uptime()
    print(out["uptime_after"], flush=True)
    current.close()
    proto.close()
    if args.profile:
        out["profile"] = profile_ingest(ds.parts[0].path, args.work / "batch-profile.db")
    path = args.out or BENCH / "results" / f"batch-layout-{args.events}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


def dedupe_cost(ds: Any, args: argparse.Namespace) -> None:
    """The same phases into two fresh prototypes, with and without ``event_ids``, phase by phase
    alternating, so that both see the same machine load."""
    stores = {}
    for label, dedupe in (("with eventId dedupe", True), ("without", False)):
        path = args.work / f"batch-dedupe-{dedupe}.db"
        _fresh(path)
        stores[label] = BatchStore(str(path), dedupe=dedupe)
    out: dict[str, Any] = {"events": args.events, "uptime_before": _uptime(), "ingest": {}}
    print(out["uptime_before"], flush=True)
    phases = [(f"bulk {p}", p, 20_000) for p in ds.part_paths]
    phases += [("full store, batches of 1,000", ds.slice_http.path, 1_000)]
    phases += [("full store, batches of 20,000", ds.slice_file.path, 20_000)]
    for name, path, size in phases:
        for label, store in stores.items():
            out["ingest"].setdefault(label, {})[name] = result = _ingest(store.append, path, size)
            print(label, name, json.dumps(result), flush=True)
    for label, store in stores.items():
        busy = sum(store.spent.values())
        out[label] = {k: f"{100 * v / busy:.1f} %" for k, v in store.spent.most_common()}
        store.close()
        out["ingest"][label]["bytes_per_event"] = round(_size(Path(store.path)) / store.written["events"], 1)
    out["uptime_after"] = _uptime()
    print(json.dumps(out, indent=1), flush=True)
    path = args.out or BENCH / "results" / f"batch-layout-dedupe-{args.events}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


def sum_phases(phases: list[dict[str, float]]) -> dict[str, float]:
    events = sum(p["events"] for p in phases)
    seconds = sum(p["seconds"] for p in phases)
    written = sum(p["disk_write_bytes_per_event"] * p["events"] for p in phases)
    return {
        "events": events,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds),
        "disk_write_bytes_per_event": round(written / events),
    }


def profile_ingest(path: str, db: Path, events: int = 200_000) -> str:
    """cProfile of the prototype ingesting ``events`` in batches of 20,000, top functions by own time."""
    _fresh(db)
    proto = BatchStore(str(db))
    profiler = cProfile.Profile()
    profiler.enable()
    _ingest(proto.append, path, 20_000, events)
    profiler.disable()
    proto.close()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    print(text.getvalue())
    return text.getvalue()


if __name__ == "__main__":
    main()
