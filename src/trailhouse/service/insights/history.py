"""The stored history the rules take their baselines from: a few narrow reads of the store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ...model.query import EventFilter, UsageEntry, UsageKind, UsagePosition
from ...storage.base import EventLog, InsightStore, UsageStore

__all__ = ["History", "HistoryStore"]


class HistoryStore(EventLog, UsageStore, InsightStore, Protocol):
    """The parts of the store the detector reads and writes."""


class History:
    def __init__(self, store: HistoryStore) -> None:
        self._store = store
        self._earliest: dict[str, int | None] = {}

    def key_ips(self, account_id: str, access_key_id: str, since_ms: int) -> Iterator[UsageEntry]:
        """Every (service, IP) the key was used from since ``since_ms`` (the usage aggregates)."""
        return self._usage(account_id, access_key_id, since_ms, UsageKind.IP)

    def key_calls(self, account_id: str, access_key_id: str, before_ms: int) -> tuple[int, int | None]:
        """The key's calls and its first call's time, from the usage aggregates (one row per service).

        The totals include calls stored after ``before_ms`` that the detector has not reached yet:
        a baseline a little high, which errs against raising an insight.
        """
        calls, first = 0, None
        for entry in self._usage(account_id, access_key_id, 0, UsageKind.PRODUCT):
            calls += entry.calls
            first = entry.first_used_ms if first is None else min(first, entry.first_used_ms)
        return calls, first if first is None or first < before_ms else None

    def _usage(
        self, account_id: str, access_key_id: str, since_ms: int, kind: UsageKind
    ) -> Iterator[UsageEntry]:
        after: UsagePosition | None = None
        while True:
            page = self._store.usage(
                account_id=account_id,
                access_key_id=access_key_id,
                kind=kind,
                service_name=None,
                since_ms=since_ms,
                after=after,
                limit=500,
            )
            yield from page
            if len(page) < 500:
                return
            after = page[-1].position

    def previous_time(self, account_id: str, flt: EventFilter) -> int | None:
        """The time of the latest event matching ``flt``, or None."""
        if flt.start_ms > flt.end_ms:
            return None
        found = self._store.find_events(account_id=account_id, flt=flt, after=None, descending=True, limit=1)
        return found[0].event_time_ms if found else None

    def count(self, account_id: str, flt: EventFilter, cap: int) -> int:
        if flt.start_ms > flt.end_ms:
            return 0
        return self._store.count_matching(account_id=account_id, flt=flt, cap=cap)

    def earliest(self, account_id: str, before_ms: int) -> int | None:
        """When the account's stored history begins (cached: it only ever moves with retention)."""
        if self._earliest.get(account_id) is None:
            first = self._store.find_events(
                account_id=account_id, flt=EventFilter(0, before_ms), after=None, descending=False, limit=1
            )
            self._earliest[account_id] = first[0].event_time_ms if first else None
        return self._earliest[account_id]
