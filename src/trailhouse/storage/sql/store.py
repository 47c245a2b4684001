"""What both SQL backends do alike, written once over a few primitives each backend provides.

A backend gives its dialect, a guard that turns its driver's errors into the store's (``_guard``),
one-statement reads and writes, and the term look-ups its driver does best; this class builds
the credential, usage, summary and term-id methods of the store on them. Every public method
here runs inside ``_guard``, so no driver exception leaves it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from ...model.credentials import AccessKey, ApiToken, KeyStatus, TokenScope
from ...model.query import (
    EventFilter,
    IpNetwork,
    Position,
    StoredEvent,
    UsageEntry,
    UsageKind,
    UsagePosition,
    WindowSummary,
)
from .dialect import Dialect
from .find import (
    DAY_BUCKETED_DRIVERS,
    HASHED_COLUMNS,
    FindQuery,
    TermsSql,
    build_find,
    build_time_counts,
    build_usage,
    day_windows,
    network_text_prefix,
    prefix_bounds,
    text_value,
    usage_entry,
)
from .insights import InsightSql
from .trails import TrailSql

__all__ = ["SqlStore", "access_key_from_row", "token_from_row"]

#: Drivers whose lookups read the events table alone (no resource join, no day-bucketed index).
_COUNTED_BY_RANGE = frozenset(
    {
        "events",
        "events_time",
        "events_name",
        "events_error",
        "events_service",
        "events_type",
        "events_sensitive",
    }
)
#: Beyond this many buckets one grouped statement is cheaper than a statement per bucket.
_MAX_RANGE_COUNTS = 2000

Row = Sequence[Any]

#: Ids are looked up as text, which PostgreSQL cannot hold with a NUL in it; no stored id has one.
_NUL = "\x00"
_KEY_COLUMNS = "access_key_id, account_id, user_name, secret_sealed, status, allowed_actions, created_ms"
_TOKEN_COLUMNS = "token_id, token_hash, account_ids, all_accounts, scopes, created_ms"


def access_key_from_row(row: Row) -> AccessKey:
    key_id, account, user, sealed, status, allowed, created = row
    return AccessKey(
        str(key_id),
        str(account),
        str(user),
        bytes(sealed),
        KeyStatus(status),
        tuple(a for a in str(allowed).split(",") if a),
        int(created),
    )


def token_from_row(row: Row) -> ApiToken:
    token_id, token_hash, accounts, all_accounts, scopes, created = row
    return ApiToken(
        str(token_id),
        bytes(token_hash),
        tuple(a for a in str(accounts).split(",") if a),
        bool(all_accounts),
        tuple(TokenScope(s) for s in str(scopes).split(",") if s),
        int(created),
    )


#: Term ids a store keeps in memory at most (~33 MB); see ``SqlStore._bound_term_cache``.
TERM_CACHE_MAX = 250_000


class SqlStore(TrailSql, InsightSql):
    """The shared half of an SQL ``EventStore``; subclasses supply the primitives below."""

    dialect: Dialect
    #: Committed term ids (value -> id): they never change once committed, so the cache is always right.
    _term_cache: dict[str, int]

    def _bound_term_cache(self) -> None:
        """Empty the term cache once it holds ``TERM_CACHE_MAX`` ids; it refills from ``terms``.

        A store of 10M events holds over a million terms, 133 bytes each in a dict: kept whole,
        the cache alone would take a fifth of the 1 GiB a process may use. Only the writer calls
        this, between its transactions, where no id it has looked up is still needed.
        """
        if len(self._term_cache) > TERM_CACHE_MAX:
            self._term_cache.clear()

    # -- primitives a backend provides ---------------------------------------------------------
    def _guard(self) -> AbstractContextManager[None]:
        """Driver errors inside become StoreError and its kinds; a closed store refuses."""
        raise NotImplementedError

    def _read(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        raise NotImplementedError

    def _read_rows(self, query: str, params: Sequence[object]) -> list[Any]:
        """As ``_read``, for rows that may carry event bodies (PostgreSQL reads them in binary)."""
        return self._read(query, params)

    def _write(self, query: str, params: Sequence[object]) -> int:
        """Run one statement in a transaction of its own; the rows it changed."""
        raise NotImplementedError

    def _lookup_terms(self, values: Sequence[str]) -> Iterable[tuple[int, Any]]:
        """(id, stored value) of those ``values`` that are terms."""
        raise NotImplementedError

    def find_events(
        self, *, account_id: str, flt: EventFilter, after: Position | None, descending: bool, limit: int
    ) -> list[StoredEvent]:
        raise NotImplementedError

    # -- terms ---------------------------------------------------------------------------------
    def _term_ids(self, values: Sequence[str]) -> list[int]:
        ids: list[int] = []
        missing: list[str] = []
        for value in values:
            cached = self._term_cache.get(value)
            if cached is None:
                missing.append(value)
            else:
                ids.append(cached)
        if missing:
            for term_id, raw in self._lookup_terms(missing):
                self._term_cache[text_value(raw)] = term_id
                ids.append(term_id)
        return ids

    def _term_id(self, value: str) -> int | None:
        ids = self._term_ids([value])
        return ids[0] if ids else None

    def _term_range(self, prefix: str) -> list[tuple[int, str]]:
        """Every term starting with ``prefix``, through a range scan of the unique index."""
        if not prefix:
            rows = self._read("SELECT id, value FROM terms")
        else:
            ph = self.dialect.ph
            rows = self._read(
                f"SELECT id, value FROM terms WHERE value >= {ph} AND value < {ph}",
                prefix_bounds(prefix, self.dialect),
            )
        return [(term_id, text_value(raw)) for term_id, raw in rows]

    def _prefix_term_ids(self, prefix: str) -> list[int]:
        return [term_id for term_id, _ in self._term_range(prefix)]

    def _network_term_ids(self, networks: tuple[IpNetwork, ...]) -> list[int]:
        ids: list[int] = []
        for network in networks:
            for term_id, value in self._term_range(network_text_prefix(network)):
                try:
                    if ipaddress.ip_address(value) in network:
                        ids.append(term_id)
                except ValueError:
                    continue
        return ids

    # -- events ---------------------------------------------------------------------------------
    def _cached_or_sql(self, values: Sequence[str]) -> list[int] | TermsSql:
        """The ids from the term cache; a single value not in it is looked up by the statement
        itself (``TermsSql``), several by a statement first, as ``_term_ids``."""
        ids = [self._term_cache.get(v) for v in values]
        if all(i is not None for i in ids):
            return [i for i in ids if i is not None]
        if len(set(values)) > 1:
            return self._term_ids(values)
        return TermsSql(
            f"SELECT id FROM terms WHERE value = {self.dialect.ph}", [self.dialect.text(values[0])]
        )

    def _build_find(
        self,
        account_ref: int,
        flt: EventFilter,
        after: Position | None,
        descending: bool,
        limit: int | None,
        day: int | None = None,
        *,
        terms_in_sql: bool = False,
    ) -> FindQuery | None:
        """``terms_in_sql``: a single value the term cache does not hold is looked up by the
        statement itself (PostgreSQL: a round trip less); otherwise by a statement first."""
        return build_find(
            flt,
            account_ref=account_ref,
            after=after,
            descending=descending,
            limit=limit,
            resolve=self._cached_or_sql if terms_in_sql else self._term_ids,
            resolve_prefix=self._prefix_term_ids,
            resolve_networks=self._network_term_ids,
            dialect=self.dialect,
            day=day,
        )

    def iter_events(
        self, *, account_id: str, flt: EventFilter, descending: bool, batch: int = 1000
    ) -> Iterator[StoredEvent]:
        after: Position | None = None
        while True:
            page = self.find_events(
                account_id=account_id, flt=flt, after=after, descending=descending, limit=batch
            )
            yield from page
            if len(page) < batch:
                return
            after = page[-1].position

    def resource_types(self, *, account_id: str) -> list[str]:
        with self._guard():
            account_ref = self._term_id(account_id)
            if account_ref is None:
                return []
            rows = self._read(
                "SELECT t.value FROM account_resource_types a JOIN terms t ON t.id = a.rtype"
                f" WHERE a.account = {self.dialect.ph}",
                (account_ref,),
            )
        return sorted(text_value(value) for (value,) in rows)

    def summarize(self, *, account_id: str, start_ms: int, end_ms: int) -> WindowSummary:
        ph = self.dialect.ph
        with self._guard():
            account_ref = self._term_id(account_id)
            if account_ref is None:
                return WindowSummary(0, None, None)
            ((count, earliest, latest),) = self._read(
                "SELECT count(*), min(event_time), max(event_time) FROM events"
                f" WHERE account = {ph} AND event_time >= {ph} AND event_time <= {ph}",
                (account_ref, start_ms, end_ms),
            )
        return WindowSummary(count, earliest, latest)

    def _events_if_ids_unchecked(self, account_id: str, flt: EventFilter) -> Iterator[StoredEvent] | None:
        """The events matching ``flt`` when its eventIds or requestIds can only be checked on the
        bodies (``Dialect.ids_in_sql``): counting their hash hits in SQL could count a collision.
        They are few (an id's hash hits); None when the statement checks everything itself."""
        if self.dialect.ids_in_sql or not any(attr in HASHED_COLUMNS for attr in flt.equals):
            return None
        return self.iter_events(account_id=account_id, flt=flt, descending=False)

    def count_by_time(
        self, *, account_id: str, flt: EventFilter, origin_ms: int, bucket_ms: int
    ) -> list[tuple[int, int]]:
        if bucket_ms <= 0 or origin_ms > flt.start_ms:
            raise ValueError("buckets need a positive width and an origin at or before the window")
        counts: dict[int, int] = {}
        checked = self._events_if_ids_unchecked(account_id, flt)
        if checked is not None:
            for event in checked:
                bucket = (event.event_time_ms - origin_ms) // bucket_ms
                counts[bucket] = counts.get(bucket, 0) + 1
            return [(origin_ms + b * bucket_ms, n) for b, n in sorted(counts.items())]
        with self._guard():
            account_ref = self._term_id(account_id)
            if account_ref is None:
                return []
            find = self._build_find(account_ref, flt, None, True, None)
            if find is None:
                return []
            buckets = (flt.end_ms - origin_ms) // bucket_ms + 1
            if self.dialect.index_hints and find.driver in _COUNTED_BY_RANGE and buckets <= _MAX_RANGE_COUNTS:
                return self._count_bucket_by_bucket(account_ref, flt, origin_ms, bucket_ms)
            queries: list[FindQuery | None] = [find]
            if self.dialect.day_buckets and find.driver in DAY_BUCKETED_DRIVERS:
                # The index leads with the UTC day: count day by day, within the account's data.
                lo, hi = self._time_bounds(account_ref)
                queries = [
                    self._build_find(account_ref, day_flt, None, True, None, day)
                    for day_flt, day in day_windows(
                        flt, max(flt.start_ms, lo), min(flt.end_ms, hi), descending=False
                    )
                ]
            for query in queries:
                if query is None:
                    continue
                counted = build_time_counts(query, origin_ms=origin_ms, bucket_ms=bucket_ms)
                for bucket, n in self._read(counted.sql, counted.params):
                    counts[int(bucket)] = counts.get(int(bucket), 0) + int(n)
        return [(origin_ms + b * bucket_ms, n) for b, n in sorted(counts.items())]

    def _count_bucket_by_bucket(
        self, account_ref: int, flt: EventFilter, origin_ms: int, bucket_ms: int
    ) -> list[tuple[int, int]]:
        """SQLite: one ``count(*)`` over an index range per bucket.

        SQLite groups an expression of the time through a temporary B-tree, row by row; counting
        each bucket's range of the index it would walk anyway was seven times faster over 400,000
        events (docs/benchmarks.md, "Console").
        """
        out: list[tuple[int, int]] = []
        start = origin_ms
        while start <= flt.end_ms:
            window = replace(
                flt, start_ms=max(flt.start_ms, start), end_ms=min(flt.end_ms, start + bucket_ms - 1)
            )
            query = self._build_find(account_ref, window, None, True, None)
            if query is not None:
                ((n,),) = self._read(
                    f"SELECT count(*) FROM {query.events_source} WHERE {query.where}", query.params
                )
                if n:
                    out.append((start, int(n)))
            start += bucket_ms
        return out

    def _time_bounds(self, account_ref: int) -> tuple[int, int]:
        """The oldest and newest event time of an account (a window beyond them holds nothing)."""
        ph = self.dialect.ph
        ends = [
            self._read(
                f"SELECT event_time FROM events WHERE account = {ph} ORDER BY event_time {order} LIMIT 1",
                (account_ref,),
            )
            for order in ("ASC", "DESC")
        ]
        if not ends[0] or not ends[1]:
            return 0, -1
        return int(ends[0][0][0]), int(ends[1][0][0])

    def count_events(self) -> int:
        """How many events the store holds, every account together."""
        with self._guard():
            return int(self._read("SELECT count(*) FROM events")[0][0])

    def applied_migrations(self) -> list[str]:
        with self._guard():
            return [r[0] for r in self._read("SELECT name FROM schema_migrations ORDER BY name")]

    # -- AccessKey usage -----------------------------------------------------------------------
    def usage(
        self,
        *,
        account_id: str,
        access_key_id: str,
        kind: UsageKind,
        service_name: str | None,
        since_ms: int,
        after: UsagePosition | None,
        limit: int,
        with_details: bool = False,
    ) -> list[UsageEntry]:
        with self._guard():
            account_ref = self._term_id(account_id)
            key_ref = self._term_id(access_key_id)
            if account_ref is None or key_ref is None:
                return []
            service_ref = None
            if service_name is not None:
                service_ref = self._term_id(service_name)
                if service_ref is None:
                    return []
            query = build_usage(
                account_ref=account_ref,
                key_ref=key_ref,
                kind=kind,
                service_ref=service_ref,
                since_ms=since_ms,
                after=after,
                limit=limit,
                dialect=self.dialect,
                with_details=with_details,
            )
            rows = self._read_rows(query.sql, query.params)
        return [usage_entry(kind, row) for row in rows]

    # -- credentials ---------------------------------------------------------------------------
    def save_access_key(self, key: AccessKey) -> None:
        with self._guard():
            self._write(
                f"INSERT INTO access_keys ({_KEY_COLUMNS}) VALUES ({self.dialect.marks(7)})",
                (
                    key.access_key_id,
                    key.account_id,
                    key.user_name,
                    key.secret_sealed,
                    str(key.status),
                    ",".join(key.allowed_actions),
                    key.created_ms,
                ),
            )

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        if _NUL in access_key_id:
            return None  # no stored id holds one (PostgreSQL text cannot), so none matches
        with self._guard():
            rows = self._read(
                f"SELECT {_KEY_COLUMNS} FROM access_keys WHERE access_key_id = {self.dialect.ph}",
                (access_key_id,),
            )
        return access_key_from_row(rows[0]) if rows else None

    def list_access_keys(self, *, account_id: str) -> list[AccessKey]:
        """The AccessKeys of one account, oldest first."""
        if _NUL in account_id:
            return []
        with self._guard():
            rows = self._read(
                f"SELECT {_KEY_COLUMNS} FROM access_keys WHERE account_id = {self.dialect.ph}"
                " ORDER BY created_ms",
                (account_id,),
            )
        return [access_key_from_row(r) for r in rows]

    def list_all_access_keys(self) -> list[AccessKey]:
        """Every account's AccessKeys (for operators and copies, never for a tenant)."""
        with self._guard():
            rows = self._read(f"SELECT {_KEY_COLUMNS} FROM access_keys ORDER BY account_id, created_ms")
        return [access_key_from_row(r) for r in rows]

    def set_access_key_status(self, access_key_id: str, status: KeyStatus) -> bool:
        if _NUL in access_key_id:
            return False
        ph = self.dialect.ph
        with self._guard():
            return (
                self._write(
                    f"UPDATE access_keys SET status = {ph} WHERE access_key_id = {ph}",
                    (str(status), access_key_id),
                )
                > 0
            )

    def delete_access_key(self, access_key_id: str) -> bool:
        if _NUL in access_key_id:
            return False
        with self._guard():
            ph = self.dialect.ph
            return self._write(f"DELETE FROM access_keys WHERE access_key_id = {ph}", (access_key_id,)) > 0

    def save_token(self, token: ApiToken) -> None:
        with self._guard():
            self._write(
                f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) VALUES ({self.dialect.marks(6)})",
                (
                    token.token_id,
                    token.token_hash,
                    ",".join(token.account_ids),
                    self.dialect.flag(token.all_accounts),
                    ",".join(token.scopes),
                    token.created_ms,
                ),
            )

    def find_token(self, token_hash: bytes) -> ApiToken | None:
        with self._guard():
            rows = self._read(
                f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = {self.dialect.ph}",
                (token_hash,),
            )
        return token_from_row(rows[0]) if rows else None

    def list_tokens(self) -> list[ApiToken]:
        with self._guard():
            rows = self._read(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_ms")
        return [token_from_row(r) for r in rows]

    def delete_token(self, token_id: str) -> bool:
        if _NUL in token_id:
            return False
        with self._guard():
            return self._write(f"DELETE FROM api_tokens WHERE token_id = {self.dialect.ph}", (token_id,)) > 0
