"""A trail's Insights records into its destinations: ``Actiontrail-Insight`` files and stream records.

An account trail whose insight selectors name types (PutInsightSelectors) delivers the records
of those types (scope.py) beside its events, under the same lease, with a checkpoint of its own
per destination (``oss-insight``, ``sls-insight``) whose cursor is the record's ``ref``: the
store hands out refs in commit order (``insights_after``), so a cursor on a ref skips nothing.

* Files: the records in scope are gathered for ``TRAILHOUSE_DELIVERY_WINDOW_S`` from the first
  one seen, then the window (its last ref and its time) is saved before its files are written:
  a crash in between writes the same keys and bytes again. The files are the event files' format
  (files.py) under ``AliyunLogs/Actiontrail-Insight/<acsRegion>/YYYY/MM/DD/``, each record the
  stored JSON byte for byte, Start and End records as they were stored.
* Stream: each batch is published to ``<project>.actiontrail_<trail>.insight`` with
  ``Nats-Msg-Id`` ``<account>:<trail>:insight:<ref>`` and acknowledged before the checkpoint moves;
  on taking the trail, the subject's last record says where delivery stood (as for events).

A new logging run starts at the account's newest record, as event delivery starts at the log's
head: a trail delivers the insights stored while it logs. Delivery-history jobs deliver events
only. A failing destination is retried with the engine's backoff; its error is kept in the
insight checkpoint and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from ..model.delivery import DeliveryCheckpoint, Sink
from ..model.insights import StoredInsight
from ..model.times import now_ms
from ..storage.base import StoreError
from .files import INSIGHT_TYPE, FileGroup, build_file
from .object_storage import ObjectStorageError
from .runs import DeliveryFailed, SinkState
from .stream import StreamError, StreamTarget

if TYPE_CHECKING:
    from .engine import DeliveryEngine, _TrailRun

__all__ = [
    "INSIGHT_TOPIC",
    "InsightDelivery",
    "insight_message_id",
    "insight_record_bytes",
    "insight_target",
]

log = logging.getLogger("trailhouse.delivery")

READ_BATCH = 500
MAX_BACKOFF_S = 60.0
#: ``__topic__`` of an insight's stream record (ActionTrail's events have ``actiontrail_audit_event``).
INSIGHT_TOPIC = "actiontrail_insight_event"
_INSIGHT_SINKS = frozenset({Sink.INSIGHT_OSS.value, Sink.INSIGHT_STREAM.value})


def insight_target(project_arn: str, trail_name: str) -> StreamTarget | None:
    """The trail's insight subject: a token below its event subject, so neither subscription
    (``<project>.actiontrail_<trail>`` exactly, or with ``.insight``) sees the other's records."""
    events = StreamTarget.for_trail(project_arn, trail_name)
    return None if events is None else StreamTarget(events.stream, f"{events.subject}.insight")


def insight_message_id(account_id: str, trail_name: str, ref: int) -> str:
    # Ends with ``:<ref>`` like an event's id ends with ``:<seq>``: stream.seq_of_message_id reads both.
    return f"{account_id}:{trail_name}:insight:{ref}"


def insight_record_bytes(insight: StoredInsight) -> bytes:
    return orjson.dumps(
        {
            "__topic__": INSIGHT_TOPIC,
            "__source__": "actiontrail",
            "__time__": insight.event_time_ms // 1000,
            "event": insight.body.decode(),
        }
    )


