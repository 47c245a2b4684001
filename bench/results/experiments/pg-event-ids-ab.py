"""What event_ids' random primary key costs PostgreSQL's ingest of batches of 1,000 into a full store.

    PYTHONPATH=. python bench/results/experiments/pg-event-ids-ab.py bench/data/s7-n10000000-e…

A fresh schema ``exp_dedupe`` of the local PostgreSQL takes the dataset's files by ``trailhouse
ingest --workers 1``; then three slices of 50,000 fresh events (one day each after the dataset) are
appended in process in batches of 1,000, decode included: with the primary key, without it (and
without the dedupe's look-up), and with it rebuilt. The schema is left for a look; drop it after.
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from bench.batch_layout import _ingest
from bench.dataset import account_ids

from trailhouse.demo.generate import generate_events, write_ndjson
from trailhouse.storage.postgres import PostgresStore

BASE = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "exp_dedupe"
DAY_MS = 86_400_000


def main() -> None:
    data = sys.argv[1]
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
    url = f"{BASE}?options={quote(f'-csearch_path={SCHEMA}')}"
    manifest = json.loads(Path(data, "manifest.json").read_text())
    started = time.time()
    parts = [p["path"] for p in manifest["parts"]]
    subprocess.run(
        [sys.executable, "-m", "trailhouse", "ingest", "--db", url, "--workers", "1", *parts], check=True
    )
    print("built in", round(time.time() - started), "s", flush=True)
    slices = []
    for i, seed in enumerate((101, 102, 103)):
        path = f"/tmp/pg-fresh-{i}.ndjson"
        end = manifest["slice_end_ms"] + DAY_MS * (i + 1)
        write_ndjson(
            path, generate_events(seed=seed, count=50_000, end_ms=end, days=1, account_ids=account_ids(7))
        )
        slices.append(path)

    def run(label: str, path: str, dedupe: bool) -> None:
        store = PostgresStore(url)
        if not dedupe:
            store._stored_event_ids = lambda *args, **kwargs: {}  # type: ignore[method-assign]
        print(label, _ingest(store.append, path, 1000), flush=True)
        store.close()

    run("with pk", slices[0], True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE event_ids DROP CONSTRAINT event_ids_pkey")
    run("without pk (no dedupe)", slices[1], False)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.time()
        conn.execute(
            "ALTER TABLE event_ids ADD CONSTRAINT event_ids_pkey PRIMARY KEY (event_key, account, n)"
        )
        print("pk rebuilt in", round(time.time() - started, 1), "s")
    run("with pk", slices[2], True)


if __name__ == "__main__":
    main()
