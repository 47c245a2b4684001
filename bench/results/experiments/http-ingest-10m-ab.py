"""HTTP ingest into a loaded store, one run per call: ``trailhouse serve`` (bench.run's defaults) on
the store, its Merkle log waited for, then 4 producers posting 50,000 fresh events in batches of
1,000 (a day after the dataset, seeded by the label). The store grows by 50,000 events per run.

    PYTHONPATH=<src of the code to measure>:. python bench/results/experiments/http-ingest-10m-ab.py \
        DB_URL DATA_DIR DATASET LABEL

DATA_DIR holds the store's master.key (``trailhouse ingest`` made it) and, after the first run, an
ingest token. The serve process imports ``trailhouse`` from where this script did
(bench.server.child_env), so an A/B alternates PYTHONPATH between two archives
(request-key-sqlite-ab.sh).
"""

import json
import sys
import time
from pathlib import Path

from bench.dataset import fresh_day_batches
from bench.loadgen import http_ingest
from bench.server import Server, run_cli

import trailhouse
from trailhouse.storage import open_store

DAY_MS = 86_400_000


def main() -> None:
    url, data_dir, dataset, label = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    work = data_dir / "ab"
    work.mkdir(exist_ok=True)
    token_file = work / "token"
    if not token_file.exists():
        token, _ = run_cli(["tokens", "create", "--all-accounts", "--scope", "ingest", "--db", url], data_dir)
        token_file.write_text(token["token"])
    manifest = json.loads((dataset / "manifest.json").read_text())
    batches = fresh_day_batches(work / f"{label}.ndjson", label, manifest["slice_end_ms"])
    store = open_store(url, create=False)
    stored = store.newest_seq()
    server = Server(url, data_dir, work / f"serve-{label}.log", log_level="warning")
    server.start()
    try:
        started = time.perf_counter()
        while store.log_watermark() < stored:
            if server.proc is None or server.proc.poll() is not None:
                raise RuntimeError("serve exited")
            time.sleep(1.0)
        waited = time.perf_counter() - started
        result = http_ingest(server.base_url, token_file.read_text().strip(), batches, 4)
    finally:
        server.stop()
        store.close()
    print(
        json.dumps(
            {
                "label": label,
                "trailhouse": str(Path(trailhouse.__file__).parent),
                "store_events_before": stored,
                "log_wait_s": round(waited, 1),
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
