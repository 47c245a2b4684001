"""Insights quality and cost: ``python -m bench.insights --events 1000000`` (see ``--help``).

1. Normal traffic from the generator (bench/insight_traffic.py): ``--events`` events over
   ``--days`` days in one account; all but the last ``--stream-days`` are stored as history.
2. ``--per-type`` anomalies of each of the seven types are mixed into the streamed days, at
   distinct minutes (docs/insights.md describes each injection).
3. The history is copied to fresh stores four times, which ingest the stream in batches of
   ``--batch`` at full speed: with the detector off, on, on, off (on: every type enabled and the
   detector stepping in a process of its own, as ``serve``'s Insights worker runs it; or, with
   ``--detector thread``, in a thread of the ingesting process, as ``serve`` ran it before the
   worker). The detector waits for a gap in a busy ingest as the worker does (``--defer``,
   TRAILHOUSE_INSIGHTS_DEFER_S, 20 s; ``--defer 0`` reads beside the ingest at once). The
   difference of the means is the ingest cost of Insights; quality figures come from
   the first "on" run; ``--rounds`` repeats the four runs. A history already loaded in ``--dir``
   with the same parameters is reused.
4. Figures: recall per type (an anomaly counts when an insight of its type names one of its
   events), false insights per 100,000 streamed normal events (Start records naming no injected
   event), detection latency (acknowledgement of the anomaly's batch → commit of its insight)
   p50/p99, the detector's throughput, and the ingest cost.

SQLite only (the detector's reads and writes are the same SQL on PostgreSQL). Results go to
bench/results/<stamp>-insights-<n>.json and are printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from trailhouse.model.event import event_from_mapping
from trailhouse.model.insights import INSIGHT_TYPES
from trailhouse.model.times import now_ms
from trailhouse.service.insights.config import Thresholds
from trailhouse.service.insights.detector import Detector
from trailhouse.settings import Settings
from trailhouse.storage.sqlite import SqliteStore

from .insight_traffic import DAY_MS, MINUTE_MS, Anomaly, anomaly, merged, normal_traffic

RESULTS = Path(__file__).resolve().parent / "results"


def _append(store: SqliteStore, events: list[dict[str, Any]], batch: int) -> list[float]:
    """Append in batches; the monotonic time each batch was acknowledged."""
    acks = []
    for start in range(0, len(events), batch):
        store.append([event_from_mapping(e) for e in events[start : start + batch]])
        acks.append(time.monotonic())
    return acks


def _steal_s() -> float:
    """CPU time the hypervisor gave to others while this VM wanted it (/proc/stat), all CPUs."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Running:
    """The detector stepping in a thread of this process, noting when each insight was committed."""

    def __init__(self, store: SqliteStore, defer_s: float) -> None:
        # As the worker steps it: the same checkpoint interval and deferral (TRAILHOUSE_INSIGHTS_*).
        settings = Settings.from_env()
        self.detector = Detector(
            store,
            Thresholds(),
            owner="bench",
            checkpoint_ms=int(settings.insights_checkpoint_s * 1000),
            defer_ms=int(defer_s * 1000),
        )
        self.committed: list[tuple[float, list[dict[str, Any]]]] = []
        self.processed = 0
        self.busy_s = 0.0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            result = self.detector.step()
            self.busy_s += time.monotonic() - started
            self.processed += result.processed
            if result.insights:
                self.committed.append((time.monotonic(), [orjson.loads(i.body) for i in result.insights]))
            if result.processed == 0:
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


def _detect_in_process(path: str, stop: Any, out: str, defer_s: float) -> None:
    """The child's side of ``RunningProcess``: its own store on the file, the same loop, at the
    CPU priority ``trailhouse insights worker`` takes (TRAILHOUSE_INSIGHTS_WORKER_NICE)."""
    os.nice(Settings.from_env().insights_worker_nice)
    store = SqliteStore(Path(path))
    running = Running(store, defer_s)
    # The loop of Running, in this process's main thread; ``stop`` is the parent's Event.
    running._stop = stop  # noqa: SLF001
    running._run()  # noqa: SLF001
    store.close()
    Path(out).write_bytes(
        orjson.dumps(
            {"committed": running.committed, "processed": running.processed, "busy_s": running.busy_s}
        )
    )


