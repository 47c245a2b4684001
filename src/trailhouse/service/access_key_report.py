"""The leaked-key report: everything one AccessKey did in a window, for deciding whether it leaked.

Transport-free, like the usage family it builds on: the native API and the CLI call
``build_report`` and hand the result to a renderer in ``trailhouse.render``. The report walks the
key's events in the window; the ``key_usage`` aggregates tell which source IPs are new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model.event import EventInvalid, event_from_mapping
from ..model.event_text import parse_body
from ..model.query import Attr, EventFilter, UsageKind
from ..model.times import format_wire_time
from ..storage.base import EventStore
from .access_keys import all_usage
from .catalog import ServiceCatalog, default_catalog

__all__ = [
    "DANGEROUS_ACTIONS",
    "HOUR_MS",
    "REPORT_LIST_LIMIT",
    "AccessKeyReport",
    "EventNameActivity",
    "HourlyCalls",
    "IpActivity",
    "ReportEvent",
    "ResourceActivity",
    "ServiceActivity",
    "build_report",
]

#: Actions an attacker uses to persist, escalate, evade or spend, with the reason shown in reports.
DANGEROUS_ACTIONS: dict[str, str] = {
    "CreateAccessKey": "new credential (persistence)",
    "UpdateAccessKey": "credential state changed",
    "CreateUser": "new identity (persistence)",
    "CreateLoginProfile": "console password for a user (persistence)",
    "UpdateLoginProfile": "console password changed",
    "AddUserToGroup": "group membership (privilege escalation)",
    "AttachPolicyToUser": "permissions granted (privilege escalation)",
    "AttachPolicyToRole": "permissions granted (privilege escalation)",
    "AttachPolicyToGroup": "permissions granted (privilege escalation)",
    "CreatePolicy": "new policy (privilege escalation)",
    "CreatePolicyVersion": "policy rewritten (privilege escalation)",
    "SetDefaultPolicyVersion": "policy version switched (privilege escalation)",
    "CreateRole": "new role (persistence)",
    "UpdateRole": "role trust policy changed (persistence)",
    "AssumeRole": "role assumed (lateral movement)",
    "PutBucketPolicy": "bucket policy changed (data exposure)",
    "PutBucketAcl": "bucket ACL changed (data exposure)",
    "AuthorizeSecurityGroup": "inbound network rule opened",
    "ImportKeyPair": "SSH key pair imported (access to instances)",
    "AttachKeyPair": "SSH key pair attached (access to instances)",
    "RunInstances": "instances created (resource abuse)",
    "CreateInstance": "instance created (resource abuse)",
    "StopLogging": "audit trail stopped (defense evasion)",
    "DeleteTrail": "audit trail deleted (defense evasion)",
    "UpdateTrail": "audit trail changed (defense evasion)",
}
#: How many failed calls and dangerous actions a report lists; totals are always exact.
REPORT_LIST_LIMIT = 1000
HOUR_MS = 3_600_000
_MAX_USER_AGENTS = 5


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
    #: True when the IP never used the key before the window started: the signal of a leak.
    new: bool


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
class AccessKeyReport:
    account_id: str
    access_key_id: str
    since_ms: int
    until_ms: int
    total_calls: int
    failed_calls: int
    first_use: ReportEvent | None
    last_use: ReportEvent | None
    #: The earliest call from an IP that had never used the key before ``since_ms``.
    first_use_from_new_ip: ReportEvent | None
    identities: tuple[str, ...]  # "type:userName" of every principal seen behind the key
    ips: tuple[IpActivity, ...]  # by first use
    services: tuple[ServiceActivity, ...]  # most calls first
    resources: tuple[ResourceActivity, ...]  # most recent first
    event_names: tuple[EventNameActivity, ...]  # most calls first
    failed: tuple[ReportEvent, ...]  # oldest first, at most REPORT_LIST_LIMIT
    dangerous: tuple[ReportEvent, ...]  # the timeline, oldest first, at most REPORT_LIST_LIMIT
    dangerous_total: int
    hourly: tuple[HourlyCalls, ...]  # one series per IP, same order as ``ips``
    #: False when the account holds no event of this key at all (an unknown key, or an empty
    #: account): the CLI exits non-zero and the native API answers 404 AccessKeyNotFound.
    found: bool = True
    #: Why the report is empty, in words ("" when it is not).
    notice: str = ""

    @property
    def new_ips(self) -> tuple[IpActivity, ...]:
        return tuple(ip for ip in self.ips if ip.new)

    @property
    def used(self) -> bool:
        return self.total_calls > 0


@dataclass(slots=True)
class _Tally:
    first_ms: int
    last_ms: int
    calls: int = 0
    failed: int = 0
    extra: dict[str, None] = field(default_factory=dict)  # insertion-ordered set

    def add(self, t: int, failed: bool) -> None:
        self.first_ms = min(self.first_ms, t)
        self.last_ms = max(self.last_ms, t)
        self.calls += 1
        self.failed += int(failed)


def _tally(table: dict[Any, _Tally], key: Any, t: int, failed: bool) -> _Tally:
    entry = table.get(key)
    if entry is None:
        entry = table[key] = _Tally(t, t)
    entry.add(t, failed)
    return entry


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    return value if isinstance(value, str) else ""


def _report_event(
    doc: dict[str, Any], resources: tuple[tuple[str, str], ...], t: int, reason: str = ""
) -> ReportEvent:
    identity = doc.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    return ReportEvent(
        event_time_ms=t,
        event_id=_text(doc, "eventId"),
        event_name=_text(doc, "eventName"),
        service_name=_text(doc, "serviceName"),
        source_ip=_text(doc, "sourceIpAddress"),
        user_agent=_text(doc, "userAgent"),
        user_name=_text(identity, "userName"),
        error_code=_text(doc, "errorCode"),
        error_message=_text(doc, "errorMessage"),
        resources=tuple(f"{rtype} {rname}".strip() for rtype, rname in resources),
        reason=reason,
    )


def build_report(
    store: EventStore,
    *,
    account_id: str,
    access_key_id: str,
    since_ms: int,
    now_ms: int,
    catalog: ServiceCatalog | None = None,
) -> AccessKeyReport:
    """Everything a key did in [since_ms, now_ms], for deciding whether (and how) it leaked.

    Set ``since_ms`` to when the leak is suspected: IPs that had never used the key before then
    are flagged ``new``, and the first call from one of them is the likely first malicious use.
    Memory is bounded by the number of distinct IPs, services, resources and event names.
    """
    names = catalog or default_catalog()
    flt = EventFilter(since_ms, now_ms, equals={Attr.ACCESS_KEY_ID: (access_key_id,)})
    ips: dict[str, _Tally] = {}
    services: dict[str, _Tally] = {}
    resources: dict[tuple[str, str], _Tally] = {}
    event_names: dict[tuple[str, str], _Tally] = {}
    hourly: dict[str, dict[int, int]] = {}
    identities: dict[str, None] = {}
    failed_list: list[ReportEvent] = []
    dangerous: list[ReportEvent] = []
    dangerous_total = total = failed_total = 0
    first: ReportEvent | None = None
    last: ReportEvent | None = None
    first_by_ip: dict[str, ReportEvent] = {}

    for stored in store.iter_events(account_id=account_id, flt=flt, descending=False):
        doc = parse_body(stored.body)
        try:
            rec = event_from_mapping(doc, body=stored.body)
        except EventInvalid:  # stored events were validated at ingest; never stop a report on one
            continue
        t, failed = rec.event_time_ms, rec.error_code is not None
        total += 1
        failed_total += int(failed)
        ip = rec.source_ip or ""
        service = rec.service_name or ""
        view = _report_event(doc, rec.resources, t)
        if first is None:
            first = view
        last = view
        first_by_ip.setdefault(ip, view)
        identity = doc["userIdentity"]
        identities[f"{identity.get('type') or 'unknown'}:{identity.get('userName') or ''}"] = None

        ip_tally = _tally(ips, ip, t, failed)
        if service:
            ip_tally.extra[f"s:{service}"] = None
        if view.user_agent and sum(k.startswith("u:") for k in ip_tally.extra) < _MAX_USER_AGENTS:
            ip_tally.extra[f"u:{view.user_agent}"] = None
        _tally(services, service, t, failed)
        _tally(event_names, (service, rec.event_name), t, failed)
        for rtype, rname in rec.resources:
            if rname:
                _tally(resources, (rtype, rname), t, failed)
        bucket = hourly.setdefault(ip, {})
        hour = t - t % HOUR_MS
        bucket[hour] = bucket.get(hour, 0) + 1

        if failed and len(failed_list) < REPORT_LIST_LIMIT:
            failed_list.append(view)
        reason = DANGEROUS_ACTIONS.get(rec.event_name)
        if reason is not None:
            dangerous_total += 1
            if len(dangerous) < REPORT_LIST_LIMIT:
                dangerous.append(_report_event(doc, rec.resources, t, reason))

    # The aggregates remember uses before the window, which is what makes an IP "new".
    ever: dict[str, int] = {}
    for entry in all_usage(
        store, account_id=account_id, access_key_id=access_key_id, kind=UsageKind.IP, since_ms=since_ms
    ):
        ever[entry.item] = min(ever.get(entry.item, entry.first_used_ms), entry.first_used_ms)

    ip_rows = sorted(
        (
            IpActivity(
                ip=ip,
                first_seen_ms=tl.first_ms,
                last_seen_ms=tl.last_ms,
                calls=tl.calls,
                failed_calls=tl.failed,
                services=tuple(k[2:] for k in tl.extra if k.startswith("s:")),
                user_agents=tuple(k[2:] for k in tl.extra if k.startswith("u:")),
                first_seen_ever_ms=min(ever.get(ip, tl.first_ms), tl.first_ms),
                # Calls without a source IP cannot be told apart, so they never count as a new IP.
                new=bool(ip) and min(ever.get(ip, tl.first_ms), tl.first_ms) >= since_ms,
            )
            for ip, tl in ips.items()
        ),
        key=lambda a: (a.first_seen_ms, a.ip),
    )
    new_first = [first_by_ip[a.ip] for a in ip_rows if a.new]
    found, notice = True, ""
    if not total:
        found, notice = _empty_report_notice(store, account_id, access_key_id, since_ms)
    return AccessKeyReport(
        found=found,
        notice=notice,
        account_id=account_id,
        access_key_id=access_key_id,
        since_ms=since_ms,
        until_ms=now_ms,
        total_calls=total,
        failed_calls=failed_total,
        first_use=first,
        last_use=last,
        first_use_from_new_ip=min(new_first, key=lambda e: e.event_time_ms) if new_first else None,
        identities=tuple(identities),
        ips=tuple(ip_rows),
        services=tuple(
            sorted(
                (
                    ServiceActivity(
                        service_name=s,
                        service_name_cn=names.names(s).name_cn if s else "",
                        service_name_en=names.names(s).name_en if s else "",
                        first_seen_ms=tl.first_ms,
                        last_seen_ms=tl.last_ms,
                        calls=tl.calls,
                        failed_calls=tl.failed,
                    )
                    for s, tl in services.items()
                ),
                key=lambda a: (-a.calls, a.service_name),
            )
        ),
        resources=tuple(
            sorted(
                (
                    ResourceActivity(rtype, rname, tl.first_ms, tl.last_ms, tl.calls, tl.failed)
                    for (rtype, rname), tl in resources.items()
                ),
                key=lambda a: (-a.last_seen_ms, a.resource_type, a.resource_name),
            )
        ),
        event_names=tuple(
            sorted(
                (
                    EventNameActivity(s, name, tl.first_ms, tl.last_ms, tl.calls, tl.failed)
                    for (s, name), tl in event_names.items()
                ),
                key=lambda a: (-a.calls, a.service_name, a.event_name),
            )
        ),
        failed=tuple(failed_list),
        dangerous=tuple(dangerous),
        dangerous_total=dangerous_total,
        hourly=tuple(HourlyCalls(a.ip, tuple(sorted(hourly[a.ip].items()))) for a in ip_rows),
    )


def _empty_report_notice(
    store: EventStore, account_id: str, access_key_id: str, since_ms: int
) -> tuple[bool, str]:
    """Whether the key is known at all, and why its report holds no calls ("First use: never" misleads)."""
    latest = store.usage(
        account_id=account_id,
        access_key_id=access_key_id,
        kind=UsageKind.PRODUCT,
        service_name=None,
        since_ms=-(2**62),
        after=None,
        limit=1,
    )
    if latest:
        return True, (
            f"no calls of AccessKey {access_key_id} in account {account_id} since"
            f" {format_wire_time(since_ms)}; its last recorded use was"
            f" {format_wire_time(latest[0].last_used_ms)}"
        )
    if not store.find_events(
        account_id=account_id, flt=EventFilter(-(2**62), 2**62), after=None, descending=True, limit=1
    ):
        return False, f"account {account_id} has no events in this store"
    return False, f"no events of AccessKey {access_key_id} in account {account_id}"
