"""The detector: follows the event log and raises insights as events arrive.

One node at a time runs it (a lease in the store, renewed a third of the way into its term). Each
step reads the log after the watermark, runs the rules of the types each account enabled, and
commits the new insights with the new watermark and the rate state in one transaction: a crash
(kill -9) loses no insight and raises none twice (ids are derived, the store keeps each once).

A step that raised nothing does not write: the watermark is committed with the next insight, when
the log goes quiet, or every ``checkpoint_ms`` while it is busy. On SQLite every commit by another
connection makes the ingesting connection drop its page cache, so a detector that wrote twice a step
beside a busy ingest cost it far more than its own CPU. A crash replays at most ``checkpoint_ms`` of
the log, from the state saved with the watermark, and the replay raises what it would have.

While ingest is busy (the log growing by ``BUSY_EVENTS_PER_S`` or more over ``BUSY_WINDOW_MS``), a
detector with ``defer_ms`` waits for a gap before it reads, for at most ``defer_ms`` after it fell
behind; then it catches up whatever the rate. Side by side on a small machine the two slow each
other down whatever their priorities (docs/insights.md, "Quality and cost"), so a burst of ingest
shorter than ``defer_ms`` runs alone and is detected right after it; a longer one is detected in
rounds, each at most ``defer_ms`` late. ``serve``'s worker defers 20 s, a third of the 60 s an
insight may take.

On its first run the detector starts at the head of the log: the history already stored is a
baseline, not a backlog.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from ...model.insights import StoredInsight
from ...storage.base import DetectorCheckpoint, LeaseLost
from .config import Thresholds
from .history import History, HistoryStore
from .point import DormantKeyRule, IpRule, change_rules
from .rates import MINUTE_MS, rate_rules
from .record import Seen, seen

__all__ = ["BUSY_EVENTS_PER_S", "DETECTOR_NAME", "Detector", "StepResult"]

log = logging.getLogger("trailhouse.insights")

DETECTOR_NAME = "insights"
#: Ingest at this rate or more is busy: a deferring detector waits for a gap.
BUSY_EVENTS_PER_S = 1000
#: The rate is the log's growth over this long: a commit that stalls ingest for a moment (a WAL
#: checkpoint) is not a gap.
BUSY_WINDOW_MS = 2000
#: The rate rules close a quiet subject's insight once no event has come for this long.
_IDLE_CLOSE_MS = 2 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class StepResult:
    leader: bool
    processed: int
    stored: int
    #: Stored records of this step (what a webhook delivers).
    insights: tuple[StoredInsight, ...] = ()
    #: The step left the log alone: ingest is busy and the detector waits for a gap.
    deferred: bool = False


class Detector:
    def __init__(
        self,
        store: HistoryStore,
        thresholds: Thresholds,
        *,
        owner: str,
        batch: int = 5000,
        lease_ms: int = 30_000,
        checkpoint_ms: int = 5_000,
        defer_ms: int = 0,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._store, self._th, self._owner = store, thresholds, owner
        self._batch, self._lease_ms, self._clock = batch, lease_ms, clock
        self._checkpoint_ms, self._defer_ms = checkpoint_ms, defer_ms
        self._position: int | None = None
        self._reset()

    def _reset(self) -> None:
        history = History(self._store)
        self._ip = IpRule(history, self._th)
        self._dormant = DormantKeyRule(history, self._th)
        self._changes = change_rules(history, self._th)
        # Only the change rules read requestParameters, of their own events: the rest skip them.
        self._params_of = frozenset().union(*(change.names for change in self._changes))
        self._rates = rate_rules(history, self._th)
        self._stream_clock = 0
        self._last_event_wall = 0
        self._position = None
        self._committed: int | None = None  # the watermark in the store
        self._committed_at = 0
        self._renew_at = 0  # when to renew the lease
        self._looks: deque[tuple[int, int]] = deque()  # (log head, when) over the last BUSY_WINDOW_MS
        self._behind_since: int | None = None

    def _resume(self) -> bool:
        """Continue from the checkpoint; True when there is none yet (the log's head is the start)."""
        checkpoint = self._store.detector_checkpoint(detector=DETECTOR_NAME)
        if checkpoint is None:
            self._position = self._store.newest_seq()
            return True
        self._position = checkpoint.watermark
        if checkpoint.state:
            saved = orjson.loads(checkpoint.state)
            for rule in self._rates:
                rule.load(saved.get(rule.insight_type, []))
            self._stream_clock = int(saved.get("clock", 0))
        return False

    def _state(self) -> bytes:
        saved: dict[str, object] = {rule.insight_type: rule.dump() for rule in self._rates}
        saved["clock"] = self._stream_clock
        return orjson.dumps(saved)

    def evaluate(self, ev: Seen, enabled: frozenset[str]) -> list[StoredInsight]:
        found: list[StoredInsight] = []
        if "IpInsight" in enabled:
            found += self._ip.check(ev)
        if "AkInsight" in enabled:
            found += self._dormant.check(ev)
        for change in self._changes:
            if change.insight_type in enabled:
                found += change.check(ev)
        for rate in self._rates:
            if rate.insight_type in enabled:
                found += rate.check(ev)
        return found

    def _deferring(self, now: int) -> bool:
        """Whether to leave the log alone this step: ingest is busy and the wait is not over."""
        assert self._position is not None
        head = self._store.newest_seq()
        looks = self._looks
        while len(looks) > 1 and now - looks[1][1] >= BUSY_WINDOW_MS:
            looks.popleft()  # keep one look at least the window old
        before = looks[0] if looks else None
        looks.append((head, now))
        if head <= self._position:
            self._behind_since = None
            return False
        if self._behind_since is None:
            self._behind_since = now
        if before is None or now <= before[1] or now - self._behind_since >= self._defer_ms:
            return False
        rate = (head - before[0]) * 1000 / max(now - before[1], 1)
        return rate >= BUSY_EVENTS_PER_S

    def step(self) -> StepResult:
        """One pass: hold the lease, read a batch of the log, commit what it raised."""
        now = self._clock()
        enabled = self._store.all_enabled_insight_types()
        if not enabled:
            # Nothing to detect: no lease, no writes. Enabling a type later starts where the log is then.
            return StepResult(False, 0, 0)
        if self._position is None or now >= self._renew_at:
            if not self._store.take_detector_lease(
                detector=DETECTOR_NAME, owner=self._owner, now_ms=now, ttl_ms=self._lease_ms
            ):
                if self._position is not None:
                    log.info("insights: another node holds the detector lease; standing by")
                    self._reset()
                return StepResult(False, 0, 0)
            self._renew_at = now + self._lease_ms // 3
        fresh = False
        if self._position is None:
            fresh = self._resume()
            self._committed, self._committed_at = self._position, now
        assert self._position is not None
        if self._defer_ms and not fresh and self._deferring(now):
            return StepResult(True, 0, 0, deferred=True)
        entries = self._store.read_log(after_seq=self._position, limit=self._batch)
        found: list[StoredInsight] = []
        for entry in entries:
            kinds = enabled.get(entry.account_id)
            if not kinds:
                continue
            ev = seen(entry, self._params_of)
            self._stream_clock = max(self._stream_clock, ev.time_ms)
            found += self.evaluate(ev, kinds)
        if entries:
            self._last_event_wall = now
        # Rate insights end with a quiet minute; when no event comes to show it, time does.
        clock = self._stream_clock - _IDLE_CLOSE_MS
        if now - self._last_event_wall >= _IDLE_CLOSE_MS:
            clock = max(clock, now - _IDLE_CLOSE_MS, self._stream_clock + _IDLE_CLOSE_MS)
        for rate in self._rates:
            found += rate.expire(clock + _IDLE_CLOSE_MS)
        position = entries[-1].seq if entries else self._position
        due = (
            found
            or fresh
            or (
                position != self._committed
                and (not entries or now - self._committed_at >= self._checkpoint_ms)
            )
        )
        if not due:
            self._position = position
            return StepResult(True, len(entries), 0)
        try:
            stored = self._store.commit_insights(
                found,
                detector=DETECTOR_NAME,
                owner=self._owner,
                checkpoint=DetectorCheckpoint(position, self._state()),
            )
        except LeaseLost:
            log.warning(
                "insights: lost the detector lease mid-step; another node resumes from the checkpoint"
            )
            self._reset()
            return StepResult(False, 0, 0)
        self._position = self._committed = position
        self._committed_at = now
        return StepResult(True, len(entries), stored, tuple(found))
