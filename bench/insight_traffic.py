"""Normal traffic from the project's generator, and the anomalies injected into it (Insights).

Shared by tests/e2e/test_insights_scenarios.py and bench/insights.py. The generator makes one
world (accounts, keys, IP slices, API profiles) per seed; a scenario stores its first days as
history, then streams the rest as "live" traffic with anomalies mixed in. Each injected event is a
copy of a real event of the same world, changed only where the anomaly needs it.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trailhouse.demo.generate import generate_events
from trailhouse.model.times import format_wire_time, parse_wire_time

DAY_MS = 86_400_000
MINUTE_MS = 60_000


@dataclass
class Traffic:
    account_id: str
    history: list[dict[str, Any]]
    stream: list[dict[str, Any]]
    #: AccessKeys of the history, busiest first.
    keys: list[str] = field(default_factory=list)
    #: Keys with a settled set of networks (IpInsight judges only those): at least 50 calls, at
    #: most 100 networks, and none new to them in the last 7 days of the history.
    settled_keys: list[str] = field(default_factory=list)

    def template(self, key: str) -> dict[str, Any]:
        """The key's latest history event: the shape an injected call of that key takes."""
        for event in reversed(self.history):
            if event["userIdentity"].get("accessKeyId") == key:
                return event
        raise LookupError(key)


def normal_traffic(
    *, seed: int, count: int, end_ms: int, days: int = 21, stream_days: float = 1.0
) -> Traffic:
    events = list(generate_events(seed=seed, count=count, end_ms=end_ms, days=days, accounts=1))
    cut = end_ms - int(stream_days * DAY_MS)
    history = [e for e in events if parse_wire_time(e["eventTime"]) < cut]
    stream = [e for e in events if parse_wire_time(e["eventTime"]) >= cut]
    keys: Counter[str] = Counter()
    first_seen: dict[tuple[str, str], int] = {}
    for e in history:
        key = e["userIdentity"].get("accessKeyId")
        if not key or key.startswith("STS."):
            continue
        keys[key] += 1
        network = ".".join(str(e.get("sourceIpAddress", "")).split(".")[:3])
        first_seen.setdefault((key, network), parse_wire_time(e["eventTime"]))
    recent: Counter[str] = Counter(k for (k, _), t in first_seen.items() if t >= cut - 7 * DAY_MS)
    account = events[0]["userIdentity"]["accountId"]
    busiest = [k for k, _ in keys.most_common()]
    networks: Counter[str] = Counter(k for k, _ in first_seen)
    settled = [k for k in busiest if keys[k] >= 50 and recent[k] == 0 and networks[k] <= 100]
    return Traffic(account, history, stream, busiest, settled)


def call(
    template: dict[str, Any],
    time_ms: int,
    *,
    name: str | None = None,
    service: str | None = None,
    rw: str | None = None,
    ip: str | None = None,
    error: str | None = None,
    params: dict[str, Any] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    event = copy.deepcopy(template)
    event["eventId"] = f"injected-{uuid.uuid4()}"
    event["requestId"] = str(uuid.uuid4()).upper()
    event["eventTime"] = format_wire_time(time_ms)
    if name is not None:
        event["eventName"] = name
    if service is not None:
        event["serviceName"] = service
    if rw is not None:
        event["eventRW"] = rw
    if ip is not None:
        event["sourceIpAddress"] = ip
    if key is not None:
        event["userIdentity"]["accessKeyId"] = key
    event.pop("errorCode", None)
    event.pop("errorMessage", None)
    if error is not None:
        event["errorCode"] = error
        event["errorMessage"] = "injected failure"
    if params is not None:
        event["requestParameters"] = params
    return event


@dataclass(frozen=True)
class Anomaly:
    """Injected events and the insight type they must raise (naming these events)."""

    kind: str
    events: tuple[dict[str, Any], ...]
    #: Events kept in the history (a dormant key's old call), not streamed.
    history: tuple[dict[str, Any], ...] = ()

    @property
    def ids(self) -> set[str]:
        return {e["eventId"] for e in self.events}


def burst(template: dict[str, Any], start_ms: int, n: int, **changes: Any) -> tuple[dict[str, Any], ...]:
    """``n`` calls within one minute from ``start_ms`` (which should be a minute's start)."""
    return tuple(call(template, start_ms + i * (50_000 // n), **changes) for i in range(n))


def anomaly(kind: str, traffic: Traffic, at_ms: int, n: int = 0) -> Anomaly:
    """One anomaly of ``kind``, the ``n``-th of its kind (each uses another key, API or address)."""
    keys = traffic.keys
    # Rates: one of the five busiest keys; changes: a different key each time (a key's second
    # change of a kind within 30 days is routine by the rule); new networks: a settled key.
    key = keys[n % min(len(keys), 5)]
    if kind in ("PolicyChangeInsight", "PasswordChangeInsight", "TrailConcealmentInsight"):
        key = keys[n % len(keys)]
    if kind == "IpInsight":
        key = traffic.settled_keys[n % len(traffic.settled_keys)]
    t = traffic.template(key)
    minute = at_ms - at_ms % MINUTE_MS
    if kind == "IpInsight":
        return Anomaly(kind, (call(t, at_ms, ip=f"198.51.{100 + n % 50}.{7 + n % 200}"),))
    if kind == "ApiCallRateInsight":
        return Anomaly(kind, burst(t, minute, 60, name=f"DeleteSnapshot{n}", service="Ecs", rw="Write"))
    if kind == "ApiErrorRateInsight":
        return Anomaly(
            kind,
            burst(t, minute, 40, name=f"DescribeSecrets{n}", service="Kms", rw="Read", error="Forbidden.RAM"),
        )
    if kind == "AkInsight":
        dormant = f"LTAI5tDormant{n:011d}"
        old = call(t, at_ms - 45 * DAY_MS, key=dormant)
        return Anomaly(kind, (call(t, at_ms, key=dormant),), history=(old,))
    if kind == "PolicyChangeInsight":
        params = {"PolicyType": "System", "PolicyName": "AdministratorAccess", "UserName": f"intruder{n}"}
        return Anomaly(
            kind, (call(t, at_ms, name="AttachPolicyToUser", service="Ram", rw="Write", params=params),)
        )
    if kind == "PasswordChangeInsight":
        params = {"UserName": f"admin{n}", "PasswordResetRequired": "false"}
        return Anomaly(
            kind, (call(t, at_ms, name="UpdateLoginProfile", service="Ram", rw="Write", params=params),)
        )
    if kind == "TrailConcealmentInsight":
        params = {"Name": f"audit-{n}"}
        return Anomaly(
            kind, (call(t, at_ms, name="StopLogging", service="Actiontrail", rw="Write", params=params),)
        )
    raise ValueError(kind)


def merged(stream: Iterable[dict[str, Any]], anomalies: Iterable[Anomaly]) -> list[dict[str, Any]]:
    """The stream with the anomalies' events in event-time order."""
    events = list(stream) + [e for a in anomalies for e in a.events]
    return sorted(events, key=lambda e: e["eventTime"])
