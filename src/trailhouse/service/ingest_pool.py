"""Decode, validate and pack events in worker processes, so that the one writer only writes.

Half of an ingested event's time is Python that needs no store: splitting NDJSON, validating
(``event_from_json``), zstd-packing the body, hashing its Merkle leaf, gathering its strings and
folding its AccessKey usage (``storage.units.build_unit``). Done in the process
that also writes, it shares one core with SQLite's work; in worker processes it runs beside it
(docs/benchmarks.md, "Decode in worker processes"). Two doors use it:

* ``trailhouse ingest --workers N`` (``Pipeline``): the reader (the caller's generator) cuts the
  input into pieces of at most ``PIECE`` events that never straddle a transaction; the pool works
  on a bounded number of them at once, and their results come back in input order, so the one
  writer stores, de-duplicates and reports exactly as it would have in one process.
* ``serve``'s ``POST /api/v1/events`` with ``TRAILHOUSE_INGEST_WORKERS`` (``BatchDecoder``): one
  request's body (gunzipped, decoded, validated against the token's accounts, packed) per task.

Workers never open the store: they return each piece as a ``WriteUnit`` (columns, as msgpack),
and the writer appends the units (``EventLog.append_units``): it maps each unit's distinct strings
to term ids and zips its columns into rows, never touching an event's fields one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import msgspec

from ..model.credentials import ApiToken
from ..storage.base import WriteUnit, build_unit
from .ingest import IngestLimits, IngestWarning, Rejection, decode_body, decode_ndjson, validate_items

__all__ = [
    "PIECE",
    "BatchDecoder",
    "Decoded",
    "DecoderLost",
    "Items",
    "Lines",
    "Pipeline",
    "Work",
    "Writable",
    "default_workers",
    "unpack",
]

#: Events per piece of work sent to a worker: large enough that a task's overhead (~0.1 ms) is
#: noise against its ~50 ms of decoding, small enough that a transaction spreads over the workers.
PIECE = 1000


@dataclass(frozen=True, slots=True)
class Lines:
    """NDJSON lines, decoded by ``decode_ndjson`` as the one-process path would: the first item's
    index and the first line's number are those of the whole file, so rejections name them."""

    lines: list[bytes]
    first_index: int
    first_line: int
    events: int  # the non-blank lines: the items the decode gives


@dataclass(frozen=True, slots=True)
class Items:
    """Events already split out of a JSON document (``decode_events``): validated only."""

    items: list[tuple[int, Any]]

    @property
    def events(self) -> int:
        return len(self.items)


Work = Lines | Items


@dataclass(frozen=True, slots=True)
class Decoded:
    """One piece's outcome: how many items it held, its valid events built into a unit for the
    writer, and what ``validate_items`` refused or warned about."""

    events: int
    unit: WriteUnit
    rejected: list[Rejection]
    warnings: list[IngestWarning]


