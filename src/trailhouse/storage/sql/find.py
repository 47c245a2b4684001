"""The one query builder behind every lookup, and the usage page query, for both dialects.

Both backends keep the same tables (events, event_resources, terms, key_usage); only the
placeholder style and a few statements differ, so a filter is translated to SQL in one place.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ...model.event import event_id_of, key_hash, request_id_of
from ...model.query import (
    Attr,
    EventFilter,
    IpNetwork,
    Position,
    StoredEvent,
    UsageEntry,
    UsageKind,
    UsagePosition,
)
from .. import codec
from .dialect import Dialect

__all__ = [
    "DAY_BUCKETED_DRIVERS",
    "HASHED_COLUMNS",
    "ID_READERS",
    "INTERNED_COLUMNS",
    "FindQuery",
    "TermsSql",
    "build_find",
    "build_time_counts",
    "build_usage",
    "day_windows",
    "network_text_prefix",
    "prefix_bounds",
    "sqlite_day",
    "text_value",
    "usage_entry",
]

#: Attribute -> column holding a term id.
INTERNED_COLUMNS: dict[Attr, str] = {
    Attr.EVENT_NAME: "event_name",
    Attr.EVENT_TYPE: "event_type",
    Attr.EVENT_RW: "event_rw",
    Attr.EVENT_CATEGORY: "category",
    Attr.SERVICE_NAME: "service",
    Attr.USER_NAME: "user_name",
    Attr.ACCESS_KEY_ID: "access_key",
    Attr.SOURCE_IP: "source_ip",
    Attr.ROLE_NAME: "role_name",
    Attr.ERROR_CODE: "error_code",
}
#: Attribute -> hash column for long unique strings; the value itself is read from the body.
HASHED_COLUMNS: dict[Attr, str] = {Attr.EVENT_ID: "event_key", Attr.REQUEST_ID: "request_key"}
#: The function reading each from a body, and the name SQLite registers it under for its
#: statements to check hash hits themselves (``Dialect.ids_in_sql``).
ID_READERS: dict[Attr, tuple[str, Callable[[bytes], str | None]]] = {
    Attr.EVENT_ID: ("event_id_of", event_id_of),
    Attr.REQUEST_ID: ("request_id_of", request_id_of),
}
RESOURCE_COLUMNS: dict[Attr, str] = {Attr.RESOURCE_TYPE: "rtype", Attr.RESOURCE_NAME: "rname"}

#: SQLite index per driving column, most selective first. SQLite's planner has no statistics on a
#: fresh file and may pick the time index for a rare name; naming the index keeps every documented
#: filter index-served whatever the data looks like.
SQLITE_INDEX_PRIORITY: tuple[tuple[str, str], ...] = (
    ("seq", "event_keys"),  # an eventId: its seqs from the dedupe tables, then rows by rowid
    ("access_key", "events_access_key"),
    ("source_ip", "events_source_ip"),
    ("user_name", "events_user"),
    ("role_name", "events_role"),
    ("event_name", "events_name"),
    ("error_code", "events_error"),
    ("service", "events_service"),
    ("event_type", "events_type"),
    ("sensitive", "events_sensitive"),
)

DAY_MS = 86_400_000
#: SQLite's recent eventId keys are led by their slice (the hash's top 4 bits: a range of keys)
#: and ``seq >> EVENT_KEY_GEN_BITS`` (migration sqlite/0018, ``storage.sqlite_keys``).
EVENT_KEY_GEN_BITS = 12
EVENT_KEY_SLICES = 16


def event_key_slice(key: int) -> int:
    """The slice of a signed 64-bit eventId hash: its top 4 bits, as SQLite's ``key >> 60 & 15``."""
    return (key >> 60) & 15


#: Beyond this many days a hashed look-up stops probing day by day and filters the account's rows.
MAX_DAY_PROBES = 1000


