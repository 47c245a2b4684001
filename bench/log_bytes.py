"""The Merkle log's bytes per event, the sequencer's CPU per event, and the CPU of a proof, on a
store already filled (``trailhouse ingest``), on SQLite or PostgreSQL:

1. open the store (which applies pending migrations: how long that took is reported);
2. with ``--sequence``: run the sequencer (``service.integrity.log.sequence``, serve's batch)
   until every stored event is logged, alone in this process: CPU and wall per event;
3. the bytes of every table with its indexes (SQLite: ``dbstat``; PostgreSQL:
   ``pg_total_relation_size``, partitions summed), per event;
4. with ``--proofs N``: N inclusion proofs of random events of the largest account (the leaf
   index lookup, the tiles and the hashing): CPU per proof, p50 and p99.

``python -m bench.log_bytes --db sqlite:///store.db --sequence --proofs 2000 --out result.json``

It imports only what the store and the log have offered since the log was added, so that it
runs on an older tree too (``PYTHONPATH=<old tree>/src``) for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from trailhouse.model.times import now_ms
from trailhouse.service.integrity.log import SEQUENCE_BATCH, inclusion, sequence
from trailhouse.service.integrity.note import generate_signer
from trailhouse.storage import open_store


def _sqlite_sizes(path: str) -> tuple[int, dict[str, int]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        owner = dict(
            conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
        )
        sizes: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            if name.startswith("sqlite_autoindex_"):
                table = name.removeprefix("sqlite_autoindex_").rsplit("_", 1)[0]
            sizes[table] = sizes.get(table, 0) + int(size)
        (page,), (free,) = (
            conn.execute("PRAGMA page_size").fetchone(),
            conn.execute("PRAGMA freelist_count").fetchone(),
        )
        sizes["(free pages)"] = int(page) * int(free)
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
    finally:
        conn.close()
    return int(events), sizes


def _postgres_sizes(url: str) -> tuple[int, dict[str, int]]:
    import psycopg

    with psycopg.connect(url) as conn:
        # A partitioned table (events, event_resources) is the sum of its partitions, each with
        # its indexes and TOAST; any other table is its own total.
        rows = conn.execute(
            "SELECT c.relname, CASE WHEN c.relkind = 'p' THEN (SELECT"
            " coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t"
            " WHERE t.isleaf) ELSE pg_total_relation_size(c.oid) END"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        ).fetchall()
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]
    return int(events), {name: int(size) for name, size in rows}


def _sizes(url: str) -> tuple[int, dict[str, int]]:
    if url.startswith("sqlite:///"):
        return _sqlite_sizes(url.removeprefix("sqlite:///"))
    return _postgres_sizes(url)


def run(url: str, *, do_sequence: bool, proofs: int) -> dict[str, Any]:
    result: dict[str, Any] = {"db": url.split("?")[0]}
    started = time.perf_counter()
    store: Any = open_store(url)
    result["open_and_migrate_s"] = round(time.perf_counter() - started, 2)
    signer = generate_signer("bench")
    if do_sequence:
        before = store.log_watermark()
        wall, cpu = time.perf_counter(), time.process_time()
        while sequence(store, signer, now_ms, limit=SEQUENCE_BATCH):
            pass
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        logged = store.log_watermark() - before
        result["sequenced_events"] = logged
        result["sequencer_s"] = round(wall, 2)
        if logged:
            result["sequencer_us_per_event_wall"] = round(1e6 * wall / logged, 2)
            result["sequencer_us_per_event_cpu"] = round(1e6 * cpu / logged, 2)
    events, sizes = _sizes(url)
    result["events"] = events
    result["bytes"] = dict(sorted(sizes.items(), key=lambda kv: -kv[1]))
    result["bytes_per_event"] = {name: round(size / events, 2) for name, size in result["bytes"].items()}
    log_tables = [name for name in sizes if name.startswith("log_")]
    result["log_bytes_per_event"] = round(sum(sizes[n] for n in log_tables) / events, 2)
    result["store_bytes_per_event"] = round(sum(sizes.values()) / events, 2)
    if proofs:
        result["proofs"] = _proofs(store, proofs)
    store.close()
    return result


def _proofs(store: Any, count: int) -> dict[str, Any]:
    """CPU per inclusion proof of random logged events of the largest account."""
    heads = [(store.log_head(account_id=a), a) for a in _accounts(store)]
    head, account = max((h.size, a) for h, a in heads if h is not None)
    rng = random.Random(7)
    indexes = [rng.randrange(head) for _ in range(count)]
    seqs = [store.log_leaf_seqs(account_id=account, start=i, end=i + 1)[0] for i in indexes]
    cpu: list[float] = []
    for seq in seqs:
        started = time.process_time()
        inclusion(store, account, seq)
        cpu.append(time.process_time() - started)
    cpu.sort()
    return {
        "account": account,
        "tree_size": head,
        "count": count,
        "cpu_ms_p50": round(1e3 * statistics.median(cpu), 3),
        "cpu_ms_p99": round(1e3 * cpu[int(0.99 * (len(cpu) - 1))], 3),
        "cpu_ms_mean": round(1e3 * statistics.fmean(cpu), 3),
    }


def _accounts(store: Any) -> list[str]:
    if hasattr(store, "_read"):
        with store._guard():
            rows = store._read("SELECT DISTINCT t.value FROM log_heads h JOIN terms t ON t.id = h.account")
        return [bytes(r[0]).decode() if isinstance(r[0], bytes | memoryview) else str(r[0]) for r in rows]
    raise SystemExit("an SQL store is needed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="sqlite:///path or postgresql://…")
    parser.add_argument("--sequence", action="store_true", help="log every stored event first")
    parser.add_argument("--proofs", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.db, do_sequence=args.sequence, proofs=args.proofs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
