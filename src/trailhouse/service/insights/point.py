"""The point-in-time rules: IpInsight, AkInsight (dormant key), and the three change rules.

Each rule reads its baseline from the stored history the first time it meets an actor (the usage
aggregates, or a one-row look-up of the actor's earlier events) and keeps what it learns in
memory from then on, so a store already holding weeks of events needs no warm-up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from ...model.insights import StoredInsight
from ...model.query import Attr, EventFilter
from ...model.times import format_wire_time
from .config import Thresholds
from .history import History
from .record import Attribution, Seen, Statistics, insight_pair

__all__ = ["ChangeRule", "DormantKeyRule", "IpRule", "change_rules", "network_of"]

DAY_MS = 86_400_000
_CACHE_LIMIT = 200_000


def network_of(ip: str, v4: int, v6: int) -> str:
    """The network an address is judged by (``a.b.c.0/24``); anything unparsable is itself."""
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        value = 0
        for p in parts:
            value = value << 8 | int(p)
        if value < 1 << 32:
            value &= ~((1 << (32 - v4)) - 1) & 0xFFFFFFFF
            return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}/{v4}"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = v4 if address.version == 4 else v6
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class _KeyNetworks:
    """The networks a key used (each with when it first used it), and its calls, as of the detector."""

    __slots__ = ("calls", "networks", "since_ms")

    def __init__(self, networks: dict[str, int], calls: int, since_ms: int) -> None:
        self.networks, self.calls, self.since_ms = networks, calls, since_ms

    def recent_new(self, now_ms: int, window_ms: int) -> int:
        """Networks the key used for the first time in the window before ``now_ms``."""
        return sum(1 for first in self.networks.values() if now_ms - window_ms <= first < now_ms)


class IpRule:
    """IpInsight: an AccessKey calls from a network absent from its history, where new networks are rare.

    A key is judged when it has a history (``ip_min_history_calls``) and a settled set of networks:
    at most ``ip_max_networks`` of them, and at most ``ip_max_recent_new`` first used in the
    ``ip_recent_days`` before. A key that meets new networks every day, or calls from thousands (a
    fleet that scales, a mobile client), would make every new one an insight, so it is not judged.
    """

    def __init__(self, history: History, th: Thresholds) -> None:
        self._history, self._th = history, th
        self._keys: dict[tuple[str, str], _KeyNetworks] = {}
        #: Address → network: the same few thousand addresses come again and again.
        self._networks: dict[str, str] = {}

    def _network(self, ip: str) -> str:
        network = self._networks.get(ip)
        if network is None:
            if len(self._networks) > _CACHE_LIMIT:
                self._networks.clear()
            network = self._networks[ip] = network_of(ip, self._th.ip_prefix_v4, self._th.ip_prefix_v6)
        return network

    def _load(self, ev: Seen) -> _KeyNetworks:
        since = ev.time_ms - self._th.baseline_days * DAY_MS
        calls = 0
        networks: dict[str, int] = {}
        first_seen = ev.time_ms
        for entry in self._history.key_ips(ev.account_id, ev.access_key_id, since):
            if entry.first_used_ms >= ev.time_ms:
                continue  # stored ahead of the detector: not history yet
            calls += entry.calls
            network = self._network(entry.item)
            networks[network] = min(networks.get(network, entry.first_used_ms), entry.first_used_ms)
            first_seen = min(first_seen, entry.first_used_ms)
        return _KeyNetworks(networks, calls, first_seen)

    def check(self, ev: Seen) -> list[StoredInsight]:
        if not ev.ip or not ev.access_key_id or ev.access_key_id.startswith("STS."):
            return []
        cache_key = (ev.account_id, ev.access_key_id)
        known = self._keys.get(cache_key)
        if known is None:
            if len(self._keys) > _CACHE_LIMIT:
                self._keys.clear()
            known = self._keys[cache_key] = self._load(ev)
        network = self._network(ev.ip)
        found: list[StoredInsight] = []
        if network not in known.networks:
            window = self._th.ip_recent_days * DAY_MS
            recent = known.recent_new(ev.time_ms, window)
            settled = recent <= self._th.ip_max_recent_new and len(known.networks) <= self._th.ip_max_networks
            if known.calls >= self._th.ip_min_history_calls and settled:
                found = insight_pair(
                    account_id=ev.account_id,
                    insight_type="IpInsight",
                    insight_object=ev.ip,
                    anchor=ev.event_id,
                    time_ms=ev.time_ms,
                    region=ev.region,
                    statistics=Statistics(
                        1, 0, known.calls / max(1, len(known.networks)), int(window // 60_000), 1
                    ),
                    attributions=[
                        Attribution(
                            "sourceIpAddress", [(ev.ip, 1.0)], [(n, 0.0) for n in sorted(known.networks)[:5]]
                        ),
                        Attribution("userIdentity.accessKeyId", [(ev.access_key_id, 1.0)]),
                    ],
                    triggers=[ev.event_id],
                    explanation=(
                        f"AccessKey {ev.access_key_id} called {ev.service}:{ev.name} from {ev.ip}"
                        f" (network {network}); its {known.calls} earlier calls since"
                        f" {format_wire_time(known.since_ms)} came from {len(known.networks)} other"
                        f" network(s), none of them this one, and {recent} network(s) were new to it"
                        f" in the {self._th.ip_recent_days} days before."
                    ),
                    trigger=ev,
                )
            known.networks[network] = ev.time_ms
        known.calls += 1
        return found


class DormantKeyRule:
    """AkInsight (dormant): an AccessKey whose previous call is at least ``ak_dormant_days`` old."""

    def __init__(self, history: History, th: Thresholds) -> None:
        self._history, self._th = history, th
        self._last: dict[tuple[str, str], int | None] = {}

    def check(self, ev: Seen) -> list[StoredInsight]:
        key = ev.access_key_id
        if not key or key.startswith("STS."):
            return []
        cache_key = (ev.account_id, key)
        if cache_key not in self._last:
            if len(self._last) > _CACHE_LIMIT:
                self._last.clear()
            self._last[cache_key] = self._history.previous_time(
                ev.account_id, EventFilter(0, ev.time_ms - 1, equals={Attr.ACCESS_KEY_ID: (key,)})
            )
        previous = self._last[cache_key]
        self._last[cache_key] = ev.time_ms if previous is None else max(previous, ev.time_ms)
        idle_ms = ev.time_ms - previous if previous is not None else 0
        if previous is None or idle_ms < self._th.ak_dormant_days * DAY_MS:
            return []
        idle_days = idle_ms // DAY_MS
        return insight_pair(
            account_id=ev.account_id,
            insight_type="AkInsight",
            insight_object=key,
            anchor=ev.event_id,
            time_ms=ev.time_ms,
            region=ev.region,
            statistics=Statistics(1, 0, 0, int(idle_ms // 60_000), 1),
            attributions=[Attribution("sourceIpAddress", [(ev.ip, 1.0)])],
            triggers=[ev.event_id],
            explanation=(
                f"AccessKey {key} called {ev.service}:{ev.name} from {ev.ip or 'an unknown address'}"
                f" after {idle_days} days without a call (last one {format_wire_time(previous)})."
            ),
            trigger=ev,
        )


class ChangeRule:
    """A sensitive change (policy, password, trail) by an actor that made none of its kind lately."""

    def __init__(
        self,
        insight_type: str,
        names: frozenset[str],
        history: History,
        th: Thresholds,
        *,
        qualifies: Callable[[Seen], bool] = lambda ev: True,
        always: Callable[[Seen], bool] = lambda ev: False,
        what: str,
    ) -> None:
        self.insight_type, self.names, self._history, self._th = insight_type, names, history, th
        self._qualifies, self._always, self._what = qualifies, always, what
        self._last: dict[tuple[str, str], int | None] = {}

    def check(self, ev: Seen) -> list[StoredInsight]:
        if ev.name not in self.names or ev.error_code or not self._qualifies(ev):
            return []
        actor = ev.actor
        window_ms = self._th.change_history_days * DAY_MS
        previous: int | None = None
        if actor:
            cache_key = (ev.account_id, actor)
            if cache_key not in self._last:
                attr = (
                    Attr.USER_NAME
                    if actor == ev.user_name and actor != ev.access_key_id
                    else Attr.ACCESS_KEY_ID
                )
                self._last[cache_key] = self._history.previous_time(
                    ev.account_id,
                    EventFilter(
                        ev.time_ms - window_ms,
                        ev.time_ms - 1,
                        equals={Attr.EVENT_NAME: tuple(sorted(self.names)), attr: (actor,)},
                        has_error=False,
                    ),
                )
            previous = self._last[cache_key]
            self._last[cache_key] = ev.time_ms if previous is None else max(previous, ev.time_ms)
        routine = previous is not None and ev.time_ms - previous < window_ms
        if routine and not self._always(ev):
            return []
        target = _target(ev)
        why = (
            f"{actor or 'an unidentified caller'} made no {self._what} in the previous"
            f" {self._th.change_history_days} days"
            if not routine
            else f"{target} is always reported"
        )
        return insight_pair(
            account_id=ev.account_id,
            insight_type=self.insight_type,
            insight_object=target or ev.name,
            anchor=ev.event_id,
            time_ms=ev.time_ms,
            region=ev.region,
            statistics=Statistics(1, 0, 0, int(window_ms // 60_000), 1),
            attributions=[
                Attribution("eventName", [(ev.name, 1.0)]),
                Attribution("userIdentity", [(actor, 1.0)]),
                Attribution("sourceIpAddress", [(ev.ip, 1.0)]),
            ],
            triggers=[ev.event_id],
            explanation=f"{ev.service}:{ev.name} on {target or '-'} from {ev.ip or '-'}: {why}.",
            trigger=ev,
        )


def _target(ev: Seen) -> str:
    for name in ("PolicyName", "UserName", "Name", "TrailName", "AccountName"):
        value = ev.params.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


POLICY_EVENTS = frozenset(
    {
        "CreatePolicy",
        "CreatePolicyVersion",
        "SetDefaultPolicyVersion",
        "DeletePolicy",
        "DeletePolicyVersion",
        "AttachPolicyToUser",
        "AttachPolicyToGroup",
        "AttachPolicyToRole",
        "DetachPolicyFromUser",
        "DetachPolicyFromGroup",
        "DetachPolicyFromRole",
        "UpdatePolicyDescription",
    }
)
PASSWORD_EVENTS = frozenset(
    {"ChangePassword", "CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile", "ResetPassword"}
)
TRAIL_EVENTS = frozenset({"StopLogging", "DeleteTrail", "UpdateTrail"})
_WIDE = ("", "All")


def narrows_trail(ev: Seen) -> bool:
    """UpdateTrail narrows when it limits events or regions, or empties a destination."""
    if ev.name != "UpdateTrail":
        return True
    p = ev.params
    if str(p.get("EventRW", "")) not in _WIDE or str(p.get("TrailRegion", "")) not in _WIDE:
        return True
    return any(name in p and p[name] == "" for name in ("OssBucketName", "SlsProjectArn", "OssWriteRoleArn"))


def change_rules(history: History, th: Thresholds) -> list[ChangeRule]:
    always = frozenset(th.always_policies)
    return [
        ChangeRule(
            "PolicyChangeInsight",
            POLICY_EVENTS,
            history,
            th,
            always=lambda ev: ev.name.startswith("Attach") and ev.params.get("PolicyName") in always,
            what="policy change",
        ),
        ChangeRule(
            "PasswordChangeInsight", PASSWORD_EVENTS, history, th, what="password or login-profile change"
        ),
        ChangeRule(
            "TrailConcealmentInsight",
            TRAIL_EVENTS,
            history,
            th,
            qualifies=narrows_trail,
            what="trail stop, deletion or narrowing",
        ),
    ]
