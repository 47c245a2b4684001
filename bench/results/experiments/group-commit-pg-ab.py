"""HTTP ingest into a 10M PostgreSQL schema, one run per call: 4 producers post 50,000 fresh events
in batches of 1,000 to ``trailhouse serve`` (defaults as bench.run's server) on the schema that
bench/results/experiments/pg-10m-where.py built (``exp_where``).

    PYTHONPATH=<src of the code to measure>:. python bench/results/experiments/group-commit-pg-ab.py LABEL

The serve process imports ``trailhouse`` from where this script did (bench.server.child_env), so
an A/B alternates PYTHONPATH between two archives (group-commit-pg-ab.sh). Each run's events are new
(seeded by its label), on the day after the dataset's; the store grows by 50,000 events per run.
"""

import json
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import psycopg
from bench.dataset import account_ids, read_batches
from bench.loadgen import http_ingest
from bench.server import Server, run_cli

import trailhouse
from trailhouse.demo.generate import generate_events, write_ndjson

BASE = "postgresql://postgres@127.0.0.1:5432/test"
URL = f"{BASE}?options={quote('-csearch_path=exp_where')}"
WORK = Path("/tmp/group-commit-ab")
DAY_MS = 86_400_000


def main() -> None:
    label = sys.argv[1]
    WORK.mkdir(exist_ok=True)
    data_dir = WORK / "data"
    data_dir.mkdir(exist_ok=True)  # holds the master.key of the store (copied from where ingest made it)
    token_file = WORK / "token"
    if not token_file.exists():
        token, _ = run_cli(["tokens", "create", "--all-accounts", "--scope", "ingest", "--db", URL], data_dir)
        token_file.write_text(token["token"])
    manifest = json.loads(Path(sys.argv[2], "manifest.json").read_text())
    path = WORK / f"{label}.ndjson"
    write_ndjson(
        str(path),
        generate_events(
            seed=1000 + zlib.crc32(label.encode()) % 10_000,
            count=50_000,
            end_ms=manifest["slice_end_ms"] + DAY_MS,
            days=1,
            account_ids=account_ids(7),
        ),
    )
    batches = read_batches(str(path), 1000)
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    server = Server(URL, data_dir, WORK / f"serve-{label}.log", log_level="warning")
    server.start()
    try:
        time.sleep(1.0)
        result = http_ingest(server.base_url, token_file.read_text().strip(), batches, 4)
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "label": label,
                "trailhouse": str(Path(trailhouse.__file__).parent),
                "events_per_s": result["events_per_second"],
                "accepted": result["accepted"],
                "errors": result["errors"],
                "request_p50_ms": result["request_latency_ms"]["p50"],
                "request_p99_ms": result["request_latency_ms"]["p99"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
