"""What the reported key created — users, AccessKeys, roles, policies — and what those did next.

One level deep: the created principals' activity is summarised, but what *they* created is not
followed further (it shows in their dangerous actions).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ...model.query import Attr, EventFilter
from ...storage.base import EventLog
from .bursts import BurstFinder
from .events import DANGEROUS_ACTIONS, read_event, report_event
from .types import CreatedEntity, EntityActivity, IpCount, ReportEvent

__all__ = ["CREATING_ACTIONS", "FOLLOW_LIMIT", "Creation", "created_by", "follow"]

#: The calls that create a principal or a policy, and the kind of what they create.
CREATING_ACTIONS = {
    "CreateUser": "User",
    "CreateAccessKey": "AccessKey",
    "CreateRole": "Role",
    "CreatePolicy": "Policy",
}
FOLLOW_LIMIT = 20  # created things followed per report; more are counted
_EVENTS_SHOWN = 20
_IPS_SHOWN = 20


def _dig(doc: Any, *path: str) -> str:
    for name in path:
        if not isinstance(doc, dict):
            return ""
        doc = doc.get(name)
    return doc if isinstance(doc, str) else ""


@dataclass(slots=True)
class Creation:
    kind: str
    name: str
    owner: str
    created: ReportEvent
    changes: list[ReportEvent] = field(default_factory=list)


def created_by(doc: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind, name, owner) of what a successful creating call made, from its parameters and response."""
    kind = CREATING_ACTIONS.get(_dig(doc, "eventName"))
    if kind is None or _dig(doc, "errorCode"):
        return None
    req, resp = doc.get("requestParameters"), doc.get("responseElements")
    if kind == "AccessKey":
        key_id = _dig(resp, "AccessKey", "AccessKeyId")
        # Without a user name the key is the caller's own (RAM's CreateAccessKey default).
        owner = _dig(req, "UserName") or _dig(doc, "userIdentity", "userName")
        return (kind, key_id, owner) if key_id else None
    name = _dig(req, f"{kind}Name") or _dig(resp, kind, f"{kind}Name")
    return (kind, name, "") if name else None


def _filter_for(c: Creation, now_ms: int) -> tuple[EventFilter, str]:
    start = c.created.event_time_ms
    if c.kind == "AccessKey":
        return EventFilter(
            start, now_ms, equals={Attr.ACCESS_KEY_ID: (c.name,)}
        ), "calls signed with this AccessKey"
    if c.kind == "User":
        return EventFilter(
            start, now_ms, equals={Attr.USER_NAME: (c.name,)}
        ), "calls by this user, any credential"
    if c.kind == "Role":
        return EventFilter(
            start, now_ms, equals={Attr.ROLE_NAME: (c.name,)}
        ), "calls in sessions of this role"
    return (
        EventFilter(start, now_ms, equals={Attr.RESOURCE_NAME: (c.name,)}),
        "calls naming this policy, by anyone (attachments, versions)",
    )


def follow(
    store: EventLog,
    creations: list[Creation],
    *,
    account_id: str,
    now_ms: int,
    known_ips: set[str],
    list_limit: int,
) -> list[CreatedEntity]:
    """Each creation with its activity since it was created (calls summarised, first few listed)."""
    out: list[CreatedEntity] = []
    for c in creations:
        flt, how = _filter_for(c, now_ms)
        ips: Counter[str] = Counter()
        names: Counter[str] = Counter()
        events: list[ReportEvent] = []
        dangerous: list[ReportEvent] = []
        bursts = BurstFinder(flt.start_ms, list_limit)
        calls = failed = 0
        first_ms: int | None = None
        last_ms: int | None = None
        for stored in store.iter_events(account_id=account_id, flt=flt, descending=False):
            found = read_event(stored.body)
            if found is None:
                continue
            doc, rec = found
            if rec.event_id == c.created.event_id:
                continue  # the creation itself, for a policy named by its own CreatePolicy
            t, is_failed = rec.event_time_ms, rec.error_code is not None
            calls += 1
            failed += int(is_failed)
            first_ms = t if first_ms is None else first_ms
            last_ms = t
            ip = rec.source_ip or ""
            ips[ip] += 1
            names[rec.event_name] += 1
            view = report_event(doc, rec.resources, t)
            if len(events) < _EVENTS_SHOWN:
                events.append(view)
            reason = DANGEROUS_ACTIONS.get(rec.event_name)
            if reason and len(dangerous) < list_limit:
                dangerous.append(report_event(doc, rec.resources, t, reason))
            bursts.add(t, ip, rec.event_name, is_failed, rec.resources)
        activity = EntityActivity(
            how=how,
            calls=calls,
            failed_calls=failed,
            first_ms=first_ms,
            last_ms=last_ms,
            ips=tuple(IpCount(ip, n, ip in known_ips) for ip, n in ips.most_common(_IPS_SHOWN)),
            event_names=tuple(sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))),
            events=tuple(events),
            dangerous=tuple(dangerous),
            bulk_reads=tuple(bursts.bursts({ip: ip not in known_ips for ip in ips})),
        )
        out.append(CreatedEntity(c.kind, c.name, c.owner, c.created, tuple(c.changes), activity))
    return out
