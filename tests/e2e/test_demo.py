"""The demo: `trailhouse demo` loads the story, and the README's example queries tell it.

The README promises: which IPs used the leaked key (GetAccessKeyLastUsedIps), everything the key
did (LookupEvents by EventAccessKeyId), who created users (LookupEvents by EventName), the CLI
lookups and the leaked-key report. Each is asked here the way the README asks it, on every backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import LiveServer
from trailhouse.cli import app as cli_app
from trailhouse.demo.load import load_demo
from trailhouse.demo.story import DEMO_ACCOUNT, demo_story_facts
from trailhouse.model.times import now_ms
from trailhouse.service.secrets import Sealer, load_master_key

pytestmark = pytest.mark.e2e
#: One clock for loading and for the facts: the story's times are derived from it.
LOADED_AT = now_ms()


@pytest.fixture
def demo_server(server_factory: Callable[..., LiveServer], backend_url: str) -> tuple[LiveServer, object]:
    server = server_factory(db_url=backend_url, throttle_lookup_events=0, throttle_access_key_usage=0)
    sealer = Sealer(load_master_key(None, Path(server.settings.data_dir or ".")))
    loaded = load_demo(server.store, sealer, count=1500, now=LOADED_AT)
    return server, loaded


def test_readme_queries_tell_the_story(demo_server: tuple[LiveServer, object]) -> None:
    from alibabacloud_actiontrail20200706 import models
    from alibabacloud_actiontrail20200706.client import Client
    from alibabacloud_tea_openapi.models import Config

    server, loaded = demo_server
    facts = demo_story_facts(end_ms=LOADED_AT)
    assert loaded.leaked_key == facts.leaked_key_id == "LTAI5tLeakedDemoKey0001A"  # type: ignore[attr-defined]
    client = Client(
        Config(
            access_key_id=loaded.access_key_id,  # type: ignore[attr-defined]
            access_key_secret=loaded.access_key_secret,  # type: ignore[attr-defined]
            endpoint=server.endpoint,
            protocol="http",
        )
    )
    ips = client.get_access_key_last_used_ips(
        models.GetAccessKeyLastUsedIpsRequest(access_key=facts.leaked_key_id, service_name="Ecs")
    ).body
    used_from = [ip.ip for ip in ips.ips]
    assert set(facts.attacker_ips) & set(used_from)
    for ip in ips.ips:  # attacker IPs appear only from the first malicious call on
        if ip.ip in facts.attacker_ips:
            assert ip.used_timestamp >= facts.first_malicious_ms
    assert set(used_from) <= set(facts.attacker_ips) | set(facts.ci_ips)

    events = client.lookup_events(
        models.LookupEventsRequest(
            max_results="50",
            lookup_attribute=[
                models.LookupEventsRequestLookupAttribute(key="EventAccessKeyId", value=facts.leaked_key_id)
            ],
        )
    ).body
    assert events.events and all(
        e["userIdentity"]["accessKeyId"] == facts.leaked_key_id for e in events.events
    )

    created = client.lookup_events(
        models.LookupEventsRequest(
            lookup_attribute=[models.LookupEventsRequestLookupAttribute(key="EventName", value="CreateUser")]
        )
    ).body
    assert facts.created_user_name in json.dumps(created.events)

    info = client.get_access_key_last_used_info(
        models.GetAccessKeyLastUsedInfoRequest(access_key=facts.leaked_key_id)
    ).body
    assert (info.account_id, info.user_name, info.account_type) == (
        DEMO_ACCOUNT,
        facts.owner_user_name,
        "ram-user",
    )


def test_report_pins_the_story(demo_server: tuple[LiveServer, object]) -> None:
    server, loaded = demo_server
    facts = demo_story_facts(end_ms=LOADED_AT)
    r = httpx.get(
        f"{server.url}/api/v1/access-keys/{facts.leaked_key_id}/report",
        headers={"authorization": f"Bearer {loaded.read_token}"},
        timeout=30,
    )  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    report = r.json()
    ips = {entry["ip"]: entry for entry in report["ips"]}
    for ip in facts.attacker_ips:
        assert ips[ip]["firstSeenMs"] >= facts.first_malicious_ms
    for ip in facts.ci_ips:
        assert ip in ips and ips[ip]["firstSeenMs"] < facts.first_malicious_ms
    dangerous = [e["eventName"] for e in report["dangerous"]]
    for name in ("CreateUser", "CreateAccessKey", "AttachPolicyToUser"):
        assert name in dangerous
    assert (
        dangerous.index("CreateUser")
        < dangerous.index("CreateAccessKey")
        < dangerous.index("AttachPolicyToUser")
    )
    assert all(
        e["sourceIpAddress"] in facts.attacker_ips
        for e in report["dangerous"]
        if e["eventName"] in ("CreateUser", "CreateAccessKey", "AttachPolicyToUser")
    )
    failed = {e["eventName"] for e in report["failed"]}
    assert set(facts.denied_actions) <= failed
    # The report investigates (issue 18): the leak time is derived from the key's history, the new
    # IPs are the attacker's and not the CI runners', the created key is followed to its use, and
    # the download burst is flagged.
    assert report["leakTime"]["derived"] is True
    assert report["leakTime"]["timeMs"] == facts.first_malicious_ms
    assert report["newIps"] == list(facts.attacker_ips)
    created = {c["name"]: c for c in report["created"]}
    key = created[facts.created_access_key_id]
    assert key["kind"] == "AccessKey" and key["owner"] == facts.created_user_name
    assert [ip["ip"] for ip in key["activity"]["ips"]] == [facts.attacker_ips[1]]
    downloads = [b for b in report["bulkReads"] if b["kind"] == "download"]
    assert [(b["sourceIpAddress"], b["calls"]) for b in downloads] == [
        (facts.attacker_ips[1], facts.exfiltrated_object_count)
    ]
    # since= takes a day (UTC midnight) as well as a time, and then no longer derives it.
    day = facts.first_malicious_time[:10]
    given = httpx.get(
        f"{server.url}/api/v1/access-keys/{facts.leaked_key_id}/report",
        params={"since": day},
        headers={"authorization": f"Bearer {loaded.read_token}"},  # type: ignore[attr-defined]
        timeout=30,
    ).json()
    assert given["leakTime"]["derived"] is False and given["since"] == f"{day}T00:00:00Z"
    html = httpx.get(
        f"{server.url}/api/v1/access-keys/{facts.leaked_key_id}/report?format=html",
        headers={"authorization": f"Bearer {loaded.read_token}"},
        timeout=30,
    )  # type: ignore[attr-defined]
    assert html.status_code == 200 and "<svg" in html.text and facts.attacker_ips[0] in html.text
    assert "<script src" not in html.text and "http://" not in html.text.replace("http://www.w3.org", "")


def test_demo_insights_are_raised_by_the_story(
    server_factory: Callable[..., LiveServer], backend_url: str
) -> None:
    """With Insights asked for, the detector reads the history first and then the attack: the
    attacker's two addresses and the policy it attached are insights, nothing of the CI traffic is."""
    from trailhouse.model.insights import InsightQuery
    from trailhouse.service.insights.config import Thresholds

    server = server_factory(db_url=backend_url)
    sealer = Sealer(load_master_key(None, Path(server.settings.data_dir or ".")))
    loaded = load_demo(server.store, sealer, count=1500, now=LOADED_AT, insights=Thresholds())
    facts = demo_story_facts(end_ms=LOADED_AT)
    found = server.store.find_insights(
        account_id=DEMO_ACCOUNT, query=InsightQuery(0, LOADED_AT + 86_400_000, {}), after=None, limit=100
    )
    records = [json.loads(i.body) for _, i in found]
    assert len(records) == loaded.insights > 0
    starts = [r for r in records if r["insightDetails"]["state"] == "Start"]
    ips = {
        r["insightDetails"]["insightObject"]
        for r in starts
        if r["insightDetails"]["insightType"] == "IpInsight"
    }
    assert ips == set(facts.attacker_ips)
    assert any(r["insightDetails"]["insightType"] == "PolicyChangeInsight" for r in starts)
    # Each one names the attacker's address among the attributions of its context.
    for record in starts:
        attributions = record["insightDetails"]["insightContext"]["attributions"]
        sources = [a["insight"][0]["value"] for a in attributions if a["attribute"] == "sourceIpAddress"]
        assert sources and sources[0] in facts.attacker_ips, record


