"""The leaked-key report as one self-contained HTML page (the native API's ``format=html`` and the CLI's).

Almost every string in a report was chosen by whoever held the key (user agents, resource names,
error messages), so every value is escaped with ``html.escape``. The page holds at 900 px: times,
ids and addresses never wrap (``white-space:nowrap``), and each table scrolls in its own box
instead of widening the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from ..service.access_key_report import AccessKeyReport
from .report_chart import chart_svg
from .report_colours import ip_colour
from .report_sections import NOT_IN_RECORD, Cell, Section, ip_anchor, ipc, iso, sections, summary

__all__ = ["report_to_html"]

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem auto;max-width:1100px;
color:#1d2329;padding:0 1rem}
h1{font-size:1.45rem;margin-bottom:.4rem;overflow-wrap:anywhere}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #d0d7de}h3{font-size:1rem;margin-top:1.4rem}
.scroll{overflow-x:auto;max-width:100%;margin:.5rem 0}
table{border-collapse:collapse;min-width:100%}th,td{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid #eaeef2;vertical-align:top}th{background:#f6f8fa;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.w{min-width:14rem}
code,.mono{font-family:ui-monospace,Menlo,monospace}.nw{white-space:nowrap}
.muted{color:#57606a}.alert{background:#fff4e5;border:1px solid #f5c07a;padding:.6rem .8rem;border-radius:6px}
.ip{white-space:nowrap;font-family:ui-monospace,Menlo,monospace}.ip.new{font-weight:700;color:#b42318}
.sw{display:inline-block;width:.75rem;height:.75rem;margin-right:.3rem;border-radius:2px;vertical-align:-1px}
.legend span{display:inline-block;margin-right:1rem}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem .8rem;margin:.4rem 0}
dl.facts dt{color:#57606a}dl.facts dd{margin:0;min-width:0;overflow-x:auto}
details{margin-top:1.2rem}summary{cursor:pointer;font-weight:600;font-size:1.05rem}
""".strip()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# A word with a digit, hyphen, colon or slash is a time, an id or a path: never broken inside.
_WORD = re.compile(r"\S*[0-9:/-]\S*")


def _words(text: str) -> str:
    out, at = [], 0
    for m in _WORD.finditer(text):
        out.append(_e(text[at : m.start()]))
        out.append(f'<span class="nw">{_e(m.group())}</span>')
        at = m.end()
    out.append(_e(text[at:]))
    return "".join(out)


def _cell(c: Cell) -> str:
    text = _e(c.text)
    if c.kind == "list":
        # One item per line; an item wraps between words only, never inside an id or a time.
        return "<br>".join(_words(item) for item in c.text.split("\n"))
    if c.kind == "text":
        text = _words(c.text)
    if c.kind == "ip":
        new = " new" if c.strong else ""
        swatch = f'<i class="sw" style="background:{ip_colour(c.raw)}"></i>'
        inner = f'<span class="ip{new}">{swatch}{text}</span>'
    elif c.kind in ("time", "id"):
        inner = f'<span class="nw mono">{text}</span>'
    else:
        inner = text
    return f'<a href="{_e(c.href)}">{inner}</a>' if c.href else inner


def _cells(cells: Sequence[Cell]) -> str:
    return " ".join(_cell(c) for c in cells)


def _td(c: Cell) -> str:
    if c.kind == "num":
        return f'<td class="n">{_cell(c)}</td>'
    if c.kind == "text" and len(c.text) > 40:
        return f'<td class="w">{_cell(c)}</td>'
    return f"<td>{_cell(c)}</td>"


def _table(sec: Section) -> str:
    # An empty column says nothing; with no rows the headers still show what is listed.
    keep = [i for i in range(len(sec.headers)) if not sec.rows or any(row[i].text for row in sec.rows)]
    head = "".join(f"<th>{_e(sec.headers[i])}</th>" for i in keep)
    body = []
    for full in sec.rows:
        row = [full[i] for i in keep]
        row_id = ""
        if sec.anchor == "ips" and row[0].kind == "ip":
            row_id = f' id="{_e(ip_anchor(row[0].raw))}"'
        body.append(f"<tr{row_id}>{''.join(_td(c) for c in row)}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(keep)}" class="muted">none</td></tr>')
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _section(sec: Section) -> str:
    anchor = f' id="{_e(sec.anchor)}"' if sec.anchor else ""
    facts = ""
    if sec.facts:
        facts = (
            '<dl class="facts">'
            + "".join(f"<dt>{_e(k)}</dt><dd>{_cells(v)}</dd>" for k, v in sec.facts)
            + "</dl>"
        )
    note = f'<p class="muted">{_e(sec.note)}</p>' if sec.note else ""
    more = f'<p class="muted">… and {sec.more} more (the JSON form lists them all).</p>' if sec.more else ""
    inner = facts + note + _table(sec) + more
    if sec.collapsed:
        return f"<details{anchor}><summary>{_e(sec.title)}</summary>{inner}</details>"
    level = sec.level
    return f"<h{level}{anchor}>{_e(sec.title)}</h{level}>{inner}"


def _alert(r: AccessKeyReport) -> str:
    new = sorted(r.new_ips, key=lambda a: a.known_network)
    if not new or r.leak is None or r.leak.time_ms is None:
        return ""
    ips = ", ".join(_cell(ipc(a.ip, True)) for a in new[:5])
    if len(new) > 5:
        ips += f" and {len(new) - 5} more"
    inside = sum(a.known_network for a in new)
    known = f" ({inside} of them in networks the key used before)" if inside else ""
    when = _cell(Cell(iso(r.leak.time_ms), "time"))
    parts = [f"From {when} the key was used from {len(new)} new IP(s){known}: {ips}."]
    if r.created:
        made = ", ".join(_cell(Cell(f"{c.kind} {c.name}", "id", "#" + c.anchor)) for c in r.created[:5])
        used = sum(c.activity.calls for c in r.created)
        parts.append(f"It created {made}; they made {used} call(s) since.")
    downloads = [b for b in r.bulk_reads if b.kind == "download" and not b.routine]
    if downloads:
        calls = sum(b.calls for b in downloads)
        parts.append(f'<a href="#bulk-reads">{len(downloads)} bulk download(s)</a>: {calls} calls.')
    if r.dangerous_total:
        parts.append(f'<a href="#dangerous">{r.dangerous_total} dangerous action(s)</a>.')
    return f'<p class="alert">{" ".join(parts)}</p>'


def report_to_html(report: AccessKeyReport) -> str:
    """One self-contained HTML page: inline CSS and SVG, no scripts, no external assets."""
    r = report
    head = "".join(f'<tr><th>{_e(k)}</th><td class="w">{_cells(v)}</td></tr>' for k, v in summary(r))
    alert = _alert(r)
    if r.notice:
        alert = f'<p class="alert">{_e(r.notice)}</p>' + alert
    parts = "".join(_section(sec) for sec in sections(r))
    # A key not in the record has no tables to show, only the empty chart ("No calls in the window").
    body = f"<h2>Calls per hour by source IP</h2>{chart_svg(r)}{parts if r.found else ''}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>AccessKey report — {_e(r.access_key_id)}</title><style>{_CSS}</style></head><body>"
        f'<h1>AccessKey report <span class="mono nw">{_e(r.access_key_id)}</span>'
        f"{'' if r.found else ' — ' + NOT_IN_RECORD}</h1>"
        f'{alert}<div class="scroll"><table>{head}</table></div>{body}'
        f'<p class="muted">Generated by Trailhouse for the window ending {_e(iso(r.until_ms))}.</p>'
        "</body></html>\n"
    )
