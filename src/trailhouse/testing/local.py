"""``LocalTrail``: a trail over a store in this process, without an HTTP server.

For the middleware in a test that needs no SDK: events go through the same ingest service as
``POST /api/v1/events`` (validation, de-duplication, one transaction) and are read back with the
native search's filters. A store opened from a URL is closed by ``close()``.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from ..model.event_text import parse_body
from ..model.times import DAY_MS, now_ms, parse_event_time
from ..service.ingest import decode_events, ingest_items
from ..service.search import build_search_filter
from ..storage import open_store
from ..storage.base import EventStore
from .events import complete_event
from .server import RecordError

__all__ = ["LocalTrail"]


class LocalTrail:
    """One account of a store: ``record(...)`` and ``events(...)`` as on the emulator's ``Trail``."""

    def __init__(
        self,
        store: EventStore | str | None = None,
        *,
        account_id: str | None = None,
        retention_days: int = 400,
    ) -> None:
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        if store is None:
            self._folder = tempfile.TemporaryDirectory(prefix="trailhouse-")
            store = f"sqlite:///{Path(self._folder.name) / 'trail.db'}"
        self._owns = isinstance(store, str)
        self.store: EventStore = open_store(store) if isinstance(store, str) else store
        self.account_id = account_id or str(secrets.randbelow(9 * 10**15) + 10**15)
        self.retention_days = retention_days

    def record(self, *events: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        for item in events:
            group = [item] if isinstance(item, Mapping) else list(item)
            batch += [complete_event(e, account_id=self.account_id) for e in group]
        if not batch:
            return []
        report = ingest_items(
            self.store, decode_events(orjson.dumps(batch)), may_write=lambda _: True, atomic=True
        )
        if report.rejected:
            raise RecordError(f"Trailhouse rejected events: {[r.to_dict() for r in report.rejected]}")
        return batch

    def events(
        self, *, start: str | None = None, end: str | None = None, **filters: str
    ) -> list[dict[str, Any]]:
        """This account's events, newest first; ``filters`` as in ``trailhouse lookup``
        (``EventName=...``, ``User=...``)."""
        now = now_ms()
        flt, _ = build_search_filter(
            self.store,
            account_id=self.account_id,
            start_ms=parse_event_time(start) if start else now - self.retention_days * DAY_MS,
            end_ms=parse_event_time(end) if end else now + DAY_MS,
            pairs=filters.items(),
        )
        return [
            parse_body(e.body)
            for e in self.store.iter_events(account_id=self.account_id, flt=flt, descending=True)
        ]

    def close(self) -> None:
        if self._owns:
            self.store.close()
        if self._folder is not None:
            self._folder.cleanup()

    def __enter__(self) -> LocalTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