def default_workers() -> int:
    """One process per core but the writer's, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@dataclass(frozen=True, slots=True)
class Writable:
    """Which accounts' events a caller may write, as a value a decode process can be sent: a
    token's ``may_use`` answers the same, but sending it would send the token's hash along."""

    all_accounts: bool
    account_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, token: ApiToken) -> Writable:
        return cls(token.all_accounts, frozenset(token.account_ids))

    def __call__(self, account_id: str) -> bool:
        return self.all_accounts or account_id in self.account_ids


#: The operator's own command (``trailhouse ingest``) may write any account's events.
EVERYONE = Writable(all_accounts=True)


def decode(work: Work, limits: IngestLimits) -> Decoded:
    items = (
        list(decode_ndjson(work.lines, work.first_index, work.first_line))
        if isinstance(work, Lines)
        else work.items
    )
    records, rejected, warnings = validate_items(items, may_write=EVERYONE, limits=limits)
    return Decoded(len(items), build_unit(records), rejected, warnings)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(tuple[int, WriteUnit, list[Rejection], list[IngestWarning]])
_worker_limits = IngestLimits()


def _start_worker(limits: IngestLimits, writer_alive: Connection) -> None:
    global _worker_limits  # noqa: PLW0603 - the worker process's one configuration, set once at start
    _worker_limits = limits
    # Ctrl-C reaches the whole process group: the writer alone decides what happens then.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_writer, args=(writer_alive,), daemon=True).start()


def _exit_with_writer(writer_alive: Connection) -> None:
    """A writer killed (kill -9, the OOM killer) cannot shut its pool down, and a worker waiting
    for work would wait forever (it holds both ends of the pool's queue itself, so it never sees
    EOF there). Only the writer holds the sending end of this pipe: EOF means it is gone."""
    with contextlib.suppress(EOFError, OSError):
        writer_alive.recv_bytes()
    os._exit(1)


def _in_worker(work: Work) -> bytes:
    return _packed(decode(work, _worker_limits))


def _packed(done: Decoded) -> bytes:
    # A unit is columns: msgspec encodes and decodes its lists of ints and bytes in C.
    return _ENCODER.encode((done.events, done.unit, done.rejected, done.warnings))


def unpack(data: bytes) -> Decoded:
    """What a worker sent back."""
    return Decoded(*_DECODER.decode(data))


def _body_in_worker(
    body: bytes, gzipped: bool, max_bytes: int, max_events: int, may_write: Writable
) -> bytes:
    """One request's body: the server's in-process steps (``decode_body``, ``validate_items``)
    with the packing added. A body that cannot be read raises here and again in the server."""
    items = decode_body(body, gzipped=gzipped, max_bytes=max_bytes, max_events=max_events)
    records, rejected, warnings = validate_items(items, may_write=may_write, limits=_worker_limits)
    return _packed(Decoded(len(items), build_unit(records), rejected, warnings))


def _ready() -> int:
    return os.getpid()


class Pipeline:
    """Work in input order, through ``workers`` processes (0: here, lazily, as one process would).

    At most ``window`` pieces are in flight (submitted and not yet handed back): a transaction's
    worth, so that the workers keep decoding while the writer commits, plus two per worker. A
    10M-event file streams through in constant memory.
    """

    def __init__(self, workers: int, limits: IngestLimits, batch: int) -> None:
        self.workers = workers
        self.limits = limits
        self.piece = PIECE  # read here, not at import: the tests make pieces small
        self.window = -(-batch // self.piece) + 2 * workers
        self.max_in_flight = 0
        self._pool: ProcessPoolExecutor | None = None
        self._writer_alive: Connection | None = None  # closed by the writer's exit, however it ends

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            # Pieces not started are dropped; running ones (one per worker) finish first, so no
            # worker is left behind.
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._writer_alive is not None:
            self._writer_alive.close()

    def run(self, stream: Iterable[Work | Any]) -> Iterator[Decoded | Any]:
        """The stream with each piece of work replaced by its ``Decoded``; anything else (the
        caller's markers: a file starts, ends, fails) passes through in its place."""
        stream = iter(stream)
        head: list[Work | Any] = []
        if self.workers:
            # An input of one piece is decoded here: starting processes would cost more than it.
            pieces = 0
            for event in stream:
                head.append(event)
                pieces += isinstance(event, Lines | Items)
                if pieces > 1:
                    self._pool = self._start()
                    break
        pending: deque[Future[bytes] | Work | Any] = deque()
        in_flight = 0
        for event in _chain(head, stream):
            if not isinstance(event, Lines | Items):
                pending.append(event)
                continue
            while in_flight >= self.window:
                done = self._settle(pending.popleft())
                in_flight -= isinstance(done, Decoded)
                yield done
            pending.append(self._pool.submit(_in_worker, event) if self._pool else event)
            in_flight += 1
            self.max_in_flight = max(self.max_in_flight, in_flight)
        while pending:
            yield self._settle(pending.popleft())

    def _start(self) -> ProcessPoolExecutor:
        pool, self._writer_alive = start_pool(self.workers, self.limits)
        return pool

    def _settle(self, item: Future[bytes] | Work | Any) -> Decoded | Any:
        if isinstance(item, Future):
            assert self._pool is not None  # a future comes from the pool
            return unpack(_result_of(item, self._pool))
        if isinstance(item, Lines | Items):
            return decode(item, self.limits)
        return item


def start_pool(workers: int, limits: IngestLimits) -> tuple[ProcessPoolExecutor, Connection]:
    """A pool of ``workers`` decode processes, and the pipe end whose closing (however the writer
    ends) tells them to exit. Processes start on demand, up to ``workers``."""
    # forkserver (spawn elsewhere): a worker is a fresh interpreter, never a fork of a process
    # that holds the store's connections.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__])
    receiving, writer_alive = context.Pipe(duplex=False)
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(limits, receiving)
    )
    _widen_pipes(pool)
    return pool, writer_alive


