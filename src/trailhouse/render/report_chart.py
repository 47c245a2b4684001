"""The calls per hour of a leaked-key report as inline SVG: stacked bars, one colour per source IP.

No script and no external asset, so the page stays self-contained; every label is escaped.
"""

from __future__ import annotations

import html
import math

from ..service.access_key_report import HOUR_MS, AccessKeyReport
from .report_colours import OTHER_COLOUR, ip_colour
from .report_sections import ip_label, iso

__all__ = ["chart_svg"]

_CHART_SERIES = 8  # IPs drawn on their own; the rest share one "other IPs" series
_CHART_COLUMNS = 720  # above this many hours, several hours share a column


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _chart_series(report: AccessKeyReport) -> list[tuple[str, str, dict[int, int]]]:
    """(label, colour, counts): new IPs and those with most calls get their own series; the rest are
    merged so the legend stays readable."""
    calls = {a.ip: a.calls for a in report.ips}
    new = {a.ip for a in report.new_ips}
    ranked = sorted(report.hourly, key=lambda h: (h.ip not in new, -calls.get(h.ip, 0), h.ip))
    series = [(ip_label(h.ip), ip_colour(h.ip), dict(h.counts)) for h in ranked[:_CHART_SERIES]]
    if len(ranked) > _CHART_SERIES:
        other: dict[int, int] = {}
        for h in ranked[_CHART_SERIES:]:
            for hour, n in h.counts:
                other[hour] = other.get(hour, 0) + n
        series.append((f"other IPs ({len(ranked) - _CHART_SERIES})", OTHER_COLOUR, other))
    return series


def chart_svg(report: AccessKeyReport) -> str:
    """Calls per hour as stacked bars, one colour per IP, as inline SVG (no script, no external assets)."""
    series = _chart_series(report)
    hours = [hour for _, _, counts in series for hour in counts]
    if not hours:
        return '<p class="muted">No calls in the window.</p>'
    start, end = min(hours), max(hours)
    span_hours = (end - start) // HOUR_MS + 1
    per_column = max(1, math.ceil(span_hours / _CHART_COLUMNS))
    columns = math.ceil(span_hours / per_column)
    stacks: list[list[int]] = [[0] * len(series) for _ in range(columns)]
    for index, (_, _, counts) in enumerate(series):
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
        f'<text x="{left}" y="{height - 8}" font-size="11">{_e(iso(start))}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" font-size="11">'
        f"{_e(iso(start + columns * per_column * HOUR_MS))}</text>",
    ]
    for col, stack in enumerate(stacks):
        y: float = top + plot_h
        x = left + col * bar_w
        when = iso(start + col * per_column * HOUR_MS)
        for index, n in enumerate(stack):
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            label = f"{series[index][0]} — {when}: {n} call{'s' if n != 1 else ''}"
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(bar_w - 0.5, 0.8):.2f}" height="{h:.2f}"'
                f' fill="{series[index][1]}"><title>{_e(label)}</title></rect>'
            )
    leak = report.leak.time_ms if report.leak is not None else None
    if leak is not None and start <= leak <= start + columns * per_column * HOUR_MS:
        x = left + (leak - start) / (per_column * HOUR_MS) * bar_w
        parts.append(
            f'<line x1="{x:.2f}" y1="{top}" x2="{x:.2f}" y2="{top + plot_h}" stroke="#b42318"'
            f' stroke-dasharray="4 3"><title>suspected leak {_e(iso(leak))}</title></line>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="nw"><i class="sw" style="background:{colour}"></i>{_e(name)}</span>'
        for name, colour, _ in series
    )
    note = f'<p class="muted">Calls per {_e(unit)} (UTC).</p>'
    return f'{"".join(parts)}<div class="legend">{legend}</div>{note}'
