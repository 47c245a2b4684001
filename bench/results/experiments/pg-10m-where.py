"""Where PostgreSQL's ingest of batches of 1,000 into a full store spends the server's time.

    PYTHONPATH=. python bench/results/experiments/pg-10m-where.py bench/data/s7-n10000000-e… [label [batch]]

Needs pg_stat_statements loaded (``shared_preload_libraries``) and ``track_io_timing`` on: the
experiment reads the server's own accounts. A schema ``exp_where`` of the local PostgreSQL takes the
dataset's files by ``trailhouse ingest --workers 1`` unless it holds them already; then a slice of
50,000 fresh events (a day after the dataset, seed by the label) is appended in process in batches
of 1,000, decode included. Printed: events/s; per event, WAL bytes, full-page images, shared
buffers read from outside PostgreSQL and written by the backend; the statements by server time;
the relations by blocks read. The schema is left for the next run; drop it after.
"""

import json
import subprocess
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import psycopg
from bench.batch_layout import _ingest
from bench.dataset import account_ids

from trailhouse.demo.generate import generate_events, write_ndjson
from trailhouse.storage.postgres import PostgresStore

BASE = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "exp_where"
DAY_MS = 86_400_000

_COUNTERS = """
SELECT (SELECT wal_bytes FROM pg_stat_wal), (SELECT wal_fpi FROM pg_stat_wal),
       (SELECT buffers_backend FROM pg_stat_bgwriter), (SELECT buffers_checkpoint FROM pg_stat_bgwriter),
       (SELECT buffers_clean FROM pg_stat_bgwriter),
       (SELECT sum(blks_read) FROM pg_stat_database), (SELECT sum(blks_hit) FROM pg_stat_database),
       (SELECT sum(blk_read_time) FROM pg_stat_database), (SELECT checkpoints_timed + checkpoints_req
        FROM pg_stat_bgwriter)
"""
_NAMES = (
    "wal_bytes",
    "wal_fpi",
    "buffers_backend",
    "buffers_checkpoint",
    "buffers_clean",
    "blks_read",
    "blks_hit",
    "blk_read_ms",
    "checkpoints",
)


def counters(conn: psycopg.Connection) -> dict[str, float]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return dict(zip(_NAMES, map(float, conn.execute(_COUNTERS).fetchone()), strict=True))


def main() -> None:
    data = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else "run"
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    url = f"{BASE}?options={quote(f'-csearch_path={SCHEMA}')}"
    manifest = json.loads(Path(data, "manifest.json").read_text())
    with psycopg.connect(BASE, autocommit=True) as conn:
        built = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone()
    if not built:
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
        started = time.time()
        parts = [p["path"] for p in manifest["parts"]]
        subprocess.run(
            [sys.executable, "-m", "trailhouse", "ingest", "--db", url, "--workers", "1", *parts], check=True
        )
        print("built in", round(time.time() - started), "s", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
    seed = 100 + zlib.crc32(label.encode()) % 1000
    path = f"/tmp/pg-where-{label}.ndjson"
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute("SELECT last_seq FROM log_head").fetchone()[0]
    end = manifest["slice_end_ms"] + DAY_MS * (1 + stored // 10_000_000)
    write_ndjson(
        path, generate_events(seed=seed, count=50_000, end_ms=end, days=1, account_ids=account_ids(7))
    )

    store = PostgresStore(url)
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")
        before = counters(conn)
        result = _ingest(store.append, path, batch)
        after = counters(conn)
        n = result["events"]
        print(label, result, flush=True)
        print("per event:", {k: round((after[k] - before[k]) / n, 2) for k in _NAMES})
        rows = conn.execute(
            "SELECT total_exec_time, calls, shared_blks_read, shared_blks_dirtied, shared_blks_written,"
            " wal_fpi, wal_bytes, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12"
        ).fetchall()
        total = sum(r[0] for r in rows)
        print(f"server statement time {total / 1000:.2f} s of {result['seconds']} s")
        for t, calls, rd, dirt, wr, fpi, wal, q in rows:
            print(
                f"  {t / 1000:7.2f} s {calls:6} calls read/ev {rd / n:6.2f} dirtied/ev {dirt / n:6.2f}"
                f" written/ev {wr / n:5.2f} fpi/ev {fpi / n:5.2f} wal B/ev {float(wal) / n:7.0f}  {q}"
            )
        rel = conn.execute(
            "SELECT relname, heap_blks_read + coalesce(idx_blks_read, 0) FROM pg_statio_all_tables"
            " WHERE schemaname = %s ORDER BY 2 DESC LIMIT 8",
            (SCHEMA,),
        ).fetchall()
        print("tables by blocks read:", [(r, b) for r, b in rel if b])
        idx = conn.execute(
            "SELECT indexrelname, idx_blks_read FROM pg_statio_all_indexes WHERE schemaname = %s"
            " ORDER BY 2 DESC LIMIT 12",
            (SCHEMA,),
        ).fetchall()
        print("indexes by blocks read:", [(r, b) for r, b in idx if b])
    store.close()


if __name__ == "__main__":
    main()
