"""The storage contract every backend implements, and the errors it may raise.

Only modules in this package speak SQL or import a database driver. Every method that touches
events takes ``account_id`` as a required keyword argument: tenant scoping is part of the call,
not an optional filter. The one exception is ``append``, whose records each carry their account,
so that a batch spanning accounts is still written in one transaction; and the credential
look-ups, whose purpose is to find out which account a key belongs to.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from ..model.credentials import AccessKey, ApiToken, KeyStatus
from ..model.delivery import DeliveryCheckpoint
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
from ..model.trail import DataEventSelector, HistoryJob, Organization, Trail
from .replay import ReplayReads
from .units import WriteUnit, build_unit

__all__ = [
    "AppendResult",
    "WriteUnit",
    "build_unit",
    "CredentialStore",
    "DeliveryStore",
    "EventLog",
    "DetectorCheckpoint",
    "EventStore",
    "LogAppend",
    "InsightStore",
    "LeaseLost",
    "LogEntry",
    "LogLeaf",
    "LogTile",
    "LogHead",
    "LogView",
    "MerkleLogStore",
    "MetadataStore",
    "QueryCancelled",
    "QueryTimeout",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "TrailConflict",
    "TrailStore",
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


class LogLeaf(NamedTuple):
    """An event as the Merkle log's sequencer takes it: its seq, account and leaf hash
    (``SHA-256(0x00 ‖ body)`` of its exact stored body, taken at ingest). A tuple, not a
    dataclass: the sequencer builds one per event, and a tuple is several times cheaper."""

    seq: int
    account_id: str
    leaf: bytes


class EventLog(Protocol):
    """The events of every account: appended in batches, looked up, followed in commit order."""

    def append(self, records: Sequence[EventRecord]) -> AppendResult:
        """Store the new records of a batch in one transaction, durable when this returns.

        A record whose (account, eventId) is already stored, or repeated earlier in the same
        batch, is a duplicate and changes nothing. The same as ``append_units([build_unit(records)])``.
        """
        ...

    def append_units(self, units: Sequence[WriteUnit]) -> AppendResult:
        """``append`` of the records the units were built from (``storage.units.build_unit``, in
        decode processes), in order, as one batch: the result's indexes count every unit's events."""
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

    def count_by_time(
        self, *, account_id: str, flt: EventFilter, origin_ms: int, bucket_ms: int
    ) -> list[tuple[int, int]]:
        """How many events match ``flt`` per time bucket: (bucket start ms, count), oldest first.

        Buckets are ``bucket_ms`` wide, counted from ``origin_ms``; empty buckets are left out.
        """
        ...

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
        with_details: bool = False,
    ) -> list[UsageEntry]:
        """Most recent first. ``service_name`` None means every service. ``with_details`` reads
        each row's last event (``UsageEntry.last_event``) in the same statement."""
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


@dataclass(frozen=True, slots=True)
class LogHead:
    """The state of one account's Merkle log: its size, root, the roots of its full subtrees
    (concatenated, left to right) from which it grows, and the signed checkpoint of that state."""

    account_id: str
    size: int
    root: bytes
    frontier: bytes
    checkpoint: str
    updated_ms: int


@dataclass(frozen=True, slots=True)
class LogAppend:
    """What one sequencing step writes, all in the transaction that moves the watermark."""

    watermark: int
    heads: list[LogHead]
    #: (account, tile level, tile index, the tile's hashes): tiles replaced whole.
    tiles: list[tuple[str, int, int, bytes]]
    #: (account, index of its first new leaf, the seqs of its new leaves in leaf order): which
    #: event each new leaf is. Columns, not a tuple per leaf: tuples that live through a step
    #: are what makes Python's garbage collector walk the whole heap, in the middle of ingest.
    leaves: list[tuple[str, int, list[int]]]
    #: (account, tile level, tile index) -> the interior of a tile completed in this step (its
    #: 255 hashes above the 256, ``tiles.tile_interior``), stored beside it for proofs; level 0
    #: has none (``log.INTERIOR_LEVEL``).
    interiors: dict[tuple[str, int, int], bytes] = field(default_factory=dict)


class LogTile(NamedTuple):
    """A stored tile for proofs: its hashes, and the interior of a full one (None where not
    stored: a partial tile, a level-0 tile, or a full one written before interiors were kept)."""

    hashes: bytes
    interior: bytes | None


class LogView(Protocol):
    """What a sequencing step may read, inside the sequencer's transaction."""

    def head(self, account_id: str) -> LogHead | None: ...
    def tile(self, account_id: str, level: int, index: int) -> bytes | None: ...