@dataclass(frozen=True, slots=True)
class TermsSql:
    """A term id the statement looks up itself: a scalar SELECT of one id and its parameters.

    A backend whose every statement is a round trip (PostgreSQL) resolves a value its term cache
    does not hold inside the page's own statement instead of in one statement more. One value
    only: the planner reads ``column = (SELECT …)`` as an equality with one unknown value and keeps
    the column's index, where an array of unknown length (``= ANY(ARRAY(SELECT …))``, several
    values or a prefix) made it walk the time index with a filter.
    """

    sql: str
    params: list[object]


# Resolvers turn strings into term ids; a value that was never stored has no id and matches nothing.
ResolveTerms = Callable[[Sequence[str]], "list[int] | TermsSql"]
ResolvePrefix = Callable[[str], list[int]]


def prefix_bounds(prefix: str, dialect: Dialect) -> tuple[object, object]:
    """The range [low, high) of the stored terms starting with a non-empty ``prefix``."""
    if dialect.bytes_text:
        low = prefix.encode()
        # The last byte of UTF-8 text is never 0xFF, so incrementing it gives the upper bound.
        return low, low[:-1] + bytes((low[-1] + 1,))
    # As text, the next code point does (SQLite compares TEXT by its UTF-8 bytes).
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True, slots=True)
class FindQuery:
    sql: str
    params: list[object]
    #: What drives the query: the SQLite index named for it, "event_resources", or "events".
    driver: str = "events"
    #: The conditions (``params`` up to the limit fill them) and the events table as named in the
    #: FROM clause (with its index hint), so other statements can reuse the filter.
    where: str = ""
    events_source: str = "events e"
    #: The eventIds and requestIds a row's body must hold, where the statement could not check
    #: them (``Dialect.ids_in_sql``): its rows are the hash hits, and the store keeps the rows
    #: that ``holds_ids``.
    unchecked_ids: tuple[tuple[Attr, frozenset[str]], ...] = ()

    def holds_ids(self, event: StoredEvent) -> bool:
        """Whether a row the statement returned holds the ids asked for (always, when none are)."""
        return all(ID_READERS[attr][1](event.body) in wanted for attr, wanted in self.unchecked_ids)


#: SQLite indexes that lead with the UTC hour (migration 0019; the day before it, 0005). Their
#: attribute has thousands of values, so keyed by value first every ingested event landed on a leaf
#: page of its own in each; keyed by time first, a batch of recent events touches the pages of its
#: hour. A query walks the days of its window one by one, newest first when it pages backwards,
#: and probes a day's hours in one statement, in order (``event_time / 3600000 IN (…)``, which
#: the ORDER BY leads with, so no sort).
DAY_BUCKETED_DRIVERS = frozenset(
    {"events_user", "events_access_key", "events_source_ip", "events_role", "event_resources"}
)


HOUR_MS = 3_600_000


def sqlite_hour(ms: int) -> int:
    """The UTC hour of an epoch-ms time as SQLite computes ``event_time / 3600000`` (truncating)."""
    return ms // HOUR_MS if ms >= 0 else -(-ms // HOUR_MS)


def day_bounds(day: int) -> tuple[int, int]:
    """The first and last epoch ms of a day of ``sqlite_day``: truncating division puts
    (-1 day, +1 day) into day 0 and [d-1, d] days into d < 0."""
    start = day * DAY_MS if day > 0 else day * DAY_MS - DAY_MS + 1
    end = day * DAY_MS if day < 0 else day * DAY_MS + DAY_MS - 1
    return start, end


def sqlite_day(ms: int) -> int:
    """The UTC day of an epoch-ms time as SQLite computes ``event_time / 86400000`` (truncating)."""
    return ms // DAY_MS if ms >= 0 else -(-ms // DAY_MS)


def day_windows(flt: EventFilter, lo: int, hi: int, *, descending: bool) -> Iterator[tuple[EventFilter, int]]:
    """[lo, hi] cut into the UTC days of ``sqlite_day``, each as ``flt`` limited to it, in walk order."""
    if lo > hi:
        return
    first, last = sqlite_day(lo), sqlite_day(hi)
    days = range(last, first - 1, -1) if descending else range(first, last + 1)
    for day in days:
        start, end = day_bounds(day)
        yield replace(flt, start_ms=max(lo, start), end_ms=min(hi, end)), day