#: How long a result is waited for before the pool is checked for a lost worker that its own
#: thread has not noticed (``_unwedge``). A piece takes ~50 ms, a 10,000-event request ~0.3 s.
WEDGE_CHECK_S = 2.0


def _result_of(future: Future[bytes], pool: ProcessPoolExecutor) -> bytes:
    """``future.result()``, which a worker lost at the wrong moment cannot make wait forever."""
    while True:
        try:
            return future.result(timeout=WEDGE_CHECK_S)
        except TimeoutError:
            _unwedge(pool)


def _unwedge(pool: ProcessPoolExecutor) -> None:
    """Break a pool whose own thread cannot see that a worker was lost.

    A result larger than the pipe (a piece's is ~1.5 MB) is written in parts. A worker killed
    between them leaves the pool's thread (CPython 3.11) in ``recv`` for the rest of a message that
    never comes: this process holds a writing end of the result pipe itself, so no end of file
    arrives, and the thread never looks at the workers' sentinels again. No future ends, and
    ``shutdown(wait=True)`` would wait for that thread forever: a killed worker hung ``trailhouse
    ingest`` (seen 3 times in 60 kills at random moments on a loaded box). So, when a worker is
    dead: stop the others (the pool is broken anyway: its thread would terminate them) and close
    this process's writing end. The thread's read then ends, and the pool breaks as it would have:
    every pending future fails with BrokenProcessPool. Nothing here blocks, or reads from a
    sentinel (the pool's thread may be reading it). The attributes are the pool's private ones:
    if they move, this does nothing."""
    if getattr(pool, "_shutdown_thread", True):
        return  # shut down (its workers exit as they finish), or already known to be broken
    processes = list((getattr(pool, "_processes", None) or {}).values())
    try:
        sentinels = [p.sentinel for p in processes]
    except ValueError:  # closed: the pool is shut down
        return
    if not sentinels or not multiprocessing.connection.wait(sentinels, timeout=0):
        return  # every worker alive: the result is only slow
    for process in processes:
        with contextlib.suppress(OSError, ValueError):  # already gone, or closed by the pool
            process.kill()
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if isinstance(writer, Connection):
        writer.close()


class DecoderLost(RuntimeError):
    """A request's batch could not be decoded because decode processes stopped (killed, out of
    memory) twice under it: nothing of that batch was stored, and the next request gets a new pool."""


