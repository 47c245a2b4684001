"""The leaked-key report cut into a summary and titled sections, shared by the HTML page and the console.

Findings come first (what the key created, bulk reads, dangerous actions), then the IPs, and the
routine parts last and collapsed. Long lists are cut at ``ROWS_SHOWN`` with "and N more" (the JSON
form holds them all). Almost every string in a report was chosen by whoever held the key (user
agents, resource names, error messages): cells hold them as plain values, and each renderer escapes
them for its medium.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..model.times import format_wire_time
from ..service.access_key_report import AccessKeyReport
from ..service.report.types import BulkRead, CreatedEntity, ReportEvent

__all__ = [
    "NOT_IN_RECORD",
    "NO_IP",
    "ROWS_SHOWN",
    "SUMMARY_IPS_SHOWN",
    "Cell",
    "Section",
    "capped",
    "ip_anchor",
    "ip_label",
    "ipc",
    "iso",
    "sections",
    "summary",
]

NO_IP = "(no source IP)"
ROWS_SHOWN = 50
SUMMARY_IPS_SHOWN = 10

#: What the summary says of a key the account holds no event of: not "never used" (the store cannot
#: tell an unused key from a mistyped one, or from the wrong account).
NOT_IN_RECORD = "not in the record"


def iso(ms: int | None) -> str:
    return format_wire_time(ms) if ms is not None else ""


def ip_label(ip: str) -> str:
    return ip or NO_IP


def ip_anchor(ip: str) -> str:
    return "ip-" + (ip or "none")


@dataclass(frozen=True, slots=True)
class Cell:
    """One value. ``kind``: "text" (wraps between words only), "time" and "id" (never wrapped or
    cut), "ip" (an address: never wrapped, coloured by a hash of itself, linked to its row), "num"
    (right-aligned), "list" (items separated by newlines, one per line, each whole)."""

    text: str
    kind: str = "text"
    href: str = ""  # an anchor of the page ("#created-user-backup-admin")
    strong: bool = False  # a new IP, a finding
    raw: str = ""  # for an IP: the address itself ("" when the call had none)


def t(text: object) -> Cell:
    return Cell(str(text))


def tm(ms: int | None) -> Cell:
    return Cell(iso(ms), "time")


def ident(text: str, href: str = "") -> Cell:
    return Cell(text, "id", href)


def lst(items: Iterable[str]) -> Cell:
    return Cell("\n".join(items), "list")


def num(n: int) -> Cell:
    return Cell(str(n), "num")


def ipc(ip: str, new: bool = False) -> Cell:
    return Cell(ip_label(ip), "ip", "#" + ip_anchor(ip), new, ip)


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the report, shared by the HTML page and the console output."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[Cell]]
    note: str = ""
    more: int = 0  # rows left out ("and N more")
    collapsed: bool = False  # routine: behind a <details> in the page
    anchor: str = ""
    facts: list[tuple[str, list[Cell]]] = field(default_factory=list)  # label: value lines before the table
    level: int = 2  # heading level in the page


def capped(items: Sequence[str], shown: int) -> str:
    """``a, b, c and 12 more``: a long list stays one line."""
    head = ", ".join(items[:shown])
    return f"{head} and {len(items) - shown} more" if len(items) > shown else head


def summary(r: AccessKeyReport) -> list[tuple[str, list[Cell]]]:
    head: list[tuple[str, list[Cell]]] = [
        ("Account", [ident(r.account_id)]),
        ("AccessKey", [ident(r.access_key_id)]),
    ]
    if not r.found:
        status = f"{NOT_IN_RECORD}: {r.notice}" if r.notice else NOT_IN_RECORD
        return [*head, ("Window (UTC)", [tm(r.since_ms), t("—"), tm(r.until_ms)]), ("Status", [t(status)])]
    leak = r.leak
    if leak is not None and leak.time_ms is not None:
        how = "derived: " + leak.basis if leak.derived else "given"
        head.append(("Suspected leak", [tm(leak.time_ms), t(f"({how})")]))
        if leak.caveat:
            head.append(("Caveat", [t(leak.caveat)]))
    elif leak is not None:
        head.append(("Suspected leak", [t("none found: " + leak.basis)]))
    if r.notice:
        head.append(("Notice", [t(r.notice)]))
    # IPs of networks the key never used come first: they are the attacker's more often.
    new = [a.ip for a in sorted(r.new_ips, key=lambda a: a.known_network)]
    new_cells: list[Cell] = [ipc(ip, True) for ip in new[:SUMMARY_IPS_SHOWN]]
    if len(new) > SUMMARY_IPS_SHOWN:
        new_cells.append(t(f"and {len(new) - SUMMARY_IPS_SHOWN} more"))
    first_new = r.first_use_from_new_ip
    return [
        *head,
        ("Window (UTC)", [tm(r.window_start_ms), t("—"), tm(r.until_ms)]),
        (
            "Calls",
            [
                t(f"{r.total_calls} since"),
                tm(r.since_ms),
                t(f"({r.failed_calls} failed); {r.window_calls} in the window"),
            ],
        ),
        ("New IPs", new_cells or [t("none")]),
        (
            "First call from a new IP",
            [
                tm(first_new.event_time_ms),
                t(f"{first_new.service_name}:{first_new.event_name} from"),
                ipc(first_new.source_ip, True),
            ]
            if first_new
            else [t("none")],
        ),
        ("Created", [ident(f"{c.kind} {c.name}", "#" + c.anchor) for c in r.created] or [t("nothing")]),
        (
            "Bulk reads",
            [lst(_bulk_line(b) for b in _findings(r)[:5])] if _findings(r) else [t("none")],
        ),
        ("Principals", [t(", ".join(r.identities) or "none")]),
        ("First use", [tm(r.first_use.event_time_ms)] if r.first_use else [t("none in the window")]),
        ("Last use", [tm(r.last_use.event_time_ms)] if r.last_use else [t("none in the window")]),
    ]


def _findings(r: AccessKeyReport) -> list[BulkRead]:
    return [b for b in r.bulk_reads if not b.routine]


def _bulk_line(b: BulkRead) -> str:
    names = ", ".join(f"{n} ×{c}" for n, c in b.event_names[:3])
    return f"{b.calls} {b.kind} calls from {ip_label(b.source_ip)} ({names})"


_EVENT_HEADERS = ("Time (UTC)", "Service", "Event", "Source IP", "User", "Error", "Resources", "User agent")
_DANGER_HEADERS = ("Time (UTC)", "Event", "Source IP", "Resources", "Why it matters", "User", "Error")


def _event_row(e: ReportEvent, new: set[str]) -> list[Cell]:
    return [
        tm(e.event_time_ms),
        t(e.service_name),
        ident(e.event_name),
        ipc(e.source_ip, e.source_ip in new),
        ident(e.user_name),
        ident(e.error_code),
        lst(e.resources),
        t(e.user_agent),
    ]


def _cap(rows: list[list[Cell]], total: int | None = None) -> tuple[list[list[Cell]], int]:
    total = len(rows) if total is None else total
    return rows[:ROWS_SHOWN], max(total - min(len(rows), ROWS_SHOWN), 0)


def _bulk_rows(bursts: Iterable[BulkRead], new: set[str]) -> list[list[Cell]]:
    return [
        [
            tm(b.start_ms),
            tm(b.end_ms),
            ipc(b.source_ip, b.source_ip in new or b.new_ip),
            t(b.kind + (" (routine)" if b.routine else "")),
            num(b.calls),
            t(", ".join(f"{n} ×{c}" for n, c in b.event_names)),
            num(b.resource_count),
            lst(b.sample_resources),
        ]
        for b in bursts
    ]


_BULK_HEADERS = (
    "Start (UTC)",
    "End (UTC)",
    "Source IP",
    "Kind",
    "Calls",
    "Events",
    "Resources",
    "First resources",
)


def _created_sections(r: AccessKeyReport, new: set[str]) -> list[Section]:
    out = [
        Section(
            f"What the key created ({r.created_total})",
            ("Created (UTC)", "Kind", "Name", "For user", "From", "Its calls", "From IPs"),
            [
                [
                    tm(c.created.event_time_ms),
                    t(c.kind),
                    ident(c.name, "#" + c.anchor),
                    ident(c.owner),
                    ipc(c.created.source_ip, c.created.source_ip in new),
                    num(c.activity.calls),
                    lst(i.ip + ("" if i.known else " (new)") for i in c.activity.ips),
                ]
                for c in r.created
            ],
            note="Followed one level deep: what these made in turn shows in their dangerous actions."
            if r.created
            else "",
            more=max(r.created_total - len(r.created), 0),
            anchor="created",
        )
    ]
    for c in r.created:
        out.append(_entity_section(c, new))
    return out


def _entity_section(c: CreatedEntity, new: set[str]) -> Section:
    a = c.activity
    facts: list[tuple[str, list[Cell]]] = [
        (
            "Created",
            [
                tm(c.created.event_time_ms),
                t(f"{c.created.event_name} from"),
                ipc(c.created.source_ip, c.created.source_ip in new),
            ],
        )
    ]
    if c.owner:
        facts.append(("For user", [ident(c.owner)]))
    if c.changes:
        facts.append(
            (
                "Then, by the reported key",
                [lst(f"{iso(e.event_time_ms)} {e.event_name} " + " ".join(e.resources) for e in c.changes)],
            )
        )
    span = [tm(a.first_ms), t("—"), tm(a.last_ms)] if a.first_ms is not None else [t("no calls yet")]
    facts.append(("Its activity", [t(f"{a.calls} {a.how} ({a.failed_calls} failed)"), *span]))
    if a.ips:
        facts.append(("From", [ipc(i.ip, not i.known) for i in a.ips]))
    if a.event_names:
        facts.append(("Events", [t(", ".join(f"{n} ×{k}" for n, k in a.event_names[:20]))]))
    if a.bulk_reads:
        facts.append(("Bulk reads", [lst(_bulk_line(b) for b in a.bulk_reads[:5])]))
    return Section(
        f"{c.kind} {c.name}",
        _EVENT_HEADERS,
        [_event_row(e, new) for e in a.events],
        note=f"The first {len(a.events)} of {a.calls} calls." if a.calls > len(a.events) else "",
        anchor=c.anchor,
        facts=facts,
        level=3,
    )


def sections(r: AccessKeyReport) -> list[Section]:
    new = {a.ip for a in r.new_ips}
    # New IPs first, then by calls: the addresses that matter stay above the cut.
    ip_order = sorted(r.ips, key=lambda a: (not a.new, a.known_network, -a.calls, a.ip))
    ip_rows, ip_more = _cap(
        [
            [
                ipc(a.ip, a.new),
                t(("NEW, known network" if a.known_network else "NEW") if a.new else ""),
                tm(a.first_seen_ms),
                tm(a.last_seen_ms),
                num(a.calls),
                num(a.calls_since_leak),
                num(a.failed_calls),
                tm(a.first_seen_ever_ms),
                t(", ".join(a.services)),
                t(" | ".join(a.user_agents)),
            ]
            for a in ip_order
        ]
    )
    danger_rows, danger_more = _cap(
        [
            [
                tm(e.event_time_ms),
                ident(e.event_name, _created_href(r, e)),
                ipc(e.source_ip, e.source_ip in new),
                lst(e.resources),
                t(e.reason),
                ident(e.user_name),
                ident(e.error_code),
            ]
            for e in r.dangerous
        ],
        r.dangerous_total,
    )
    findings = [b for b in r.bulk_reads if not b.routine]
    routine_bulk = [b for b in r.bulk_reads if b.routine]
    bulk_rows, bulk_more = _cap(
        _bulk_rows(findings, new), len(findings) + r.bulk_reads_total - len(r.bulk_reads)
    )
    failed_rows, failed_more = _cap([_event_row(e, new) for e in r.failed], r.failed_calls)
    span_headers = ("First seen", "Last seen", "Calls", "Failed")
    res_rows = {
        routine: _cap(
            [
                [
                    t(x.resource_type),
                    ident(x.resource_name),
                    tm(x.first_seen_ms),
                    tm(x.last_seen_ms),
                    num(x.calls),
                    num(x.failed_calls),
                ]
                for x in r.resources
                if x.routine == routine
            ]
        )
        for routine in (False, True)
    }
    name_rows, name_more = _cap(
        [
            [
                t(n.service_name),
                ident(n.event_name),
                tm(n.first_seen_ms),
                tm(n.last_seen_ms),
                num(n.calls),
                num(n.failed_calls),
            ]
            for n in r.event_names
        ]
    )
    n_routine = sum(x.routine for x in r.resources)
    return [
        *_created_sections(r, new),
        Section(
            f"Bulk reads and downloads ({len(findings) + r.bulk_reads_total - len(r.bulk_reads)})",
            _BULK_HEADERS,
            bulk_rows,
            note="Runs of reads from one IP with less than 10 minutes between calls, 10 calls or more.",
            more=bulk_more,
            anchor="bulk-reads",
        ),
        Section(
            f"Dangerous actions ({r.dangerous_total})",
            _DANGER_HEADERS,
            danger_rows,
            more=danger_more,
            anchor="dangerous",
        ),
        Section(
            f"Source IPs ({len(r.ips)}, {len(new)} new)",
            (
                "IP",
                "New",
                "First seen",
                "Last seen",
                "Calls",
                "Since leak",
                "Failed",
                "First seen ever",
                "Services",
                "User agents",
            ),
            ip_rows,
            more=ip_more,
            anchor="ips",
        ),
        Section(
            f"Failed calls ({r.failed_calls})", _EVENT_HEADERS, failed_rows, more=failed_more, anchor="failed"
        ),
        Section(
            f"Resources touched from new IPs ({len(r.resources) - n_routine})",
            ("Type", "Name", *span_headers),
            res_rows[False][0],
            more=res_rows[False][1],
            anchor="resources",
        ),
        Section(
            f"Routine resources ({n_routine})",
            ("Type", "Name", *span_headers),
            res_rows[True][0],
            note="Touched only from the key's known IPs.",
            more=res_rows[True][1],
            collapsed=True,
        ),
        Section(
            f"Routine bulk reads ({len(routine_bulk)})",
            _BULK_HEADERS,
            _bulk_rows(routine_bulk[:ROWS_SHOWN], new),
            note="The same IP read as much before the leak time.",
            more=max(len(routine_bulk) - ROWS_SHOWN, 0),
            collapsed=True,
        ),
        Section(
            f"Services ({len(r.services)})",
            ("Service", "Name", "名称", *span_headers),
            [
                [
                    t(s.service_name),
                    t(s.service_name_en),
                    t(s.service_name_cn),
                    tm(s.first_seen_ms),
                    tm(s.last_seen_ms),
                    num(s.calls),
                    num(s.failed_calls),
                ]
                for s in r.services
            ],
            collapsed=True,
        ),
        Section(
            f"Event names ({len(r.event_names)})",
            ("Service", "Event", *span_headers),
            name_rows,
            more=name_more,
            collapsed=True,
        ),
    ]


def _created_href(r: AccessKeyReport, e: ReportEvent) -> str:
    for c in r.created:
        if c.created.event_id == e.event_id:
            return "#" + c.anchor
    return ""