def network_text_prefix(network: IpNetwork) -> str:
    """The longest text prefix every address of ``network`` shares, to narrow a scan of IP terms."""
    if isinstance(network, ipaddress.IPv4Network):
        whole_octets = network.prefixlen // 8
        octets = str(network.network_address).split(".")[:whole_octets]
        return ".".join(octets) + ("." if octets and whole_octets < 4 else "")
    return ""


def build_find(
    flt: EventFilter,
    *,
    account_ref: int,
    after: Position | None,
    descending: bool,
    limit: int | None,
    resolve: ResolveTerms,
    resolve_prefix: ResolvePrefix,
    resolve_networks: Callable[[tuple[IpNetwork, ...]], list[int]],
    dialect: Dialect,
    day: int | None = None,
) -> FindQuery | None:
    """Translate a filter to one SELECT, or None when it can match nothing.

    With ``dialect.distinct_on`` (PostgreSQL: no bare columns under GROUP BY) DISTINCT ON keeps
    one row per event of the resource join; the event of each resource row is fetched by a
    LATERAL probe on (seq, event_time), which the executor prunes to one partition.
    ``day`` limits the query to one UTC day, whose hours SQLite's hour-bucketed indexes are
    probed by (``DAY_BUCKETED_DRIVERS``).
    """
    ph = dialect.ph
    if flt.is_impossible():
        return None
    resource_conds: list[str] = []
    event_conds: list[str] = []
    params_res: list[object] = []
    params_ev: list[object] = []

    def term_condition(
        column: str, ids: Iterable[int] | TermsSql, out: list[str], out_params: list[object]
    ) -> bool:
        if isinstance(ids, TermsSql):
            # No such term, NULL, no match: the same answer as returning None here.
            out.append(f"{column} = ({ids.sql})")
            out_params.extend(ids.params)
            return True
        ids = sorted(set(ids))
        if not ids:
            return False
        if len(ids) == 1:
            out.append(f"{column} = {ph}")
        else:
            out.append(f"{column} IN ({dialect.marks(len(ids))})")
        out_params.extend(ids)
        return True

    #: PostgreSQL: the eventId hashes event_ids is probed with (``dialect.event_ids_lookup``).
    event_keys: list[int] | None = None
    unchecked_ids: list[tuple[Attr, frozenset[str]]] = []
    for attr, values in flt.equals.items():
        if attr in INTERNED_COLUMNS:
            if not term_condition(f"e.{INTERNED_COLUMNS[attr]}", resolve(values), event_conds, params_ev):
                return None
        elif attr in RESOURCE_COLUMNS:
            if not term_condition(f"r.{RESOURCE_COLUMNS[attr]}", resolve(values), resource_conds, params_res):
                return None
        elif attr in HASHED_COLUMNS:
            hash_col = HASHED_COLUMNS[attr]
            distinct = sorted(set(values))
            if attr is Attr.REQUEST_ID:
                sql, sql_params = _request_candidates(
                    dialect, flt, account_ref, [key_hash(v) for v in distinct]
                )
                event_conds.append(sql)
                params_ev.extend(sql_params)
            elif dialect.event_ids_lookup and attr is Attr.EVENT_ID:
                event_keys = [key_hash(v) for v in distinct]  # event_ids' key; the text below
            elif dialect.event_keys_merged and attr is Attr.EVENT_ID:
                sql, sql_params = _event_key_seqs(dialect, account_ref, [key_hash(v) for v in distinct])
                event_conds.append(f"e.seq IN ({sql})")
                params_ev.extend(sql_params)
            else:
                event_conds.append(f"e.{hash_col} IN ({dialect.marks(len(distinct))})")
                params_ev.extend(key_hash(v) for v in distinct)
            if dialect.ids_in_sql:
                event_conds.append(f"{ID_READERS[attr][0]}(e.body) IN ({dialect.marks(len(distinct))})")
                params_ev.extend(distinct)
            else:
                unchecked_ids.append((attr, frozenset(distinct)))
        elif attr is Attr.SENSITIVE_ACTION:
            flags = {v.lower() for v in values}
            if not flags <= {"true", "false"}:
                return None
            event_conds.append(f"e.sensitive IN ({dialect.marks(len(flags))})")
            params_ev.extend(1 if f == "true" else 0 for f in sorted(flags))
        else:  # pragma: no cover - every Attr is handled above
            raise ValueError(f"cannot filter on {attr}")

    for attr, prefix in flt.prefixes.items():
        if attr in INTERNED_COLUMNS:
            if not term_condition(
                f"e.{INTERNED_COLUMNS[attr]}", resolve_prefix(prefix), event_conds, params_ev
            ):
                return None
        elif attr in RESOURCE_COLUMNS:
            if not term_condition(
                f"r.{RESOURCE_COLUMNS[attr]}", resolve_prefix(prefix), resource_conds, params_res
            ):
                return None
        else:
            raise ValueError(f"prefix matching is not supported for {attr}")

    if flt.networks and not term_condition(
        "e.source_ip", resolve_networks(flt.networks), event_conds, params_ev
    ):
        return None
    if flt.has_error is not None:
        event_conds.append("e.error_code IS NOT NULL" if flt.has_error else "e.error_code IS NULL")

    # The driving table: event_resources when a resource condition exists (its index is ordered
    # by time within a resource); on PostgreSQL event_ids for an eventId (one probe of its key,
    # not one per partition); otherwise events itself.
    by_event_ids = event_keys is not None and not resource_conds
    if event_keys is not None and not by_event_ids:
        event_conds.append(f"e.event_key IN ({dialect.marks(len(event_keys))})")
        params_ev.extend(event_keys)
    t = "r" if resource_conds else "x" if by_event_ids else "e"
    conds = [f"{t}.account = {ph}"]
    params: list[object] = [account_ref]
    order = "DESC" if descending else "ASC"
    #: The hour leads the ORDER BY where the index leads with it: each hour's range is then read in
    #: index order, one after the other, and the page needs no sort.
    by_hour = by_hour_sorted = ""
    if day is not None:
        start, end = day_bounds(day)
        hours = range(sqlite_hour(max(flt.start_ms, start)), sqlite_hour(min(flt.end_ms, end)) + 1)
        conds.append(f"{t}.event_time / {HOUR_MS} IN ({dialect.marks(len(hours))})")
        params.extend(hours)
        by_hour, by_hour_sorted = f"{t}.event_time / {HOUR_MS}, ", f"{t}.event_time / {HOUR_MS} {order}, "
    conds += [f"{t}.event_time >= {ph}", f"{t}.event_time <= {ph}"]
    params += [flt.start_ms, flt.end_ms]
    conds += resource_conds
    params += params_res
    if after is not None:
        op = "<" if descending else ">"
        if dialect.row_keyset:
            conds.append(f"({t}.event_time, {t}.seq) {op} ({ph}, {ph})")
            params += [after.event_time_ms, after.seq]
        else:
            conds.append(f"{t}.event_time {op}= {ph} AND ({t}.event_time {op} {ph} OR {t}.seq {op} {ph})")
            params += [after.event_time_ms, after.event_time_ms, after.seq]
    if by_event_ids:
        assert event_keys is not None
        conds.append(f"x.event_key IN ({dialect.marks(len(event_keys))})")
        params += event_keys
    conds += event_conds
    params += params_ev
    select = "SELECT e.seq, e.event_time, e.body"
    driver = "event_resources" if resource_conds else "events"
    source = "events e"
    if resource_conds and dialect.distinct_on:
        sql = (
            f"SELECT DISTINCT ON (r.event_time, r.seq) e.seq, e.event_time, e.body "
            f"FROM event_resources r CROSS JOIN LATERAL (SELECT * FROM events e "
            f"WHERE e.seq = r.seq AND e.event_time = r.event_time LIMIT 1) e "
            f"WHERE {' AND '.join(conds)} ORDER BY r.event_time {order}, r.seq {order}"
        )
    elif by_event_ids:
        driver = "event_ids"
        source = (
            "event_ids x CROSS JOIN LATERAL (SELECT * FROM events e"
            " WHERE e.seq = x.seq AND e.event_time = x.event_time LIMIT 1) e"
        )
        sql = (
            f"{select} FROM {source} WHERE {' AND '.join(conds)} ORDER BY x.event_time {order}, x.seq {order}"
        )
    elif resource_conds:
        sql = (
            f"{select} FROM event_resources r JOIN events e ON e.seq = r.seq "
            f"WHERE {' AND '.join(conds)} "
            f"GROUP BY {by_hour}r.event_time, r.seq"
            f" ORDER BY {by_hour_sorted}r.event_time {order}, r.seq {order}"
        )
    else:
        if dialect.index_hints:
            # "IS NULL" cannot use the partial index of its column (SQLite: "no query solution").
            used = {c.split(" ", 1)[0].removeprefix("e.") for c in event_conds if not c.endswith("IS NULL")}
            driver = next((i for col, i in SQLITE_INDEX_PRIORITY if col in used), "events_time")
            # By seq the rows are read by rowid, which NOT INDEXED still allows.
            source = "events e NOT INDEXED" if driver == "event_keys" else f"events e INDEXED BY {driver}"
        sql = (
            f"{select} FROM {source} WHERE {' AND '.join(conds)}"
            f" ORDER BY {by_hour_sorted}e.event_time {order}, e.seq {order}"
        )
    if limit is not None:
        sql += f" LIMIT {ph}"
        params.append(limit)
    return FindQuery(sql, params, driver, " AND ".join(conds), source, tuple(unchecked_ids))


