"""The values a leaked-key report is made of; renderers in ``trailhouse.render`` present them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BulkRead",
    "CreatedEntity",
    "EntityActivity",
    "EventNameActivity",
    "HourlyCalls",
    "IpActivity",
    "IpCount",
    "LeakTime",
    "ReportEvent",
    "ResourceActivity",
    "ServiceActivity",
]


@dataclass(frozen=True, slots=True)
class ReportEvent:
    event_time_ms: int
    event_id: str
    event_name: str
    service_name: str
    source_ip: str
    user_agent: str
    user_name: str
    error_code: str
    error_message: str
    resources: tuple[str, ...]  # "type name" of each resource the event touched
    reason: str = ""  # why it is listed as dangerous


@dataclass(frozen=True, slots=True)
class LeakTime:
    """When the leak is suspected: calls from then on are the findings, IPs first seen then are new.

    ``time_ms`` is None when it was not given and the key's history shows no use from outside its
    established networks: then no IP is new and the findings cover the whole window.
    """

    time_ms: int | None
    derived: bool  # False when the caller chose it (``--since``, ``since=``)
    basis: str  # in words: why this time
    trigger: ReportEvent | None  # the first call from outside the established networks (derived)
    baseline_until_ms: int | None  # the end of the key's first days of use, its established history
    baseline_ips: tuple[str, ...]  # the IPs of those days (at most 20; baseline_ip_count is exact)
    baseline_ip_count: int
    baseline_networks: tuple[str, ...]  # their networks (/24, /48), at most 20
    caveat: str = ""  # why the derived time may be wrong ("" when nothing suggests it)


@dataclass(frozen=True, slots=True)
class IpActivity:
    ip: str
    first_seen_ms: int
    last_seen_ms: int
    calls: int
    failed_calls: int
    services: tuple[str, ...]
    user_agents: tuple[str, ...]
    #: The first use from this IP ever kept in the usage aggregates (may predate the report window).
    first_seen_ever_ms: int
    #: True when the IP never used the key before the leak time: the signal of a leak.
    new: bool
    calls_since_leak: int = 0
    #: In a network (/24, /48) the key used before the leak time: for a new IP, the weaker signal.
    known_network: bool = False


@dataclass(frozen=True, slots=True)
class ServiceActivity:
    service_name: str
    service_name_cn: str
    service_name_en: str
    first_seen_ms: int
    last_seen_ms: int
    calls: int
    failed_calls: int


@dataclass(frozen=True, slots=True)
class ResourceActivity:
    resource_type: str
    resource_name: str
    first_seen_ms: int
    last_seen_ms: int
    calls: int
    failed_calls: int
    #: Touched before the leak time too: part of the key's ordinary work, shown collapsed.
    routine: bool = False


@dataclass(frozen=True, slots=True)
class EventNameActivity:
    service_name: str
    event_name: str
    first_seen_ms: int
    last_seen_ms: int
    calls: int
    failed_calls: int


@dataclass(frozen=True, slots=True)
class HourlyCalls:
    """Calls from one IP per hour: (hour start, epoch ms; calls), ascending; hours without calls left out."""

    ip: str
    counts: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class BulkRead:
    """A run of reads from one IP with no pause longer than the burst gap: likely data theft or recon.

    ``kind`` is "download" (object and secret reads: GetObject, GetSecretValue …) or "enumeration"
    (Describe*/List* calls of any service).
    """

    kind: str
    source_ip: str
    start_ms: int
    end_ms: int
    calls: int
    failed_calls: int
    event_names: tuple[tuple[str, int], ...]  # (event name, calls), most calls first
    resource_count: int  # distinct resources read
    sample_resources: tuple[str, ...]  # the first few, "type name"
    new_ip: bool
    #: The same IP made a burst of this kind at least half as large before the leak time.
    routine: bool = False


@dataclass(frozen=True, slots=True)
class IpCount:
    ip: str
    calls: int
    #: Used by the reported key before the leak time (its established history).
    known: bool


@dataclass(frozen=True, slots=True)
class EntityActivity:
    """What a created principal (or anyone, for a policy) did from its creation on."""

    how: str  # in words: which calls these are
    calls: int
    failed_calls: int
    first_ms: int | None
    last_ms: int | None
    ips: tuple[IpCount, ...]  # most calls first
    event_names: tuple[tuple[str, int], ...]  # most calls first
    events: tuple[ReportEvent, ...]  # the first calls, oldest first
    dangerous: tuple[ReportEvent, ...]
    bulk_reads: tuple[BulkRead, ...]


@dataclass(frozen=True, slots=True)
class CreatedEntity:
    """Something the reported key created — one level deep: its own creations are not followed."""

    kind: str  # "User", "AccessKey", "Role", "Policy"
    name: str  # the user, role or policy name, or the AccessKey id
    owner: str  # for an AccessKey: the user it was created for ("" when the response does not say)
    created: ReportEvent
    changes: tuple[ReportEvent, ...]  # later calls of the reported key on it: grants, keys, passwords
    activity: EntityActivity

    @property
    def anchor(self) -> str:
        return f"created-{self.kind.lower()}-{self.name}"
