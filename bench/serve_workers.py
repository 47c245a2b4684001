"""``serve --ingest-workers N`` A/B: the benchmark's HTTP phase ("HTTP POST /api/v1/events (full
store)") into a copy of one loaded store per run, worker counts alternating.

    python -m bench.serve_workers --order 0,1,1,0

With ``--pg-url`` each run gets an empty PostgreSQL schema instead of a loaded store.

Once, into bench/work/: the dataset's ``part-000.ndjson`` (bench.dataset's, default the cached
1M one) loaded with ``trailhouse ingest`` into a template SQLite store, and an ingest token. Each
run copies the template, starts ``trailhouse serve --ingest-workers N`` on it (other settings the
defaults, as bench.run's server), and posts the dataset's HTTP slice with bench.loadgen's
``http_ingest`` (``--producers`` threads, ``--batch`` events per request). A sampler reads /proc
every 0.2 s: CPU (user + system, last seen) and peak RSS of the server's process, of the decode
workers (the forkserver's children), of the forkserver and of the Insights worker. Results go to
bench/results/experiments/serve-workers-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.dataset import read_batches
from bench.ingest_workers import todays_dataset
from bench.loadgen import http_ingest
from bench.profiles import PySpy, py_spy_binary, summarize_collapsed
from bench.server import Server, run_cli

ROOT = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _tree(root: int) -> dict[int, int]:
    """Every process under ``root`` (and itself), by pid, with its parent."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat(int(entry))[1])
            except (OSError, IndexError):
                continue
    found = {root: parents.get(root, 0)}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found[pid] = parent
                grew = True
    return found


