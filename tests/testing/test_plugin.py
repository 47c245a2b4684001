"""The pytest plugin as an installed package's user meets it: a test file in a folder of its own,
run by pytest in a new process, gets ``trail`` without any conftest or import (the ``pytest11``
entry point), and ``-p no:trailhouse`` turns it off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_TEST = """
from alibabacloud_actiontrail20200706 import models


def test_uses_the_fixture(trail):
    trail.record({"eventName": "CreateUser", "serviceName": "Ram"})
    events = trail.client_2020.lookup_events(models.LookupEventsRequest()).body.events
    assert [e["eventName"] for e in events] == ["CreateUser"]


def test_each_test_has_its_own_account(trail, trailhouse_emulator):
    assert trail.events() == []
    assert trail.server is trailhouse_emulator
"""


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(folder)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_fixture_comes_with_the_package(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    result = _pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_plugin_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    result = _pytest(tmp_path, "-p", "no:trailhouse")
    assert result.returncode != 0 and "fixture 'trail' not found" in result.stdout


def test_the_plugin_costs_nothing_to_suites_that_do_not_use_it() -> None:
    # Loaded into every pytest run where trailhouse is installed (this repo's too): no hooks, and
    # no server code imported until a test asks for the fixture.
    import trailhouse.testing.plugin as plugin

    assert not [name for name in vars(plugin) if name.startswith("pytest_")]
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, trailhouse.testing.plugin; "
            "print([m for m in ('uvicorn', 'trailhouse.api.app', 'trailhouse.storage') if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "[]"
