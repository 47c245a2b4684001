"""The storage contract every backend implements, and the errors it may raise.

Only modules in this package speak SQL or import a database driver. Every method that touches
events takes ``account_id`` as a required keyword argument: tenant scoping is part of the call,
not an optional filter. The one exception is ``append``, whose records each carry their account,
so that a batch spanning accounts is still written in one transaction; and the credential
look-ups, whose purpose is to find out which account a key belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..model.credentials import AccessKey, ApiToken, KeyStatus
from ..model.event import EventRecord
from ..model.insights import InsightCount, InsightPosition, InsightQuery, StoredInsight
from ..model.query import (
    EventFilter,
    Position,
    StoredEvent,
    UsageEntry,
    UsageKind,
    UsagePosition,
    WindowSummary,
)

__all__ = [
    "AppendResult",
    "CredentialStore",
    "EventLog",
    "DetectorCheckpoint",
    "EventStore",
    "InsightStore",
    "LeaseLost",
    "LogEntry",
    "MetadataStore",
    "QueryCancelled",
    "QueryTimeout",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "UsageStore",
]


class StoreError(Exception):
    """A storage failure the caller cannot fix by changing its request."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (try again later)."""


class StoreMissing(StoreError):
    """A store was opened for reading where none exists (nothing was ever written there)."""


class QueryTimeout(StoreError):
    """A request's store work ran past its time limit and was stopped (see ``storage.budget``)."""


class QueryCancelled(StoreError):
    """A request's store work was stopped because its caller gave up (the client left)."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Which records of a batch were stored, and which were already there (same account and eventId)."""

    accepted: list[int]
    duplicates: list[int]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An event as it sits in the log, for readers that follow the log in commit-safe order."""

    seq: int
    account_id: str
    event: StoredEvent


class EventLog(Protocol):
    """The events of every account: appended in batches, looked up, followed in commit order."""

    def append(self, records: Sequence[EventRecord]) -> AppendResult:
        """Store the new records of a batch in one transaction, durable when this returns.

        A record whose (account, eventId) is already stored, or repeated earlier in the same
        batch, is a duplicate and changes nothing.
        """
        ...

    def find_events(
        self,
        *,
        account_id: str,
        flt: EventFilter,
        after: Position | None,
        descending: bool,
        limit: int,
    ) -> list[StoredEvent]:
        """One page of matching events in (event time, seq) order, strictly after ``after``."""
        ...

    def iter_events(
        self, *, account_id: str, flt: EventFilter, descending: bool, batch: int = 1000
    ) -> Iterator[StoredEvent]:
        """Every matching event, streamed in pages so that memory stays flat."""
        ...

    def summarize(self, *, account_id: str, start_ms: int, end_ms: int) -> WindowSummary: ...

    def resource_types(self, *, account_id: str) -> list[str]:
        """Every resource type the account's events name, sorted."""
        ...

    def events_by_seq(self, *, account_id: str, seqs: Sequence[int]) -> dict[int, StoredEvent]: ...

    def read_log(self, *, after_seq: int, limit: int) -> list[LogEntry]:
        """Events in seq order after ``after_seq``, never skipping one that commits later."""
        ...


class UsageStore(Protocol):
    """What each AccessKey was last used for, folded from the events as they are appended."""

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
    ) -> list[UsageEntry]:
        """Most recent first. ``service_name`` None means every service."""
        ...


