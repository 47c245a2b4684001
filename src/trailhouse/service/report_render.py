"""Renderers of the leaked-key report: JSON, one self-contained HTML page, and rich tables.

Almost every string in a report was chosen by whoever held the key (user agents, resource names,
error messages), so the HTML escapes every value with ``html.escape`` and the tables wrap every
value in ``rich.text.Text`` so that it is never read as console markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..model.times import format_wire_time
from .access_keys import (
    HOUR_MS,
    REPORT_LIST_LIMIT,
    AccessKeyReport,
    ReportEvent,
)

__all__ = ["report_to_html", "report_to_json", "report_to_table"]

NO_IP = "(no source IP)"
_CHART_SERIES = 8  # IPs drawn on their own; the rest share one "other IPs" series
_CHART_COLUMNS = 720  # above this many hours, several hours share a column
_PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f")


def _iso(ms: int | None) -> str:
    return format_wire_time(ms) if ms is not None else ""


def _ip_label(ip: str) -> str:
    return ip or NO_IP


# --------------------------------------------------------------------------------------------- JSON


def _event_json(e: ReportEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eventTime": _iso(e.event_time_ms),
        "eventTimeMs": e.event_time_ms,
        "eventId": e.event_id,
        "eventName": e.event_name,
        "serviceName": e.service_name,
        "sourceIpAddress": e.source_ip,
        "userAgent": e.user_agent,
        "userName": e.user_name,
        "errorCode": e.error_code,
        "errorMessage": e.error_message,
        "resources": list(e.resources),
    }
    if e.reason:
        out["reason"] = e.reason
    return out


def _span(first_ms: int, last_ms: int, calls: int, failed: int) -> dict[str, Any]:
    return {
        "firstSeen": _iso(first_ms),
        "firstSeenMs": first_ms,
        "lastSeen": _iso(last_ms),
        "lastSeenMs": last_ms,
        "calls": calls,
        "failedCalls": failed,
    }


def _maybe_event(e: ReportEvent | None) -> dict[str, Any] | None:
    return _event_json(e) if e is not None else None


def report_to_json(report: AccessKeyReport) -> dict[str, Any]:
    """The report as plain JSON-ready data: times as ``yyyy-MM-ddTHH:mm:ssZ`` plus epoch ms."""
    return {
        "accountId": report.account_id,
        "accessKeyId": report.access_key_id,
        # found is False when the account holds no event of this key at all (an unknown key or an
        # empty account); notice says in words why the report is empty ("" when it is not).
        "found": report.found,
        "notice": report.notice,
        "since": _iso(report.since_ms),
        "sinceMs": report.since_ms,
        "until": _iso(report.until_ms),
        "untilMs": report.until_ms,
        "totalCalls": report.total_calls,
        "failedCalls": report.failed_calls,
        "firstUse": _maybe_event(report.first_use),
        "lastUse": _maybe_event(report.last_use),
        "firstUseFromNewIp": _maybe_event(report.first_use_from_new_ip),
        "identities": list(report.identities),
        "ips": [
            {
                "ip": a.ip,
                **_span(a.first_seen_ms, a.last_seen_ms, a.calls, a.failed_calls),
                "firstSeenEver": _iso(a.first_seen_ever_ms),
                "firstSeenEverMs": a.first_seen_ever_ms,
                "new": a.new,
                "services": list(a.services),
                "userAgents": list(a.user_agents),
            }
            for a in report.ips
        ],
        "services": [
            {
                "serviceName": s.service_name,
                "serviceNameCn": s.service_name_cn,
                "serviceNameEn": s.service_name_en,
                **_span(s.first_seen_ms, s.last_seen_ms, s.calls, s.failed_calls),
            }
            for s in report.services
        ],
        "resources": [
            {
                "resourceType": r.resource_type,
                "resourceName": r.resource_name,
                **_span(r.first_seen_ms, r.last_seen_ms, r.calls, r.failed_calls),
            }
            for r in report.resources
        ],
        "eventNames": [
            {
                "serviceName": n.service_name,
                "eventName": n.event_name,
                **_span(n.first_seen_ms, n.last_seen_ms, n.calls, n.failed_calls),
            }
            for n in report.event_names
        ],
        "failed": [_event_json(e) for e in report.failed],
        "failedListed": len(report.failed),
        "dangerous": [_event_json(e) for e in report.dangerous],
        "dangerousTotal": report.dangerous_total,
        "listLimit": REPORT_LIST_LIMIT,
        "hourly": [
            {"ip": h.ip, "counts": [{"hour": _iso(hour), "hourMs": hour, "calls": n} for hour, n in h.counts]}
            for h in report.hourly
        ],
    }


# --------------------------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2329;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid #eaeef2;vertical-align:top}th{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}code,.mono{font-family:ui-monospace,Menlo,monospace}
.new{color:#b42318;font-weight:600}.muted{color:#57606a}.alert{background:#fff4e5;border:1px solid #f5c07a;
padding:.6rem .8rem;border-radius:6px}.legend span{display:inline-block;margin-right:1rem}
.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
""".strip()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: frozenset[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="muted">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _event_rows(events: Iterable[ReportEvent], with_reason: bool) -> list[list[object]]:
    rows: list[list[object]] = []
    for e in events:
        row: list[object] = [_iso(e.event_time_ms), e.service_name, e.event_name, _ip_label(e.source_ip)]
        if with_reason:
            row.append(e.reason)
        row += [e.user_name, e.error_code, "; ".join(e.resources), e.user_agent]
        rows.append(row)
    return rows


def _chart_series(report: AccessKeyReport) -> list[tuple[str, dict[int, int]]]:
    """The IPs with most calls get their own series; the rest are merged so the legend stays readable."""
    calls = {a.ip: a.calls for a in report.ips}
    ranked = sorted(report.hourly, key=lambda h: (-calls.get(h.ip, 0), h.ip))
    series = [(_ip_label(h.ip), dict(h.counts)) for h in ranked[:_CHART_SERIES]]
    if len(ranked) > _CHART_SERIES:
        other: dict[int, int] = {}
        for h in ranked[_CHART_SERIES:]:
            for hour, n in h.counts:
                other[hour] = other.get(hour, 0) + n
        series.append((f"other IPs ({len(ranked) - _CHART_SERIES})", other))
    return series


def _chart_svg(report: AccessKeyReport) -> str:
    """Calls per hour as stacked bars, one colour per IP, as inline SVG (no script, no external assets)."""
    series = _chart_series(report)
    hours = [hour for _, counts in series for hour in counts]
    if not hours:
        return '<p class="muted">No calls in the window.</p>'
    start, end = min(hours), max(hours)
    span_hours = (end - start) // HOUR_MS + 1
    per_column = max(1, math.ceil(span_hours / _CHART_COLUMNS))
    columns = math.ceil(span_hours / per_column)
    stacks: list[list[int]] = [[0] * len(series) for _ in range(columns)]
    for index, (_, counts) in enumerate(series):
        for hour, n in counts.items():
            stacks[(hour - start) // HOUR_MS // per_column][index] += n
    peak = max(sum(col) for col in stacks)
    width, height, left, bottom, top = 960, 300, 48, 36, 12
    plot_w, plot_h = width - left - 12, height - top - bottom
    bar_w = plot_w / columns
    unit = "hour" if per_column == 1 else f"{per_column} hours"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="calls per {unit} by source IP">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#8c959f"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#8c959f"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
        f'<text x="{left}" y="{height - 8}" font-size="11">{_e(_iso(start))}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" font-size="11">'
        f"{_e(_iso(start + columns * per_column * HOUR_MS))}</text>",
    ]
    for col, stack in enumerate(stacks):
        y = top + plot_h
        x = left + col * bar_w
        when = _iso(start + col * per_column * HOUR_MS)
        for index, n in enumerate(stack):
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            label = f"{series[index][0]} — {when}: {n} call{'s' if n != 1 else ''}"
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(bar_w - 0.5, 0.8):.2f}" height="{h:.2f}"'
                f' fill="{_PALETTE[index % len(_PALETTE)]}"><title>{_e(label)}</title></rect>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="sw" style="background:{_PALETTE[i % len(_PALETTE)]}"></i>{_e(name)}</span>'
        for i, (name, _) in enumerate(series)
    )
    note = f'<p class="muted">Calls per {_e(unit)} (UTC).</p>'
    return f'{"".join(parts)}<div class="legend">{legend}</div>{note}'


