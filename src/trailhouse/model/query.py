"""Query values shared by every way of asking the store: filters, positions, pages, summaries."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from .event import event_id_of

__all__ = [
    "Attr",
    "EventFilter",
    "IpNetwork",
    "Position",
    "StoredEvent",
    "UsageEntry",
    "UsageKind",
    "UsagePosition",
    "WindowSummary",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Attr(enum.StrEnum):
    """The event attributes a lookup can filter on; each is an indexed column of the store."""

    EVENT_ID = "event_id"
    REQUEST_ID = "request_id"
    EVENT_NAME = "event_name"
    EVENT_TYPE = "event_type"
    EVENT_RW = "event_rw"
    EVENT_CATEGORY = "event_category"
    SERVICE_NAME = "service_name"
    USER_NAME = "user_name"
    ACCESS_KEY_ID = "access_key_id"
    SOURCE_IP = "source_ip"
    ROLE_NAME = "role_name"
    SENSITIVE_ACTION = "sensitive_action"
    ERROR_CODE = "error_code"
    RESOURCE_TYPE = "resource_type"
    RESOURCE_NAME = "resource_name"


#: Attributes whose values are long unique strings, matched exactly through a hash index.
HASHED_ATTRS = frozenset({Attr.EVENT_ID, Attr.REQUEST_ID})
#: Attributes matched against the event's resources (resourceType/Name and referencedResources).
RESOURCE_ATTRS = frozenset({Attr.RESOURCE_TYPE, Attr.RESOURCE_NAME})


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What to find: a time window [start_ms, end_ms] and conditions combined with AND.

    ``equals`` maps an attribute to the values it may take (any of them; exact, case-sensitive).
    ``prefixes`` maps an attribute to a prefix its value must start with. ``networks`` limits the
    source IP to any of the given networks. ``has_error`` keeps failed (True) or successful (False)
    calls only.
    """

    start_ms: int
    end_ms: int
    equals: dict[Attr, tuple[str, ...]] = field(default_factory=dict)
    prefixes: dict[Attr, str] = field(default_factory=dict)
    networks: tuple[IpNetwork, ...] = ()
    has_error: bool | None = None

    def is_impossible(self) -> bool:
        return self.start_ms > self.end_ms or any(not values for values in self.equals.values())


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the store's total order of events: by event time, then by arrival (seq)."""

    event_time_ms: int
    seq: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event_time_ms: int
    body: bytes

    @property
    def position(self) -> Position:
        return Position(self.event_time_ms, self.seq)

    @property
    def event_id(self) -> str:
        """Read from the body, the one copy the store keeps (``event_id_of``): a decode of the body
        (~2 µs for 1 KB) on each access, which only the readers that name events pay (lookup
        pages are rendered from the bodies without it)."""
        return event_id_of(self.body)


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What the store holds for one account in a window, so an empty answer is not mistaken for no data."""

    count: int
    earliest_ms: int | None
    latest_ms: int | None


class UsageKind(enum.IntEnum):
    """The dimensions of AccessKey usage kept up to date at ingest."""

    IP = 1
    EVENT = 2
    RESOURCE = 3
    PRODUCT = 4


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One remembered use of an AccessKey: the item (IP, event name, resource, product), its last call."""

    kind: UsageKind
    service_name: str
    item: str
    item_type: str
    first_used_ms: int
    last_used_ms: int
    calls: int
    failed_calls: int
    source: str
    last_seq: int
    position: UsagePosition
    #: The stored event of ``last_seq`` (its JSON), when the store was asked for it
    #: (``usage(with_details=True)``) and still holds it; None otherwise.
    last_event: bytes | None = None


@dataclass(frozen=True, slots=True, order=True)
class UsagePosition:
    """Keyset position in usage order: most recent first, ties broken by the store's item references.

    The references are opaque numbers the store hands out; they are stable for the life of a store.
    """

    last_used_ms: int
    item_ref: int
    type_ref: int
    #: Breaks the last ties when a read spans every service (the same item on two services).
    service_ref: int = 0
