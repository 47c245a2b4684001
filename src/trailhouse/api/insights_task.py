"""The Insights detector's loop and the optional webhook, as the Insights worker runs them.

The worker is a process of its own (``api/insights_worker.py``): ``serve`` starts one beside it,
and ``trailhouse insights worker`` runs one anywhere. Every worker steps the detector; the store's
lease lets one of them detect at a time (the others stand by and take over within the lease's 30 s
when it stops renewing). When a webhook is set, every worker also runs its loop, which follows the
stored records with a cursor and a lease of its own: one worker delivers, from where the last left.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from ..model.insights import StoredInsight
from ..service.insights.config import thresholds_from
from ..service.insights.detector import Detector, StepResult
from ..settings import Settings
from ..storage.base import DetectorCheckpoint, EventStore, LeaseLost, StoreError

__all__ = ["DetectorStats", "Webhook", "WebhookStats", "detect_forever"]

log = logging.getLogger("trailhouse.insights")

#: Pause between steps when the detector has caught up with the log.
IDLE_PAUSE_S = 1.0
#: Webhook delivery: attempts per record, and the first back-off (doubled each retry).
WEBHOOK_ATTEMPTS = 6
WEBHOOK_FIRST_BACKOFF_S = 1.0


@dataclass
class WebhookStats:
    delivered: int = 0
    retried: int = 0
    #: Records given up on after every attempt failed (also logged, one line each).
    dead_letters: int = 0
    dead_ids: deque[str] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass
class DetectorStats:
    """What the loop has done since the worker started (the status file shows it)."""

    #: Whether the last step held the lease (this worker is the one detecting).
    leader: bool = False
    processed: int = 0
    stored: int = 0
    failed_steps: int = 0
    #: Whether the last step waited for a gap in a busy ingest (TRAILHOUSE_INSIGHTS_DEFER_S).
    deferring: bool = False
    #: Wall clock (ms) of the last step that ended, failed or not.
    last_step_ms: int = 0


#: The webhook's place in the insight records (a row of ``insight_detector``, with its own lease).
WEBHOOK_CURSOR = "webhook"
#: Records read from the store at a time.
WEBHOOK_BATCH = 100


class Webhook:
    """POSTs each record's JSON, signed ``X-Trailhouse-Signature: sha256=<hex HMAC-SHA256 of the body>``.

    It follows the stored records by ref after a cursor kept in the store, and moves the cursor
    past a record once it is delivered (or given up as a dead letter): a worker that stops, or is
    killed, loses nothing, and its successor (on this node or another; a lease lets one deliver)
    starts with the record that was in flight, which may then arrive twice
    (``X-Trailhouse-Insight-Id`` names it). The cursor remembers the URL: a new URL starts at the
    newest record instead of sending the history to a new receiver.
    """

    def __init__(self, url: str, secret: str | None, *, timeout_s: float = 10.0) -> None:
        self.url, self._secret, self._timeout = url, (secret or "").encode(), timeout_s
        self.stats = WebhookStats()
        self._url_tag = hashlib.sha256(url.encode()).hexdigest()[:16].encode()
        #: Records read from the store and not yet delivered.
        self.queued = 0

    def signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def _post(self, record: StoredInsight) -> None:
        request = urllib.request.Request(
            self.url,
            data=record.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Trailhouse-Signature": self.signature(record.body),
                "X-Trailhouse-Delivery": str(uuid.uuid4()),
                "X-Trailhouse-Insight-Id": record.insight_id,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 (operator's URL)
                status = response.status
        except urllib.error.HTTPError as exc:  # 4xx/5xx: close its response, retry as any failure
            exc.close()
            raise OSError(f"HTTP {exc.code} from the webhook") from None
        if not 200 <= status < 300:
            raise OSError(f"HTTP {status} from the webhook")

    def _dead(self, record: StoredInsight, why: str) -> None:
        self.stats.dead_letters += 1
        self.stats.dead_ids.append(record.insight_id)
        log.error("insights webhook: gave up on %s (%s)", record.insight_id, why)

    # -- the cursor (store calls, run in a thread) ------------------------------------------------
    def _hold(self, store: EventStore, owner: str, lease_ms: int) -> bool:
        return store.take_detector_lease(
            detector=WEBHOOK_CURSOR, owner=owner, now_ms=int(time.time() * 1000), ttl_ms=lease_ms
        )

    def _move(self, store: EventStore, owner: str, ref: int) -> None:
        # A commit of no records: only the cursor moves, and only while this owner holds the lease.
        store.commit_insights(
            [], detector=WEBHOOK_CURSOR, owner=owner, checkpoint=DetectorCheckpoint(ref, self._url_tag)
        )

    def _next(self, store: EventStore, owner: str, lease_ms: int) -> list[tuple[int, StoredInsight]] | None:
        """The records to deliver next; None while another worker holds the webhook's lease."""
        if not self._hold(store, owner, lease_ms):
            return None
        cursor = store.detector_checkpoint(detector=WEBHOOK_CURSOR)
        if cursor is None or cursor.state != self._url_tag:
            # First run, or a new URL: from the records stored from now on.
            self._move(store, owner, store.newest_insight_ref())
            return []
        return store.all_insights_after(after_ref=cursor.watermark, limit=WEBHOOK_BATCH)

    async def _deliver(self, record: StoredInsight) -> None:
        """One record, retried with back-off; a dead letter when every attempt failed."""
        backoff = WEBHOOK_FIRST_BACKOFF_S
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                await run_in_threadpool(self._post, record)
                self.stats.delivered += 1
                return
            except OSError as exc:  # URLError, HTTPError (not 2xx) and timeouts are OSErrors
                if attempt == WEBHOOK_ATTEMPTS:
                    self._dead(record, str(exc))
                    return
                self.stats.retried += 1
                await asyncio.sleep(backoff)
                backoff *= 2

    async def deliver_forever(
        self, store: EventStore, *, owner: str, lease_ms: int = 30_000, idle_s: float = IDLE_PAUSE_S
    ) -> None:
        """Deliver the records stored after the cursor, in ref order, until cancelled."""
        while True:
            try:
                batch = await run_in_threadpool(self._next, store, owner, lease_ms)
            except LeaseLost:
                batch = None
            except StoreError as exc:
                log.warning("insights webhook: the store failed: %s", exc)
                await asyncio.sleep(5)
                continue
            if not batch:
                self.queued = 0
                await asyncio.sleep(idle_s)
                continue
            self.queued = len(batch)
            try:
                for ref, record in batch:
                    # Renewed before each record: a record's retries can outlast a lease.
                    if not await run_in_threadpool(self._hold, store, owner, lease_ms):
                        break
                    await self._deliver(record)
                    await run_in_threadpool(self._move, store, owner, ref)
                    self.queued -= 1
            except LeaseLost:
                log.info("insights webhook: another worker delivers now")
            except StoreError as exc:
                log.warning("insights webhook: the store failed: %s", exc)
                await asyncio.sleep(5)


