"""What a person browsing insights reads: episodes (a Start and its End), one insight, the status.

The store keeps records, two per insight (a Start and an End joined by ``sharedEventId``); a person
reads insights. ``list_episodes`` pages through the Start records of a window (newest first, keyset
paged like ``lookup_insights``) and joins each to its End, looked up by its derived id; an insight
is listed by when it started. ``find_episode`` finds one by any record's id or by the shared id.
Every read is scoped to the account.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...model.insights import INSIGHT_TYPES, InsightAttr, InsightPosition, InsightQuery, StoredInsight
from ...storage.base import InsightStore
from ..pagetoken import PageTokens
from .detector import DETECTOR_NAME
from .history import HistoryStore
from .lookup import TOKEN_LAYOUT, open_position
from .record import derived_id

__all__ = [
    "Episode",
    "EpisodesPage",
    "InsightsStatus",
    "find_episode",
    "insights_status",
    "list_episodes",
    "offered_types",
]

#: Any time a record may carry (the detector stamps records with event time, which may be ahead).
_ALL_TIME = InsightQuery(0, 2**62)
#: Ids are UUIDs; anything much longer is not one, and is not looked up.
_MAX_ID = 100


@dataclass(frozen=True, slots=True)
class Episode:
    """One insight: its Start record, and its End once the detector has written it.

    ``start`` is None only for an End whose Start the store no longer holds (trimmed by retention).
    """

    start: StoredInsight | None
    end: StoredInsight | None

    @property
    def record(self) -> StoredInsight:
        """The record that speaks for the insight: the Start, else the End."""
        found = self.start or self.end
        assert found is not None, "an episode has at least one record"
        return found

    @property
    def ongoing(self) -> bool:
        return self.end is None


@dataclass(frozen=True, slots=True)
class EpisodesPage:
    episodes: list[Episode]
    next_token: str | None
    start_ms: int
    end_ms: int


def _record(store: InsightStore, account_id: str, insight_id: str) -> StoredInsight | None:
    if not insight_id or len(insight_id) > _MAX_ID or "\x00" in insight_id:
        return None
    query = InsightQuery(_ALL_TIME.start_ms, _ALL_TIME.end_ms, {InsightAttr.EVENT_ID: insight_id})
    found = store.find_insights(account_id=account_id, query=query, after=None, limit=1)
    return found[0][1] if found else None


def _partner(store: InsightStore, record: StoredInsight) -> StoredInsight | None:
    other = "End" if record.state == "Start" else "Start"
    return _record(store, record.account_id, derived_id(record.shared_id, other))


def find_episode(store: InsightStore, *, account_id: str, insight_id: str) -> Episode | None:
    """The account's insight whose Start, End or shared id is ``insight_id``; None when it has none."""
    wanted = insight_id.strip().upper()
    record = _record(store, account_id, wanted)
    if record is None:  # a sharedEventId names the pair: its records' ids derive from it
        record = _record(store, account_id, derived_id(wanted, "Start")) if len(wanted) <= _MAX_ID else None
    if record is None:
        return None
    partner = _partner(store, record)
    return Episode(record, partner) if record.state == "Start" else Episode(partner, record)


def list_episodes(
    store: InsightStore,
    tokens: PageTokens,
    *,
    account_id: str,
    query: InsightQuery,
    limit: int,
    next_token: str | None,
    digest: str,
    token_kind: str,
) -> EpisodesPage:
    """One page of insights that started in the window, newest first; the token continues it."""
    after: InsightPosition | None = None
    if next_token:
        time_ms, ref = open_position(
            tokens,
            next_token,
            kind=token_kind,
            account_id=account_id,
            digest=digest,
            fields=2,
            invalid="The page position is invalid",
        )
        after = InsightPosition(time_ms, ref)
    starts: list[tuple[InsightPosition, StoredInsight]] = []
    # About half the records are Ends: read twice the page, and on until the page is full.
    batch = 2 * (limit + 1)
    while len(starts) <= limit:
        found = store.find_insights(account_id=account_id, query=query, after=after, limit=batch)
        starts += [(pos, r) for pos, r in found if r.state == "Start"]
        if len(found) < batch:
            break
        after = found[-1][0]
    token = None
    if len(starts) > limit:
        starts = starts[:limit]
        last = starts[-1][0]
        token = tokens.issue(
            kind=token_kind,
            account_id=account_id,
            digest=digest,
            position=[TOKEN_LAYOUT, last.event_time_ms, last.ref],
        )
    episodes = [Episode(r, _partner(store, r)) for _, r in starts]
    return EpisodesPage(episodes, token, query.start_ms, query.end_ms)


def offered_types(setting: str) -> tuple[str, ...]:
    """The types a server offers (its ``insight_types`` setting), in ActionTrail's order."""
    offered = {t.strip() for t in setting.split(",") if t.strip()}
    return tuple(t for t in INSIGHT_TYPES if t in offered)


@dataclass(frozen=True, slots=True)
class InsightsStatus:
    """Which types the account enabled, which the server offers, and how far the detector has read."""

    enabled: tuple[str, ...]
    offered: tuple[str, ...]
    #: Log entries the detector has still to read (None: it has never run on this store).
    behind: int | None


def insights_status(store: HistoryStore, *, account_id: str, offered: tuple[str, ...]) -> InsightsStatus:
    chosen = set(store.insight_types_enabled(account_id=account_id))
    checkpoint = store.detector_checkpoint(detector=DETECTOR_NAME)
    behind = None if checkpoint is None else max(0, store.newest_seq() - checkpoint.watermark)
    return InsightsStatus(tuple(t for t in INSIGHT_TYPES if t in chosen), offered, behind)
