"""The leaked-key report cut into a summary and titled tables, shared by the HTML page and the console.

Almost every string in a report was chosen by whoever held the key (user agents, resource names,
error messages): the rows hold them as plain values, and each renderer escapes them for its medium.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..model.times import format_wire_time
from ..service.access_key_report import AccessKeyReport, ReportEvent

__all__ = ["NOT_IN_RECORD", "NO_IP", "Section", "ip_label", "iso", "sections", "summary"]

NO_IP = "(no source IP)"

#: What the summary says of a key the account holds no event of: not "never used" (the store cannot
#: tell an unused key from a mistyped one, or from the wrong account).
NOT_IN_RECORD = "not in the record"


def iso(ms: int | None) -> str:
    return format_wire_time(ms) if ms is not None else ""


def ip_label(ip: str) -> str:
    return ip or NO_IP


@dataclass(frozen=True, slots=True)
class Section:
    """One table of the report, shared by the HTML page and the console output."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[object]]
    numeric: frozenset[int] = frozenset()
    note: str = ""


_EVENT_HEADERS = ("Time (UTC)", "Service", "Event", "Source IP", "User", "Error", "Resources", "User agent")
_DANGER_HEADERS = (*_EVENT_HEADERS[:4], "Why it matters", *_EVENT_HEADERS[4:])
_SPAN_HEADERS = ("First seen", "Last seen", "Calls", "Failed")


def _event_rows(events: Iterable[ReportEvent], with_reason: bool) -> list[list[object]]:
    rows: list[list[object]] = []
    for e in events:
        row: list[object] = [iso(e.event_time_ms), e.service_name, e.event_name, ip_label(e.source_ip)]
        if with_reason:
            row.append(e.reason)
        row += [e.user_name, e.error_code, "; ".join(e.resources), e.user_agent]
        rows.append(row)
    return rows


def _span_cells(first_ms: int, last_ms: int, calls: int, failed: int) -> list[object]:
    return [iso(first_ms), iso(last_ms), calls, failed]


def _pair_section(
    title: str, names: tuple[str, str], rows: Iterable[tuple[str, str, int, int, int, int]]
) -> Section:
    """A table of (two names, first seen, last seen, calls, failed): event names, resources."""
    return Section(
        title,
        (*names, *_SPAN_HEADERS),
        [[a, b, *_span_cells(first, last, calls, failed)] for a, b, first, last, calls, failed in rows],
        frozenset({4, 5}),
    )


def _shown(listed: int, total: int) -> str:
    return f"First {listed} of {total} shown." if total > listed else ""


def summary(r: AccessKeyReport) -> list[tuple[str, str]]:
    head = [
        ("Account", r.account_id),
        ("AccessKey", r.access_key_id),
        ("Window (UTC)", f"{iso(r.since_ms)} — {iso(r.until_ms)}"),
    ]
    if not r.found:
        return [*head, ("Status", f"{NOT_IN_RECORD}: {r.notice}" if r.notice else NOT_IN_RECORD)]
    first_new = r.first_use_from_new_ip
    rows = head + [("Notice", r.notice)] if r.notice else head
    return [
        *rows,
        ("Calls", f"{r.total_calls} ({r.failed_calls} failed)"),
        ("First use", iso(r.first_use.event_time_ms) if r.first_use else "none in the window"),
        ("Last use", iso(r.last_use.event_time_ms) if r.last_use else "none in the window"),
        ("Principals", ", ".join(r.identities) or "none"),
        ("New IPs", ", ".join(ip_label(a.ip) for a in r.new_ips) or "none"),
        (
            "First call from a new IP",
            f"{iso(first_new.event_time_ms)} {first_new.service_name}:{first_new.event_name}"
            f" from {ip_label(first_new.source_ip)}"
            if first_new
            else "none",
        ),
    ]


def sections(r: AccessKeyReport) -> list[Section]:
    return [
        Section(
            f"Dangerous actions ({r.dangerous_total})",
            _DANGER_HEADERS,
            _event_rows(r.dangerous, True),
            note=_shown(len(r.dangerous), r.dangerous_total),
        ),
        Section(
            f"Source IPs ({len(r.ips)})",
            ("IP", "New", *_SPAN_HEADERS, "First seen ever", "Services", "User agents"),
            [
                [
                    ip_label(a.ip),
                    "NEW" if a.new else "",
                    *_span_cells(a.first_seen_ms, a.last_seen_ms, a.calls, a.failed_calls),
                    iso(a.first_seen_ever_ms),
                    ", ".join(a.services),
                    " | ".join(a.user_agents),
                ]
                for a in r.ips
            ],
            frozenset({4, 5}),
        ),
        Section(
            f"Failed calls ({r.failed_calls})",
            _EVENT_HEADERS,
            _event_rows(r.failed, False),
            note=_shown(len(r.failed), r.failed_calls),
        ),
        Section(
            f"Services ({len(r.services)})",
            ("Service", "Name", "名称", *_SPAN_HEADERS),
            [
                [
                    s.service_name,
                    s.service_name_en,
                    s.service_name_cn,
                    *_span_cells(s.first_seen_ms, s.last_seen_ms, s.calls, s.failed_calls),
                ]
                for s in r.services
            ],
            frozenset({5, 6}),
        ),
        _pair_section(
            f"Event names ({len(r.event_names)})",
            ("Service", "Event"),
            (
                (n.service_name, n.event_name, n.first_seen_ms, n.last_seen_ms, n.calls, n.failed_calls)
                for n in r.event_names
            ),
        ),
        _pair_section(
            f"Resources ({len(r.resources)})",
            ("Type", "Name"),
            (
                (x.resource_type, x.resource_name, x.first_seen_ms, x.last_seen_ms, x.calls, x.failed_calls)
                for x in r.resources
            ),
        ),
    ]