class MerkleLogStore(Protocol):
    """Each account's Merkle log over its events in arrival order (the hashing is the service's).

    One sequencer at a time (across processes and nodes) follows ``read_log`` from a watermark
    stored with the log, so a crash loses nothing and never appends an event twice.
    """

    def log_sequence(self, step: Callable[[list[LogLeaf], LogView], LogAppend], *, limit: int) -> int:
        """Under the sequencer lock, in one transaction: read the leaves of up to ``limit`` events
        after the watermark (as ``read_log`` orders them), let ``step`` hash them into the trees,
        write what it returns. The number of events sequenced."""
        ...

    def log_claim(self, *, owner: str, now_ms: int, lease_ms: int) -> bool:
        """Take or renew the sequencer's lease for ``owner`` (True), unless another owner holds it."""
        ...

    def log_head(self, *, account_id: str) -> LogHead | None: ...

    def log_tiles(self, *, account_id: str, refs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored tiles (level, index) of the account's log that exist."""
        ...

    def log_proof_tiles(
        self, *, account_id: str, refs: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], LogTile]:
        """The stored tiles (level, index) that exist, with their interiors, in one read."""
        ...

    def log_fill_interiors(self, interior_of: Callable[[bytes], bytes], *, limit: int, min_level: int) -> int:
        """Up to ``limit`` full tiles of level ``min_level`` and up stored without their interior
        (written before interiors were kept): ``interior_of(hashes)`` stored beside each. How many
        lacked one; fewer than ``limit`` when none is left."""
        ...

    def log_leaf_index(self, *, account_id: str, seq: int) -> int | None:
        """The leaf index of the account's event ``seq`` (None while not yet sequenced, or not
        the account's)."""
        ...

    def log_leaf_seqs(self, *, account_id: str, start: int, end: int) -> list[int]:
        """The seqs of leaves [start, end) of the account's log, in leaf order."""
        ...

    def log_watermark(self) -> int:
        """The last seq the sequencer has taken into the logs."""
        ...


class DeliveryStore(Protocol):
    """Trail delivery's own state: checkpoints per trail and destination, and leases between nodes.

    Operator-wide, like the log the engine follows: the checkpoints name their account.
    """

    def newest_seq(self) -> int:
        """The highest seq committed to the log (0 for an empty log)."""
        ...

    def get_checkpoint(self, *, account_id: str, trail_name: str, sink: str) -> DeliveryCheckpoint | None: ...

    def list_checkpoints(self, *, account_id: str, trail_name: str) -> list[DeliveryCheckpoint]:
        """A trail's checkpoints by sink."""
        ...

    def save_checkpoint(self, checkpoint: DeliveryCheckpoint, *, lease: str, owner: str) -> bool:
        """Insert or replace the checkpoint, only while ``owner`` holds ``lease`` (False: it does not,
        and nothing changed): a node that lost its lease while paused cannot move a checkpoint back."""
        ...

    def delete_checkpoints(self, *, account_id: str, trail_name: str) -> int:
        """Forget a trail's checkpoints (the trail was deleted); how many there were."""
        ...

    def take_lease(self, name: str, *, owner: str, now_ms: int, ttl_ms: int) -> bool:
        """Take or renew the lease ``name`` until ``now_ms + ttl_ms``: True when ``owner`` now holds it
        (it was free, expired, or already ``owner``'s)."""
        ...

    def release_lease(self, name: str, *, owner: str) -> None: ...

    def lease_owner(self, name: str, *, now_ms: int) -> str | None:
        """Who holds an unexpired lease ``name``, if anyone."""
        ...


class TrailConflict(enum.StrEnum):
    """Why a trail write was refused; the write changed nothing."""

    NAME_TAKEN = "name_taken"  # the account has a trail of that name
    NOT_FOUND = "not_found"  # the account has no trail of that name
    REGION_FULL = "region_full"  # the account has max_per_region trails in the home region
    ORGANIZATION_FULL = "organization_full"  # the account has max_organization organization trails
    BUCKET_TAKEN = "bucket_taken"  # another trail (of any account) delivers to the bucket


