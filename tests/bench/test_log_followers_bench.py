"""The benchmarks of what follows the event log (trail delivery, the Merkle log, Insights), end to end at tiny
sizes, so that they cannot rot. The figures are not asserted (this is not a benchmark); the
results must hold what docs/benchmarks.md and docs/insights.md report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import trailhouse

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILHOUSE_")}
    paths = [str(REPO), str(Path(trailhouse.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.e2e
def test_delivery_bench_runs_briefly(tmp_path: Path) -> None:
    out = tmp_path / "delivery.json"
    _run(["bench.delivery", "--rate", "50", "--seconds", "2", "--window", "1", "--out", str(out)], tmp_path)
    result = json.loads(out.read_text())["result"]
    assert result["stream_records"] == result["stream_distinct_events"] == result["ingested"] > 0
    assert result["file_events"] == result["file_distinct_events"] == result["ingested"]
    assert 0 < result["lag_ack_to_stream_s"]["p50"] <= result["lag_ack_to_stream_s"]["p99"]


@pytest.mark.e2e
def test_insights_bench_runs_on_a_small_history(tmp_path: Path) -> None:
    out = tmp_path / "insights.json"
    args = ["bench.insights", "--events", "60000", "--stream-days", "0.5", "--per-type", "1"]
    _run([*args, "--dir", str(tmp_path / "work"), "--out", str(out)], tmp_path)
    result = json.loads(out.read_text())
    assert set(result["recall_percent"]) >= {"IpInsight", "ApiCallRateInsight", "PolicyChangeInsight"}
    assert all(0 <= r <= 100 for r in result["recall_percent"].values())
    assert result["ingest_events_per_s_off"] > 0 and result["ingest_events_per_s_on"] > 0


def test_integrity_bench_runs_briefly(tmp_path: Path) -> None:
    out = tmp_path / "integrity.json"
    _run(["bench.integrity", "--events", "3000", "--out", str(out)], tmp_path)
    result = json.loads(out.read_text())
    assert result["events"] == 3000 and result["verify_events"] > 0
    assert 0 < result["proof_ms_p50"] <= result["proof_ms_p99"]
    assert result["ingest_log_off_events_per_s"] > 0 and result["ingest_log_on_events_per_s"] > 0
