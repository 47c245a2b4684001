"""AccessKey usage: the GetAccessKeyLastUsed* family and the leaked-key report.

Transport-free: the wire handlers, the native API, the console and the CLI all call these
functions. The per-operation lists come from the ``key_usage`` aggregates the store maintains in
the ingest transaction (so an answer is current the moment an event is stored); the ``Detail`` of
an entry is the stored event that made it most recent. The report walks the key's events.

Decisions and their reasons are in docs/compatibility.md ("AccessKey usage").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..model.event import EventInvalid, event_from_mapping
from ..model.event_text import parse_body
from ..model.query import Attr, EventFilter, UsageEntry, UsageKind, UsagePosition
from ..model.times import DAY_MS
from ..storage.base import EventStore
from .catalog import ServiceCatalog, default_catalog
from .pagetoken import InvalidPageToken, PageTokens, query_digest

__all__ = [
    "DANGEROUS_ACTIONS",
    "DEFAULT_PAGE_SIZE",
    "HOUR_MS",
    "MAX_PAGE_SIZE",
    "REPORT_LIST_LIMIT",
    "AccessKeyReport",
    "EventNameActivity",
    "HourlyCalls",
    "IpActivity",
    "LastUse",
    "LastUsedInfo",
    "ProductUse",
    "ReportEvent",
    "ResourceActivity",
    "ServiceActivity",
    "UsageList",
    "UsagePage",
    "UsageQueryInvalid",
    "build_report",
    "format_detail",
    "last_used_info",
    "last_used_products",
    "list_last_used",
    "page_size_or_default",
    "window_start",
]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
#: Detail of an entry whose event is no longer stored (retention shorter than the usage window).
MISSING_DETAIL = "{}"
_SCAN_BATCH = 500


class UsageQueryInvalid(ValueError):
    """A parameter of a usage query is out of range; the wire answers InvalidQueryParameter."""


class UsageList(enum.Enum):
    """The three paged lists, each a usage kind under its own page-token namespace."""

    IPS = UsageKind.IP
    EVENTS = UsageKind.EVENT
    RESOURCES = UsageKind.RESOURCE

    @property
    def token_kind(self) -> str:
        # Tokens are HMAC-bound to this string, so a token of one list is refused by another.
        return f"AccessKeyLastUsed.{self.name}"


@dataclass(frozen=True, slots=True)
class LastUse:
    """One entry of Ips / Events / Resources: the item and the most recent call that used it."""

    service_name: str
    item: str  # the IP, the event name or the resource name
    item_type: str  # the resource type; "" for IPs and event names
    used_ms: int
    first_used_ms: int
    calls: int
    failed_calls: int
    source: str
    detail: str


@dataclass(frozen=True, slots=True)
class UsagePage:
    items: tuple[LastUse, ...]
    next_token: str | None  # None on the last page


@dataclass(frozen=True, slots=True)
class ProductUse:
    service_name: str
    service_name_cn: str
    service_name_en: str
    used_ms: int
    first_used_ms: int
    calls: int
    failed_calls: int
    source: str
    detail: str


@dataclass(frozen=True, slots=True)
class LastUsedInfo:
    """GetAccessKeyLastUsedInfo. Every field but ``access_key_id`` is None when the key was not used."""

    access_key_id: str
    account_id: str | None = None
    owner_id: str | None = None
    user_name: str | None = None
    account_type: str | None = None
    service_name: str | None = None
    service_name_cn: str | None = None
    service_name_en: str | None = None
    used_ms: int | None = None
    source: str | None = None
    detail: str | None = None

    @property
    def used(self) -> bool:
        return self.used_ms is not None


# -------------------------------------------------------------------------------------- helpers


def window_start(now_ms: int, window_days: int) -> int:
    """The oldest last-use that still counts: the window is counted back from now."""
    return now_ms - window_days * DAY_MS


def page_size_or_default(page_size: int | None) -> int:
    """PageSize 0–100; absent or 0 means the default 20.

    0 is not "an empty page": a client that pages while NextToken is present would then loop
    forever, and in the SDKs 0 is what an unset integer field looks like.
    """
    if page_size is None or page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 0 < page_size <= MAX_PAGE_SIZE:
        raise UsageQueryInvalid(f"PageSize must be between 0 and {MAX_PAGE_SIZE}")
    return page_size


def format_detail(body: bytes) -> str:
    """The stored event as the ``Detail`` string: JSON indented by two spaces, as in the seed example.

    Keys keep their stored order and values their types; only whitespace differs from the body.
    """
    return orjson.dumps(parse_body(body), option=orjson.OPT_INDENT_2).decode()


def _details(store: EventStore, account_id: str, entries: list[UsageEntry]) -> dict[int, str]:
    found = store.events_by_seq(account_id=account_id, seqs=[e.last_seq for e in entries])
    return {seq: format_detail(ev.body) for seq, ev in found.items()}


def _all_usage(
    store: EventStore, *, account_id: str, access_key_id: str, kind: UsageKind, since_ms: int
) -> list[UsageEntry]:
    """Every usage row of a kind across all services, most recent first; ties: latest arrival first.

    Not paged with UsagePosition on purpose: the position has no service component, so rows of
    two services with the same last use and item would be ambiguous at a page boundary. The rows
    per key are few (services, or IPs times services), so one query with a growing limit is cheap.
    """
    limit = _SCAN_BATCH
    while True:
        rows = store.usage(
            account_id=account_id,
            access_key_id=access_key_id,
            kind=kind,
            service_name=None,
            since_ms=since_ms,
            after=None,
            limit=limit,
        )
        if len(rows) < limit:
            return sorted(rows, key=lambda e: (-e.last_used_ms, -e.last_seq))
        limit *= 4


def _resolve_service(
    store: EventStore, *, account_id: str, access_key_id: str, service_name: str, since_ms: int
) -> str:
    """The spelling of ``service_name`` this key's events use.

    Events spell some codes in more than one case (``Actiontrail`` / ``ActionTrail``) while callers
    follow the docs, so an exact spelling the key used wins, and otherwise the most recently used
    spelling that matches case-insensitively.
    """
    exact = store.usage(
        account_id=account_id,
        access_key_id=access_key_id,
        kind=UsageKind.PRODUCT,
        service_name=service_name,
        since_ms=since_ms,
        after=None,
        limit=1,
    )
    if exact:
        return service_name
    wanted = service_name.casefold()
    for product in _all_usage(
        store, account_id=account_id, access_key_id=access_key_id, kind=UsageKind.PRODUCT, since_ms=since_ms
    ):
        if product.service_name.casefold() == wanted:
            return product.service_name
    return service_name


def _open_token(
    tokens: PageTokens, token: str, *, kind: str, account_id: str, digest: str
) -> tuple[UsagePosition, str]:
    position = tokens.open(token, kind=kind, account_id=account_id, digest=digest)
    # The HMAC makes a forged position impossible; the shape check guards against our own old formats.
    if (
        len(position) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in position[:3])
        or not isinstance(position[3], str)
    ):
        raise InvalidPageToken("NextToken is malformed")
    return UsagePosition(position[0], position[1], position[2]), position[3]


# ---------------------------------------------------------------------------- the five operations


def list_last_used(
    store: EventStore,
    tokens: PageTokens,
    which: UsageList,
    *,
    account_id: str,
    access_key_id: str,
    service_name: str,
    now_ms: int,
    page_size: int | None = None,
    next_token: str | None = None,
    window_days: int = 400,
) -> UsagePage:
    """One page of IPs, event names or resources the key used on a service, most recent first.

    Raises UsageQueryInvalid for a bad parameter and InvalidPageToken for a token that is
    malformed, forged, from another account or list, or from a query with other parameters.
    """
    if not access_key_id or not service_name:
        raise UsageQueryInvalid("AccessKey and ServiceName must not be empty")
    limit = page_size_or_default(page_size)
    since = window_start(now_ms, window_days)
    # PageSize is left out of the binding: a keyset position is valid for any page size.
    digest = query_digest({"AccessKey": access_key_id, "ServiceName": service_name})
    after: UsagePosition | None = None
    if next_token:
        after, resolved = _open_token(
            tokens, next_token, kind=which.token_kind, account_id=account_id, digest=digest
        )
    else:
        resolved = _resolve_service(
            store,
            account_id=account_id,
            access_key_id=access_key_id,
            service_name=service_name,
            since_ms=since,
        )
    # One row more than asked tells whether another page exists, so the last page has no token.
    rows = store.usage(
        account_id=account_id,
        access_key_id=access_key_id,
        kind=which.value,
        service_name=resolved,
        since_ms=since,
        after=after,
        limit=limit + 1,
    )
    page, more = rows[:limit], len(rows) > limit
    details = _details(store, account_id, page)
    items = tuple(
        LastUse(
            service_name=e.service_name,
            item=e.item,
            item_type=e.item_type,
            used_ms=e.last_used_ms,
            first_used_ms=e.first_used_ms,
            calls=e.calls,
            failed_calls=e.failed_calls,
            source=e.source,
            detail=details.get(e.last_seq, MISSING_DETAIL),
        )
        for e in page
    )
    token = None
    if more:
        last = page[-1].position
        token = tokens.issue(
            kind=which.token_kind,
            account_id=account_id,
            digest=digest,
            position=[last.last_used_ms, last.item_ref, last.type_ref, resolved],
        )
    return UsagePage(items, token)


def last_used_products(
    store: EventStore,
    *,
    account_id: str,
    access_key_id: str,
    now_ms: int,
    window_days: int = 400,
    catalog: ServiceCatalog | None = None,
) -> list[ProductUse]:
    """Every service the key called in the window, most recent first (not paged on the wire).

    Services last used at the same millisecond are ordered by arrival, latest first.

    Events without a serviceName name no service, so they are not listed here (Info still
    counts them as a use).
    """
    if not access_key_id:
        raise UsageQueryInvalid("AccessKey must not be empty")
    names = catalog or default_catalog()
    entries = [
        e
        for e in _all_usage(
            store,
            account_id=account_id,
            access_key_id=access_key_id,
            kind=UsageKind.PRODUCT,
            since_ms=window_start(now_ms, window_days),
        )
        if e.service_name
    ]
    details: dict[int, str] = {}
    for start in range(0, len(entries), _SCAN_BATCH):
        details.update(_details(store, account_id, entries[start : start + _SCAN_BATCH]))
    out: list[ProductUse] = []
    for e in entries:
        service = names.names(e.service_name)
        out.append(
            ProductUse(
                service_name=e.service_name,
                service_name_cn=service.name_cn,
                service_name_en=service.name_en,
                used_ms=e.last_used_ms,
                first_used_ms=e.first_used_ms,
                calls=e.calls,
                failed_calls=e.failed_calls,
                source=e.source,
                detail=details.get(e.last_seq, MISSING_DETAIL),
            )
        )
    return out


def _identity(event: dict[str, Any], account_id: str) -> tuple[str, str]:
    """(AccountType, UserName) of the principal behind an event."""
    identity = event.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    kind = identity.get("type")
    if not isinstance(kind, str) or not kind:
        # Old events lack the type: a root key's principal is the account itself.
        kind = "root-account" if str(identity.get("principalId", "")) == account_id else "ram-user"
    if kind == "root-account":
        return kind, "root"
    name = identity.get("userName")
    return kind, name if isinstance(name, str) else ""


def last_used_info(
    store: EventStore,
    *,
    account_id: str,
    access_key_id: str,
    now_ms: int,
    window_days: int = 400,
    catalog: ServiceCatalog | None = None,
) -> LastUsedInfo:
    """The owner of a key and its most recent use in the window.

    A key that was not used in the window (or belongs to another account, which must look the
    same) gives a LastUsedInfo with only ``access_key_id`` set.
    """
    if not access_key_id:
        raise UsageQueryInvalid("AccessKey must not be empty")
    # All products, not limit=1: the store breaks ties between services arbitrarily, while the
    # latest arrival among simultaneous uses is the deterministic answer (and Products' first row).
    latest = _all_usage(
        store,
        account_id=account_id,
        access_key_id=access_key_id,
        kind=UsageKind.PRODUCT,
        since_ms=window_start(now_ms, window_days),
    )
    if not latest:
        return LastUsedInfo(access_key_id)
    entry = latest[0]
    stored = store.events_by_seq(account_id=account_id, seqs=[entry.last_seq]).get(entry.last_seq)
    event: dict[str, Any] = parse_body(stored.body) if stored is not None else {}
    account_type, user_name = _identity(event, account_id)
    service = (catalog or default_catalog()).names(entry.service_name)
    return LastUsedInfo(
        access_key_id=access_key_id,
        account_id=account_id,
        owner_id=account_id,
        user_name=user_name,
        account_type=account_type,
        service_name=entry.service_name,
        service_name_cn=service.name_cn,
        service_name_en=service.name_en,
        used_ms=entry.last_used_ms,
        source=entry.source,
        detail=format_detail(stored.body) if stored is not None else MISSING_DETAIL,
    )


# ------------------------------------------------------------------------------ leaked-key report

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
    for entry in _all_usage(
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
    from ..model.times import format_wire_time

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