class BatchDecoder:
    """``POST /api/v1/events``'s decoding, validation and packing in ``workers`` processes, one
    request's body per task, so that the server's process only receives, writes and answers.

    The pool starts with ``start`` (every worker at once: the first requests do not wait for
    processes) or with the first request. A pool broken by a lost worker (one that held a batch,
    or an idle one: either breaks the whole pool) is replaced by a new one, and the batches it
    held are decoded again there, once; a batch whose second pool breaks too fails with
    ``DecoderLost``.
    """

    _log = logging.getLogger("trailhouse.error")

    def __init__(
        self, workers: int, limits: IngestLimits, *, max_body_bytes: int, max_batch_events: int
    ) -> None:
        if workers < 1:
            raise ValueError(f"a BatchDecoder needs at least one worker, got {workers}")
        self.workers = workers
        self.limits = limits
        self.max_body_bytes = max_body_bytes
        self.max_batch_events = max_batch_events
        self.pools_started = 0
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._writer_alive: Connection | None = None
        self._closed = False

    def start(self) -> None:
        """Start the pool and fork its processes now. It blocks while they are forked (the first
        time also while the forkserver imports this module, ~0.3 s): the app calls it in a thread."""
        pool = self._current()
        for _ in range(self.workers):
            pool.submit(_ready)  # each submit finding no idle worker starts one

    async def decode(self, body: bytes, *, gzipped: bool, may_write: Writable) -> bytes:
        """The body's items decoded, judged and packed in a worker, as ``unpack`` reads them.
        Raises as ``decode_body`` does for a body that cannot be read, ``DecoderLost`` when the
        pool broke under it twice."""
        pool = self._current()
        try:
            return await self._decode_in(pool, body, gzipped, may_write)
        except BrokenProcessPool:
            if self._discard(pool):
                # The operator should know (a worker killed by the OOM killer leaves no other trace).
                self._log.warning(
                    "ingest: a decode process stopped; its pool was replaced and the batches it held "
                    "are decoded again"
                )
        # Decoding is pure (no store, no side effect): the batch is decoded again, in a new pool.
        # Once: a body that kills its worker must not take down pool after pool.
        pool = self._current()
        try:
            return await self._decode_in(pool, body, gzipped, may_write)
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise DecoderLost(
                "decode processes stopped twice while they held this batch; nothing of it was stored: "
                "send it again"
            ) from exc

    async def _decode_in(
        self, pool: ProcessPoolExecutor, body: bytes, gzipped: bool, may_write: Writable
    ) -> bytes:
        future = asyncio.wrap_future(
            pool.submit(_body_in_worker, body, gzipped, self.max_body_bytes, self.max_batch_events, may_write)
        )
        try:
            # As ``_result_of``: a worker lost while it wrote a large result must not leave the
            # request, and every later one, waiting forever.
            while not (await asyncio.wait({future}, timeout=WEDGE_CHECK_S))[0]:
                _unwedge(pool)
        except asyncio.CancelledError:
            future.cancel()  # the request ended: a batch not started is dropped, as before
            raise
        return future.result()

    def pids(self) -> list[int]:
        """The worker processes running now (for tests and benchmarks)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return [p for p in processes if p is not None]

    def close(self) -> None:
        """Stop the pool: batches not started are dropped (their requests have ended), running
        ones finish first, so no worker is left behind."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            alive, self._writer_alive = self._writer_alive, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if alive is not None:
            alive.close()

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise DecoderLost("the server is stopping; send the batch again")
            if self._pool is None:
                self._pool, self._writer_alive = start_pool(self.workers, self.limits)
                self.pools_started += 1
            return self._pool

    def _discard(self, broken: ProcessPoolExecutor) -> bool:
        """Drop a broken pool; False when another request dropped it first."""
        with self._lock:
            if self._pool is not broken:
                return False
            self._pool = None
            alive, self._writer_alive = self._writer_alive, None
        broken.shutdown(wait=False, cancel_futures=True)
        if alive is not None:
            alive.close()  # any worker of it still alive exits
        return True


#: Bytes a pool pipe holds: a piece's lines (~1.1 MB) or its result (~1.5 MB) in one or two reads.
PIPE_BYTES = 1 << 20


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Pipes of 1 MiB instead of Linux's 64 KiB. The pool's thread in the writer's process reads
    each result in pipe-sized chunks and takes the GIL back from the writer for every one: 24
    hand-overs of up to a switch interval (5 ms) per piece left the worker blocked on a full
    pipe and the writer spinning. Measured at 200k events, --workers 1: 12,380 and 12,797 →
    17,130 and 17,207 events/s, the writer's CPU 14.4 → 10.4 s (docs/benchmarks.md). The queues
    are the pool's private attributes: if they move, this does nothing."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    ends = [
        getattr(getattr(pool, "_result_queue", None), "_reader", None),
        getattr(getattr(pool, "_call_queue", None), "_writer", None),
    ]
    for end in ends:
        if set_size is not None and isinstance(end, Connection):
            with contextlib.suppress(OSError):
                fcntl.fcntl(end.fileno(), set_size, PIPE_BYTES)


def _chain(head: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from head
    yield from rest
