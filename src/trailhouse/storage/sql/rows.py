"""The rows an ingest writes, the same on both backends: events, their resources, AccessKey usage
(and the Merkle leaves the log has yet to take: ``pending``).

The writer's half of ``storage.units``: a unit's distinct strings become term ids once, its
columns are zipped into rows, its folded usage is merged with the transaction's other units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..units import WriteUnit, select
from .dialect import Dialect

__all__ = [
    "EVENT_COLUMNS",
    "RESOURCE_COLUMNS",
    "USAGE_COLUMNS",
    "Placed",
    "Plan",
    "StoredIds",
    "TermId",
    "UsageRow",
    "merge_usage",
    "plan_batch",
    "upsert_usage",
]

#: The columns of ``events``, in the order ``Placed.event_rows`` gives their values. No eventId or
#: requestId text: the body is their one copy (``Dialect.ids_in_sql``).
EVENT_COLUMNS = (
    "seq",
    "account",
    "event_time",
    "event_key",
    "request_key",
    "event_name",
    "event_type",
    "event_rw",
    "category",
    "service",
    "user_name",
    "access_key",
    "source_ip",
    "role_name",
    "sensitive",
    "error_code",
    "body",
)


RESOURCE_COLUMNS = ("seq", "account", "event_time", "rtype", "rname")
#: The columns of ``key_usage``, in the order of ``Placed.usage_rows``.
USAGE_COLUMNS = (
    "account",
    "access_key",
    "kind",
    "service",
    "item",
    "item_type",
    "first_used",
    "last_used",
    "last_seq",
    "source",
    "calls",
    "failed",
)
_USAGE_KEY = "account, access_key, kind, service, item, item_type"

#: A term's id; None for a missing value (the column is NULL).
TermId = Callable[[str], int]

#: A ``key_usage`` row, in ``USAGE_COLUMNS`` order (term ids, times, a seq, a source, counts).
UsageRow = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Placed:
    """A unit whose events are all new, with the store's id for each of its terms (``ids[0]`` is
    None, a missing value) and each event's seq by rank: it gives its rows."""

    unit: WriteUnit
    ids: list[int | None]
    seqs: Sequence[int]

    def _mapped(self, column: list[int]) -> list[int | None]:
        ids = self.ids
        return [ids[i] for i in column]

    def event_rows(self) -> Iterator[tuple[object, ...]]:
        """The ``events`` rows, in ``EVENT_COLUMNS`` order."""
        u, m = self.unit, self._mapped
        return zip(
            self.seqs,
            m(u.account),
            u.event_time,
            u.event_key,
            u.request_key,
            m(u.event_name),
            m(u.event_type),
            m(u.event_rw),
            m(u.category),
            m(u.service),
            m(u.user_name),
            m(u.access_key),
            m(u.source_ip),
            m(u.role_name),
            u.sensitive,
            m(u.error_code),
            u.body,
            strict=True,
        )

    def accounts(self) -> list[int | None]:
        return self._mapped(self.unit.account)

    def resource_rows(self) -> list[tuple[int, int | None, int, int | None, int | None]]:
        """The ``event_resources`` rows, in ``RESOURCE_COLUMNS`` order."""
        u, ids, seqs = self.unit, self.ids, self.seqs
        if not u.resources:
            return []
        accounts, times = self.accounts(), u.event_time
        return [(seqs[r], accounts[r], times[r], ids[t], ids[n]) for r, t, n in u.resources]

    def usage_rows(self) -> list[UsageRow]:
        """The unit's folded usage, in ``USAGE_COLUMNS`` order."""
        ids, seqs = self.ids, self.seqs
        return [
            (ids[a], ids[k], kind, ids[s], ids[i], ids[t], first, last, seqs[rank], source, calls, failed)
            for a, k, kind, s, i, t, first, last, rank, source, calls, failed in self.unit.usage
        ]


