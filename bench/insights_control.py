"""The control for ``bench.insights``' ingest cost: the same stream ingested alone, and beside a
process that only burns CPU (or only follows the log, or only commits small writes), at the
Insights worker's niceness.

    python -m bench.insights --events 1000000 --per-type 20 --dir /dev/shm/insights-bench  # loads the history
    python -m bench.insights_control --dir /dev/shm/insights-bench off burn burn off off burn burn off

If ingest slows as much beside a burner as beside the detector, the cost is the machine's (CPU
shared with the neighbour, whatever it runs), not the detector's reads or locks. Each mode runs on
a fresh copy of the history; the time of each run and the load average are printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

from trailhouse.settings import Settings


def _burn(stop: Any) -> None:
    os.nice(Settings.from_env().insights_worker_nice)
    while not stop.is_set():
        for _ in range(100_000):
            pass


def _follow(path: str, stop: Any) -> None:
    """Read the log as the detector does, without its rules."""
    from trailhouse.storage.sqlite import SqliteStore

    os.nice(Settings.from_env().insights_worker_nice)
    store = SqliteStore(Path(path))
    position = store.newest_seq()
    while not stop.is_set():
        entries = store.read_log(after_seq=position, limit=5000)
        if entries:
            position = entries[-1].seq
        else:
            time.sleep(0.2)
    store.close()


def _write(path: str, stop: Any) -> None:
    """Only the detector's small writes (its lease, five times a second), with no reading or rules:
    each commit by another connection makes the ingesting connection drop its page cache."""
    from trailhouse.storage.sqlite import SqliteStore

    os.nice(Settings.from_env().insights_worker_nice)
    store = SqliteStore(Path(path))
    while not stop.is_set():
        store.take_detector_lease(
            detector="control", owner="control", now_ms=int(time.time() * 1000), ttl_ms=30_000
        )
        time.sleep(0.2)
    store.close()


def main(argv: list[str] | None = None) -> None:
    from trailhouse.model.event import event_from_mapping
    from trailhouse.storage.sqlite import SqliteStore

    from .insight_traffic import normal_traffic

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, required=True, help="the work directory of a bench.insights run")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("modes", nargs="+", choices=("off", "burn", "follow", "write"))
    args = parser.parse_args(argv)
    saved = json.loads((args.dir / "history.json").read_text())
    traffic = normal_traffic(
        seed=saved["seed"],
        count=saved["events"],
        end_ms=saved["end_ms"],
        days=saved["days"],
        stream_days=saved["stream_days"],
    )
    context = multiprocessing.get_context("spawn")
    db = args.dir / "control.db"
    for mode in args.modes:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
            if Path(f"{args.dir / 'history.db'}{suffix}").exists():
                shutil.copy(f"{args.dir / 'history.db'}{suffix}", f"{db}{suffix}")
        store = SqliteStore(db)
        stop = context.Event()
        neighbour = None
        if mode == "burn":
            neighbour = context.Process(target=_burn, args=(stop,))
        elif mode == "follow":
            neighbour = context.Process(target=_follow, args=(str(db), stop))
        elif mode == "write":
            neighbour = context.Process(target=_write, args=(str(db), stop))
        if neighbour is not None:
            neighbour.start()
            time.sleep(2)  # started and busy
        t0 = time.monotonic()
        for start in range(0, len(traffic.stream), args.batch):
            store.append([event_from_mapping(e) for e in traffic.stream[start : start + args.batch]])
        took = time.monotonic() - t0
        stop.set()
        if neighbour is not None:
            neighbour.join()
        store.close()
        print(f"{mode}: {took:.1f} s (load average {os.getloadavg()[0]:.2f})", flush=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