@dataclass(frozen=True, slots=True)
class _Section:
    """One table of the report, shared by the HTML page and the console output."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[object]]
    numeric: frozenset[int] = frozenset()
    note: str = ""


_EVENT_HEADERS = ("Time (UTC)", "Service", "Event", "Source IP", "User", "Error", "Resources", "User agent")
_DANGER_HEADERS = (*_EVENT_HEADERS[:4], "Why it matters", *_EVENT_HEADERS[4:])
_SPAN_HEADERS = ("First seen", "Last seen", "Calls", "Failed")


def _span_cells(first_ms: int, last_ms: int, calls: int, failed: int) -> list[object]:
    return [_iso(first_ms), _iso(last_ms), calls, failed]


def _shown(listed: int, total: int) -> str:
    return f"First {listed} of {total} shown." if total > listed else ""


#: What the summary says of a key the account holds no event of: not "never used" (the store cannot
#: tell an unused key from a mistyped one, or from the wrong account).
NOT_IN_RECORD = "not in the record"


def _summary(r: AccessKeyReport) -> list[tuple[str, str]]:
    head = [
        ("Account", r.account_id),
        ("AccessKey", r.access_key_id),
        ("Window (UTC)", f"{_iso(r.since_ms)} — {_iso(r.until_ms)}"),
    ]
    if not r.found:
        return [*head, ("Status", f"{NOT_IN_RECORD}: {r.notice}" if r.notice else NOT_IN_RECORD)]
    first_new = r.first_use_from_new_ip
    rows = head + [("Notice", r.notice)] if r.notice else head
    return [
        *rows,
        ("Calls", f"{r.total_calls} ({r.failed_calls} failed)"),
        ("First use", _iso(r.first_use.event_time_ms) if r.first_use else "none in the window"),
        ("Last use", _iso(r.last_use.event_time_ms) if r.last_use else "none in the window"),
        ("Principals", ", ".join(r.identities) or "none"),
        ("New IPs", ", ".join(_ip_label(a.ip) for a in r.new_ips) or "none"),
        (
            "First call from a new IP",
            f"{_iso(first_new.event_time_ms)} {first_new.service_name}:{first_new.event_name}"
            f" from {_ip_label(first_new.source_ip)}"
            if first_new
            else "none",
        ),
    ]


def _sections(r: AccessKeyReport) -> list[_Section]:
    tail = frozenset({4, 5})
    return [
        _Section(
            f"Dangerous actions ({r.dangerous_total})",
            _DANGER_HEADERS,
            _event_rows(r.dangerous, True),
            note=_shown(len(r.dangerous), r.dangerous_total),
        ),
        _Section(
            f"Source IPs ({len(r.ips)})",
            ("IP", "New", *_SPAN_HEADERS, "First seen ever", "Services", "User agents"),
            [
                [
                    _ip_label(a.ip),
                    "NEW" if a.new else "",
                    *_span_cells(a.first_seen_ms, a.last_seen_ms, a.calls, a.failed_calls),
                    _iso(a.first_seen_ever_ms),
                    ", ".join(a.services),
                    " | ".join(a.user_agents),
                ]
                for a in r.ips
            ],
            frozenset({4, 5}),
        ),
        _Section(
            f"Failed calls ({r.failed_calls})",
            _EVENT_HEADERS,
            _event_rows(r.failed, False),
            note=_shown(len(r.failed), r.failed_calls),
        ),
        _Section(
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
        _Section(
            f"Event names ({len(r.event_names)})",
            ("Service", "Event", *_SPAN_HEADERS),
            [
                [
                    n.service_name,
                    n.event_name,
                    *_span_cells(n.first_seen_ms, n.last_seen_ms, n.calls, n.failed_calls),
                ]
                for n in r.event_names
            ],
            tail,
        ),
        _Section(
            f"Resources ({len(r.resources)})",
            ("Type", "Name", *_SPAN_HEADERS),
            [
                [
                    x.resource_type,
                    x.resource_name,
                    *_span_cells(x.first_seen_ms, x.last_seen_ms, x.calls, x.failed_calls),
                ]
                for x in r.resources
            ],
            tail,
        ),
    ]


def report_to_html(report: AccessKeyReport) -> str:
    """One self-contained HTML page: inline CSS and SVG, no scripts, no external assets."""
    r = report
    summary = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _summary(r))
    alert = ""
    if r.first_use_from_new_ip is not None:
        e = r.first_use_from_new_ip
        alert = (
            f'<p class="alert">{len(r.new_ips)} IP(s) used this key for the first time in the window. '
            f"The first call from one of them: <b>{_e(e.event_name)}</b> ({_e(e.service_name)}) from "
            f'<span class="mono">{_e(_ip_label(e.source_ip))}</span> at {_e(_iso(e.event_time_ms))}.</p>'
        )
    if r.notice:
        alert = f'<p class="alert">{_e(r.notice)}</p>' + alert
    sections = "".join(
        f"<h2>{_e(sec.title)}</h2>"
        + (f'<p class="muted">{_e(sec.note)}</p>' if sec.note else "")
        + _table(sec.headers, sec.rows, sec.numeric)
        for sec in _sections(r)
    )
    # A key not in the record has no tables to show, only the empty chart ("No calls in the window").
    body = f"<h2>Calls per hour by source IP</h2>{_chart_svg(r)}{sections if r.found else ''}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>AccessKey report — {_e(r.access_key_id)}</title><style>{_CSS}</style></head><body>"
        f'<h1>AccessKey report <span class="mono">{_e(r.access_key_id)}</span>'
        f"{'' if r.found else ' — ' + NOT_IN_RECORD}</h1>"
        f"<table>{summary}</table>{alert}{body}"
        f'<p class="muted">Generated by Trailhouse for the window ending {_e(_iso(r.until_ms))}.</p>'
        "</body></html>\n"
    )


# --------------------------------------------------------------------------------------------- rich


def _rich_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    table = Table(title=title, title_justify="left")
    for h in headers:
        table.add_column(h, overflow="fold")
    for row in rows:
        # Text() is never parsed as markup: "[red]" in a user agent stays literal.
        table.add_row(*(Text(str(v)) for v in row))
    return table


def report_to_table(report: AccessKeyReport, console: Console) -> None:
    """Print the report as rich tables (for the CLI); a key not in the record gets the summary only."""
    title = f"AccessKey {report.access_key_id}" + ("" if report.found else f" — {NOT_IN_RECORD}")
    console.print(_rich_table(title, ["Field", "Value"], _summary(report)))
    if not report.found:
        return
    for sec in _sections(report):
        console.print(_rich_table(sec.title, sec.headers, sec.rows))
        if sec.note:
            console.print(Text(sec.note, style="dim"))
