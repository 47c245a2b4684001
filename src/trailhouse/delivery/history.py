"""Delivery-history jobs: deliver a trail's past (the events of the job's window, the 90 days
before it was created) into the trail's destinations, beside its live delivery.

The job record (model/trail.py ``HistoryJob``, stored by the trail operations) carries the
progress in ``checkpoint``: ``after=<seq>;end=<seq>;upto=<seq>;part=<n>``. ``upto`` is the log
head when the job started (later events are the live delivery's); a chunk of the log
``(after, end]`` is recorded before its files are written, so a job resumed after a crash, on any
node, writes the same files (same keys and bytes) and publishes the same stream records (the
same ``Nats-Msg-Id`` as the live delivery, so the stream drops repeats). One node runs a job at a
time, under the lease ``job/<id>``.

Files of part ``n`` are named with the job's creation time plus ``n`` seconds, so they sort in
log order after one another.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..model.delivery import EVENT_SINKS, Sink
from ..model.times import now_ms
from ..model.trail import HistoryJob, HistoryJobStatus, Trail
from ..storage.base import LogEntry, StoreError
from .files import FileGroup, build_file
from .object_storage import ObjectStorageError
from .runs import run_of, run_start
from .scope import TrailScope
from .stream import StreamError, StreamTarget, message_id, record_bytes

if TYPE_CHECKING:
    from .engine import DeliveryEngine

__all__ = ["HistoryJobs", "JobProgress"]

CHUNK = 5000
REFRESH_S = 2.0


@dataclass(frozen=True, slots=True)
class JobProgress:
    after: int = 0
    end: int = 0
    upto: int = 0
    part: int = 0

    @classmethod
    def parse(cls, text: str) -> JobProgress:
        values = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
        try:
            return cls(*(int(values.get(k, "0")) for k in ("after", "end", "upto", "part")))
        except ValueError:
            return cls()

    def text(self) -> str:
        return f"after={self.after};end={self.end};upto={self.upto};part={self.part}"


class HistoryJobs:
    def __init__(self, engine: DeliveryEngine) -> None:
        self.engine = engine
        self._jobs: list[HistoryJob] = []
        self._next_refresh = 0.0
        self._retry_at: dict[int, float] = {}
        self._failures: dict[int, int] = {}

    def pending(self) -> bool:
        now = time.monotonic()
        return any(self._retry_at.get(j.job_id, 0.0) <= now for j in self._jobs)

    async def step(self) -> None:
        store = self.engine.store
        if time.monotonic() >= self._next_refresh:
            self._jobs = await asyncio.to_thread(store.list_open_history_jobs)
            self._next_refresh = time.monotonic() + REFRESH_S
        for job in list(self._jobs):
            if time.monotonic() < self._retry_at.get(job.job_id, 0.0):
                continue
            lease = f"job/{job.job_id}"
            held = await asyncio.to_thread(
                store.take_lease,
                lease,
                owner=self.engine.node_id,
                now_ms=now_ms(),
                ttl_ms=self.engine.lease_ttl_ms,
            )
            if not held:
                continue
            try:
                done = await self._advance(job)
            except (ObjectStorageError, StreamError, StoreError) as exc:
                n = self._failures[job.job_id] = self._failures.get(job.job_id, 0) + 1
                self._retry_at[job.job_id] = time.monotonic() + min(60.0, 0.5 * 2 ** min(n, 10))
                current = next((j for j in self._jobs if j.job_id == job.job_id), job)
                await self._update(replace(current, error=str(exc)[:500], updated_ms=now_ms()))
                continue
            self._failures.pop(job.job_id, None)
            if done:
                self._jobs = [j for j in self._jobs if j.job_id != job.job_id]
                await asyncio.to_thread(store.release_lease, lease, owner=self.engine.node_id)

    async def _update(self, job: HistoryJob) -> bool:
        ok = await asyncio.to_thread(self.engine.store.update_history_job, job)
        self._jobs = [job if j.job_id == job.job_id else j for j in self._jobs]
        if not ok:  # deleted meanwhile: stop
            self._jobs = [j for j in self._jobs if j.job_id != job.job_id]
        return ok

    async def _advance(self, job: HistoryJob) -> bool:
        """One chunk of the job; True when the job is over (complete, failed or deleted)."""
        store = self.engine.store
        trail = await asyncio.to_thread(
            lambda: store.get_trail(account_id=job.account_id, name=job.trail_name)
        )
        if trail is None:
            failed = replace(
                job, status=HistoryJobStatus.FAILED, error="the trail was deleted", finished_ms=now_ms()
            )
            await self._update(failed)
            return True
        progress = JobProgress.parse(job.checkpoint)
        if job.status is HistoryJobStatus.INITIALIZING:
            # Up to where the trail's live delivery started: the rest is (or will be) delivered live.
            head = await asyncio.to_thread(store.newest_seq)
            live = await asyncio.to_thread(
                lambda: store.list_checkpoints(account_id=job.account_id, trail_name=job.trail_name)
            )
            run = str(trail.start_logging_ms or 0)
            starts = [
                run_start(cp.run)
                for cp in live
                if cp.sink in EVENT_SINKS and run_of(cp.run) == run and trail.is_logging
            ]
            progress = JobProgress(upto=min([head, *starts]))
            job = replace(
                job,
                status=HistoryJobStatus.DELIVERING,
                started_ms=now_ms(),
                updated_ms=now_ms(),
                checkpoint=progress.text(),
            )
            if not await self._update(job):
                return True
        if not progress.end:
            if progress.after >= progress.upto:
                finished = replace(
                    job, status=HistoryJobStatus.COMPLETE, finished_ms=now_ms(), updated_ms=now_ms(), error=""
                )
                await self._update(finished)
                return True
            entries = await asyncio.to_thread(lambda: store.read_log(after_seq=progress.after, limit=CHUNK))
            ahead = [e for e in entries if e.seq <= progress.upto]
            progress = replace(progress, end=ahead[-1].seq if ahead else progress.upto)
            job = replace(job, checkpoint=progress.text(), updated_ms=now_ms())
            if not await self._update(job):
                return True
        scope = await asyncio.to_thread(self.engine.scope_of, trail)
        entries = await self._chunk(progress)
        chosen = [e for e in entries if job.window_start_ms <= e.event.event_time_ms < job.window_end_ms]
        await self._deliver(trail, scope, chosen, job.created_ms + progress.part * 1000)
        progress = JobProgress(progress.end, 0, progress.upto, progress.part + 1)
        await self._update(replace(job, checkpoint=progress.text(), updated_ms=now_ms(), error=""))
        return False

    async def _chunk(self, progress: JobProgress) -> list[LogEntry]:
        out: list[LogEntry] = []
        after = progress.after
        while after < progress.end:
            entries = await asyncio.to_thread(self.engine.store.read_log, after_seq=after, limit=CHUNK)
            if not entries:
                break
            out.extend(e for e in entries if e.seq <= progress.end)
            after = entries[-1].seq
        return out

    async def _deliver(
        self, trail: Trail, scope: TrailScope, entries: list[LogEntry], window_ms: int
    ) -> None:
        in_scope = [(e, facts) for e in entries if (facts := scope.covers(e)) is not None]
        if not in_scope:
            return
        if trail.oss_bucket_name:
            groups: dict[FileGroup, list[bytes]] = {}
            for e, facts in in_scope:
                groups.setdefault(FileGroup(e.account_id, facts.acs_region or trail.home_region), []).append(
                    e.event.body
                )
            org = trail.organization_id if trail.is_organization_trail else ""
            for group, bodies in groups.items():
                f = build_file(
                    prefix=trail.oss_key_prefix,
                    group=group,
                    window_ms=window_ms,
                    bodies=bodies,
                    organization_id=org,
                )
                await asyncio.to_thread(self.engine.storage.put, trail.oss_bucket_name, f.key, f.data)
                self.engine.stats.files += 1
            self.engine.stats.events[Sink.OSS.value] += len(in_scope)
        target = StreamTarget.for_trail(trail.sls_project_arn, trail.name) if trail.sls_project_arn else None
        if target is not None:
            if self.engine.publisher is None:
                raise StreamError("no stream server is configured (TRAILHOUSE_NATS_URL)")
            records = [
                (
                    message_id(trail.account_id, trail.name, e.seq),
                    record_bytes(e.event.body, e.event.event_time_ms),
                )
                for e, _ in in_scope
            ]
            await self.engine.publisher.publish(target, records)
            self.engine.stats.events[Sink.STREAM.value] += len(records)
