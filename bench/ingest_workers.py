"""``trailhouse ingest --workers N`` A/B: the same file into a fresh SQLite store, worker counts
alternating, each run's rate, CPU per process and peak memory read from /proc.

    python -m bench.ingest_workers --events 1000000 --order 0,1,1,0

The dataset is bench.dataset's (cached in bench/data/); stores go to bench/work/. Memory is
sampled every 0.2 s: RSS, and RssAnon, which leaves out the store file's pages that SQLite's
mmap maps (file cache, shared, growing with the store rather than with the process). CPU is
user + system time of the writer and of its descendants (the forkserver and the workers), last
seen before each exits. Results go to bench/results/experiments/ingest-workers-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.dataset import DAY_MS, Dataset, ensure_dataset

ROOT = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _anon(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def measure(command: list[str], env: dict[str, str]) -> dict[str, object]:
    load = os.getloadavg()
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    peak = {"rss_writer": 0, "rss_all": 0, "anon_writer": 0, "anon_all": 0}
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        sample = {"rss_writer": 0, "rss_all": 0, "anon_writer": 0, "anon_all": 0}
        for pid in [proc.pid, *_descendants(proc.pid)]:
            try:
                fields = _stat(pid)
                rss, anon = int(fields[21]) * PAGE, _anon(pid)
            except (OSError, IndexError):
                continue
            cpu[pid] = (int(fields[11]) + int(fields[12])) / TICK
            sample["rss_all"] += rss
            sample["anon_all"] += anon
            if pid == proc.pid:
                sample["rss_writer"], sample["anon_writer"] = rss, anon
        for key, value in sample.items():
            peak[key] = max(peak[key], value)
        time.sleep(0.2)
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    summary = json.loads(out.decode().splitlines()[-1])
    writer_cpu = cpu.pop(proc.pid, 0.0)
    events = summary["accepted"] + summary["duplicates"] + summary["rejected"]
    return {
        "events": events,
        "wall_s": round(wall, 2),
        "events_per_s": summary["eventsPerSecond"],
        "cpu_writer_s": round(writer_cpu, 2),
        "cpu_workers_s": round(sum(cpu.values()), 2),
        "cpu_writer_us_per_event": round(writer_cpu / events * 1e6, 1),
        "cpu_workers_us_per_event": round(sum(cpu.values()) / events * 1e6, 1),
        **{f"peak_{k}_mb": round(v / 2**20) for k, v in peak.items()},
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def todays_dataset(events: int, seed: int) -> Dataset:
    """bench.dataset's dataset ending today, with the slices ``bench.run`` uses (N/10, 1k..100k)."""
    end_day = (int(time.time() * 1000) // DAY_MS) * DAY_MS
    slices = min(100_000, max(1_000, events // 10))
    return ensure_dataset(
        ROOT / "data", seed=seed, count=events, end_day_ms=end_day, http_events=slices, file_events=slices
    )


def work_dir() -> Path:
    """bench/work/, where the experiments keep their stores (git-ignored)."""
    work = ROOT / "work"
    work.mkdir(exist_ok=True)
    return work


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--order", default="0,1,1,0", help="worker counts, run in this order")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite-cache-mib", type=int, default=None, help="TRAILHOUSE_SQLITE_CACHE_MIB")
    args = parser.parse_args()
    data = todays_dataset(args.events, args.seed)
    store = work_dir() / "ingest-workers.db"
    env = dict(os.environ)
    if args.sqlite_cache_mib:
        env["TRAILHOUSE_SQLITE_CACHE_MIB"] = str(args.sqlite_cache_mib)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    runs = []
    for workers in [int(w) for w in args.order.split(",")]:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        command = [sys.executable, "-m", "trailhouse", "ingest", "--db", f"sqlite:///{store}", "--json"]
        result = {"workers": workers, **measure([*command, "--workers", str(workers), *data.part_paths], env)}
        print(json.dumps(result), flush=True)
        runs.append(result)
    out = ROOT / "results" / "experiments" / f"ingest-workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "command": sys.argv,
                "commit": commit,
                "cores": os.cpu_count(),
                "dataset": data.directory,
                "runs": runs,
            },
            indent=1,
        )
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
