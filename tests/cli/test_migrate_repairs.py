"""`trailhouse migrate` on a store written before eventIds were unique across days says what it repaired."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

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