def test_demo_command_and_cli_lookups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAILHOUSE_DATA_DIR", str(tmp_path / "data"))
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    result = runner.invoke(cli_app, ["demo", "--db", db, "--count", "800", "--json"])
    assert result.exit_code == 0, result.output
    loaded = json.loads(result.output)
    assert loaded["accepted"] > 800 and loaded["accessKeyId"].startswith("LTAI")
    again = json.loads(runner.invoke(cli_app, ["demo", "--db", db, "--count", "800", "--json"]).output)
    assert again["accepted"] <= loaded["accepted"] // 10  # the same events are not stored twice
    # Insights: the story raised them once (a Start and an End per point insight), not again.
    assert loaded["insights"] >= 6 and again["insights"] == 0
    listed = runner.invoke(
        cli_app, ["insights", "list", "--account", DEMO_ACCOUNT, "--db", db, "--format", "json"]
    )
    records = json.loads(listed.output)
    assert len(records) == loaded["insights"]
    text = runner.invoke(cli_app, ["demo", "--db", db, "--count", "800", "--port", "9999"]).output
    assert "127.0.0.1:9999" in text and "AccessKeySecret" in text and "get_access_key_last_used_ips" in text

    facts = demo_story_facts(end_ms=now_ms())
    out = runner.invoke(
        cli_app,
        [
            "lookup",
            "--account",
            DEMO_ACCOUNT,
            "--db",
            db,
            "--format",
            "ndjson",
            "SourceIpAddress=185.220.101.0/24",
        ],
    ).output
    events = [json.loads(line) for line in out.splitlines()]
    assert events and all(e["sourceIpAddress"].startswith("185.220.101.") for e in events)
    report = runner.invoke(
        cli_app,
        [
            "access-key",
            "report",
            facts.leaked_key_id,
            "--account",
            DEMO_ACCOUNT,
            "--db",
            db,
            "--format",
            "json",
        ],
    )
    assert report.exit_code == 0, report.output
    assert {ip["ip"] for ip in json.loads(report.output)["ips"]} >= set(facts.attacker_ips)
    assert json.loads(report.output)["newIps"] == list(facts.attacker_ips)
    dated = runner.invoke(
        cli_app,
        [
            "access-key",
            "report",
            facts.leaked_key_id,
            "--account",
            DEMO_ACCOUNT,
            "--db",
            db,
            "--format",
            "json",
        ]
        + ["--since", facts.first_malicious_time[:10]],
    )
    assert dated.exit_code == 0, dated.output
    assert json.loads(dated.output)["leakTime"]["derived"] is False
    bad = runner.invoke(
        cli_app,
        [
            "access-key",
            "report",
            facts.leaked_key_id,
            "--account",
            DEMO_ACCOUNT,
            "--db",
            db,
            "--since",
            "2026-02-30",
        ],
    )
    assert bad.exit_code == 2 and "--since" in bad.output and "2026-02-30" in bad.output
    table = runner.invoke(
        cli_app, ["access-key", "report", facts.leaked_key_id, "--account", DEMO_ACCOUNT, "--db", db]
    )
    assert table.exit_code == 0 and facts.attacker_ips[0] in table.output
