"""The benchmark harness, end to end on a tiny dataset, so that ``bench/`` cannot rot.

Runs ``python -m bench.run`` as ``make bench`` does (a real ``trailhouse serve``, the CLI, signed
V1/V3 requests, DuckDB) on 3,000 events with SQLite, and checks that the results file has every
section with sane numbers. The figures themselves are not asserted: this is not a benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import trailhouse

pytest.importorskip("duckdb")
pytest.importorskip("httpx")

REPO = Path(__file__).resolve().parents[2]
EVENTS = 3000
SLICE = 1000


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILHOUSE_")}
    paths = [str(REPO), str(Path(trailhouse.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def _run(command: list[str], timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    """A harness command (``python -m bench.<module> …``); on a timeout, where it stood, not only
    that it took too long."""
    try:
        return subprocess.run(
            command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        tail = (stderr or "")[-4000:]
        pytest.fail(f"{command[2]} did not end in {timeout_s:g} s; its last lines:\n{tail}")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "results.json"
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--events",
        str(EVENTS),
        "--backends",
        "sqlite",
        "--http-events",
        str(SLICE),
        "--file-events",
        str(SLICE),
        "--producers",
        "2",
        "--batch",
        "250",
        "--walks",
        "2",
        "--walks-concurrent",
        "1",
        "--clients",
        "2",
        "--pages",
        "3",
        "--data-dir",
        str(tmp / "data"),
        "--work-dir",
        str(tmp / "work"),
        "--out",
        str(out),
        "--keep",
    ]
    proc = _run(command)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Targets (issue 7)" in proc.stdout  # the printed summary
    data: dict[str, Any] = json.loads(out.read_text())
    data["_path"] = str(out)
    return data


def test_run_section_describes_machine_code_and_command(results: dict[str, Any]) -> None:
    run = results["run"]
    for key in ("cpu_model", "cpu_count", "memory_bytes", "python", "sqlite", "duckdb"):
        assert run["machine"][key], key
    assert "--events 3000" in run["command"]
    assert run["started"] <= run["finished"]
    assert len(run["trailhouse_source_sha256"]) == 64
    assert "commit" in run["git"]


def test_dataset_is_the_requested_size(results: dict[str, Any]) -> None:
    ds = results["dataset"]
    assert ds["count"] == EVENTS
    assert sum(p["events"] for p in ds["parts"]) == EVENTS
    assert ds["slice_http"]["events"] == SLICE and ds["slice_file"]["events"] == SLICE
    assert 500 < ds["bytes_per_event"] < 3000


def _sane_rate(phase: dict[str, Any], events: int) -> None:
    assert phase["events"] == events
    assert phase["seconds"] > 0
    assert 0 < phase["events_per_second"] < 10_000_000
    assert phase["mb_per_second"] > 0


def test_sqlite_ingest_phases(results: dict[str, Any]) -> None:
    sqlite = results["backends"]["sqlite"]
    assert "error" not in sqlite, sqlite.get("traceback")
    _sane_rate(sqlite["load"], EVENTS)
    assert sqlite["load"]["accepted"] == EVENTS
    _sane_rate(sqlite["ingest_http"], SLICE)
    assert sqlite["ingest_http"]["accepted"] == SLICE and sqlite["ingest_http"]["errors"] == 0
    assert sqlite["ingest_http"]["request_latency_ms"]["p50"] > 0
    _sane_rate(sqlite["ingest_file"], SLICE)
    assert sqlite["ingest_file"]["accepted"] == SLICE


def test_memory_is_measured(results: dict[str, Any]) -> None:
    sqlite = results["backends"]["sqlite"]
    for phase in ("load", "ingest_file"):
        # A Python process with the store open: more than 20 MiB, far less than 2 GiB here.
        assert 20 * 2**20 < sqlite[phase]["peak_rss_bytes"] < 2 * 2**30
        # The ingest's own processes, read from /proc: not the harness's peak carried over the exec.
        by_process = sqlite[phase]["peak_rss_by_process"]
        assert any("trailhouse" in name and "ingest" in name for name in by_process), by_process
        assert sqlite[phase]["peak_rss_bytes"] == max(by_process.values())
    peaks = sqlite["server_peak_rss_bytes"]
    serve = [p for name, p in peaks.items() if name != "total" and "serve" in name]
    assert serve and all(20 * 2**20 < p < 2 * 2**30 for p in serve)
    assert peaks["total"] == sum(p for name, p in peaks.items() if name != "total")
    from bench.report import render_markdown

    assert "#### Memory (peak resident set)" in render_markdown(results)


def test_sqlite_disk(results: dict[str, Any]) -> None:
    disk = results["backends"]["sqlite"]["disk"]
    assert disk["events"] == EVENTS + 2 * SLICE
    assert 100 < disk["bytes_per_event"] < 10_000
    assert disk["index_bytes"] > 0 and disk["table_bytes"] > 0
    assert "events" in disk["objects"]


def test_every_question_answered_without_errors(results: dict[str, Any]) -> None:
    queries = results["backends"]["sqlite"]["queries"]
    names = {s["name"] for s in results["shapes"]}
    assert names == set(queries)
    assert any(n.startswith("LookupEvents 2017") for n in names)
    assert any(n.startswith("LookupEvents 2020") for n in names)
    assert "GetAccessKeyLastUsedIps / hot key" in names
    for name, q in queries.items():
        for mode in ("one_client", "concurrent"):
            r = q[mode]
            assert r["errors"] == 0, (name, mode, r["first_error"])
            lat = r["latency_ms"]
            assert r["requests"] >= 1 and 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], (
                name,
                mode,
            )
        assert q["concurrent"]["clients"] == 2 and q["concurrent"]["requests_per_second"] > 0


def test_server_answers_match_the_baseline(results: dict[str, Any]) -> None:
    checks = results["backends"]["sqlite"]["cross_check"]
    assert set(checks) == {s["name"] for s in results["shapes"]}
    for name, check in checks.items():
        assert check["first_page_equal"] and check["pages_equal"] == check["pages_compared"], name


def test_baseline_sections(results: dict[str, Any]) -> None:
    base = results["baseline"]
    _sane_rate(base["load"], EVENTS)
    _sane_rate(base["ingest_batches"], SLICE)
    _sane_rate(base["ingest_file"], SLICE)
    assert base["disk"]["events"] == EVENTS + 2 * SLICE and base["disk"]["bytes_per_event"] > 0
    assert base["parquet_sorted_zstd"]["bytes_per_event"] > 0
    filters = {s["filter"] for s in results["shapes"]}
    assert set(base["queries"]) == filters
    for q in base["queries"].values():
        assert q["one_client"]["latency_ms"]["p50"] > 0 and q["concurrent"]["requests_per_second"] > 0
    assert base["picks"]["matches"]["EventAccessKeyId hot"] > 0


def test_targets_are_evaluated(results: dict[str, Any]) -> None:
    targets = results["backends"]["sqlite"]["targets"]
    assert set(targets) == set(results["run"]["targets"])
    assert all(isinstance(t["met"], bool) for t in targets.values())


def test_report_renders_markdown(results: dict[str, Any]) -> None:
    from bench.report import render_markdown

    md = render_markdown(results)
    assert "#### Queries" in md and "| sqlite |" in md


def test_dataset_is_byte_identical_per_seed(tmp_path: Path) -> None:
    from bench.dataset import ensure_dataset

    def make(where: Path) -> list[str]:
        ds = ensure_dataset(
            where,
            seed=3,
            count=500,
            end_day_ms=1_700_000_000_000 // 86_400_000 * 86_400_000,
            http_events=100,
            file_events=100,
            log=lambda _m: None,
        )
        assert ds.slice_http is not None and ds.slice_file is not None
        return [p.sha256 for p in ds.parts] + [ds.slice_http.sha256, ds.slice_file.sha256]

    assert make(tmp_path / "a") == make(tmp_path / "b")


def test_queries_again_on_the_kept_store_with_two_workers(results: dict[str, Any], tmp_path: Path) -> None:
    """``bench.queries`` re-measures the lookups of a kept run with other ``serve`` options."""
    out = tmp_path / "queries.json"
    redis_url = os.environ.get("TRAILHOUSE_TEST_REDIS", "redis://127.0.0.1:6379/13")
    command = [sys.executable, "-m", "bench.queries", results["_path"], "--out", str(out)]
    command += ["--", "--workers", "2", "--redis", redis_url]
    proc = _run(command)
    assert proc.returncode == 0, proc.stderr[-4000:]
    again = json.loads(out.read_text())
    assert again["run"]["serve_args"] == ["--workers", "2", "--redis", redis_url]
    assert set(again["queries"]) == set(results["backends"]["sqlite"]["queries"])
    for name, q in again["queries"].items():
        assert q["one_client"]["errors"] == 0 and q["concurrent"]["errors"] == 0, name
    # Two worker processes do the work: their CPU is summed, not just the idle parent's. (Per shape
    # the figure can round to 0 at this size: /proc counts in 10 ms ticks.)
    spent = sum(
        q["concurrent"]["server_cpu_ms_per_request"] * q["concurrent"]["requests"]
        for q in again["queries"].values()
    )
    assert spent > 0
    assert all(q["concurrent"]["client_cpu_ms_per_request"] >= 0 for q in again["queries"].values())
