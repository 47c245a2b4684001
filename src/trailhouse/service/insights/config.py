"""The detector's thresholds: one value each, filled from settings by the door that runs it."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Thresholds", "thresholds_from"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every number a rule compares against (docs/insights.md explains each rule)."""

    #: How far back the history a baseline is read from reaches.
    baseline_days: int = 14
    #: IpInsight: the network a source IPv4 address is judged by (/24; 32 judges single addresses).
    ip_prefix_v4: int = 24
    ip_prefix_v6: int = 64
    #: IpInsight: a key needs this many calls in its history before a new network means anything.
    ip_min_history_calls: int = 50
    #: IpInsight: the key is judged only when at most this many networks were new to it in the
    #: ``ip_recent_days`` before (its set of networks is settled).
    ip_max_recent_new: int = 1
    ip_recent_days: int = 7
    #: IpInsight: nor a key that used more networks than this (a fleet, not a settled client).
    ip_max_networks: int = 100
    #: ApiCallRateInsight / ApiErrorRateInsight: calls (errors) per minute, and times the baseline.
    rate_min_per_minute: int = 30
    rate_multiplier: float = 10.0
    error_min_per_minute: int = 20
    error_multiplier: float = 10.0
    #: AkInsight: a key unused this many days that calls again; one key's calls per minute.
    ak_dormant_days: int = 30
    ak_min_per_minute: int = 120
    ak_multiplier: float = 10.0
    #: Policy/Password/TrailConcealment: an identity that made no such change in this many days.
    change_history_days: int = 30
    #: Policies whose attachment is always an insight, whatever the history.
    always_policies: tuple[str, ...] = ("AdministratorAccess",)


def thresholds_from(settings: object) -> Thresholds:
    """Thresholds from the settings object: each field is its ``insight_<name>`` setting.

    Read by name so that this layer needs no import of ``settings``; a missing one keeps its default.
    """
    values: dict[str, object] = {}
    for f in fields(Thresholds):
        value = getattr(settings, f"insight_{f.name}", None)
        if value is None:
            continue
        if f.name == "always_policies" and isinstance(value, str):
            value = tuple(p.strip() for p in value.split(",") if p.strip())
        values[f.name] = value
    return Thresholds(**values)  # type: ignore[arg-type]
