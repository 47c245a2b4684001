"""`trailhouse migrate` on a store written before eventIds were unique across days says what it repaired."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import pg_schema_url
from trailhouse.cli import app

from ..storage.test_hardening import _store_twice_the_old_way


def test_migrate_reports_the_doubles_it_removed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _store_twice_the_old_way(path)
    runner = CliRunner()
    first = runner.invoke(app, ["migrate", "--db", f"sqlite:///{path}"])
    assert first.exit_code == 0, first.output
    assert "repaired: 0006_event_ids_unique_per_account: removed 1 events stored twice" in first.output
    again = runner.invoke(app, ["migrate", "--db", f"sqlite:///{path}"])
    assert again.exit_code == 0
    assert "repaired" not in again.output and "schema up to date" in again.output


def test_migrate_shows_each_pending_migration_as_it_is_applied(tmp_path: Path) -> None:
    from trailhouse.storage.migrations import migrations_for

    path = tmp_path / "old.db"
    _store_twice_the_old_way(path)
    raw = sqlite3.connect(path)
    done = {row[0] for row in raw.execute("SELECT name FROM schema_migrations")}
    raw.close()
    pending = [m.name for m in migrations_for("sqlite") if m.name not in done]
    assert pending
    result = CliRunner().invoke(app, ["migrate", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("applied ")]
    assert [line.split()[1] for line in lines] == pending
    for number, line in enumerate(lines, 1):
        assert re.fullmatch(rf"applied \S+ \({number} of {len(pending)}\) in \d+\.\d s", line), line
    again = CliRunner().invoke(app, ["migrate", "--db", f"sqlite:///{path}"])
    assert "applied" not in again.output and "schema up to date" in again.output


def test_migrate_refuses_a_missing_store_unless_asked_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "mistyped.db"
    refused = CliRunner().invoke(app, ["migrate", "--db", f"sqlite:///{path}"])
    assert refused.exit_code == 1, refused.output
    assert "no store at sqlite:///" in refused.output and "--create" in refused.output
    assert not path.exists()  # a mistyped --db leaves nothing behind
    created = CliRunner().invoke(app, ["migrate", "--create", "--db", f"sqlite:///{path}"])
    assert created.exit_code == 0, created.output
    assert "schema up to date" in created.output and path.exists()
    again = CliRunner().invoke(app, ["migrate", "--db", f"sqlite:///{path}"])
    assert again.exit_code == 0 and "applied" not in again.output, again.output


@pytest.mark.postgres
def test_migrate_on_an_empty_postgres_schema_needs_create(pg_available: str) -> None:
    import psycopg

    with pg_schema_url(pg_available) as url:
        refused = CliRunner().invoke(app, ["migrate", "--db", url])
        assert refused.exit_code == 1 and "--create" in refused.output, refused.output
        with psycopg.connect(url) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchone()
        assert tables == (0,)
        created = CliRunner().invoke(app, ["migrate", "--create", "--db", url])
        assert created.exit_code == 0 and "schema up to date" in created.output, created.output
