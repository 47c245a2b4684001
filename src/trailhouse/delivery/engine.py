"""The delivery engine: follows the event log into every enabled trail's destinations.

Each trail is delivered by one node at a time: the node holding the trail's lease in the store
(``trail/<account>/<name>``, renewed every few seconds, taken over by another node once it
expires). Per destination the store keeps a checkpoint (model/delivery.py), and the engine
tails ``read_log`` from it; ``read_log`` never shows a seq before a lower one has committed, so a
checkpoint on a seq never skips an event.

* OSS: in-scope events are gathered for ``TRAILHOUSE_DELIVERY_WINDOW_S`` from the first one seen
  (or up to ``max_file_events``); the window's seq range and time are saved in the checkpoint
  *before* its files are written, so a crash before the commit writes the same keys and bytes
  again. Then the ``after_window`` hooks run, then the checkpoint moves past the window.
* Insights: an account trail with insight selectors also delivers its Insights records, under
  the same lease, with checkpoints of their own (insights.py).
* Stream: each batch read is published with ``Nats-Msg-Id`` and its acknowledgements awaited
  before the checkpoint moves; on taking a trail, the subject's last record tells where delivery
  really stood (stream.py).

A failing destination is retried with exponential backoff (at most a minute apart) and its error
is kept in the checkpoint for GetTrailStatus; nothing is skipped, so delivery catches up after.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from ..model.delivery import EVENT_SINKS, DeliveryCheckpoint, Sink
from ..model.times import now_ms
from ..model.trail import Trail, TrailStatus
from ..settings import Settings
from ..storage.base import EventStore, LogEntry, StoreError
from .files import FileGroup, build_file
from .insights import InsightDelivery
from .object_storage import ObjectStorage, ObjectStorageError, open_object_storage
from .runs import (
    DeliveryFailed,
    DeliveryStats,
    SinkState,
    WindowDelivered,
    WindowHook,
    lease_name,
    run_of,
    run_start,
)
from .scope import TrailScope
from .stream import StreamError, StreamPublisher, StreamTarget, message_id, record_bytes

__all__ = ["DeliveryEngine", "DeliveryStats", "WindowDelivered", "lease_name"]

log = logging.getLogger("trailhouse.delivery")

READ_BATCH = 1000
MAX_BACKOFF_S = 60.0
#: How often a stream checkpoint is saved while records flow (see _step_stream).
STREAM_SAVE_S = 1.0


@dataclass
class _TrailRun:
    scope: TrailScope
    sinks: dict[str, SinkState]
    lease_until: float = 0.0
    #: StopLogging was seen: deliver what arrived up to this seq (open windows close), then let go.
    stop_seq: int | None = None
    #: The insight destinations' states (stepped by insights.py), by sink.
    insight_states: dict[str, SinkState] = field(default_factory=dict)

    @property
    def trail(self) -> Trail:
        return self.scope.trail

    @property
    def run_id(self) -> str:
        return str(self.trail.start_logging_ms or 0)


class DeliveryEngine:
    """Deliver every enabled trail of the store; ``run_forever`` as a task of ``serve``, or ``run_once``."""

    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        *,
        storage: ObjectStorage | None = None,
        publisher: StreamPublisher | None = None,
        node_id: str | None = None,
        lease_ttl_s: float | None = None,
        poll_s: float = 0.1,
        refresh_s: float = 2.0,
        max_file_events: int = 10_000,
    ) -> None:
        self.store = store
        self.settings = settings
        self.storage = storage if storage is not None else open_object_storage(settings)
        nats_url = settings.nats_url
        self.publisher = (
            publisher if publisher is not None else (StreamPublisher(nats_url) if nats_url else None)
        )
        self.node_id = node_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ttl_ms = int((lease_ttl_s or settings.delivery_lease_s) * 1000)
        self.poll_s = poll_s
        self.refresh_s = refresh_s
        self.window_s = settings.delivery_window_s
        self.max_file_events = max_file_events
        #: Called after a window's files are written, before its checkpoint commits (WindowDelivered).
        self.after_window: list[WindowHook] = []
        self.stats = DeliveryStats()
        self._runs: dict[tuple[str, str], _TrailRun] = {}
        self._next_refresh = 0.0
        #: When this node first saw each seq (monotonic), to measure ingest → stream record lag.
        self._seen: dict[int, float] = {}
        from .history import HistoryJobs

        #: Delivery-history jobs (backfills of the last 90 days), run beside the live delivery.
        self.history = HistoryJobs(self)
        #: Each trail's Insights records, beside its events.
        self.insights = InsightDelivery(self)

    # -- the loop --------------------------------------------------------------------------------
    async def run_forever(self) -> None:
        try:
            while True:
                try:
                    await self.tick()
                except StoreError as exc:  # the store is down: try again at the next tick
                    log.warning("delivery: store unavailable: %s", exc)
                    await asyncio.sleep(1.0)
                except Exception:  # a defect must not end delivery for the life of the process
                    log.exception("delivery: unexpected failure; retrying")
                    await asyncio.sleep(5.0)
                await asyncio.sleep(self.poll_s)
        finally:
            await self.close()

    async def run_once(self, *, max_rounds: int = 100_000) -> None:
        """Deliver everything in the log now, closing open windows (``trailhouse trails deliver --once``).

        Stops when every trail this node holds is at the head, or its destination failed."""
        self._next_refresh = 0.0
        try:
            for _ in range(max_rounds):
                await self.tick(flush=True)
                if not any(self._pending(run) for run in self._runs.values()) and not self.history.pending():
                    return
        finally:
            await self._flush_checkpoints()
            if self.publisher is not None:  # its connection belongs to this event loop
                await self.publisher.close()

    def _pending(self, run: _TrailRun) -> bool:
        if not run.lease_until:
            return False
        return self.insights.pending(run) or any(
            s.failures == 0 and (s.checkpoint is None or s.checkpoint.delivered_seq < self._head)
            for s in run.sinks.values()
        )

    async def close(self) -> None:
        await self._flush_checkpoints()
        for run in self._runs.values():
            with contextlib.suppress(StoreError):
                await asyncio.to_thread(
                    self.store.release_lease,
                    lease_name(run.trail.account_id, run.trail.name),
                    owner=self.node_id,
                )
        self._runs.clear()
        if self.publisher is not None:
            await self.publisher.close()

    async def tick(self, *, flush: bool = False) -> None:
        now = time.monotonic()
        if now >= self._next_refresh:
            await self._refresh()
            self._next_refresh = now + self.refresh_s
        with contextlib.suppress(DeliveryFailed):
            await self.history.step()
        if not self._runs:
            return
        self._head = await asyncio.to_thread(self.store.newest_seq)
        for run in list(self._runs.values()):
            if not await self._hold_lease(run):
                continue
            # The stream first: its records are due within seconds, a file only when its window closes.
            for state in sorted(run.sinks.values(), key=lambda st: st.sink != Sink.STREAM.value):
                if time.monotonic() < state.retry_at:
                    continue
                try:
                    await self._step(run, state, flush=flush or run.stop_seq is not None)
                    state.failures = 0
                except DeliveryFailed as exc:
                    await self.record_failure(run, state, str(exc))
            if run.lease_until:
                await self.insights.step(run, flush=flush or run.stop_seq is not None)
            slowest = min((s.checkpoint.delivered_seq for s in run.sinks.values() if s.checkpoint), default=0)
            self.stats.behind[run.trail.trail_arn] = max(0, self._head - slowest)

    _head: int = 0

    @staticmethod
    def _drained(run: _TrailRun) -> bool:
        """A stopped trail's destinations have delivered everything up to the stop."""
        assert run.stop_seq is not None
        return all(
            s.checkpoint is not None
            and not s.checkpoint.window_end_seq
            and s.checkpoint.delivered_seq >= run.stop_seq
            for s in run.sinks.values()
        )

    async def _refresh(self) -> None:
        trails = await asyncio.to_thread(self.store.list_all_trails)
        wanted: dict[tuple[str, str], TrailScope] = {}
        for trail in trails:
            if trail.status is not TrailStatus.ENABLE:
                continue
            sinks = self._sinks_of(trail)
            if not sinks:
                continue
            wanted[(trail.account_id, trail.name)] = await asyncio.to_thread(self.scope_of, trail)
        for key in list(self._runs):
            if key not in wanted:
                held = self._runs[key]
                stopped = next(
                    (t for t in trails if (t.account_id, t.name) == key and t.status is TrailStatus.DISABLE),
                    None,
                )
                if (
                    stopped is not None
                    and str(stopped.start_logging_ms or 0) == held.run_id
                    and held.lease_until
                ):
                    # Events that arrived while the trail logged are still delivered (the open window).
                    if held.stop_seq is None:
                        held.stop_seq = await asyncio.to_thread(self.store.newest_seq)
                    if not self._drained(held):
                        continue
                await self._flush_checkpoints([held])
                gone = self._runs.pop(key)
                with contextlib.suppress(StoreError):
                    if not any((t.account_id, t.name) == key for t in trails):  # deleted: forget it
                        await asyncio.to_thread(
                            self.store.delete_checkpoints, account_id=key[0], trail_name=key[1]
                        )
                    await asyncio.to_thread(self.store.release_lease, lease_name(*key), owner=self.node_id)
                self.stats.behind.pop(gone.trail.trail_arn, None)
        for key, scope in wanted.items():
            run = self._runs.get(key)
            sinks = self._sinks_of(scope.trail)
            if (
                run is None
                or run.run_id != str(scope.trail.start_logging_ms or 0)
                or set(run.sinks) != set(sinks)
            ):
                self._runs[key] = _TrailRun(scope, {s: SinkState(s) for s in sinks})
            else:
                run.scope = scope

    def scope_of(self, trail: Trail) -> TrailScope:
        """The trail's accounts (every member of an organization trail's organization) and selector."""
        accounts: frozenset[str] = frozenset({trail.account_id})
        if trail.is_organization_trail:
            org = self.store.organization_of(trail.account_id)
            if org is not None and org.management_account_id == trail.account_id:
                accounts = frozenset(org.account_ids)
        selector = self.store.get_data_event_selector(account_id=trail.account_id, trail_name=trail.name)
        insight_types: frozenset[str] = frozenset()
        if not trail.is_organization_trail:
            chosen = self.store.get_insight_selectors(account_id=trail.account_id, trail_name=trail.name)
            insight_types = frozenset(chosen or ())
        return TrailScope(trail, accounts, selector, insight_types)

    @staticmethod
    def _sinks_of(trail: Trail) -> list[str]:
        # MaxCompute and MNS are refused when a trail is created or updated (service/trails.py).
        sinks = []
        if trail.oss_bucket_name:
            sinks.append(Sink.OSS.value)
        if trail.sls_project_arn:
            sinks.append(Sink.STREAM.value)
        return sinks

    async def _hold_lease(self, run: _TrailRun) -> bool:
        now = time.monotonic()
        if run.lease_until - now > self.lease_ttl_ms / 1000 * 2 / 3:
            return True
        name = lease_name(run.trail.account_id, run.trail.name)
        held = await asyncio.to_thread(
            lambda: self.store.take_lease(name, owner=self.node_id, now_ms=now_ms(), ttl_ms=self.lease_ttl_ms)
        )
        if not held:
            if run.lease_until:
                log.info("delivery: %s is now delivered by another node", run.trail.trail_arn)
            run.lease_until = 0.0
            for state in run.sinks.values():  # reload from the store when the lease comes back
                state.checkpoint = None
            run.insight_states.clear()
            return False
        run.lease_until = now + self.lease_ttl_ms / 1000
        return True

    # -- checkpoints -----------------------------------------------------------------------------
    async def save_checkpoint(self, run: _TrailRun, state: SinkState, checkpoint: DeliveryCheckpoint) -> None:
        checkpoint = replace(checkpoint, updated_ms=now_ms())
        name = lease_name(run.trail.account_id, run.trail.name)
        saved = await asyncio.to_thread(
            lambda: self.store.save_checkpoint(checkpoint, lease=name, owner=self.node_id)
        )
        if not saved:
            run.lease_until = 0.0
            state.checkpoint = None
            raise DeliveryFailed("lost the trail's lease to another node")
        state.checkpoint = checkpoint
        state.persisted_at = time.monotonic()
        state.dirty = False

    async def _flush_checkpoints(self, runs: list[_TrailRun] | None = None) -> None:
        """Save the checkpoints held only in memory (before a lease is let go)."""
        for run in self._runs.values() if runs is None else runs:
            for state in run.sinks.values():
                if state.dirty and state.checkpoint is not None and run.lease_until:
                    with contextlib.suppress(DeliveryFailed, StoreError):
                        await self.save_checkpoint(run, state, state.checkpoint)

    async def load_checkpoint(
        self,
        run: _TrailRun,
        state: SinkState,
        *,
        siblings: Collection[str] = EVENT_SINKS,
        start: Callable[[], int] | None = None,
    ) -> DeliveryCheckpoint:
        """The destination's checkpoint, or a new one when the trail began a new logging run.

        A new run starts at the head (``start``: the log's newest seq by default): ActionTrail
        delivers what happens while it logs (a delivery-history job delivers the past). Every
        destination of the run among ``siblings`` starts at the same place, which the run's name
        records: one added later too, and a history job delivers up to it.
        """
        trail = run.trail
        cp = await asyncio.to_thread(
            lambda: self.store.get_checkpoint(
                account_id=trail.account_id, trail_name=trail.name, sink=state.sink
            )
        )
        if cp is None or run_of(cp.run) != run.run_id:
            others = await asyncio.to_thread(
                lambda: self.store.list_checkpoints(account_id=trail.account_id, trail_name=trail.name)
            )
            starts = [run_start(o.run) for o in others if o.sink in siblings and run_of(o.run) == run.run_id]
            head = starts[0] if starts else await asyncio.to_thread(start or self.store.newest_seq)
            cp = DeliveryCheckpoint(trail.account_id, trail.name, state.sink, f"{run.run_id}@{head}", head)
            await self.save_checkpoint(run, state, cp)
        state.checkpoint = cp
        state.scan_seq = cp.delivered_seq
        state.in_window = 0
        state.window_open = None
        state.reconciled = False
        state.caught_up = False
        return cp

    async def record_failure(self, run: _TrailRun, state: SinkState, message: str) -> None:
        state.failures += 1
        delay = min(MAX_BACKOFF_S, 0.5 * 2 ** min(state.failures, 10))
        state.retry_at = time.monotonic() + delay
        self.stats.errors[state.sink] = self.stats.errors.get(state.sink, 0) + 1
        log.warning(
            "delivery: %s %s failed (retry in %.1fs): %s", run.trail.trail_arn, state.sink, delay, message
        )
        cp = state.checkpoint
        if cp is None:
            return
        with contextlib.suppress(DeliveryFailed, StoreError):
            await self.save_checkpoint(
                run, state, replace(cp, last_error=message[:500], last_error_ms=now_ms())
            )

    # -- one step of one destination -------------------------------------------------------------
    async def _step(self, run: _TrailRun, state: SinkState, *, flush: bool) -> None:
        cp = state.checkpoint or await self.load_checkpoint(run, state)
        if state.sink == Sink.OSS.value:
            await self._step_oss(run, state, cp, flush=flush)
        else:
            await self._step_stream(run, state, cp)

    async def _read(self, after: int, limit: int = READ_BATCH) -> list[LogEntry]:
        entries = await asyncio.to_thread(lambda: self.store.read_log(after_seq=after, limit=limit))
        now = time.monotonic()
        for e in entries:
            self._seen.setdefault(e.seq, now)
        if len(self._seen) > 100_000:
            for seq in sorted(self._seen)[:50_000]:
                del self._seen[seq]
        return entries

    async def _step_oss(
        self, run: _TrailRun, state: SinkState, cp: DeliveryCheckpoint, *, flush: bool
    ) -> None:
        if cp.window_end_seq:
            await self._write_window(run, state, cp)
            return
        entries = await self._read(state.scan_seq)
        for entry in entries:
            if run.scope.covers(entry) is not None:
                state.in_window += 1
                if state.window_open is None:
                    state.window_open = time.monotonic()
            state.scan_seq = entry.seq
            if state.in_window >= self.max_file_events:
                break
        if state.in_window == 0:
            # Nothing to deliver so far: move the checkpoint over what is out of scope, now and then.
            if state.scan_seq > cp.delivered_seq and (flush or time.monotonic() - state.persisted_at > 10):
                await self.save_checkpoint(run, state, replace(cp, delivered_seq=state.scan_seq))
            return
        assert state.window_open is not None
        due = time.monotonic() - state.window_open >= self.window_s
        full = state.in_window >= self.max_file_events
        if not (flush or due or full):
            return
        if flush and not full and len(entries) == READ_BATCH:
            return  # read on to the head before closing the window
        # Each window a second after the last at least: the file names' times then order the files
        # as the events arrived, also when a busy trail closes several windows in one second.
        window = replace(cp, window_end_seq=state.scan_seq, window_ms=max(now_ms(), cp.window_ms + 1000))
        await self.save_checkpoint(run, state, window)
        await self._write_window(run, state, window)

    async def _write_window(self, run: _TrailRun, state: SinkState, cp: DeliveryCheckpoint) -> None:
        trail = run.trail
        groups: dict[FileGroup, list[bytes]] = {}
        after = cp.delivered_seq
        while after < cp.window_end_seq:
            entries = await self._read(after, READ_BATCH)
            if not entries:
                break
            for entry in entries:
                if entry.seq > cp.window_end_seq:
                    break
                facts = run.scope.covers(entry)
                if facts is not None:
                    group = FileGroup(entry.account_id, facts.acs_region or trail.home_region)
                    groups.setdefault(group, []).append(entry.event.body)
                after = entry.seq
            if entries[-1].seq >= cp.window_end_seq:
                break
        org = trail.organization_id if trail.is_organization_trail else ""
        files = tuple(
            build_file(
                prefix=trail.oss_key_prefix, group=g, window_ms=cp.window_ms, bodies=b, organization_id=org
            )
            for g, b in groups.items()
        )
        bucket = trail.oss_bucket_name
        try:
            for f in files:
                await asyncio.to_thread(self.storage.put, bucket, f.key, f.data)
        except ObjectStorageError as exc:
            raise DeliveryFailed(str(exc)) from None
        delivered = WindowDelivered(
            trail, bucket, cp.window_ms, cp.delivered_seq, cp.window_end_seq, files, self.storage
        )
        for hook in self.after_window:
            try:
                result = hook(delivered)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - a hook's failure holds the window back, like a put's
                raise DeliveryFailed(
                    f"after-window hook {getattr(hook, '__name__', hook)!s}: {exc}"
                ) from None
        count = sum(f.count for f in files)
        await self.save_checkpoint(
            run,
            state,
            replace(
                cp,
                delivered_seq=cp.window_end_seq,
                window_end_seq=0,
                last_delivery_ms=now_ms() if files else cp.last_delivery_ms,
                last_error="",
                last_error_ms=None,
                delivered_events=cp.delivered_events + count,
            ),
        )
        self.stats.events["oss"] += count
        self.stats.files += len(files)
        state.scan_seq = cp.window_end_seq
        state.in_window = 0
        state.window_open = None

    async def _step_stream(self, run: _TrailRun, state: SinkState, cp: DeliveryCheckpoint) -> None:
        trail = run.trail
        if self.publisher is None:
            raise DeliveryFailed("no stream server is configured (TRAILHOUSE_NATS_URL)")
        target = StreamTarget.for_trail(trail.sls_project_arn, trail.name)
        if target is None:
            raise DeliveryFailed(f"SlsProjectArn {trail.sls_project_arn!r} names no project")
        if not state.reconciled:
            try:
                last = await self.publisher.last_delivered_seq(target)
            except StreamError as exc:
                raise DeliveryFailed(str(exc)) from None
            if last is not None and last > cp.delivered_seq:
                # Published before a crash took the checkpoint with it: those records are in the stream.
                cp = replace(cp, delivered_seq=last)
                await self.save_checkpoint(run, state, cp)
            state.reconciled = True
        entries = await self._read(cp.delivered_seq)
        if not entries:
            if state.dirty and time.monotonic() - state.persisted_at >= STREAM_SAVE_S:
                await self.save_checkpoint(run, state, cp)
            return
        records: list[tuple[str, bytes]] = []
        seqs: list[int] = []
        for entry in entries:
            if run.scope.covers(entry) is not None:
                records.append(
                    (
                        message_id(trail.account_id, trail.name, entry.seq),
                        record_bytes(entry.event.body, entry.event.event_time_ms),
                    )
                )
                seqs.append(entry.seq)
        last_seq = entries[-1].seq
        if not records:
            if time.monotonic() - state.persisted_at > 10:
                await self.save_checkpoint(run, state, replace(cp, delivered_seq=last_seq))
            else:
                state.checkpoint = replace(cp, delivered_seq=last_seq)
                state.dirty = True
            return
        try:
            await self.publisher.publish(target, records)
        except StreamError as exc:
            raise DeliveryFailed(str(exc)) from None
        acked = time.monotonic()
        lags = self.stats.stream_lag_s
        lags.extend(acked - self._seen.get(s, acked) for s in seqs)
        if len(lags) > 100_000:
            del lags[:50_000]
        moved = replace(
            cp,
            delivered_seq=last_seq,
            last_delivery_ms=now_ms(),
            last_error="",
            last_error_ms=None,
            delivered_events=cp.delivered_events + len(records),
        )
        # The stream itself records how far delivery got (its last record's Nats-Msg-Id, read when a
        # node takes the trail), so the checkpoint is saved at most every STREAM_SAVE_S: a store write
        # per batch would compete with ingest for the write lock.
        if time.monotonic() - state.persisted_at >= STREAM_SAVE_S or cp.last_error:
            await self.save_checkpoint(run, state, moved)
        else:
            state.checkpoint = moved
            state.dirty = True
        self.stats.events["sls"] += len(records)

    # -- for tests and operators -----------------------------------------------------------------
    def trails(self) -> Sequence[Trail]:
        return [run.trail for run in self._runs.values()]