class Sampler:
    """CPU and peak RSS of the server's processes, by role, every ``every`` seconds."""

    def __init__(self, server_pid: int, every: float = 0.2) -> None:
        self.server_pid = server_pid
        self.every = every
        self.cpu: dict[int, tuple[str, float]] = {}
        self.peak_rss: dict[str, int] = {}
        self.peak_rss_sum: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _role(self, pid: int, parent: int, tree: dict[int, int]) -> str:
        if pid == self.server_pid:
            return "server"
        command = _cmdline(pid)
        if "forkserver" in command:
            # The workers are the forkserver's forks: its command line is theirs.
            return "decode_workers" if "forkserver" in _cmdline(parent) else "forkserver"
        return "insights" if "insights" in command else "other"

    def sample(self) -> None:
        tree = _tree(self.server_pid)
        sums: dict[str, int] = {}
        for pid, parent in tree.items():
            try:
                fields = _stat(pid)
                role = self._role(pid, parent, tree)
            except (OSError, IndexError):
                continue
            self.cpu[pid] = (role, (int(fields[11]) + int(fields[12])) / TICK)
            rss = int(fields[21]) * PAGE
            self.peak_rss[role] = max(self.peak_rss.get(role, 0), rss)
            sums[role] = sums.get(role, 0) + rss
        for role, total in sums.items():
            self.peak_rss_sum[role] = max(self.peak_rss_sum.get(role, 0), total)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def start(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def cpu_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for role, seconds in self.cpu.values():
            out[role] = out.get(role, 0.0) + seconds
        return out


def _template(work: Path, dataset: Path) -> tuple[Path, Path, str]:
    """The loaded store, its data directory and an ingest token; made once."""
    store, data_dir, token_file = (
        work / "serve-template.db",
        work / "serve-template-data",
        work / "serve-token",
    )
    if not token_file.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        manifest = json.loads((dataset / "manifest.json").read_text())
        url = f"sqlite:///{store}"
        print(f"loading {sum(p['events'] for p in manifest['parts']):,} events into {store}", flush=True)
        run_cli(["ingest", "--db", url, *[p["path"] for p in manifest["parts"]]], data_dir)
        token, _ = run_cli(["tokens", "create", "--all-accounts", "--scope", "ingest", "--db", url], data_dir)
        token_file.write_text(token["token"])
    return store, data_dir, token_file.read_text().strip()


def _fresh_pg(pg_url: str, work: Path) -> tuple[str, Path, str]:
    """An empty schema (dropped and made again), its data directory and an ingest token."""
    from bench.stores import pg_backend

    url = pg_backend(pg_url, "serve_workers").url
    data_dir = work / "serve-run-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    token, _ = run_cli(["tokens", "create", "--all-accounts", "--scope", "ingest", "--db", url], data_dir)
    return url, data_dir, token["token"]


def _sqlite_copy(template: tuple[Path, Path, str], work: Path) -> tuple[str, Path, str]:
    """A copy of the loaded template store and its data directory."""
    store, data_dir, token = template
    run_store, run_data = work / "serve-run.db", work / "serve-run-data"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{run_store}{suffix}").unlink(missing_ok=True)
        if Path(f"{store}{suffix}").exists():
            shutil.copyfile(f"{store}{suffix}", f"{run_store}{suffix}")
    shutil.rmtree(run_data, ignore_errors=True)
    shutil.copytree(data_dir, run_data)
    return f"sqlite:///{run_store}", run_data, token


def one_run(
    workers: int,
    target: tuple[str, Path, str],
    work: Path,
    batches: list[bytes],
    producers: int,
    profile: bool = False,
) -> dict[str, Any]:
    url, run_data, token = target
    server = Server(
        url,
        run_data,
        work / f"serve-workers-{workers}.log",
        log_level="warning",
        extra_args=("--ingest-workers", str(workers)),
    )
    server.start()
    try:
        time.sleep(1.0)  # the decode processes forked at start (and the Insights worker) settle
        load = os.getloadavg()
        sampler = Sampler(server.pid).start()
        before = sampler.cpu_by_role()
        binary = py_spy_binary() if profile else None
        spy = PySpy(binary, server.pid, work / f"serve-workers-{workers}.raw") if binary else None
        result = http_ingest(server.base_url, token, batches, producers)
        sampler.stop()
        raw = spy.stop() if spy else None
        after = sampler.cpu_by_role()
    finally:
        server.stop()
    events = result["events"] or 1
    cpu = {role: round(after.get(role, 0.0) - before.get(role, 0.0), 2) for role in after}
    return {
        "ingest_workers": workers,
        "events": result["events"],
        "errors": result["errors"],
        "first_error": result["first_error"],
        "seconds": result["seconds"],
        "events_per_s": result["events_per_second"],
        "request_p50_ms": result["request_latency_ms"]["p50"],
        "request_p99_ms": result["request_latency_ms"]["p99"],
        "cpu_s": cpu,
        "cpu_us_per_event": {role: round(s / events * 1e6, 1) for role, s in cpu.items()},
        "peak_rss_mb": {role: round(v / 2**20) for role, v in sampler.peak_rss.items()},
        "peak_rss_sum_mb": {role: round(v / 2**20) for role, v in sampler.peak_rss_sum.items()},
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        **({"server_profile": summarize_collapsed(raw, top=25)} if raw else {}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--order", default="0,1,1,0", help="--ingest-workers values, run in this order")
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="a bench.dataset directory (default: today's 1M one, made if missing)",
    )
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--limit", type=int, default=None, help="post only the first N requests")
    parser.add_argument("--profile", action="store_true", help="py-spy the server's process (100 Hz)")
    parser.add_argument(
        "--pg-url",
        default=None,
        help="PostgreSQL instead: a dedicated database (created if missing), schema serve_workers made "
        "empty before each run (not loaded: the HTTP slice into an empty store)",
    )
    args = parser.parse_args()
    work = ROOT / "work"
    work.mkdir(exist_ok=True)
    if args.dataset is None:
        args.dataset = Path(todays_dataset(1_000_000, 7).directory)
    template = None if args.pg_url else _template(work, args.dataset)
    manifest = json.loads((args.dataset / "manifest.json").read_text())
    batches = read_batches(manifest["slice_http"]["path"], args.batch)[: args.limit]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    runs = []
    for workers in [int(w) for w in args.order.split(",")]:
        target = _fresh_pg(args.pg_url, work) if args.pg_url else _sqlite_copy(template, work)  # type: ignore[arg-type]
        result = one_run(workers, target, work, batches, args.producers, args.profile)
        print(json.dumps(result), flush=True)
        runs.append(result)
    out = ROOT / "results" / "experiments" / f"serve-workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "command": sys.argv,
                "commit": commit,
                "cores": os.cpu_count(),
                "dataset": str(args.dataset),
                "producers": args.producers,
                "batch": args.batch,
                "profiled": args.profile,
                "store": "postgresql, empty schema" if args.pg_url else "sqlite, copy of the loaded template",
                "runs": runs,
            },
            indent=1,
        )
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
