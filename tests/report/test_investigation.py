"""The leaked-key report investigates (issue 18): one test per finding, on the demo story and on a
generated busy key (tests/report/_stories.py), in the JSON, HTML and table forms.

Findings: the suspected leak time, derived from the key's networks (and given with --since); the new
IPs it implies; what the key created, followed one level deep with its own activity; bulk reads and
downloads with their counts; routine resources and bursts kept apart; long lists capped; a stable
colour per IP; times and ids never cut in the table form.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from tests.report._stories import (
    ATTACK_MS,
    BACKUP_IP,
    BUSY_KEY,
    END_MS,
    FLEET_IPS,
    LATE_FLEET_IP,
    ROLE,
    THIEF_IPS,
    busy_events,
    demo_events,
    put,
    report_of,
)
from trailhouse.demo.story import demo_story, demo_story_facts
from trailhouse.model.times import DAY_MS, format_wire_time
from trailhouse.render.report_colours import ip_colour
from trailhouse.render.report_html import report_to_html
from trailhouse.render.report_json import report_to_json
from trailhouse.render.report_sections import ROWS_SHOWN
from trailhouse.render.report_table import report_to_table
from trailhouse.service.access_key_report import AccessKeyReport
from trailhouse.service.report.leak_time import derive_leak_time, network_of, parse_leak_time
from trailhouse.storage.base import EventStore
from trailhouse.storage.sqlite import SqliteStore

FACTS = demo_story_facts(end_ms=END_MS)


@pytest.fixture(scope="module")
def sqlite_demo() -> Iterator[EventStore]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "demo.db")
        put(store, demo_events())
        yield store
        store.close()


@pytest.fixture(scope="module")
def demo(sqlite_demo: EventStore) -> AccessKeyReport:
    return report_of(sqlite_demo, FACTS.leaked_key_id)


@pytest.fixture(scope="module")
def busy_store() -> Iterator[EventStore]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "busy.db")
        put(store, busy_events())
        yield store
        store.close()


@pytest.fixture(scope="module")
def busy(busy_store: EventStore) -> AccessKeyReport:
    return report_of(busy_store, BUSY_KEY)


def table_text(report: AccessKeyReport, width: int = 80) -> str:
    console = Console(record=True, width=width, color_system=None)
    report_to_table(report, console)
    return console.export_text()


# ------------------------------------------------------------------------------- the demo story


def test_demo_leak_time_is_the_attackers_first_call(backend_store: EventStore) -> None:
    put(backend_store, demo_events())
    report = report_of(backend_store, FACTS.leaked_key_id)
    leak = report.leak
    assert leak is not None and leak.derived and leak.time_ms == FACTS.first_malicious_ms
    assert leak.trigger is not None and leak.trigger.source_ip == FACTS.attacker_ips[0]
    assert leak.trigger.event_name == "GetCallerIdentity"
    assert set(leak.baseline_ips) == set(FACTS.ci_ips) and leak.caveat == ""
    assert "185.220.101.0/24" in leak.basis
    # New means: not seen from this key before the leak time. The CI runners are not.
    assert [a.ip for a in report.new_ips] == list(FACTS.attacker_ips)
    assert not any(a.known_network for a in report.new_ips)
    assert report.first_use_from_new_ip is not None
    assert report.first_use_from_new_ip.source_ip == FACTS.attacker_ips[0]
    assert report.since_ms == FACTS.first_malicious_ms
    # The CI history still shows, for contrast: the window starts before the leak.
    assert {a.ip for a in report.ips} == set(FACTS.ci_ips) | set(FACTS.attacker_ips)
    assert report.window_calls > report.total_calls > 0


@pytest.mark.parametrize("days_back", range(7))
def test_the_rule_finds_the_demo_leak_whatever_the_weekday(days_back: int) -> None:
    """The CI history differs by the weekday the demo is loaded on; the derived time must not."""
    end = END_MS - days_back * DAY_MS + days_back * 3_700_000
    facts = demo_story_facts(end_ms=end)
    first: dict[str, int] = {}
    for e in demo_story(end_ms=end):
        if e["userIdentity"].get("accessKeyId") == facts.leaked_key_id:
            from trailhouse.model.times import parse_wire_time

            t = parse_wire_time(e["eventTime"])
            first[e["sourceIpAddress"]] = min(first.get(e["sourceIpAddress"], t), t)
    d = derive_leak_time(first, end)
    assert (d.time_ms, d.trigger_ip) == (facts.first_malicious_ms, facts.attacker_ips[0])
    assert {ip for ip, t in first.items() if t >= (d.time_ms or 0)} == set(facts.attacker_ips)


def test_demo_report_follows_the_created_access_key_to_its_use(demo: AccessKeyReport) -> None:
    kinds = {(c.kind, c.name): c for c in demo.created}
    assert set(kinds) == {("User", FACTS.created_user_name), ("AccessKey", FACTS.created_access_key_id)}
    key = kinds[("AccessKey", FACTS.created_access_key_id)]
    assert key.owner == FACTS.created_user_name and key.created.event_name == "CreateAccessKey"
    assert key.created.source_ip == FACTS.attacker_ips[1]
    # Its later use, from the attacker's second address, which the leaked key never used before.
    assert [(i.ip, i.known) for i in key.activity.ips] == [(FACTS.attacker_ips[1], False)]
    assert [e.event_name for e in key.activity.events] == ["GetCallerIdentity", "ListBuckets"]
    assert key.activity.calls == 2 and key.activity.first_ms is not None
    assert key.activity.first_ms > key.created.event_time_ms
    user = kinds[("User", FACTS.created_user_name)]
    # What the leaked key then did to the new user: its key, and administrator rights.
    assert [e.event_name for e in user.changes] == ["CreateAccessKey", "AttachPolicyToUser"]
    assert any(FACTS.attached_policy in r for r in user.changes[1].resources)
    assert user.activity.calls == 2 and demo.created_total == 2


def test_demo_report_flags_the_getobject_burst(demo: AccessKeyReport) -> None:
    downloads = [b for b in demo.bulk_reads if b.kind == "download"]
    assert len(downloads) == 1
    burst = downloads[0]
    assert FACTS.exfiltrated_object_count == 42
    assert burst.event_names == (("GetObject", FACTS.exfiltrated_object_count),)
    assert (burst.calls, burst.resource_count) == (42, 42)
    assert burst.source_ip == FACTS.attacker_ips[1] and burst.new_ip and not burst.routine
    assert all(FACTS.exfiltrated_bucket in r for r in burst.sample_resources)
    # The reconnaissance is a Describe*/List* burst of the first address.
    recon = [b for b in demo.bulk_reads if b.kind == "enumeration"]
    assert [b.source_ip for b in recon] == [FACTS.attacker_ips[0]]
    assert dict(recon[0].event_names)["DescribeInstances"] == 8
    assert demo.bulk_reads[0] is burst  # downloads come first


def test_demo_routine_resources_are_told_from_the_attacked_ones(demo: AccessKeyReport) -> None:
    routine = {r.resource_name for r in demo.resources if r.routine}
    touched = {r.resource_name for r in demo.resources if not r.routine}
    assert any(name.startswith("acme-ci-artifacts/") for name in routine)
    assert not any(name.startswith("acme-ci-artifacts/") for name in touched)
    assert sum(name.startswith(FACTS.exfiltrated_bucket + "/") for name in touched) == 42
    assert set(FACTS.launched_instance_ids) <= touched and FACTS.created_user_name in touched
    assert len(routine) > 100  # the CI's build artifacts would otherwise push the findings down


def test_demo_findings_in_json(demo: AccessKeyReport) -> None:
    data = report_to_json(demo)
    assert data["newIps"] == list(FACTS.attacker_ips)
    assert data["leakTime"]["time"] == FACTS.first_malicious_time and data["leakTime"]["derived"] is True
    assert data["leakTime"]["trigger"]["sourceIpAddress"] == FACTS.attacker_ips[0]
    assert data["since"] == FACTS.first_malicious_time
    created = {c["name"]: c for c in data["created"]}
    key = created[FACTS.created_access_key_id]
    assert key["kind"] == "AccessKey" and key["owner"] == FACTS.created_user_name
    assert key["activity"]["ips"] == [{"ip": FACTS.attacker_ips[1], "calls": 2, "known": False}]
    burst = data["bulkReads"][0]
    assert (burst["kind"], burst["sourceIpAddress"], burst["calls"]) == (
        "download",
        FACTS.attacker_ips[1],
        42,
    )
    assert burst["eventNames"] == [{"eventName": "GetObject", "calls": 42}]
    assert {ip["ip"]: ip["new"] for ip in data["ips"]} == {
        **dict.fromkeys(FACTS.ci_ips, False),
        **dict.fromkeys(FACTS.attacker_ips, True),
    }


def test_demo_findings_in_html(demo: AccessKeyReport) -> None:
    page = report_to_html(demo)
    alert = page.split('<p class="alert">', 1)[1].split("</p>", 1)[0]
    for ip in FACTS.attacker_ips:
        assert ip in alert
    for ip in FACTS.ci_ips:
        assert ip not in alert  # the alert points at the attacker, not at the CI runner
    assert FACTS.first_malicious_time in alert and "42 calls" in alert
    # The created key is linked from the alert, the summary and its CreateAccessKey row to its section.
    anchor = f"created-accesskey-{FACTS.created_access_key_id}"
    assert page.count(f'href="#{anchor}"') >= 3 and f'id="{anchor}"' in page
    section = page.split(f'id="{anchor}"', 1)[1].split("<h3", 1)[0].split("<h2", 1)[0]
    assert "GetCallerIdentity" in section and "ListBuckets" in section and FACTS.attacker_ips[1] in section
    # Each IP row is an anchor; an IP wears the colour of its hash everywhere.
    for ip in (*FACTS.ci_ips, *FACTS.attacker_ips):
        assert f'id="ip-{ip}"' in page
        assert f'style="background:{ip_colour(ip)}"></i>{ip}' in page
    assert "<details><summary>Routine resources" in page


def test_demo_findings_in_the_table_form_at_80_columns(demo: AccessKeyReport) -> None:
    text = table_text(demo, 80)
    # Nothing cut: rich marks a cut value with an ellipsis; only the "and N more" lines hold one.
    assert all(line.startswith("… and ") for line in text.splitlines() if "…" in line)
    for value in (
        FACTS.first_malicious_time,
        FACTS.created_access_key_id,
        *FACTS.attacker_ips,
        *FACTS.launched_instance_ids,
        format_wire_time(demo.bulk_reads[0].start_ms),
    ):
        assert value in text, value
    summary = text.split("What the key created", 1)[0]
    new_line = next(line for line in summary.splitlines() if "New IPs" in line)
    assert all(ip in new_line for ip in FACTS.attacker_ips)
    assert not any(ip in new_line for ip in FACTS.ci_ips)
    assert "GetObject ×42" in text


def test_since_sets_the_leak_time_and_accepts_a_date(sqlite_demo: EventStore) -> None:
    day_before = format_wire_time(FACTS.first_malicious_ms - DAY_MS)[:10]
    report = report_of(sqlite_demo, FACTS.leaked_key_id, since_ms=parse_leak_time(day_before))
    assert report.leak is not None and not report.leak.derived and report.leak.basis == "given (since)"
    assert report.since_ms == parse_leak_time(day_before + "T00:00:00Z")
    assert [a.ip for a in report.new_ips] == list(FACTS.attacker_ips)
    # A time before the key's whole history: every address is new, as the caller asked.
    early = report_of(sqlite_demo, FACTS.leaked_key_id, since_ms=END_MS - 40 * DAY_MS)
    assert {a.ip for a in early.new_ips} == set(FACTS.ci_ips) | set(FACTS.attacker_ips)
    for bad in ("2026-02-30", "2026-11-29T10:00", "yesterday"):
        with pytest.raises(ValueError):
            parse_leak_time(bad)


def test_a_key_without_a_foreign_network_has_no_leak_time() -> None:
    first = {"47.96.183.21": 0, "47.96.183.22": 3 * DAY_MS, "47.96.183.200": 20 * DAY_MS}
    d = derive_leak_time(first, 30 * DAY_MS)
    assert d.time_ms is None and d.baseline_ip_count == 2
    assert (
        network_of("2001:db8:1:2::7") == "2001:db8:1::/48"
        and network_of("ecs.aliyuncs.com") == "ecs.aliyuncs.com"
    )


# ------------------------------------------------------------------------------- a busy key


def test_busy_key_leak_time_and_new_ips(busy: AccessKeyReport) -> None:
    assert busy.leak is not None and busy.leak.time_ms == ATTACK_MS and busy.leak.caveat == ""
    assert busy.leak.baseline_ip_count < len(FLEET_IPS)  # most fleet IPs joined later, in known networks
    assert [a.ip for a in busy.new_ips] == [*THIEF_IPS, LATE_FLEET_IP]
    assert len(busy.ips) == len(FLEET_IPS) + len(THIEF_IPS) + 1
    # New, but inside a network the key used before: listed after the foreign ones, and said so.
    known = {a.ip: a.known_network for a in busy.new_ips}
    assert known == {**dict.fromkeys(THIEF_IPS, False), LATE_FLEET_IP: True}
    data = report_to_json(busy)
    assert {ip["ip"] for ip in data["ips"] if ip["knownNetwork"] and ip["new"]} == {LATE_FLEET_IP}
    alert = report_to_html(busy).split('<p class="alert">', 1)[1].split("</p>", 1)[0]
    assert "4 new IP(s) (1 of them in networks the key used before)" in alert
    assert alert.index(THIEF_IPS[2]) < alert.index(LATE_FLEET_IP)
    summary = table_text(busy, 160).split("What the key created", 1)[0]
    line = next(line for line in summary.splitlines() if "New IPs" in line)
    assert line.index(THIEF_IPS[2]) < line.index(LATE_FLEET_IP)


def test_busy_key_bulk_reads_and_routine_backup(busy: AccessKeyReport) -> None:
    findings = [b for b in busy.bulk_reads if not b.routine]
    downloads = [(b.source_ip, b.calls, b.event_names) for b in findings if b.kind == "download"]
    assert sorted(downloads) == sorted(
        [(ip, 40, (("GetObject", 40),)) for ip in THIEF_IPS] + [(THIEF_IPS[0], 15, (("GetSecretValue", 15),))]
    )
    assert [(b.source_ip, b.kind) for b in findings if b.kind == "enumeration"] == [
        (THIEF_IPS[0], "enumeration")
    ]
    routine = [b for b in busy.bulk_reads if b.routine]
    assert routine and all(b.source_ip == BACKUP_IP and b.calls == 30 for b in routine)


def test_busy_key_created_role_and_its_sessions(busy: AccessKeyReport) -> None:
    [role] = busy.created
    assert (role.kind, role.name) == ("Role", ROLE)
    assert [e.event_name for e in role.changes] == ["AttachPolicyToRole"]
    assert role.activity.calls == 3 and [(i.ip, i.known) for i in role.activity.ips] == [
        (THIEF_IPS[1], False)
    ]


def test_busy_key_lists_are_capped(busy: AccessKeyReport, busy_store: EventStore) -> None:
    page = report_to_html(busy)
    more = len(busy.ips) - ROWS_SHOWN
    assert f"… and {more} more (the JSON form lists them all)." in page
    ip_table = page.split('<h2 id="ips">', 1)[1].split("</table>", 1)[0]
    assert ip_table.count("<tr id=") == ROWS_SHOWN
    # New IPs are listed first, above the cut.
    assert all(f'id="ip-{ip}"' in ip_table for ip in (*THIEF_IPS, LATE_FLEET_IP))
    assert ip_table.index(THIEF_IPS[2]) < ip_table.index(LATE_FLEET_IP)
    assert len(report_to_json(busy)["ips"]) == len(busy.ips)  # the JSON form holds them all
    text = table_text(busy, 120)
    assert f"… and {more} more (--format json lists them all)" in text
    # Routine resources: the fleet's 230 objects are collapsed, the stolen ones open.
    routine = sum(r.routine for r in busy.resources)
    assert routine == 230 and f"<details><summary>Routine resources ({routine})</summary>" in page
    # Asked from the start of the window, hundreds of IPs are new: the summary stays one line.
    everything = report_of(busy_store, BUSY_KEY, since_ms=END_MS - 31 * DAY_MS)
    assert len(everything.new_ips) == len(busy.ips)
    summary = table_text(everything, 200).split("What the key created", 1)[0]
    line = next(line for line in summary.splitlines() if "New IPs" in line)
    assert re.search(rf"and {len(busy.ips) - 10} more\s*│$", line)
    assert len(re.findall(r"\d+\.\d+\.\d+\.\d+", line)) == 10


def test_ip_colours_are_stable_across_reports(busy: AccessKeyReport, demo: AccessKeyReport) -> None:
    """A colour comes from the address, not from its rank in one report."""
    page = report_to_html(busy)
    assert f'style="background:{ip_colour(THIEF_IPS[0])}"></i>{THIEF_IPS[0]}' in page
    assert ip_colour("185.220.101.47") == ip_colour("185.220.101.47") != ip_colour("185.220.101.48")
    for report in (busy, demo):
        chart = report_to_html(report).split("<svg", 1)[1].split("</svg>", 1)[0]
        for a in report.new_ips:
            assert f'fill="{ip_colour(a.ip)}"><title>{a.ip} ' in chart
