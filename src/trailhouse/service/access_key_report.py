"""The leaked-key report: when the key leaked, what it did since, and what it left behind.

Transport-free, like the usage family it builds on: the native API and the CLI call
``build_report`` and hand the result to a renderer in ``trailhouse.render``. The parts live in
``service/report/``: the suspected leak time (derived from the key's history of networks unless
given), bulk reads, and the users, AccessKeys, roles and policies the key created, followed one
level deep. One pass over the key's events in the window tallies everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..model.event import EventRecord
from ..model.query import Attr, EventFilter, UsageKind
from ..model.times import format_wire_time
from ..storage.base import EventStore
from .access_keys import all_usage
from .catalog import ServiceCatalog, default_catalog
from .report.bursts import BurstFinder
from .report.created import FOLLOW_LIMIT, Creation, created_by, follow
from .report.events import DANGEROUS_ACTIONS, read_event, report_event
from .report.leak_time import CHURN_NETWORKS, derive_leak_time, network_of
from .report.types import (
    BulkRead,
    CreatedEntity,
    EventNameActivity,
    HourlyCalls,
    IpActivity,
    LeakTime,
    ReportEvent,
    ResourceActivity,
    ServiceActivity,
)

__all__ = [
    "DANGEROUS_ACTIONS",
    "HOUR_MS",
    "REPORT_LIST_LIMIT",
    "AccessKeyReport",
    "BulkRead",
    "CreatedEntity",
    "EventNameActivity",
    "HourlyCalls",
    "IpActivity",
    "LeakTime",
    "ReportEvent",
    "ResourceActivity",
    "ServiceActivity",
    "build_report",
]

#: How many failed calls, dangerous actions and bulk reads a report lists; totals are always exact.
REPORT_LIST_LIMIT = 1000
HOUR_MS = 3_600_000
_MAX_USER_AGENTS = 5
_CHANGES_SHOWN = 20


@dataclass(frozen=True, slots=True)
class AccessKeyReport:
    account_id: str
    access_key_id: str
    #: Where the findings start: the leak time, or the window's start when there is none.
    since_ms: int
    until_ms: int
    #: The calls and failures from ``since_ms`` on.
    total_calls: int
    failed_calls: int
    first_use: ReportEvent | None  # in the window
    last_use: ReportEvent | None
    #: The earliest call from an IP that had never used the key before the leak time.
    first_use_from_new_ip: ReportEvent | None
    identities: tuple[str, ...]  # "type:userName" of every principal seen behind the key
    ips: tuple[IpActivity, ...]  # by first use in the window
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
    leak: LeakTime | None = None
    window_start_ms: int = 0  # the tables, the IPs and the chart cover [window_start_ms, until_ms]
    window_calls: int = 0
    bulk_reads: tuple[BulkRead, ...] = ()  # new IPs and downloads first
    bulk_reads_total: int = 0
    created: tuple[CreatedEntity, ...] = ()  # in order of creation, at most FOLLOW_LIMIT
    created_total: int = 0

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


def _ip_first_use(store: EventStore, account_id: str, access_key_id: str) -> dict[str, int]:
    """Each source IP's first use of the key, from the usage aggregates (they outlive the window)."""
    first: dict[str, int] = {}
    for entry in all_usage(
        store, account_id=account_id, access_key_id=access_key_id, kind=UsageKind.IP, since_ms=-(2**62)
    ):
        if entry.item:
            first[entry.item] = min(first.get(entry.item, entry.first_used_ms), entry.first_used_ms)
    return first


