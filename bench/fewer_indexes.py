"""The upper bound of moving SQLite's per-event value indexes to per-batch postings: the same file
into a fresh store with every index (as today) and into one without the eleven value indexes
(their lookups would be served by postings instead), alternating.

    python -m bench.fewer_indexes --events 1000000 --order full,bare,bare,full

"bare" drops, after migrating an empty store, every index a postings table would replace; what is
left is the events table (rowid = seq), its time, eventId and requestId indexes, the resources
table and its seq index, usage and terms. The ingest is the product's own (`trailhouse ingest
--workers 1`), so the difference is what those B-trees cost the writer, before the postings' own
cost is added. Results go to bench/results/experiments/fewer-indexes-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.ingest_workers import measure, todays_dataset, work_dir

ROOT = Path(__file__).resolve().parent
#: What per-batch postings would replace (docs/benchmarks.md, "Batch-level layout").
VALUE_INDEXES = (
    "events_name", "events_type", "events_service", "events_user", "events_access_key",
    "events_source_ip", "events_role", "events_sensitive", "events_error",
    "event_resources_name", "event_resources_type",
)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--order", default="full,bare,bare,full")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = todays_dataset(args.events, args.seed)
    store = work_dir() / "fewer-indexes.db"
    url = f"sqlite:///{store}"
    runs = []
    for layout in args.order.split(","):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, "-m", "trailhouse", "migrate", "--create", "--db", url],
            check=True,
            capture_output=True,
        )
        if layout == "bare":
            with sqlite3.connect(store) as conn:
                for index in VALUE_INDEXES:
                    conn.execute(f"DROP INDEX {index}")
        command = [sys.executable, "-m", "trailhouse", "ingest", "--db", url, "--json", "--workers", "1"]
        result = {"layout": layout, **measure([*command, *data.part_paths], dict(os.environ))}
        result["store_mb"] = round(store.stat().st_size / 2**20)
        print(json.dumps(result), flush=True)
        runs.append(result)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out = ROOT / "results" / "experiments" / f"fewer-indexes-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps({"command": sys.argv, "commit": commit, "cores": os.cpu_count(), "runs": runs}, indent=1)
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