def merge_usage(placed: Sequence[Placed]) -> list[UsageRow]:
    """The usage rows of a transaction's units (in seq order), one row per key, as ``fold_usage``
    folds a unit: one upsert per key and transaction. Mapped and merged in one pass: no row of a
    unit is built only to be merged away."""
    if len(placed) == 1:
        return placed[0].usage_rows()
    merged: dict[tuple[Any, ...], list[Any]] = {}
    for p in placed:
        ids, seqs = p.ids, p.seqs
        for a, k, kind, s, i, t, first, last, rank, source, calls, failed in p.unit.usage:
            key = (ids[a], ids[k], kind, ids[s], ids[i], ids[t])
            now = merged.get(key)
            if now is None:
                merged[key] = [first, last, seqs[rank], source, calls, failed]
                continue
            if first < now[0]:
                now[0] = first
            if last >= now[1]:  # a later unit's call wins a tie, as a later seq does
                now[1], now[2], now[3] = last, seqs[rank], source
            now[4] += calls
            now[5] += failed
    return [(*key, *rest) for key, rest in merged.items()]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a transaction writes of its units: each unit with only its new events and its term
    ids, and the outcome of every event by its index in the whole batch."""

    placed: list[tuple[WriteUnit, list[int | None]]]
    accepted: list[int]
    duplicates: list[int]

    @property
    def events(self) -> int:
        return sum(u.events for u, _ in self.placed)

    def place(self, first_seq: int) -> list[Placed]:
        """The units with consecutive seqs from ``first_seq``, in order."""
        placed: list[Placed] = []
        for unit, ids in self.placed:
            placed.append(Placed(unit, ids, range(first_seq, first_seq + unit.events)))
            first_seq += unit.events
        return placed


#: (account id, eventId hash) -> the eventIds stored under it.
StoredIds = dict[tuple[int | None, int], set[str]]


def plan_batch(
    units: Sequence[WriteUnit],
    term_id: TermId,
    stored: Callable[[list[tuple[int | None, int]]], StoredIds],
) -> Plan:
    """Which events of a transaction's units are new. An event is a duplicate if its (account,
    eventId) repeats one earlier in the batch (in its unit: the unit's ``repeats``; or in an earlier
    unit) or is stored already: ``stored`` answers that for (account id, eventId hash) pairs.
    ``term_id`` gives the id of each term, interned beforehand."""
    offsets: list[int] = []
    duplicates: list[int] = []
    offset = 0
    for unit in units:
        offsets.append(offset)
        duplicates += [offset + i for i in unit.repeats]
        offset += unit.size
    ids = [[None, *map(term_id, unit.terms)] for unit in units]
    accounts = [[i[a] for a in unit.account] for unit, i in zip(units, ids, strict=True)]
    dropped: list[set[int]] = [set() for _ in units]
    if len(units) > 1:
        every = [e for unit in units for e in unit.event_id]
        if len(set(every)) != len(every):  # rare: look at (account, eventId) pairs only then
            seen: set[tuple[int | None, str]] = set()
            for unit, acc, drop in zip(units, accounts, dropped, strict=True):
                for rank, pair in enumerate(zip(acc, unit.event_id, strict=True)):
                    if pair in seen:
                        drop.add(rank)
                    seen.add(pair)
    found = stored(
        [
            pair
            for unit, acc in zip(units, accounts, strict=True)
            for pair in zip(acc, unit.event_key, strict=True)
        ]
    )
    if found:
        for unit, acc, drop in zip(units, accounts, dropped, strict=True):
            for rank, (a, k, e) in enumerate(zip(acc, unit.event_key, unit.event_id, strict=True)):
                if e in found.get((a, k), ()):
                    drop.add(rank)
    placed: list[tuple[WriteUnit, list[int | None]]] = []
    accepted: list[int] = []
    for unit, i, drop, offset in zip(units, ids, dropped, offsets, strict=True):
        if unit.repeats:
            repeats = set(unit.repeats)
            index_of: Sequence[int] = [n for n in range(unit.size) if n not in repeats]
        else:
            index_of = range(unit.size)
        keep: Sequence[int]
        if drop:
            keep = [r for r in range(unit.events) if r not in drop]
            duplicates += [offset + index_of[r] for r in drop]
            unit = select(unit, keep)
        else:
            keep = range(unit.events)
        accepted += [offset + index_of[r] for r in keep]
        if unit.events:
            placed.append((unit, i))
    return Plan(placed, accepted, sorted(duplicates))


def upsert_usage(dialect: Dialect, source: str) -> str:
    """Fold usage rows into ``key_usage``: counts add up, first/last widen, the latest call's seq and
    source win. ``source`` gives the rows (``VALUES (…)`` or a SELECT) in ``USAGE_COLUMNS`` order."""
    return (
        f"INSERT INTO key_usage AS u ({', '.join(USAGE_COLUMNS)}) {source}"
        f" ON CONFLICT ({_USAGE_KEY}) DO UPDATE SET"
        f" first_used = {dialect.least}(u.first_used, excluded.first_used),"
        " last_seq = CASE WHEN excluded.last_used >= u.last_used THEN excluded.last_seq ELSE u.last_seq END,"
        " source = CASE WHEN excluded.last_used >= u.last_used THEN excluded.source ELSE u.source END,"
        f" last_used = {dialect.greatest}(u.last_used, excluded.last_used),"
        " calls = u.calls + excluded.calls, failed = u.failed + excluded.failed"
    )