class CredentialStore(Protocol):
    """AccessKeys (their secrets sealed) and API tokens (their hashes).

    A key or token is looked up by its own id or hash: finding out which account it belongs to
    is the point of the look-up.
    """

    def save_access_key(self, key: AccessKey) -> None: ...
    def get_access_key(self, access_key_id: str) -> AccessKey | None: ...
    def list_access_keys(self, *, account_id: str) -> list[AccessKey]:
        """The AccessKeys of one account, oldest first."""
        ...

    def list_all_access_keys(self) -> list[AccessKey]:
        """Every account's AccessKeys, by account (for operators and copies, never for a tenant)."""
        ...

    def set_access_key_status(self, access_key_id: str, status: KeyStatus) -> bool: ...
    def delete_access_key(self, access_key_id: str) -> bool: ...
    def save_token(self, token: ApiToken) -> None: ...
    def find_token(self, token_hash: bytes) -> ApiToken | None: ...
    def list_tokens(self) -> list[ApiToken]: ...
    def delete_token(self, token_id: str) -> bool: ...


class MetadataStore(Protocol):
    """The store as a whole: settings shared by every node, housekeeping, totals for operators."""

    def meta_get_or_set(self, name: str, value: bytes) -> bytes:
        """Return the stored value of ``name``, storing ``value`` first if there is none."""
        ...

    def maintain(self, *, now_ms: int) -> list[str]:
        """Periodic housekeeping (partitions ahead and past retention, statistics); what it did."""
        ...

    def count_events(self) -> int:
        """Every stored event of every account (for copies and operators, never for tenants)."""
        ...


class LeaseLost(StoreError):
    """A detector's lease passed to another node: its work since the last commit is not stored."""


@dataclass(frozen=True, slots=True)
class DetectorCheckpoint:
    """Where a detector is in the log (the last seq it has fully processed) and its saved state."""

    watermark: int
    state: bytes


class InsightStore(Protocol):
    """Insights: which types each account enabled, trail selectors, the records, the detector's place."""

    def insight_types_enabled(self, *, account_id: str) -> list[str]: ...
    def set_insight_type(self, *, account_id: str, insight_type: str, enabled: bool, now_ms: int) -> None: ...
    def all_enabled_insight_types(self) -> dict[str, frozenset[str]]:
        """Every account's enabled types (for the detector, never for a tenant)."""
        ...

    def put_insight_selectors(
        self, *, account_id: str, trail_name: str, selectors: Sequence[str], now_ms: int
    ) -> None: ...
    def get_insight_selectors(self, *, account_id: str, trail_name: str) -> list[str] | None: ...

    def find_insights(
        self, *, account_id: str, query: InsightQuery, after: InsightPosition | None, limit: int
    ) -> list[tuple[InsightPosition, StoredInsight]]:
        """Newest first, strictly after ``after``."""
        ...

    def count_insights(self, *, account_id: str, start_ms: int, end_ms: int) -> list[InsightCount]:
        """Start records (one per insight) in the window, by type and region."""
        ...

    def take_detector_lease(self, *, detector: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        """Hold (or renew) the one lease that lets a node run ``detector``; False while another holds it."""
        ...

    def detector_checkpoint(self, *, detector: str) -> DetectorCheckpoint | None: ...

    def commit_insights(
        self, insights: Sequence[StoredInsight], *, detector: str, owner: str, checkpoint: DetectorCheckpoint
    ) -> int:
        """Store new insights and the checkpoint in one transaction; how many insights were new.

        An insight whose (account, insight_id) is stored already changes nothing. LeaseLost when
        ``owner`` no longer holds the lease (nothing is stored then).
        """
        ...

    def log_head(self) -> int:
        """The highest seq stored (0 when the log is empty)."""
        ...

    def count_matching(self, *, account_id: str, flt: EventFilter, cap: int) -> int:
        """How many events match ``flt``, counting no further than ``cap``."""
        ...


class EventStore(EventLog, UsageStore, CredentialStore, MetadataStore, InsightStore, Protocol):
    """Events, their usage aggregates, and credentials, in one database: what a backend implements."""

    url: str
    #: True when no call waits on the network (an embedded database): callers may then run store
    #: calls on an event loop instead of handing them to a worker thread.
    in_process: bool
    #: What opening the store repaired in its data, one line each (``trailhouse migrate`` prints them).
    repairs: list[str]

    def close(self) -> None: ...