def _leak_time(first_use: dict[str, int], since_ms: int | None, now_ms: int) -> tuple[LeakTime, str]:
    """The leak time as given, or derived by the rule in ``report/leak_time.py``; and the trigger IP."""
    d = derive_leak_time(first_use, now_ms)
    base = LeakTime(
        time_ms=since_ms,
        derived=False,
        basis="given (since)",
        trigger=None,
        baseline_until_ms=d.baseline_until_ms,
        baseline_ips=d.baseline_ips,
        baseline_ip_count=d.baseline_ip_count,
        baseline_networks=d.baseline_networks,
    )
    if since_ms is not None:
        return base, ""
    if d.time_ms is None:
        basis = (
            "no call came from outside the networks of the key's first days of use: nothing is new;"
            " give since (--since) to choose a time"
            if first_use
            else "the key has no recorded source IPs"
        )
        return replace(base, derived=True, basis=basis), ""
    nets = len(d.baseline_networks)
    basis = (
        f"the first call from {d.trigger_ip} (network {network_of(d.trigger_ip)}), outside the"
        f" {d.baseline_ip_count} IP(s) in {nets}{'+' if nets >= 20 else ''} network(s) the key used"
        f" in its first days (until {format_wire_time(d.baseline_until_ms or 0)}) and every network"
        " it used after them"
    )
    caveat = ""
    if d.later_networks > CHURN_NETWORKS:
        caveat = (
            f"{d.later_networks} more networks were first used after this time: a key used from"
            " changing addresses makes this guess weak; choose the time with since (--since)"
        )
    return replace(base, time_ms=d.time_ms, derived=True, basis=basis, caveat=caveat), d.trigger_ip


