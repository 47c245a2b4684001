"""When did the key leak? The first use from a network outside the key's established history.

The rule (docs/compatibility.md, "The leaked-key report"):

1. The key's **established history** is its first days of recorded use: 7 days from its first
   recorded call, or the first quarter of the time from then until now if that is shorter (a key
   a week old is judged on its first day or two).
2. A **network** is an IPv4 /24 or an IPv6 /48 (a CI runner pool, an office, a VPC's NAT range);
   a source that is not an IP address (a service's host name) is its own network.
3. After the established history, IPs are taken in the order of their first use; one in a network
   already seen joins it. The **first IP from a network never seen before** marks the suspected
   leak: the time is its first call.

A key whose history shows no such IP yields no time: nothing is "new" and the report says so. Later
new networks do not move the time, but many of them make the guess weak, and the report says that.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ...model.times import DAY_MS, TimeFormatError, parse_event_time

__all__ = ["BASELINE_MS", "CHURN_NETWORKS", "Derivation", "derive_leak_time", "network_of", "parse_leak_time"]

BASELINE_MS = 7 * DAY_MS
#: More new networks than this after the suspected time: the key moves between networks as a rule.
CHURN_NETWORKS = 20
_SHOWN = 20


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_leak_time(text: str) -> int:
    """A leak time as a person writes it: ``YYYY-MM-DD`` (midnight UTC) or ISO 8601 with a zone."""
    if _DATE.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise TimeFormatError(f"{text!r} is not a date (YYYY-MM-DD)") from None
        return int(day.timestamp()) * 1000
    return parse_event_time(text)


def network_of(ip: str) -> str:
    """The network an address is judged by: /24 for IPv4, /48 for IPv6, the text itself otherwise."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Network((int(addr) >> 8 << 8, 24)))
    return str(ipaddress.IPv6Network((int(addr) >> 80 << 80, 48)))


@dataclass(frozen=True, slots=True)
class Derivation:
    time_ms: int | None
    trigger_ip: str
    baseline_until_ms: int | None
    baseline_ips: tuple[str, ...]
    baseline_ip_count: int
    baseline_networks: tuple[str, ...]
    later_networks: int  # networks first used after the suspected time, besides the trigger's


def derive_leak_time(first_use: dict[str, int], now_ms: int) -> Derivation:
    """Apply the rule to each IP's first use (epoch ms); ``first_use`` holds no empty IP."""
    if not first_use:
        return Derivation(None, "", None, (), 0, (), 0)
    start = min(first_use.values())
    until = start + min(BASELINE_MS, max(now_ms - start, 0) // 4)
    ordered = sorted(first_use.items(), key=lambda kv: (kv[1], kv[0]))
    baseline = [ip for ip, t in ordered if t < until]
    # The very first call always belongs to the history, even for a key first used a moment ago.
    baseline = baseline or [ordered[0][0]]
    known = dict.fromkeys(network_of(ip) for ip in baseline)
    trigger: tuple[str, int] | None = None
    later: set[str] = set()
    for ip, t in ordered[len(baseline) :]:
        net = network_of(ip)
        if net in known:
            continue
        if trigger is None:
            trigger = (ip, t)
            known[net] = None
        else:
            later.add(net)
    return Derivation(
        time_ms=trigger[1] if trigger else None,
        trigger_ip=trigger[0] if trigger else "",
        baseline_until_ms=until,
        baseline_ips=tuple(baseline[:_SHOWN]),
        baseline_ip_count=len(baseline),
        baseline_networks=tuple(list(dict.fromkeys(network_of(ip) for ip in baseline))[:_SHOWN]),
        later_networks=len(later),
    )