def _request_candidates(
    dialect: Dialect, flt: EventFilter, account_ref: int, hashes: list[int]
) -> tuple[str, list[object]]:
    """The condition that finds events by requestId hashes, and its parameters.

    An event whose requestId is its eventId (the rule in ActionTrail's own records) keeps no
    ``request_key`` (``storage.units``): its eventId's entry in the dedupe tables already finds it,
    under the same hash. So the candidates are the requestId index's hits and the events whose
    eventId has one of the hashes; the body check after this condition keeps those whose requestId
    is the one asked for. Rows written before that rule keep their ``request_key`` and may be
    reached both ways; the condition is on ``seq``, so each row is returned once.
    """
    marks = dialect.marks(len(hashes))
    if dialect.event_keys_merged:
        # SQLite's requestId index leads with the UTC day (migration 0003): probe each day.
        days = range(flt.start_ms // DAY_MS, flt.end_ms // DAY_MS + 1)
        by_day = len(days) <= MAX_DAY_PROBES
        by_event_id, by_event_id_params = _event_key_seqs(dialect, account_ref, hashes)
        sql = (
            "e.seq IN (SELECT seq FROM events INDEXED BY events_request WHERE account = ?"
            + (f" AND event_time / {DAY_MS} IN ({dialect.marks(len(days))})" if by_day else "")
            + f" AND request_key IN ({marks}) UNION ALL {by_event_id})"
        )
        return sql, [account_ref, *(days if by_day else ()), *hashes, *by_event_id_params]
    if dialect.event_ids_lookup:
        # The seqs in one InitPlan (the requestId index of the window's partitions, event_ids'
        # primary key), then the rows by the seq index: an OR of the two conditions on the rows
        # left the choice of a BitmapOr to the planner, which took the time index on small tables.
        ph = dialect.ph
        sql = (
            f"e.seq = ANY(ARRAY(SELECT seq FROM events WHERE account = {ph} AND event_time >= {ph}"
            f" AND event_time <= {ph} AND request_key IN ({marks}) UNION ALL SELECT seq FROM event_ids"
            f" WHERE event_key IN ({marks}) AND account = {ph}))"
        )
        return sql, [account_ref, flt.start_ms, flt.end_ms, *hashes, *hashes, account_ref]
    raise ValueError(f"no requestId lookup for the {dialect.name} dialect")  # pragma: no cover


def _event_key_seqs(dialect: Dialect, account_ref: int, hashes: list[int]) -> tuple[str, list[object]]:
    """SQLite: the seqs of an account's events with these eventId hashes, from both dedupe tables
    in one statement (one snapshot, whatever a merge moves meanwhile), and its parameters. The
    recent keys are probed in the hashes' slices, generation by generation, from the first after
    the slices' oldest ``merged_seq`` to that of the highest seq."""
    slice_ids = sorted({event_key_slice(h) for h in hashes})
    marks, slices = dialect.marks(len(hashes)), dialect.marks(len(slice_ids))
    bits = EVENT_KEY_GEN_BITS
    params: list[object] = [account_ref, *hashes, *slice_ids, *slice_ids, account_ref, *hashes]
    return (
        f"SELECT seq FROM event_keys WHERE account = ? AND event_key IN ({marks})"
        f" UNION ALL SELECT seq FROM event_keys_recent WHERE slice IN ({slices}) AND gen IN ("
        f"WITH RECURSIVE g(n) AS (SELECT (MIN(merged_seq) + 1) >> {bits} FROM event_keys_state"
        f" WHERE slice IN ({slices})"
        f" UNION ALL SELECT n + 1 FROM g WHERE n < (SELECT MAX(seq) FROM events) >> {bits}) SELECT n FROM g)"
        f" AND account = ? AND event_key IN ({marks})"
    ), params


def build_time_counts(find: FindQuery, *, origin_ms: int, bucket_ms: int) -> FindQuery:
    """The events a find query (built without a limit) matches, counted per time bucket.

    Bucket ``b`` holds the times ``[origin + b * width, origin + (b + 1) * width)``. The find's
    conditions and index hint are kept; only the rows it yields change: the event time alone
    (one row per event, also when several of its resources match), never the body.
    """
    origin, width = int(origin_ms), int(bucket_ms)
    if width <= 0:
        raise ValueError("the bucket width must be positive")
    if find.driver == "event_resources":
        # One row per (event, matching resource): keep one per event before counting.
        inner = (
            "SELECT DISTINCT r.event_time AS event_time, r.seq FROM event_resources r"
            f" JOIN events e ON e.seq = r.seq AND e.event_time = r.event_time WHERE {find.where}"
        )
    else:
        inner = f"SELECT e.event_time AS event_time FROM {find.events_source} WHERE {find.where}"
    sql = f"SELECT (h.event_time - {origin}) / {width} AS b, count(*) FROM ({inner}) h GROUP BY b ORDER BY b"
    return FindQuery(sql, list(find.params), find.driver)


def build_usage(
    *,
    account_ref: int,
    key_ref: int,
    kind: UsageKind,
    service_ref: int | None,
    since_ms: int,
    after: UsagePosition | None,
    limit: int,
    dialect: Dialect,
    with_details: bool = False,
) -> FindQuery:
    """One page of ``key_usage``, most recent first; ``service_ref`` None reads every service.

    Across services the last ties break on the service too (the same item on two services).
    ``with_details`` adds the packed body of each row's last event (NULL once retention dropped
    it), read in the same statement instead of a second round trip.
    """
    ph = dialect.ph
    conds = [f"u.account = {ph}", f"u.access_key = {ph}", f"u.kind = {ph}", f"u.last_used >= {ph}"]
    params: list[object] = [account_ref, key_ref, int(kind), since_ms]
    if service_ref is not None:
        conds.append(f"u.service = {ph}")
        params.append(service_ref)
    if after is not None:
        if service_ref is None:
            conds.append(
                f"(u.last_used < {ph} OR (u.last_used = {ph}"
                f" AND (u.item, u.item_type, u.service) > ({ph}, {ph}, {ph})))"
            )
            params += [
                after.last_used_ms,
                after.last_used_ms,
                after.item_ref,
                after.type_ref,
                after.service_ref,
            ]
        else:
            conds.append(
                f"(u.last_used < {ph} OR (u.last_used = {ph} AND (u.item, u.item_type) > ({ph}, {ph})))"
            )
            params += [after.last_used_ms, after.last_used_ms, after.item_ref, after.type_ref]
    order = "u.last_used DESC, u.item, u.item_type, u.service"
    where = " AND ".join(conds)
    if dialect.usage_day:
        # The index ends at the day of the last use (migration 0012), so the page's rows are
        # sorted per query; the days to sort are bounded first. The page's rows all lie on or
        # after the day of the limit-th row in day order, which an ordered index scan of LIMIT
        # rows finds. Written out, not left to the planner: a cached generic plan, which knows
        # nothing of how many rows the key has, sorted all of them (4-8 ms for the hot key at 1M
        # instead of 0.5).
        day_bounds = f" AND u.last_day >= {ph} / {DAY_MS}"
        params.append(since_ms)
        if after is not None:
            day_bounds += f" AND u.last_day <= {ph} / {DAY_MS}"
            params.append(after.last_used_ms)
        where += day_bounds
        params += params + [limit]
        where += (
            f" AND u.last_day >= (SELECT min(f.last_day) FROM (SELECT u.last_day FROM key_usage u"
            f" WHERE {where} ORDER BY u.last_day DESC LIMIT {ph}) f)"
        )
    params.append(limit)
    # The page is chosen from key_usage alone and only its rows are joined to their terms: where
    # the rows of the days read are sorted per query, joining them all first cost three term
    # probes per row.
    sql = (
        "SELECT s.value, i.value, t.value, u.first_used, u.last_used, u.calls, u.failed, u.source,"
        f" u.last_seq, u.item, u.item_type, u.service{', d.body' if with_details else ''}"
        f" FROM (SELECT * FROM key_usage u WHERE {where} ORDER BY {order} LIMIT {ph}) u"
        " JOIN terms s ON s.id = u.service JOIN terms i ON i.id = u.item"
        f" JOIN terms t ON t.id = u.item_type{_USAGE_DETAILS[dialect.name] if with_details else ''}"
        " ORDER BY u.last_used DESC, u.item, u.item_type, u.service"
    )
    return FindQuery(sql, params)


#: The event of a usage row's last_seq, as ``events_by_seq`` reads it: on SQLite seq is the rowid;
#: on PostgreSQL event_ids gives the event time, which names the one partition to probe.
_USAGE_DETAILS = {
    "sqlite": " LEFT JOIN events d ON d.seq = u.last_seq AND d.account = u.account",
    "postgres": (
        " LEFT JOIN LATERAL (SELECT e.body FROM event_ids x CROSS JOIN LATERAL (SELECT body FROM events e"
        " WHERE e.seq = x.seq AND e.event_time = x.event_time LIMIT 1) e"
        " WHERE x.seq = u.last_seq AND x.account = u.account) d ON true"
    ),
}


def usage_entry(kind: UsageKind, row: Sequence[Any]) -> UsageEntry:
    """A row of ``build_usage``'s query; text columns may come back as bytes (PostgreSQL bytea)."""
    packed = row[12] if len(row) > 12 else None
    (
        service,
        item,
        item_type,
        first,
        last,
        calls,
        failed,
        source,
        last_seq,
        item_ref,
        type_ref,
        service_ref,
    ) = row[:12]
    return UsageEntry(
        kind=kind,
        service_name=text_value(service),
        item=text_value(item),
        item_type=text_value(item_type),
        first_used_ms=first,
        last_used_ms=last,
        calls=calls,
        failed_calls=failed,
        source=source,
        last_seq=last_seq,
        position=UsagePosition(last, item_ref, type_ref, service_ref),
        last_event=None if packed is None else codec.unpack(bytes(packed)),
    )


def text_value(value: str | bytes | memoryview) -> str:
    return value if isinstance(value, str) else bytes(value).decode()