async def detect_forever(
    store: EventStore,
    settings: Settings,
    stats: DetectorStats | None = None,
    *,
    owner: str | None = None,
) -> None:
    """Step the detector until cancelled; a store error waits and tries again. ``owner`` names the
    lease holder (default: unique to this loop)."""
    owner = owner or f"{socket.gethostname()}:{uuid.uuid4()}"
    detector = Detector(
        store,
        thresholds_from(settings),
        owner=owner,
        lease_ms=int(settings.insights_lease_s * 1000),
        checkpoint_ms=int(settings.insights_checkpoint_s * 1000),
        defer_ms=int(settings.insights_defer_s * 1000),
    )
    stats = stats if stats is not None else DetectorStats()
    while True:
        try:
            result: StepResult = await run_in_threadpool(detector.step)
        except StoreError as exc:
            log.warning("insights: detector step failed: %s", exc)
            stats.failed_steps += 1
            stats.last_step_ms = int(time.time() * 1000)
            await asyncio.sleep(5)
            continue
        stats.leader = result.leader
        stats.deferring = result.deferred
        stats.processed += result.processed
        stats.stored += result.stored
        stats.last_step_ms = int(time.time() * 1000)
        if result.stored:
            log.info("insights: %d new insight record(s)", result.stored)
        if result.processed == 0:
            await asyncio.sleep(IDLE_PAUSE_S)
