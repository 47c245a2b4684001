"""``trailhouse insights``: enable, detect, list, show, types on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailhouse.cli import app
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.storage.sqlite import SqliteStore

runner = CliRunner()
ACCOUNT = "1444529763028279"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRAILHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRAILHOUSE_DB", raising=False)
    return f"sqlite:///{tmp_path / 'cli.db'}"


def stop_logging(store: SqliteStore, event_id: str, key: str) -> None:
    event = {
        "eventId": event_id,
        "eventTime": format_wire_time(now_ms()),
        "eventName": "StopLogging",
        "eventRW": "Write",
        "serviceName": "Actiontrail",
        "sourceIpAddress": "203.0.113.5",
        "requestParameters": {"Name": "audit"},
        "userIdentity": {
            "accountId": ACCOUNT,
            "type": "ram-user",
            "userName": "ops",
            "accessKeyId": key,
        },
    }
    store.append([event_from_mapping(event)])


def test_enable_detect_list_and_show(db: str) -> None:
    store = SqliteStore(db.removeprefix("sqlite:///"))
    stop_logging(store, "before", "LTAIops")  # history: the detector starts after it
    result = runner.invoke(app, ["insights", "enable", "all", "--account", ACCOUNT, "--db", db])
    assert result.exit_code == 0, result.output
    types = runner.invoke(app, ["insights", "types", "--account", ACCOUNT, "--db", db])
    assert "TrailConcealmentInsight" in types.output and " on" in types.output
    assert runner.invoke(app, ["insights", "detect", "--db", db]).exit_code == 0
    empty = runner.invoke(app, ["insights", "list", "--account", ACCOUNT, "--db", db])
    assert empty.exit_code == 4 and "no insights" in empty.output
    # Another key, which never stopped a trail: an insight (the same key again would be routine).
    stop_logging(store, "after", "LTAIother")
    store.close()
    detected = runner.invoke(app, ["insights", "detect", "--db", db])
    assert detected.exit_code == 0 and "2 new insight record(s)" in detected.output, detected.output
    listed = runner.invoke(app, ["insights", "list", "--account", ACCOUNT, "--db", db, "--format", "json"])
    records = json.loads(listed.output)
    assert {r["insightDetails"]["state"] for r in records} == {"Start", "End"}
    assert all(r["triggeringEventIds"] == ["after"] for r in records)
    table = runner.invoke(app, ["insights", "list", "--account", ACCOUNT, "--db", db], env={"COLUMNS": "300"})
    assert "TrailConcealmentInsight" in table.output
    # Piped (CliRunner's stdout is not a terminal): tab-separated, every value whole.
    lines = table.output.strip().splitlines()
    assert lines[0].split("\t")[:4] == ["time", "type", "state", "object"]
    assert [line.split("\t")[2:4] for line in lines[1:]] == [["End", "audit"], ["Start", "audit"]], lines
    wrong = runner.invoke(app, ["insights", "list", "--account", ACCOUNT, "--db", db, "--format", "xml"])
    assert wrong.exit_code == 2 and "--format" in wrong.output
    shown = runner.invoke(
        app, ["insights", "show", records[0]["sharedEventId"], "--account", ACCOUNT, "--db", db]
    )
    assert shown.exit_code == 0, shown.output
    assert [r["insightDetails"]["state"] for r in json.loads(shown.output)] == ["Start", "End"]
    bad = runner.invoke(app, ["insights", "enable", "Nope", "--account", ACCOUNT, "--db", db])
    assert bad.exit_code == 2 and "not an Insights type" in bad.output
