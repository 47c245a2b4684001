"""Fixtures of the reliability suite (issue 17): a database per backend, a master key, and the
figures collector whose lines end the run (``pytest_terminal_summary``).

``TRAILHOUSE_RELIABILITY=full`` (``make reliability``) runs the full sizes; without it the same
tests run short, as part of ``make test``. Full runs also write the figures as JSON to
``bench/results/reliability-<UTC time>.json``; ``TRAILHOUSE_RELIABILITY_JSON=path`` writes them
anywhere, in either mode.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import _report
from tests.reliability._harness import new_master_key

RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"


@pytest.fixture
def db_url(backend_url: str) -> str:
    """A SQLite file, or a fresh PostgreSQL schema, for a server of this test (tests/conftest.py)."""
    return backend_url


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


@pytest.fixture
def master_key() -> str:
    return new_master_key()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``report(prop, backend, line, ok=..., **figures)``: one line of the run's summary."""

    def record(prop: str, backend: str, line: str, *, ok: bool, **figures: Any) -> None:
        _report.record(prop, backend, line, ok=ok, test=request.node.nodeid, **figures)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _report.RESULTS:
        return
    terminalreporter.section(f"reliability figures ({_report.MODE} sizes)")
    for figure in _report.RESULTS:
        mark = "ok  " if figure.ok else "FAIL"
        where = f" ({figure.backend})" if figure.backend != "-" else ""
        terminalreporter.write_line(f"{mark} {figure.prop}{where}: {figure.line}")
    target = os.environ.get("TRAILHOUSE_RELIABILITY_JSON")
    if not target and _report.FULL:
        target = str(RESULTS_DIR / f"reliability-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json")
    if target:
        payload = {
            "mode": _report.MODE,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": _git_commit(),
            "cpus": os.cpu_count(),
            "results": _report.as_json(),
        }
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(payload, indent=2) + "\n")
        terminalreporter.write_line(f"figures written to {target}")


def _git_commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            timeout=10,
            check=True,
        )
        return out.stdout.decode().strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