class TrailStore(Protocol):
    """Trails, their data event selectors and delivery-history jobs, organizations, account settings.

    Tenant methods take ``account_id``; the ``*_all_*`` and ``*_open_*`` ones are for the
    delivery engine and operators. Limits are checked in the write's own transaction, so two
    nodes creating trails at once cannot pass them together.
    """

    def create_trail(
        self, trail: Trail, *, max_per_region: int, max_organization: int
    ) -> TrailConflict | None:
        """Store a new trail unless a limit or a name/bucket conflict refuses it (None: stored)."""
        ...

    def get_trail(self, *, account_id: str, name: str) -> Trail | None: ...
    def list_trails(self, *, account_id: str) -> list[Trail]:
        """The account's trails by name."""
        ...

    def list_all_trails(self) -> list[Trail]:
        """Every account's trails, by account and name (the delivery engine, operators)."""
        ...

    def update_trail(self, trail: Trail) -> TrailConflict | None:
        """Replace the stored trail of (account, name) with ``trail``: NOT_FOUND, BUCKET_TAKEN or None."""
        ...

    def delete_trail(self, *, account_id: str, name: str) -> bool:
        """Delete a trail and its data event selector; False when there was none."""
        ...

    def put_data_event_selector(self, selector: DataEventSelector) -> bool:
        """Store (or replace) a trail's selector; False when the trail does not exist."""
        ...

    def get_data_event_selector(self, *, account_id: str, trail_name: str) -> DataEventSelector | None: ...
    def list_data_event_selectors(self, *, account_id: str) -> list[DataEventSelector]:
        """The account's selectors by trail name."""
        ...

    def delete_data_event_selector(self, *, account_id: str, trail_name: str) -> bool: ...

    def create_history_job(self, job: HistoryJob, *, max_open_per_account: int) -> HistoryJob | None:
        """Store a job and return it with its id. A job of the same account and non-empty client
        token is returned instead of a new one; None when the account already has
        ``max_open_per_account`` jobs initializing or delivering."""
        ...

    def get_history_job(self, *, account_id: str, job_id: int) -> HistoryJob | None: ...
    def list_history_jobs(self, *, account_id: str, offset: int, limit: int) -> tuple[list[HistoryJob], int]:
        """One page of the account's jobs, newest first, and how many it has in all."""
        ...

    def delete_history_job(self, *, account_id: str, job_id: int) -> bool: ...
    def list_open_history_jobs(self) -> list[HistoryJob]:
        """Every account's jobs still initializing or delivering, oldest first (the delivery engine)."""
        ...

    def update_history_job(self, job: HistoryJob) -> bool:
        """Record a job's progress (status, times, checkpoint, error); False when it was deleted."""
        ...

    def add_organization_member(
        self, *, management_account_id: str, member_account_id: str, organization_id: str, now_ms: int
    ) -> Organization:
        """Make ``member_account_id`` a member of the management account's organization, creating
        the organization (with ``organization_id``) if it has none. Callers check first that the
        member is in no organization and the management account is no member."""
        ...

    def remove_organization_member(self, *, management_account_id: str, member_account_id: str) -> bool: ...
    def delete_organization(self, *, management_account_id: str) -> bool:
        """Dissolve an organization and its memberships."""
        ...

    def organization_of(self, account_id: str) -> Organization | None:
        """The organization the account manages or is a member of."""
        ...

    def list_organizations(self) -> list[Organization]: ...

    def get_account_setting(self, *, account_id: str, name: str) -> str | None: ...
    def set_account_setting(self, *, account_id: str, name: str, value: str) -> None: ...


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
    ) -> bool:
        """Set a trail's Insights types; False (nothing stored) when the account has no such trail.
        DeleteTrail removes them with the trail."""
        ...

    def get_insight_selectors(self, *, account_id: str, trail_name: str) -> list[str] | None: ...

    def find_insights(
        self, *, account_id: str, query: InsightQuery, after: InsightPosition | None, limit: int
    ) -> list[tuple[InsightPosition, StoredInsight]]:
        """Newest first, strictly after ``after``."""
        ...

    def insights_after(
        self, *, account_id: str, after_ref: int, limit: int
    ) -> list[tuple[int, StoredInsight]]:
        """The account's records stored after ``after_ref``, in the order they were stored, with their ref.

        Refs only grow, and one is never seen before a lower one has committed (``commit_insights``
        holds the detector's row from its first statement, so commits are serial and each takes its
        refs after the previous one committed): a trail's insight delivery keeps a ref as its cursor.
        """
        ...

    def last_insight_ref(self, *, account_id: str) -> int:
        """The highest ref of the account's records (0: none): where a new delivery run starts."""
        ...

    def all_insights_after(self, *, after_ref: int, limit: int) -> list[tuple[int, StoredInsight]]:
        """Every account's records stored after ``after_ref``, in ref order (the operator's
        webhook, never a tenant's read); the same ordering guarantee as ``insights_after``."""
        ...

    def newest_insight_ref(self) -> int:
        """The highest ref of any record (0: none)."""
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

    def newest_seq(self) -> int:
        """The highest seq stored (0 when the log is empty)."""
        ...

    def count_matching(self, *, account_id: str, flt: EventFilter, cap: int) -> int:
        """How many events match ``flt``, counting no further than ``cap``."""
        ...


class EventStore(
    EventLog,
    UsageStore,
    CredentialStore,
    MetadataStore,
    MerkleLogStore,
    TrailStore,
    DeliveryStore,
    InsightStore,
    Protocol,
):
    """Events, their usage aggregates, and credentials, in one database: what a backend implements."""

    url: str
    #: True when no call waits on the network (an embedded database): callers may then run store
    #: calls on an event loop instead of handing them to a worker thread.
    in_process: bool
    #: What opening the store repaired in its data, one line each (``trailhouse migrate`` prints them).
    repairs: list[str]

    def close(self) -> None: ...

    def replay_reads(self) -> ReplayReads | None:
        """Connections an event loop can wait on, for read-only answers replayed there
        (storage.replay); None when the store's reads never wait on the network (``in_process``)."""
        ...
