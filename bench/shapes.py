"""The questions every system answers: LookupEvents filter shapes and GetAccessKeyLastUsedIps.

Parameter values (which event name, which key…) are picked from the data itself, in DuckDB, so
"hot" and "cold" mean the same thing at every dataset size: hot is the most frequent value of the
busiest account in the query window, a cold key is a long-tail key with about ten events there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Picks", "Shape", "build_shapes"]

V2017 = "2017-12-04"
V2020 = "2020-07-06"


@dataclass(frozen=True)
class Picks:
    """The values the shapes filter on, and how many window events each one matches (DuckDB)."""

    account: str
    window_start_ms: int
    window_end_ms: int  # inclusive, whole seconds
    event_name: str
    service: str
    user: str
    key_hot: str
    key_cold: str
    source_ip: str
    resource_name: str
    write_event_name: str
    ips_hot_service: str
    ips_cold_service: str
    matches: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Shape:
    name: str  # unique, e.g. "LookupEvents 2020 / EventName"
    filter: str  # the filter shape, shared by both versions and the baseline: "EventName"
    api: str  # "LookupEvents" or "GetAccessKeyLastUsedIps"
    version: str
    style: str  # "V1" or "V3" signature
    params: dict[str, str]
    baseline: dict[str, str]  # the same question for DuckDB: column -> value


def _wire(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def lookup_filters(p: Picks) -> list[tuple[str, dict[str, str], dict[str, str] | None]]:
    """(filter shape, baseline conditions, 2017 parameters or None when 2017 cannot express it)."""
    return [
        ("none (7 days)", {}, {}),
        ("EventName", {"event_name": p.event_name}, {"EventName": p.event_name}),
        ("ServiceName", {"service": p.service}, {"ServiceName": p.service}),
        ("User", {"user_name": p.user}, {"User": p.user}),
        ("EventAccessKeyId hot", {"access_key": p.key_hot}, {"EventAccessKeyId": p.key_hot}),
        ("EventAccessKeyId cold", {"access_key": p.key_cold}, {"EventAccessKeyId": p.key_cold}),
        ("SourceIpAddress", {"source_ip": p.source_ip}, None),
        ("ResourceName", {"resource": p.resource_name}, {"ResourceName": p.resource_name}),
        (
            "EventRW+EventName",
            {"event_rw": "Write", "event_name": p.write_event_name},
            {"EventRW": "Write", "EventName": p.write_event_name},
        ),
    ]


_ATTRIBUTE_KEYS = {
    "event_name": "EventName",
    "service": "ServiceName",
    "user_name": "User",
    "access_key": "EventAccessKeyId",
    "source_ip": "SourceIpAddress",
    "resource": "ResourceName",
    "event_rw": "EventRW",
}


def build_shapes(p: Picks, page_size: int = 20) -> list[Shape]:
    window = {
        "StartTime": _wire(p.window_start_ms),
        "EndTime": _wire(p.window_end_ms),
        "MaxResults": str(page_size),
    }
    shapes: list[Shape] = []
    for version in (V2020, V2017):
        for name, base, params_2017 in lookup_filters(p):
            if version == V2017:
                if params_2017 is None:
                    continue
                params = {**window, **params_2017}
                style = "V1"
            else:
                params = dict(window)
                # EventRW first, as a console would send the pair.
                ordered = sorted(base.items(), key=lambda kv: kv[0] != "event_rw")
                for n, (column, value) in enumerate(ordered, start=1):
                    params[f"LookupAttribute.{n}.Key"] = _ATTRIBUTE_KEYS[column]
                    params[f"LookupAttribute.{n}.Value"] = value
                style = "V3"
            shapes.append(
                Shape(
                    f"LookupEvents {version[:4]} / {name}", name, "LookupEvents", version, style, params, base
                )
            )
    for label, key, service in (
        ("hot", p.key_hot, p.ips_hot_service),
        ("cold", p.key_cold, p.ips_cold_service),
    ):
        shapes.append(
            Shape(
                f"GetAccessKeyLastUsedIps / {label} key",
                f"LastUsedIps {label}",
                "GetAccessKeyLastUsedIps",
                V2020,
                "V3",
                {"AccessKey": key, "ServiceName": service, "PageSize": str(page_size)},
                {"access_key": key, "service": service},
            )
        )
    return shapes
