"""``trails list``, ``trails status`` and ``org list`` follow the rules of every listing
(docs/cli.md "Output"), through real processes: piped, whole values tab-separated; on an 80-column
terminal (a real pty), the account id and the trail's name whole, never cut with "…"; JSON keys in
camelCase."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli._proc import clean_env, run
from tests.cli.test_output import _on_terminal
from trailhouse.model.trail import EventRW, Trail, TrailStatus
from trailhouse.storage import open_store

MANAGEMENT, MEMBER, OTHER = "1234567890123456", "1234567890129001", "1234567890129002"
#: Longer than the width the old tables gave the name at 80 columns ("demo-…").
TRAIL = "demo-organization-audit-trail-cn-hangzhou"
PLAIN = "member-own-trail"
BUCKET = "audit-bucket-with-a-long-name-3456"
CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("listings")
    db = f"sqlite:///{home / 't.db'}"
    environment = clean_env(
        home, TRAILHOUSE_DB=db, TRAILHOUSE_DATA_DIR=str(home / "data"), TRAILHOUSE_OSS_DIR=str(home / "oss")
    )
    environment.update(COLUMNS="80", LINES="40")
    for member in (MEMBER, OTHER):
        added = run("org", "add-member", "--management", MANAGEMENT, "--member", member, env=environment)
        assert added.returncode == 0, added.stderr
    (organization,) = json.loads(run("org", "list", "--json", env=environment).stdout)
    store = open_store(db)
    try:
        for account, name, organization_trail in ((MANAGEMENT, TRAIL, True), (MEMBER, PLAIN, False)):
            trail = Trail(
                account,
                name,
                "cn-hangzhou",
                "All",
                EventRW.ALL,
                TrailStatus.ENABLE,
                oss_bucket_name=f"audit-bucket-with-a-long-name-{account[-4:]}",
                oss_key_prefix="actiontrail/prefix",
                sls_project_arn=f"acs:log:cn-hangzhou:{account}:project/audit-project",
                is_organization_trail=organization_trail,
                organization_id=organization["organizationId"] if organization_trail else "",
                create_ms=1_764_000_000_000,
                update_ms=1_764_000_000_000,
            )
            assert store.create_trail(trail, max_per_region=5, max_organization=1) is None
    finally:
        store.close()
    return environment


LISTINGS = {
    "trails list": ("trails", "list"),
    "trails status": ("trails", "status"),
    "org list": ("org", "list"),
}


@pytest.mark.parametrize("listing", LISTINGS)
def test_piped_a_listing_is_tab_separated_and_whole(env: dict[str, str], listing: str) -> None:
    result = run(*LISTINGS[listing], env=env)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == len(header.split("\t")) for row in rows), result.stdout
    assert "…" not in result.stdout
    if listing == "org list":
        assert header.split("\t") == ["OrganizationId", "Management", "Members", "Created"]
        ((organization, management, members, created),) = rows
        assert organization.startswith("rd-") and management == MANAGEMENT
        assert members == f"{MEMBER}, {OTHER}" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created)
    else:
        assert [row[:2] for row in rows] == [[MANAGEMENT, TRAIL], [MEMBER, PLAIN]]
    if listing == "trails list":
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
        assert rows[0][2:7] == [
            "Enable",
            f"oss://{BUCKET}/actiontrail/prefix",
            f"acs:log:cn-hangzhou:{MANAGEMENT}:project/audit-project",
            "All",
            "All",
        ]
        assert rows[0][7].startswith("rd-") and rows[1][7] == ""
    if listing == "trails status":
        assert header.split("\t")[:2] == ["account", "trail"]
        # The bucket was never created: the status says so, in full.
        assert rows[0][3] == f"{BUCKET} (failing)" and rows[0][4] == "never"


@pytest.mark.parametrize("listing", LISTINGS)
def test_on_an_80_column_terminal_ids_and_names_are_whole(env: dict[str, str], listing: str) -> None:
    stdout, stderr = _on_terminal(env, *LISTINGS[listing])
    lines = stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), stdout
    assert "…" not in stdout
    if listing == "org list":
        assert any(MANAGEMENT in line and "rd-" in line for line in lines), stdout
        members = " ".join(lines)
        assert MEMBER in members and OTHER in members, stdout
    else:
        # Each trail on a line of its own that starts with its whole account id and whole name.
        assert any(re.match(rf"{MANAGEMENT}\s+{TRAIL}\s", line) for line in lines), stdout
        assert any(re.match(rf"{MEMBER}\s+{PLAIN}\s", line) for line in lines), stdout
    if "not shown at this terminal width" in stderr:
        assert listing != "org list", stderr  # four short columns fit in 80


def _keys(value: object) -> set[str]:
    found: set[str] = set()
    for row in value if isinstance(value, list) else [value]:
        if isinstance(row, dict):
            found |= set(row) | _keys(list(row.values()))
    return found


def test_their_json_keys_are_camel_case(env: dict[str, str], tmp_path: Path) -> None:
    outputs = {
        "trails list": run("trails", "list", "--json", env=env),
        "trails status": run("trails", "status", "--json", env=env),
        "trails deliver": run("trails", "deliver", "--once", "--json", env=env),
        "org list": run("org", "list", "--json", env=env),
    }
    for command, result in outputs.items():
        # deliver exits 1: the trails' stream has no server configured, which it reports.
        assert result.returncode in ((0, 1) if command == "trails deliver" else (0,)), (
            command,
            result.stderr,
        )
        keys = _keys(json.loads(result.stdout))
        assert keys, command
        assert not sorted(k for k in keys if not CAMEL.fullmatch(k)), (command, keys)
    (row, _) = json.loads(outputs["trails status"].stdout)
    assert row["accountId"] == MANAGEMENT and row["name"] == TRAIL and row["ossBucketStatus"] is False
    (row, _) = json.loads(outputs["trails list"].stdout)
    assert row["accountId"] == MANAGEMENT and row["isOrganizationTrail"] is True and row["eventRW"] == "All"
