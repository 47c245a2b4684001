"""`trailhouse copy` moves the demo from SQLite to PostgreSQL; every LookupEvents answer stays the same."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import LiveServer, pg_schema_url
from trailhouse.cli import app as cli_app
from trailhouse.demo.story import DEMO_ACCOUNT

pytestmark = pytest.mark.e2e


def walk(client: Any, models: Any, attrs: list[tuple[str, str]], direction: str) -> list[dict[str, Any]]:
    """Every event of a 2020-07-06 query, page by page."""
    events: list[dict[str, Any]] = []
    token = None
    while True:
        body = client.lookup_events(
            models.LookupEventsRequest(
                max_results="50",
                direction=direction,
                next_token=token,
                lookup_attribute=[
                    models.LookupEventsRequestLookupAttribute(key=k, value=v) for k, v in attrs
                ],
            )
        ).body
        events += body.events
        token = body.next_token
        if not token:
            return events


def test_copy_keeps_every_answer(
    tmp_path: Path,
    pg_available: str,
    server_factory: Callable[..., LiveServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alibabacloud_actiontrail20200706 import models
    from alibabacloud_actiontrail20200706.client import Client
    from alibabacloud_tea_openapi.models import Config

    master = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("TRAILHOUSE_MASTER_KEY", master)  # the CLI and both servers share it
    sqlite_url = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    loaded = runner.invoke(cli_app, ["demo", "--db", sqlite_url, "--count", "1200", "--json"])
    assert loaded.exit_code == 0, loaded.output
    demo = json.loads(loaded.output)
    with pg_schema_url(pg_available) as pg_url:
        copied = runner.invoke(cli_app, ["copy", "--from", sqlite_url, "--to", pg_url])
        assert copied.exit_code == 0, copied.output
        assert "already there" in copied.output
        again = runner.invoke(cli_app, ["copy", "--from", sqlite_url, "--to", pg_url])
        assert again.exit_code == 0 and "copied 0 events" in again.output  # idempotent

        answers = []
        for url in (sqlite_url, pg_url):
            server = server_factory(
                db_url=url, master_key=master, throttle_lookup_events=0, throttle_access_key_usage=0
            )
            client = Client(
                Config(
                    access_key_id=demo["accessKeyId"],
                    access_key_secret=demo["accessKeySecret"],
                    endpoint=server.endpoint,
                    protocol="http",
                )
            )
            queries: list[list[tuple[str, str]]] = [
                [],
                [("EventAccessKeyId", demo["leakedAccessKeyId"])],
                [("EventName", "CreateUser")],
                [("ServiceName", "Ecs"), ("EventRW", "Write")],
                [("SourceIpAddress", demo["attackerIps"][0])],
            ]
            answers.append([walk(client, models, q, d) for q in queries for d in ("BACKWARD", "FORWARD")])
            usage = client.get_access_key_last_used_ips(
                models.GetAccessKeyLastUsedIpsRequest(
                    access_key=demo["leakedAccessKeyId"], service_name="Ecs"
                )
            ).body.to_map()
            usage.pop("RequestId")
            answers[-1].append(usage)
        assert answers[0] == answers[1]
        assert answers[0][0]  # the unfiltered week is not empty
    assert demo["accountId"] == DEMO_ACCOUNT