class InsightDelivery:
    """The insight half of each trail run the engine holds; the engine calls ``step`` each tick."""

    def __init__(self, engine: DeliveryEngine) -> None:
        self.engine = engine

    @staticmethod
    def sinks_of(run: _TrailRun) -> list[str]:
        scope = run.scope
        if not scope.delivers_insights:
            return []
        sinks = []
        if scope.trail.oss_bucket_name:
            sinks.append(Sink.INSIGHT_OSS.value)
        if scope.trail.sls_project_arn:
            sinks.append(Sink.INSIGHT_STREAM.value)
        return sinks

    def pending(self, run: _TrailRun) -> bool:
        states: dict[str, SinkState] = run.insight_states
        return any(
            s.failures == 0
            and (s.checkpoint is None or bool(s.checkpoint.window_end_seq) or s.in_window or not s.caught_up)
            for s in states.values()
        )

    async def step(self, run: _TrailRun, *, flush: bool) -> None:
        states: dict[str, SinkState] = run.insight_states
        wanted = self.sinks_of(run)
        for sink in [s for s in states if s not in wanted]:
            del states[sink]
        for sink in wanted:
            state = states.setdefault(sink, SinkState(sink))
            if time.monotonic() < state.retry_at:
                continue
            try:
                if sink == Sink.INSIGHT_OSS.value:
                    await self._step_oss(run, state, flush=flush)
                else:
                    await self._step_stream(run, state)
                state.failures = 0
            except DeliveryFailed as exc:
                await self.engine.record_failure(run, state, str(exc))

    # -- checkpoints: the engine's, with the insight sinks as a run's siblings ---------------------
    async def _load(self, run: _TrailRun, state: SinkState) -> DeliveryCheckpoint:
        # A new logging run delivers the insights stored from now on: after the account's newest.
        account = run.trail.account_id
        return await self.engine.load_checkpoint(
            run,
            state,
            siblings=_INSIGHT_SINKS,
            start=lambda: self.engine.store.last_insight_ref(account_id=account),
        )

    async def _read(self, run: _TrailRun, after: int) -> list[tuple[int, StoredInsight]]:
        account = run.trail.account_id
        try:
            return await asyncio.to_thread(
                lambda: self.engine.store.insights_after(
                    account_id=account, after_ref=after, limit=READ_BATCH
                )
            )
        except StoreError as exc:
            raise DeliveryFailed(f"the store: {exc}") from None

    # -- files -----------------------------------------------------------------------------------
    async def _step_oss(self, run: _TrailRun, state: SinkState, *, flush: bool) -> None:
        cp = state.checkpoint or await self._load(run, state)
        if cp.window_end_seq:
            await self._write_window(run, state, cp)
            return
        batch = await self._read(run, state.scan_seq)
        full = False
        for ref, insight in batch:
            if run.scope.covers_insight(insight):
                state.in_window += 1
                if state.window_open is None:
                    state.window_open = time.monotonic()
            state.scan_seq = ref
            if state.in_window >= self.engine.max_file_events:
                full = True
                break
        more = len(batch) == READ_BATCH or full
        if state.in_window == 0:
            state.caught_up = not more
            # Nothing in scope so far: move the checkpoint over the rest, now and then.
            if state.scan_seq > cp.delivered_seq and (flush or time.monotonic() - state.persisted_at > 10):
                await self.engine.save_checkpoint(run, state, replace(cp, delivered_seq=state.scan_seq))
            return
        assert state.window_open is not None
        due = time.monotonic() - state.window_open >= self.engine.window_s
        if not (flush or due or full) or (flush and not full and more):
            state.caught_up = False
            return
        window = replace(cp, window_end_seq=state.scan_seq, window_ms=max(now_ms(), cp.window_ms + 1000))
        await self.engine.save_checkpoint(run, state, window)
        await self._write_window(run, state, window)

    async def _write_window(self, run: _TrailRun, state: SinkState, cp: DeliveryCheckpoint) -> None:
        trail = run.trail
        groups: dict[FileGroup, list[bytes]] = {}
        after = cp.delivered_seq
        while after < cp.window_end_seq:
            batch = await self._read(run, after)
            if not batch:
                break
            for ref, insight in batch:
                if ref > cp.window_end_seq:
                    break
                if run.scope.covers_insight(insight):
                    group = FileGroup(insight.account_id, insight.region or trail.home_region)
                    groups.setdefault(group, []).append(insight.body)
                after = ref
            if batch[-1][0] >= cp.window_end_seq:
                break
        files = [
            build_file(
                prefix=trail.oss_key_prefix,
                group=g,
                window_ms=cp.window_ms,
                bodies=b,
                event_type=INSIGHT_TYPE,
            )
            for g, b in groups.items()
        ]
        try:
            for f in files:
                await asyncio.to_thread(self.engine.storage.put, trail.oss_bucket_name, f.key, f.data)
        except ObjectStorageError as exc:
            raise DeliveryFailed(str(exc)) from None
        count = sum(f.count for f in files)
        await self.engine.save_checkpoint(
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
        stats = self.engine.stats
        stats.events[state.sink] = stats.events.get(state.sink, 0) + count
        stats.files += len(files)
        state.scan_seq = cp.window_end_seq
        state.in_window = 0
        state.window_open = None
        state.caught_up = False

    # -- stream ----------------------------------------------------------------------------------
    async def _step_stream(self, run: _TrailRun, state: SinkState) -> None:
        trail = run.trail
        publisher = self.engine.publisher
        if publisher is None:
            raise DeliveryFailed("no stream server is configured (TRAILHOUSE_NATS_URL)")
        target = insight_target(trail.sls_project_arn, trail.name)
        if target is None:
            raise DeliveryFailed(f"SlsProjectArn {trail.sls_project_arn!r} names no project")
        cp = state.checkpoint or await self._load(run, state)
        if not state.reconciled:
            try:
                last = await publisher.last_delivered_seq(target)
            except StreamError as exc:
                raise DeliveryFailed(str(exc)) from None
            if last is not None and last > cp.delivered_seq:
                # Published before a crash took the checkpoint with it: those records are in the stream.
                cp = replace(cp, delivered_seq=last)
                await self.engine.save_checkpoint(run, state, cp)
            state.reconciled = True
        batch = await self._read(run, cp.delivered_seq)
        state.caught_up = len(batch) < READ_BATCH
        if not batch:
            return
        records = [
            (insight_message_id(trail.account_id, trail.name, ref), insight_record_bytes(insight))
            for ref, insight in batch
            if run.scope.covers_insight(insight)
        ]
        if records:
            try:
                await publisher.publish(target, records)
            except StreamError as exc:
                raise DeliveryFailed(str(exc)) from None
        await self.engine.save_checkpoint(
            run,
            state,
            replace(
                cp,
                delivered_seq=batch[-1][0],
                last_delivery_ms=now_ms() if records else cp.last_delivery_ms,
                last_error="",
                last_error_ms=None,
                delivered_events=cp.delivered_events + len(records),
            ),
        )
        stats = self.engine.stats
        stats.events[state.sink] = stats.events.get(state.sink, 0) + len(records)
