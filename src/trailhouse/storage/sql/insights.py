"""The Insights half of an SQL store: enabled types, selectors, records, the detector's checkpoint.

Written once for both backends over ``_read``, ``_write`` and ``_write_transaction`` (one transaction
of several statements, which each backend provides). The tables are plain text and integers on
both, so nothing here depends on the dialect beyond its placeholder.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import orjson

from ...model.insights import InsightAttr, InsightCount, InsightPosition, InsightQuery, StoredInsight
from ...model.query import EventFilter, Position, StoredEvent
from ..base import DetectorCheckpoint, LeaseLost
from .dialect import Dialect
from .find import DAY_BUCKETED_DRIVERS, FindQuery
from .trails import Tx

__all__ = ["InsightSql"]


_INSIGHT_COLUMNS = (
    "account_id, insight_id, shared_id, insight_type, state, event_time, region, insight_object,"
    " service_name, event_name, source_ip, access_key_id, body"
)


def _insight(row: Sequence[Any]) -> StoredInsight:
    return StoredInsight(
        account_id=row[0],
        insight_id=row[1],
        shared_id=row[2],
        insight_type=row[3],
        state=row[4],
        event_time_ms=int(row[5]),
        region=row[6],
        insight_object=row[7],
        service_name=row[8],
        event_name=row[9],
        source_ip=row[10],
        access_key_id=row[11],
        body=bytes(row[12]),
    )


class InsightSql:
    """Mixed into ``SqlStore``; the primitives come from the backend."""

    dialect: Dialect

    def _guard(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _read(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        raise NotImplementedError

    def _write(self, query: str, params: Sequence[object]) -> int:
        raise NotImplementedError

    def _write_transaction(self) -> AbstractContextManager[Tx]:
        """One write transaction (the trails' one: storage/sql/trails.py)."""
        raise NotImplementedError

    def _term_id(self, value: str) -> int | None:
        raise NotImplementedError

    def _build_find(
        self,
        account_ref: int,
        flt: EventFilter,
        after: Position | None,
        descending: bool,
        limit: int | None,
        day: int | None = None,
    ) -> FindQuery | None:
        raise NotImplementedError

    def _days(
        self, account_ref: int, flt: EventFilter, after: Position | None, descending: bool
    ) -> Iterator[tuple[EventFilter, int]]:
        """The window's UTC days (backends whose indexes lead with the day, see ``Dialect.day_buckets``)."""
        raise NotImplementedError

    def _events_if_ids_unchecked(self, account_id: str, flt: EventFilter) -> Iterator[StoredEvent] | None:
        raise NotImplementedError

    def _count_queries(self, account_id: str, flt: EventFilter) -> Iterator[FindQuery]:
        """The find queries whose rows together are the events matching ``flt`` (no limit)."""
        account_ref = self._term_id(account_id)
        query = None if account_ref is None else self._build_find(account_ref, flt, None, False, None)
        if account_ref is None or query is None:
            return
        if not self.dialect.day_buckets or query.driver not in DAY_BUCKETED_DRIVERS:
            yield query
            return
        for day_flt, day in self._days(account_ref, flt, None, False):
            day_query = self._build_find(account_ref, day_flt, None, False, None, day)
            assert day_query is not None
            yield day_query

    # -- settings --------------------------------------------------------------------------------
    def insight_types_enabled(self, *, account_id: str) -> list[str]:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT insight_type FROM insight_types WHERE account_id = {ph} AND enabled = 1"
                " ORDER BY insight_type",
                (account_id,),
            )
        return [row[0] for row in rows]

    def set_insight_type(self, *, account_id: str, insight_type: str, enabled: bool, now_ms: int) -> None:
        ph = self.dialect.ph
        with self._guard():
            self._write(
                f"INSERT INTO insight_types VALUES ({ph}, {ph}, {ph}, {ph})"
                " ON CONFLICT (account_id, insight_type)"
                " DO UPDATE SET enabled = excluded.enabled, updated_ms = excluded.updated_ms",
                (account_id, insight_type, int(enabled), now_ms),
            )

    def all_enabled_insight_types(self) -> dict[str, frozenset[str]]:
        with self._guard():
            rows = self._read("SELECT account_id, insight_type FROM insight_types WHERE enabled = 1")
        found: dict[str, set[str]] = {}
        for account, kind in rows:
            found.setdefault(account, set()).add(kind)
        return {account: frozenset(kinds) for account, kinds in found.items()}

    def put_insight_selectors(
        self, *, account_id: str, trail_name: str, selectors: Sequence[str], now_ms: int
    ) -> bool:
        if "\x00" in account_id + trail_name:
            return False
        ph = self.dialect.ph
        with self._guard(), self._write_transaction() as tx:
            # In the trail's transaction, so that a DeleteTrail running beside it leaves no orphan.
            if not tx.fetch(
                f"SELECT 1 FROM trails WHERE account_id = {ph} AND name = {ph}", (account_id, trail_name)
            ):
                return False
            tx.run(
                f"INSERT INTO insight_selectors VALUES ({ph}, {ph}, {ph}, {ph})"
                " ON CONFLICT (account_id, trail_name)"
                " DO UPDATE SET selectors = excluded.selectors, updated_ms = excluded.updated_ms",
                (account_id, trail_name, orjson.dumps(list(selectors)).decode(), now_ms),
            )
        return True

    def get_insight_selectors(self, *, account_id: str, trail_name: str) -> list[str] | None:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT selectors FROM insight_selectors WHERE account_id = {ph} AND trail_name = {ph}",
                (account_id, trail_name),
            )
        return [str(s) for s in orjson.loads(rows[0][0])] if rows else None

    # -- records ---------------------------------------------------------------------------------
    def find_insights(
        self, *, account_id: str, query: InsightQuery, after: InsightPosition | None, limit: int
    ) -> list[tuple[InsightPosition, StoredInsight]]:
        ph = self.dialect.ph
        where = [f"account_id = {ph}", f"event_time >= {ph}", f"event_time <= {ph}"]
        params: list[object] = [account_id, query.start_ms, query.end_ms]
        for attr, value in query.equals.items():
            where.append(f"{InsightAttr(attr).value} = {ph}")
            params.append(value)
        if after is not None:
            where.append(f"(event_time < {ph} OR (event_time = {ph} AND ref < {ph}))")
            params += [after.event_time_ms, after.event_time_ms, after.ref]
        with self._guard():
            rows = self._read(
                f"SELECT {_INSIGHT_COLUMNS}, ref FROM insights WHERE {' AND '.join(where)}"
                f" ORDER BY event_time DESC, ref DESC LIMIT {ph}",
                [*params, limit],
            )
        return [(InsightPosition(int(row[5]), int(row[13])), _insight(row)) for row in rows]

    def insights_after(
        self, *, account_id: str, after_ref: int, limit: int
    ) -> list[tuple[int, StoredInsight]]:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_INSIGHT_COLUMNS}, ref FROM insights WHERE account_id = {ph} AND ref > {ph}"
                f" ORDER BY ref LIMIT {ph}",
                (account_id, after_ref, limit),
            )
        return [(int(row[13]), _insight(row)) for row in rows]

    def all_insights_after(self, *, after_ref: int, limit: int) -> list[tuple[int, StoredInsight]]:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_INSIGHT_COLUMNS}, ref FROM insights WHERE ref > {ph} ORDER BY ref LIMIT {ph}",
                (after_ref, limit),
            )
        return [(int(row[13]), _insight(row)) for row in rows]

    def newest_insight_ref(self) -> int:
        with self._guard():
            rows = self._read("SELECT COALESCE(MAX(ref), 0) FROM insights", ())
        return int(rows[0][0])

    def last_insight_ref(self, *, account_id: str) -> int:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT COALESCE(MAX(ref), 0) FROM insights WHERE account_id = {ph}", (account_id,)
            )
        return int(rows[0][0])

    def count_insights(self, *, account_id: str, start_ms: int, end_ms: int) -> list[InsightCount]:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT insight_type, region, count(*) FROM insights WHERE account_id = {ph}"
                f" AND event_time >= {ph} AND event_time <= {ph} AND state = 'Start'"
                " GROUP BY insight_type, region ORDER BY insight_type, region",
                (account_id, start_ms, end_ms),
            )
        return [InsightCount(row[0], row[1], int(row[2])) for row in rows]

    # -- the detector ------------------------------------------------------------------------------
    def take_detector_lease(self, *, detector: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        ph = self.dialect.ph
        with self._guard(), self._write_transaction() as tx:
            tx.run(
                f"INSERT INTO insight_detector VALUES ({ph}, -1, {ph}, '', 0, {ph})"
                " ON CONFLICT (name) DO NOTHING",
                (detector, b"", now_ms),
            )
            taken = tx.run(
                f"UPDATE insight_detector SET lease_owner = {ph}, lease_until = {ph}"
                f" WHERE name = {ph} AND (lease_owner = {ph} OR lease_until < {ph})",
                (owner, now_ms + ttl_ms, detector, owner, now_ms),
            )
        return taken == 1

    def detector_checkpoint(self, *, detector: str) -> DetectorCheckpoint | None:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(f"SELECT watermark, state FROM insight_detector WHERE name = {ph}", (detector,))
        if not rows or rows[0][0] < 0:
            return None
        return DetectorCheckpoint(int(rows[0][0]), bytes(rows[0][1]))

    def commit_insights(
        self, insights: Sequence[StoredInsight], *, detector: str, owner: str, checkpoint: DetectorCheckpoint
    ) -> int:
        ph = self.dialect.ph
        insert = (
            f"INSERT INTO insights ({_INSIGHT_COLUMNS}) VALUES ({self.dialect.marks(13)})"
            " ON CONFLICT (account_id, insight_id) DO NOTHING"
        )
        with self._guard(), self._write_transaction() as tx:
            held = tx.run(
                f"UPDATE insight_detector SET watermark = {ph}, state = {ph},"
                f" updated_ms = {self.dialect.now_ms}"
                f" WHERE name = {ph} AND lease_owner = {ph}",
                (checkpoint.watermark, checkpoint.state, detector, owner),
            )
            if held != 1:
                raise LeaseLost(f"the lease on {detector} is no longer held by {owner}")
            added = 0
            for i in insights:
                added += tx.run(
                    insert,
                    (
                        i.account_id,
                        i.insight_id,
                        i.shared_id,
                        i.insight_type,
                        i.state,
                        i.event_time_ms,
                        i.region,
                        i.insight_object,
                        i.service_name,
                        i.event_name,
                        i.source_ip,
                        i.access_key_id,
                        i.body,
                    ),
                )
        return added

    def count_matching(self, *, account_id: str, flt: EventFilter, cap: int) -> int:
        checked = self._events_if_ids_unchecked(account_id, flt)
        if checked is not None:
            return sum(1 for _ in itertools.islice(checked, cap))
        total = 0
        with self._guard():
            for query in self._count_queries(account_id, flt):
                rows = self._read(
                    f"SELECT count(*) FROM (SELECT 1 FROM ({query.sql}) q LIMIT {cap - total}) c",
                    query.params,
                )
                total += int(rows[0][0])
                if total >= cap:
                    return cap
        return total
