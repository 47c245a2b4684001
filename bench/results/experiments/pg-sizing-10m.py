"""PostgreSQL's server settings against HTTP ingest into a 10M store: the box's defaults
(``shared_buffers`` 128 MB, ``max_wal_size`` 1 GB) against the sizing docs/deployment.md asks for.

    PYTHONPATH=src:. python bench/results/experiments/pg-sizing-10m.py bench/data/s7-n10000000-e… \
        default-1 sized-1 sized-2 default-2 …

Each label's prefix names its settings (``SETTINGS``): they are written with ``ALTER SYSTEM`` and
the cluster restarted (``pg_ctlcluster``, run as root on the benchmark box), so run it only on a
box whose PostgreSQL is the benchmark's own; the box's settings are reset at the end. A schema
``exp_sizing`` takes the dataset's files by ``trailhouse ingest --workers 1`` unless it holds them
already (under the defaults). Then per run: the cluster restarted with the run's settings, a
``CHECKPOINT``, ``trailhouse serve`` started and its Merkle log waited for, 4 producers posting
50,000 fresh events in batches of 1,000 (a day after the dataset, seeded by the label). Printed per
run: events/s, the request p50/p99, and per event the WAL bytes, full-page images, blocks read from
outside shared buffers and checkpoints. The schema is left for the next run; drop it after.
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from bench.dataset import fresh_day_batches
from bench.loadgen import http_ingest
from bench.server import Server, run_cli

import trailhouse
from trailhouse.storage import open_store

BASE = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "exp_sizing"
URL = f"{BASE}?options={quote(f'-csearch_path={SCHEMA}')}"
WORK = Path("/tmp/pg-sizing")
DAY_MS = 86_400_000
SETTINGS = {
    "default": {},
    # docs/deployment.md: shared_buffers about a quarter of the RAM (24 GiB here), max_wal_size large
    # enough that a checkpoint does not come every few hundred thousand events.
    "sized": {"shared_buffers": "6GB", "max_wal_size": "16GB", "checkpoint_timeout": "15min"},
}
KNOBS = ("shared_buffers", "max_wal_size", "checkpoint_timeout")

_COUNTERS = """
SELECT (SELECT wal_bytes FROM pg_stat_wal), (SELECT wal_fpi FROM pg_stat_wal),
       (SELECT sum(blks_read) FROM pg_stat_database),
       (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)
"""
_NAMES = ("wal_bytes", "wal_fpi", "blks_read", "checkpoints")


def counters() -> dict[str, float]:
    with psycopg.connect(BASE, autocommit=True) as conn:
        return dict(zip(_NAMES, map(float, conn.execute(_COUNTERS).fetchone()), strict=True))


def restart(settings: dict[str, str]) -> None:
    with psycopg.connect(BASE, autocommit=True) as conn:
        for knob in KNOBS:
            if knob in settings:
                conn.execute(f"ALTER SYSTEM SET {knob} = '{settings[knob]}'")
            else:
                conn.execute(f"ALTER SYSTEM RESET {knob}")
    version = next(Path("/etc/postgresql").iterdir()).name
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
    for _ in range(60):
        try:
            with psycopg.connect(BASE, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
                shown = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in KNOBS}
            print("settings", json.dumps(shown), flush=True)
            return
        except psycopg.OperationalError:
            time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back")


def build(manifest: dict, data_dir: Path) -> int:
    with psycopg.connect(BASE, autocommit=True) as conn:
        built = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone()
        if not built:
            conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
    if not built:
        started = time.time()
        parts = [p["path"] for p in manifest["parts"]]
        report, _ = run_cli(["ingest", "--db", URL, "--workers", "1", *parts], data_dir)
        print(
            "built in", round(time.time() - started), "s:", report["eventsPerSecond"], "events/s", flush=True
        )
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute("ANALYZE")
    with psycopg.connect(URL, autocommit=True) as conn:
        return conn.execute("SELECT last_seq FROM log_head WHERE id = 1").fetchone()[0]


def wait_for_log(stored: int, server: Server) -> float:
    store = open_store(URL, create=False)
    started = time.perf_counter()
    try:
        while store.log_watermark() < stored:
            if server.proc is None or server.proc.poll() is not None:
                raise RuntimeError("serve exited")
            time.sleep(1.0)
    finally:
        store.close()
    return time.perf_counter() - started


def run(label: str, manifest: dict, data_dir: Path, token: str) -> None:
    restart(SETTINGS[label.split("-")[0]])
    batches = fresh_day_batches(WORK / f"{label}.ndjson", label, manifest["slice_end_ms"])
    with psycopg.connect(URL, autocommit=True) as conn:
        stored = conn.execute("SELECT last_seq FROM log_head WHERE id = 1").fetchone()[0]
    server = Server(URL, data_dir, WORK / f"serve-{label}.log", log_level="warning")
    server.start()
    try:
        caught_up = wait_for_log(stored, server)
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        before = counters()
        result = http_ingest(server.base_url, token, batches, 4)
        after = counters()
    finally:
        server.stop()
    n = max(result["accepted"], 1)
    print(
        json.dumps(
            {
                "label": label,
                "trailhouse": str(Path(trailhouse.__file__).parent),
                "store_events_before": stored,
                "log_wait_s": round(caught_up, 1),
                "events_per_s": result["events_per_second"],
                "accepted": result["accepted"],
                "errors": result["errors"],
                "request_p50_ms": result["request_latency_ms"]["p50"],
                "request_p99_ms": result["request_latency_ms"]["p99"],
                "wal_bytes_per_event": round((after["wal_bytes"] - before["wal_bytes"]) / n),
                "fpi_per_event": round((after["wal_fpi"] - before["wal_fpi"]) / n, 3),
                "blocks_read_per_event": round((after["blks_read"] - before["blks_read"]) / n, 3),
                "checkpoints": after["checkpoints"] - before["checkpoints"],
            }
        ),
        flush=True,
    )


def main() -> None:
    manifest = json.loads(Path(sys.argv[1], "manifest.json").read_text())
    WORK.mkdir(exist_ok=True)
    data_dir = WORK / "data"  # holds the store's master.key, made by the ingest below
    data_dir.mkdir(exist_ok=True)
    try:
        restart(SETTINGS["default"])
        print("store events:", build(manifest, data_dir), flush=True)
        token_file = WORK / "token"
        if not token_file.exists():
            token, _ = run_cli(
                ["tokens", "create", "--all-accounts", "--scope", "ingest", "--db", URL], data_dir
            )
            token_file.write_text(token["token"])
        for label in sys.argv[2:]:
            run(label, manifest, data_dir, token_file.read_text().strip())
    finally:
        restart(SETTINGS["default"])


if __name__ == "__main__":
    main()