def build_report(
    store: EventStore,
    *,
    account_id: str,
    access_key_id: str,
    since_ms: int | None,
    now_ms: int,
    window_start_ms: int | None = None,
    catalog: ServiceCatalog | None = None,
) -> AccessKeyReport:
    """Everything a key did, judged against the suspected leak time.

    ``since_ms`` is the leak time when the caller knows it; None derives it from the key's history
    (``report/leak_time.py``). IPs first used at or after it are ``new``; the findings (dangerous
    actions, failures, bulk reads, what the key created) start there. The IP, service, resource and
    event-name tables and the chart cover ``[window_start_ms, now_ms]`` (default: from the leak
    time, or from the key's first recorded use), so the key's ordinary use shows for contrast.
    Memory is bounded by the number of distinct IPs, services, resources and event names.
    """
    names = catalog or default_catalog()
    first_use = _ip_first_use(store, account_id, access_key_id)
    leak, trigger_ip = _leak_time(first_use, since_ms, now_ms)
    if window_start_ms is None:
        window_start_ms = (
            leak.time_ms if leak.time_ms is not None else min(first_use.values(), default=now_ms)
        )
    findings_ms = leak.time_ms if leak.time_ms is not None else window_start_ms
    scan_ms = min(window_start_ms, findings_ms)
    leak_ms = leak.time_ms

    def is_new(ip: str, t: int) -> bool:
        # Calls without a source IP cannot be told apart, so they never count as a new IP.
        return bool(ip) and leak_ms is not None and min(first_use.get(ip, t), t) >= leak_ms

    flt = EventFilter(scan_ms, now_ms, equals={Attr.ACCESS_KEY_ID: (access_key_id,)})
    ips: dict[str, _Tally] = {}
    since_leak: dict[str, int] = {}
    services: dict[str, _Tally] = {}
    resources: dict[tuple[str, str], _Tally] = {}
    event_names: dict[tuple[str, str], _Tally] = {}
    hourly: dict[str, dict[int, int]] = {}
    identities: dict[str, None] = {}
    failed_list: list[ReportEvent] = []
    dangerous: list[ReportEvent] = []
    creations: list[Creation] = []
    by_name: dict[str, list[Creation]] = {}
    created_total = dangerous_total = total = failed_total = window_total = 0
    first: ReportEvent | None = None
    last: ReportEvent | None = None
    first_by_ip: dict[str, ReportEvent] = {}
    bursts = BurstFinder(findings_ms, REPORT_LIST_LIMIT)

    last_seen: tuple[dict[str, Any], EventRecord] | None = None
    for stored in store.iter_events(account_id=account_id, flt=flt, descending=False):
        found_event = read_event(stored.body)
        if found_event is None:  # stored events were validated at ingest; never stop a report on one
            continue
        doc, rec = found_event
        t, failed = rec.event_time_ms, rec.error_code is not None
        window_total += 1
        ip = rec.source_ip or ""
        service = rec.service_name or ""
        # Views are built only where one is kept: most events are only counted.
        if first is None:
            first = report_event(doc, rec.resources, t)
        last_seen = (doc, rec)
        if ip not in first_by_ip:
            first_by_ip[ip] = report_event(doc, rec.resources, t)
        identity = doc["userIdentity"]
        identities[f"{identity.get('type') or 'unknown'}:{identity.get('userName') or ''}"] = None
        new_ip = is_new(ip, t)

        ip_tally = _tally(ips, ip, t, failed)
        if service:
            ip_tally.extra[f"s:{service}"] = None
        agent = doc.get("userAgent")
        if (
            isinstance(agent, str)
            and agent
            and f"u:{agent}" not in ip_tally.extra
            and sum(k.startswith("u:") for k in ip_tally.extra) < _MAX_USER_AGENTS
        ):
            ip_tally.extra[f"u:{agent}"] = None
        _tally(services, service, t, failed)
        _tally(event_names, (service, rec.event_name), t, failed)
        for rtype, rname in rec.resources:
            if rname:
                entry = _tally(resources, (rtype, rname), t, failed)
                if new_ip:
                    entry.extra["new"] = None  # touched from a new IP: never routine
        bucket = hourly.setdefault(ip, {})
        hour = t - t % HOUR_MS
        bucket[hour] = bucket.get(hour, 0) + 1
        bursts.add(t, ip, rec.event_name, failed, rec.resources)

        if t < findings_ms:
            continue
        total += 1
        failed_total += int(failed)
        since_leak[ip] = since_leak.get(ip, 0) + 1
        if failed and len(failed_list) < REPORT_LIST_LIMIT:
            failed_list.append(report_event(doc, rec.resources, t))
        reason = DANGEROUS_ACTIONS.get(rec.event_name)
        if reason is not None:
            dangerous_total += 1
            if len(dangerous) < REPORT_LIST_LIMIT:
                dangerous.append(report_event(doc, rec.resources, t, reason))
        for _, rname in rec.resources:
            for c in by_name.get(rname, ()):
                if len(c.changes) < _CHANGES_SHOWN and c.created.event_id != rec.event_id:
                    c.changes.append(report_event(doc, rec.resources, t))
        made = created_by(doc)
        if made is not None:
            created_total += 1
            if len(creations) < FOLLOW_LIMIT:
                c = Creation(made[0], made[1], made[2], report_event(doc, rec.resources, t))
                creations.append(c)
                by_name.setdefault(c.name, []).append(c)
    if last_seen is not None:
        last = report_event(last_seen[0], last_seen[1].resources, last_seen[1].event_time_ms)

    # Networks the key used before the leak time: a new IP inside one is likelier the key's own.
    known_networks = {network_of(ip) for ip, first_ms in first_use.items() if not is_new(ip, first_ms)}
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
                first_seen_ever_ms=min(first_use.get(ip, tl.first_ms), tl.first_ms),
                new=is_new(ip, tl.first_ms),
                calls_since_leak=since_leak.get(ip, 0),
                known_network=bool(ip) and network_of(ip) in known_networks,
            )
            for ip, tl in ips.items()
        ),
        key=lambda a: (a.first_seen_ms, a.ip),
    )
    new_first = [first_by_ip[a.ip] for a in ip_rows if a.new]
    if trigger_ip and trigger_ip in first_by_ip:
        leak = replace(leak, trigger=first_by_ip[trigger_ip])
    known_ips = {ip for ip in set(first_use) | set(ips) if not is_new(ip, first_use.get(ip, now_ms))}
    created = follow(
        store,
        creations,
        account_id=account_id,
        now_ms=now_ms,
        known_ips=known_ips,
        list_limit=REPORT_LIST_LIMIT,
    )
    found, notice = True, ""
    if not total:
        found, notice = _empty_report_notice(store, account_id, access_key_id, findings_ms)
    return AccessKeyReport(
        found=found,
        notice=notice,
        account_id=account_id,
        access_key_id=access_key_id,
        since_ms=findings_ms,
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
                    ResourceActivity(
                        rtype,
                        rname,
                        tl.first_ms,
                        tl.last_ms,
                        tl.calls,
                        tl.failed,
                        routine="new" not in tl.extra,
                    )
                    for (rtype, rname), tl in resources.items()
                ),
                key=lambda a: (a.routine, -a.last_seen_ms, a.resource_type, a.resource_name),
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
        leak=leak,
        window_start_ms=scan_ms,
        window_calls=window_total,
        bulk_reads=tuple(bursts.bursts({a.ip: a.new for a in ip_rows})),
        bulk_reads_total=bursts.total,
        created=tuple(created),
        created_total=created_total,
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
