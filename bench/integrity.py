"""Benchmark of the Merkle log (issue 12), on SQLite, in one run:

1. ingest with the log off: ``store.append`` of the events in batches, into a fresh store;
2. ingest with the log on: the same events into another fresh store while the sequencer runs
   beside it (a thread, as in ``serve``), until the last event is under a signed checkpoint;
3. inclusion proofs: ``service.integrity.log.inclusion`` of random events (p50, p99);
4. offline verification: ``verify_log`` over the log-order NDJSON export, read as
   ``trailhouse verify --events`` reads it (events/s).

``python -m bench.integrity --events 1000000 --out bench/results/integrity.json``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from trailhouse.cli.verify import read_ndjson
from trailhouse.demo.generate import generate_events
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import now_ms
from trailhouse.service.integrity.log import SEQUENCE_BATCH, SEQUENCE_PAUSE_S, inclusion, sequence
from trailhouse.service.integrity.note import generate_signer
from trailhouse.service.integrity.verify import verify_log
from trailhouse.storage.sqlite import SqliteStore

BATCH = 1000
#: Alternations of the log-off and log-on stores.
ROUNDS = 8


def _records(count: int) -> list[Any]:
    events = generate_events(seed=12, count=count, end_ms=now_ms(), days=30, accounts=3)
    return [event_from_mapping(e) for e in events]


def _ingest(store: SqliteStore, records: list[Any]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process (every thread: the sequencer's too)."""
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(records), BATCH):
        store.append(records[i : i + BATCH])
    return time.perf_counter() - started, time.process_time() - cpu


def run(count: int, folder: Path) -> dict[str, Any]:
    records = _records(count)
    accounts = sorted({r.account_id for r in records})
    result: dict[str, Any] = {"events": count, "batch": BATCH, "accounts": len(accounts)}

    # Alternate the two stores in rounds (off, on, off, on, …) so that the machine's load, which
    # drifts, weighs on both alike. The sequencer runs only during the "on" rounds, and an "on"
    # round ends when its last event is under a signed checkpoint.
    off = SqliteStore(folder / "off.db")
    on = SqliteStore(folder / "on.db")
    signer = generate_signer("bench")
    running, stop = threading.Event(), threading.Event()

    def sequencer() -> None:
        while not stop.is_set():
            if not running.is_set():
                running.wait(0.1)
                continue
            # As serve's sequencer (api/sequencer.py): a pause after each step that caught up.
            if sequence(on, signer, now_ms) < SEQUENCE_BATCH:
                time.sleep(SEQUENCE_PAUSE_S)

    thread = threading.Thread(target=sequencer)
    thread.start()
    seconds_off = ingest_on = until_logged = cpu_off = cpu_on = 0.0
    step = -(-count // ROUNDS)
    for start in range(0, count, step):
        part = records[start : start + step]
        wall, cpu = _ingest(off, part)
        seconds_off += wall
        cpu_off += cpu
        running.set()
        t0, c0 = time.perf_counter(), time.process_time()
        ingest_on += _ingest(on, part)[0]
        while on.log_watermark() < start + len(part):  # seqs start at 1, one per event
            time.sleep(0.01)
        until_logged += time.perf_counter() - t0
        cpu_on += time.process_time() - c0
        running.clear()
    stop.set()
    thread.join()
    off.close()
    result["rounds"] = ROUNDS
    result["ingest_log_off_events_per_s"] = round(count / seconds_off)
    result["ingest_log_on_events_per_s"] = round(count / ingest_on)
    result["ingest_log_on_until_checkpointed_events_per_s"] = round(count / until_logged)
    result["ingest_overhead_pct"] = round(100 * (ingest_on / seconds_off - 1), 1)
    result["checkpointed_overhead_pct"] = round(100 * (until_logged / seconds_off - 1), 1)
    # CPU seconds, which the machine's other load does not inflate as it does wall time.
    result["ingest_cpu_us_per_event_log_off"] = round(1e6 * cpu_off / count, 1)
    result["ingest_cpu_us_per_event_log_on"] = round(1e6 * cpu_on / count, 1)
    result["cpu_overhead_pct"] = round(100 * (cpu_on / cpu_off - 1), 1)

    # Inclusion proofs of random events of the largest account.
    account = max(accounts, key=lambda a: on.log_head(account_id=a).size)  # type: ignore[union-attr]
    size = on.log_head(account_id=account).size  # type: ignore[union-attr]
    rng = random.Random(7)
    seqs = on.log_leaf_seqs(account_id=account, start=0, end=size)
    times, cpu_times = [], []
    for seq in rng.sample(seqs, min(2000, len(seqs))):
        t0, c0 = time.perf_counter(), time.process_time()
        inclusion(on, account, seq)
        times.append((time.perf_counter() - t0) * 1000)
        cpu_times.append((time.process_time() - c0) * 1000)
    times.sort()
    cpu_times.sort()
    result["proof_cpu_ms_p50"] = round(statistics.median(cpu_times), 3)
    result["proof_cpu_ms_p99"] = round(cpu_times[int(len(cpu_times) * 0.99) - 1], 3)
    result["proof_tree_size"] = size
    result["proof_ms_p50"] = round(statistics.median(times), 3)
    result["proof_ms_p99"] = round(times[int(len(times) * 0.99) - 1], 3)

    # Offline verification of that account's log-order export.
    export = folder / "log.ndjson"
    with open(export, "wb") as fh:
        for start in range(0, size, 5000):
            chunk = on.log_leaf_seqs(account_id=account, start=start, end=min(size, start + 5000))
            bodies = on.events_by_seq(account_id=account, seqs=chunk)
            fh.write(b"".join(bodies[s].body + b"\n" for s in chunk))
    checkpoint = on.log_head(account_id=account).checkpoint  # type: ignore[union-attr]
    t0, c0 = time.perf_counter(), time.process_time()
    # As `trailhouse verify --events` reads and checks it (cli/verify.py).
    report = verify_log(
        verifiers=[signer.verifier], checkpoints=[("head", checkpoint.encode())], events=read_ndjson(export)
    )
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    assert report.ok, report.to_json()
    result["verify_events"] = size
    result["verify_events_per_s"] = round(size / seconds)
    result["verify_cpu_events_per_s"] = round(size / cpu_seconds)
    result["load_average_1m_at_end"] = round(os.getloadavg()[0], 1)
    on.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trailhouse-integrity-") as tmp:
        result = run(args.events, Path(tmp))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