class RunningProcess:
    """The detector stepping in a process of its own, as ``serve``'s Insights worker runs it.

    Commit times are ``time.monotonic()`` in the child: CLOCK_MONOTONIC is one clock for every
    process of the machine, so they compare with this process's acknowledgement times.
    """

    def __init__(self, path: Path, defer_s: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._out = Path(f"{path}.detector.json")
        self._out.unlink(missing_ok=True)
        self.process = context.Process(
            target=_detect_in_process, args=(str(path), self._stop, str(self._out), defer_s), daemon=True
        )
        self.committed: list[tuple[float, list[dict[str, Any]]]] = []
        self.processed = 0
        self.busy_s = 0.0

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self._stop.set()
        self.process.join()
        saved = orjson.loads(self._out.read_bytes())
        self.committed = [(when, records) for when, records in saved["committed"]]
        self.processed, self.busy_s = saved["processed"], saved["busy_s"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--stream-days", type=float, default=3.0)
    parser.add_argument("--per-type", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the off, on, on, off pattern")
    parser.add_argument(
        "--detector",
        choices=("process", "thread"),
        default="process",
        help="where the detector runs beside ingest: a process of its own (serve's worker) or a thread",
    )
    parser.add_argument(
        "--defer",
        type=float,
        default=Settings.from_env().insights_defer_s,
        help="seconds the detector waits for a gap in a busy ingest (TRAILHOUSE_INSIGHTS_DEFER_S; 0: never)",
    )
    args = parser.parse_args(argv)

    work = Path(args.dir or tempfile.mkdtemp(prefix="insights-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / "history.db"
    marker = work / "history.json"
    wanted = {"events": args.events, "days": args.days, "stream_days": args.stream_days, "seed": args.seed}
    reuse = False
    if base.exists() and marker.exists():
        saved = json.loads(marker.read_text())
        reuse = {k: saved.get(k) for k in wanted} == wanted and saved.get("per_type") == args.per_type
    end = json.loads(marker.read_text())["end_ms"] if reuse else now_ms() - 10 * MINUTE_MS
    t0 = time.monotonic()
    traffic = normal_traffic(
        seed=args.seed, count=args.events, end_ms=end, days=args.days, stream_days=args.stream_days
    )
    generated_s = time.monotonic() - t0
    rng = random.Random(args.seed)
    cut = end - int(args.stream_days * DAY_MS)
    slots = rng.sample(range(int(args.stream_days * 24 * 60) - 10), len(INSIGHT_TYPES) * args.per_type)
    anomalies: list[Anomaly] = []
    for i, kind in enumerate(t for t in INSIGHT_TYPES for _ in range(args.per_type)):
        anomalies.append(anomaly(kind, traffic, cut + slots[i] * MINUTE_MS + 1000, n=i))
    history = sorted(
        traffic.history + [e for a in anomalies for e in a.history], key=lambda e: e["eventTime"]
    )
    stream = merged(traffic.stream, anomalies)
    injected = {e["eventId"]: i for i, a in enumerate(anomalies) for e in a.events}
    # The generated million events stay in memory for the whole bench: out of the collector's
    # sight, or each full collection (3-4 s here) lands in whichever run crosses its threshold,
    # which the off, on, on, off order made the first "on" run of every round.
    gc.collect()
    gc.freeze()

    history_s = 0.0
    if not reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{base}{suffix}").unlink(missing_ok=True)
        t0 = time.monotonic()
        store = SqliteStore(base)
        _append(store, history, 5000)
        store.close()
        history_s = time.monotonic() - t0
        marker.write_text(json.dumps({**wanted, "per_type": args.per_type, "end_ms": end}))

    def copy(name: str) -> Path:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work / name}{suffix}").unlink(missing_ok=True)
            if Path(f"{base}{suffix}").exists():
                shutil.copy(f"{base}{suffix}", f"{work / name}{suffix}")
        return work / name

    # Per run: the ingesting thread's CPU seconds and the VM's steal time (seconds, all CPUs).
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    steal: dict[str, list[float]] = {"off": [], "on": []}
    # This process's garbage collector, timed: with a million generated events held in memory, a
    # full collection takes seconds, and lands in whichever run happens to cross its threshold.
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            gc_started[0] = time.monotonic()
        else:
            gc_pauses.append(time.monotonic() - gc_started[0])

    gc.callbacks.append(on_gc)
    gc_s: dict[str, list[float]] = {"off": [], "on": []}

    def stream_off(name: str) -> float:
        off = SqliteStore(copy(name))
        gc_pauses.clear()
        t0, c0, s0 = time.monotonic(), time.thread_time(), _steal_s()
        _append(off, stream, args.batch)
        took = time.monotonic() - t0
        cpu["off"].append(time.thread_time() - c0)
        steal["off"].append(_steal_s() - s0)
        gc_s["off"].append(sum(gc_pauses))
        off.close()
        return took

    def stream_on(name: str) -> tuple[float, float, Running | RunningProcess, dict[int, float]]:
        """The stream with every type enabled and the detector running beside ingest."""
        on = SqliteStore(copy(name))
        for kind in INSIGHT_TYPES:
            on.set_insight_type(
                account_id=traffic.account_id, insight_type=kind, enabled=True, now_ms=now_ms()
            )
        running: Running | RunningProcess = (
            RunningProcess(work / name, args.defer) if args.detector == "process" else Running(on, args.defer)
        )
        running.start()
        while on.detector_checkpoint(detector="insights") is None:
            time.sleep(0.05)
        acked: dict[int, float] = {}
        gc_pauses.clear()
        t0, c0, s0 = time.monotonic(), time.thread_time(), _steal_s()
        for start in range(0, len(stream), args.batch):
            batch = stream[start : start + args.batch]
            on.append([event_from_mapping(e) for e in batch])
            ack = time.monotonic()
            for e in batch:
                if e["eventId"] in injected:
                    acked.setdefault(injected[e["eventId"]], ack)
        took = time.monotonic() - t0
        cpu["on"].append(time.thread_time() - c0)
        steal["on"].append(_steal_s() - s0)
        gc_s["on"].append(sum(gc_pauses))
        head = on.newest_seq()
        while (cp := on.detector_checkpoint(detector="insights")) is None or cp.watermark < head:
            time.sleep(0.2)
        caught_up = time.monotonic() - t0
        time.sleep(1.0)
        running.stop()
        on.close()
        return took, caught_up, running, acked

    # Off, on, on, off: a load that drifts during the run weighs on both sides alike.
    load_start = [round(x, 2) for x in os.getloadavg()]
    # ``--rounds`` repeats the pattern: on a machine shared with other jobs one round is noisy.
    rounds: list[tuple[float, float, float, float]] = []
    for n in range(args.rounds):
        off_1 = stream_off("off.db")
        on_1, caught, ran, ack = stream_on("on.db")
        if n == 0:
            caught_up_s, running, acked = caught, ran, ack
        on_2, _, _, _ = stream_on("on.db")
        off_2 = stream_off("off.db")
        rounds.append((off_1, on_1, on_2, off_2))
    offs = [x for r in rounds for x in (r[0], r[3])]
    ons = [x for r in rounds for x in (r[1], r[2])]
    off_s, on_s = sum(offs) / len(offs), sum(ons) / len(ons)

    detected: dict[int, float] = {}
    false_starts: list[dict[str, Any]] = []
    starts_by_type: Counter[str] = Counter()
    for when, records in running.committed:
        for r in records:
            if r["insightDetails"]["state"] != "Start":
                continue
            starts_by_type[r["insightDetails"]["insightType"]] += 1
            owners = {injected[e] for e in r["triggeringEventIds"] if e in injected}
            if not owners:
                false_starts.append(r)
            for i in owners:
                if anomalies[i].kind == r["insightDetails"]["insightType"]:
                    detected.setdefault(i, when)
    recall: dict[str, float] = {}
    for kind in INSIGHT_TYPES:
        mine = [i for i, a in enumerate(anomalies) if a.kind == kind]
        recall[kind] = round(100 * sum(1 for i in mine if i in detected) / len(mine), 1)
    latencies = sorted(detected[i] - acked[i] for i in detected)

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3)
            if latencies
            else float("nan")
        )

    normal = len(traffic.stream)
    result = {
        "command": f"python -m bench.insights --events {args.events} --days {args.days}"
        f" --stream-days {args.stream_days} --per-type {args.per_type} --batch {args.batch}"
        f" --seed {args.seed} --detector {args.detector} --rounds {args.rounds} --defer {args.defer:g}",
        "detector": args.detector,
        "defer_s": args.defer,
        "detector_nice": Settings.from_env().insights_worker_nice if args.detector == "process" else 0,
        "load_average_start_end": [load_start, [round(x, 2) for x in os.getloadavg()]],
        "events_total": len(history) + len(stream),
        "history_events": len(history),
        "stream_normal_events": normal,
        "anomalies_per_type": args.per_type,
        "generated_s": round(generated_s, 1),
        "history_load_s": round(history_s, 1),
        "recall_percent": recall,
        "false_insights": len(false_starts),
        "false_insights_per_100k_normal": round(100_000 * len(false_starts) / max(1, normal), 2),
        "false_insight_types": dict(Counter(r["insightDetails"]["insightType"] for r in false_starts)),
        "false_insight_examples": [r["explanation"] for r in false_starts[:5]],
        "detection_latency_s": {
            "p50": pct(0.5),
            "p99": pct(0.99),
            "max": latencies[-1] if latencies else None,
        },
        "ingest_events_per_s_off": round(len(stream) / off_s),
        "ingest_events_per_s_on": round(len(stream) / on_s),
        "ingest_cost_percent": round(100 * (on_s - off_s) / off_s, 1),
        "ingest_seconds_off_on_on_off": [[round(x, 1) for x in r] for r in rounds],
        # CPU of the ingesting thread alone (the detector's thread or process not counted): the
        # same work either way, so a difference is the neighbour slowing the CPU, not more work.
        "ingest_cpu_us_per_event_off_on": [
            round(1e6 * sum(cpu[k]) / len(cpu[k]) / len(stream), 1) for k in ("off", "on")
        ],
        "full_gc_s_per_run_off_on": [[round(x, 2) for x in gc_s[k]] for k in ("off", "on")],
        "vm_steal_s_per_run_off_on": [round(sum(steal[k]) / len(steal[k]), 2) for k in ("off", "on")],
        "ingest_cost_percent_by_round": [
            round(100 * ((r[1] + r[2]) - (r[0] + r[3])) / (r[0] + r[3]), 1) for r in rounds
        ],
        "history_reused": reuse,
        "detector_caught_up_s_after_start": round(caught_up_s, 1),
        "detector_busy_s": round(running.busy_s, 1),
        "detector_events_per_busy_s": round(running.processed / max(running.busy_s, 1e-9)),
        "starts_by_type": dict(starts_by_type),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = args.out or RESULTS / f"{stamp}-insights-{args.events}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
