"""The Dockerfile, compose file and systemd unit name commands and options that exist.

Docker is not available where the suite runs, so this checks what can be checked without it: the
command each file runs is accepted by the real CLI's parser (``--help`` of that command after
the options it passes), and the compose file is valid YAML with the layout the docs describe.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailhouse.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _accepted(argv: list[str]) -> None:
    result = CliRunner().invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, (argv, result.output)
    for option in (a for a in argv if a.startswith("--")):
        assert option in result.output, (option, argv)


def test_the_dockerfile_runs_trailhouse_serve_with_options_that_exist() -> None:
    text = (ROOT / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["trailhouse"]
    _accepted(cmd)
    assert "USER trailhouse" in text and "VOLUME" in text


def test_the_systemd_unit_in_the_docs_runs_a_command_that_exists() -> None:
    doc = (ROOT / "docs/deployment.md").read_text()
    unit = doc.split("# /etc/systemd/system/trailhouse.service", 1)[1].split("```", 1)[0]
    exec_start = re.search(r"^ExecStart=\S+/trailhouse (.+)$", unit, re.M).group(1)  # type: ignore[union-attr]
    _accepted(exec_start.split())


def test_the_compose_file_has_postgres_redis_and_two_nodes() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "node1", "node2"} <= set(services)
    for node in ("node1", "node2"):
        env = services[node]["environment"]
        assert env["TRAILHOUSE_DB"].startswith("postgresql://")
        assert env["TRAILHOUSE_REDIS"].startswith("redis://")
        assert "TRAILHOUSE_MASTER_KEY" in env
