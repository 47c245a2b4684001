"""``trailhouse org`` and ``trailhouse trails list`` on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailhouse.cli import app
from trailhouse.model.trail import EventRW, Trail, TrailStatus
from trailhouse.storage import open_store

runner = CliRunner()
BOSS, STAFF, OTHER = "1000000000000001", "1000000000000002", "1000000000000003"


@pytest.fixture
def db(backend_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRAILHOUSE_DATA_DIR", str(tmp_path / "data"))
    return backend_url


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_org_members_are_declared_listed_and_removed(db: str) -> None:
    code, output = run("org", "add-member", "--management", BOSS, "--member", STAFF, "--db", db)
    assert code == 0, output
    assert run("org", "add-member", "--management", BOSS, "--member", OTHER, "--db", db)[0] == 0
    # Adding again is harmless; the rules refuse a second organization and role swaps.
    assert run("org", "add-member", "--management", BOSS, "--member", STAFF, "--db", db)[0] == 0
    code, output = run("org", "add-member", "--management", OTHER, "--member", "1000000000000009", "--db", db)
    assert code != 0 and "member of" in output
    code, output = run("org", "add-member", "--management", "1000000000000009", "--member", BOSS, "--db", db)
    assert code != 0 and "cannot be a member" in output
    code, output = run("org", "add-member", "--management", BOSS, "--member", "not-an-account", "--db", db)
    assert code != 0 and "not an account id" in output
    code, output = run("org", "list", "--json", "--db", db)
    assert code == 0, output
    (organization,) = json.loads(output)
    assert organization["managementAccountId"] == BOSS
    assert organization["memberAccountIds"] == [STAFF, OTHER]
    assert organization["organizationId"].startswith("rd-")
    assert run("org", "remove-member", "--management", BOSS, "--member", OTHER, "--db", db)[0] == 0
    code, output = run("org", "remove-member", "--management", BOSS, "--member", OTHER, "--db", db)
    assert code != 0 and "not a member" in output
    assert json.loads(run("org", "list", "--json", "--db", db)[1])[0]["memberAccountIds"] == [STAFF]

    # An organization with an organization trail is not dissolved under it.
    store = open_store(db)
    try:
        org_trail = Trail(
            BOSS,
            "org-trail",
            "cn-hangzhou",
            "All",
            EventRW.ALL,
            TrailStatus.ENABLE,
            sls_project_arn="acs:log:cn-hangzhou:1:project/audit",
            is_organization_trail=True,
            organization_id=organization["organizationId"],
        )
        assert store.create_trail(org_trail, max_per_region=5, max_organization=1) is None
        code, output = run("org", "delete", "--management", BOSS, "--db", db)
        assert code != 0 and "org-trail" in output
        assert store.delete_trail(account_id=BOSS, name="org-trail")
    finally:
        store.close()
    assert run("org", "delete", "--management", BOSS, "--db", db)[0] == 0
    assert json.loads(run("org", "list", "--json", "--db", db)[1]) == []


def test_trails_list_shows_every_account_or_one(db: str) -> None:
    store = open_store(db)
    try:
        for account, name, bucket in ((BOSS, "boss-trail", "boss-bucket"), (STAFF, "staff-trail", "")):
            trail = Trail(
                account,
                name,
                "cn-hangzhou",
                "cn-hangzhou",
                EventRW.WRITE,
                TrailStatus.FRESH,
                oss_bucket_name=bucket,
                oss_key_prefix="audit/logs" if bucket else "",
                sls_project_arn="" if bucket else "acs:log:cn-hangzhou:1:project/audit",
                create_ms=1_700_000_000_000,
                update_ms=1_700_000_000_000,
            )
            assert store.create_trail(trail, max_per_region=5, max_organization=1) is None
    finally:
        store.close()
    code, output = run("trails", "list", "--json", "--db", db)
    assert code == 0, output
    rows = json.loads(output)
    assert [(r["accountId"], r["name"]) for r in rows] == [(BOSS, "boss-trail"), (STAFF, "staff-trail")]
    assert rows[0]["status"] == "Fresh" and rows[0]["createTime"] == "2023-11-14T22:13:20Z"
    assert rows[0]["startLoggingTime"] == ""
    code, output = run("trails", "list", "--account", STAFF, "--json", "--db", db)
    assert code == 0 and [r["name"] for r in json.loads(output)] == ["staff-trail"]
    code, output = run("trails", "list", "--db", db)
    assert code == 0, output
    # Not a terminal here: tab-separated, a header and one whole row per trail.
    header, *lines = output.splitlines()
    assert header.split("\t") == [
        "AccountId",
        "Name",
        "Status",
        "OSS",
        "SLS",
        "EventRW",
        "TrailRegion",
        "OrganizationId",
    ]
    assert [line.split("\t") for line in lines] == [
        [BOSS, "boss-trail", "Fresh", "oss://boss-bucket/audit/logs", "", "Write", "cn-hangzhou", ""],
        [
            STAFF,
            "staff-trail",
            "Fresh",
            "",
            "acs:log:cn-hangzhou:1:project/audit",
            "Write",
            "cn-hangzhou",
            "",
        ],
    ]
