"""`trailhouse migrate` on a store written before eventIds were unique across days says what it repaired."""

from __future__ import annotations

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
