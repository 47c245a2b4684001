"""``python -m bench.console`` end to end on a tiny dataset, so the console benchmark cannot rot.

The figures are not asserted (this is not a benchmark); the results file must hold every page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import trailhouse

REPO = Path(__file__).resolve().parents[2]


def test_console_bench_runs_on_a_tiny_dataset(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILHOUSE_")}
    paths = [str(REPO), str(Path(trailhouse.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    out = tmp_path / "console.json"
    command = [sys.executable, "-m", "bench.console", "--events", "2000", "--repeat", "3"]
    command += ["--data-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / "work"), "--out", str(out)]
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    results = json.loads(out.read_text())
    pages = results["pages"]
    for name in ("search_50_rows", "histogram_90_days", "search_page_with_histogram", "event", "access_key"):
        assert pages[name]["n"] == 3 and 0 < pages[name]["p50_ms"] <= pages[name]["max_ms"]
    assert pages["account_events_90_days"] > 0
    assert set(results["met"]) == {"search_50_rows_p95", "histogram_90_days_p95"}
