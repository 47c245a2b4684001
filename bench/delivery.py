"""Trail delivery under steady ingest: ``python -m bench.delivery`` (``make bench`` runs it).

A real ``trailhouse serve`` (SQLite) with one trail delivering to a
directory of buckets and to the machine's NATS JetStream. A producer ingests ``--rate`` events/s
through ``POST /api/v1/events`` (batches every 100 ms) for ``--seconds``; a NATS subscriber on the
trail's subject notes when each event's record arrives. Figures:

* lag from the ingest acknowledgement to the stream record, p50/p99/max (target: p99 ≤ 2 s);
* whether delivery keeps up: how far behind the trail is at the end of ingest, and how long until
  both destinations hold every event (the OSS files close a ``--window`` later);
* events in the files and in the stream (each must equal the events ingested).

Results: a JSON file in bench/results/ (``--out``) and a summary on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import gzip
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from .machine import git_state, machine_info
from .server import child_env, free_port

RESULTS = Path(__file__).resolve().parent / "results"
ACCOUNT = "1234567890123456"


def _event(i: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "eventId": str(uuid.uuid4()).upper(),
        "eventVersion": 1,
        "eventSource": "ecs.aliyuncs.com",
        "eventTime": now,
        "eventName": "RunInstances" if i % 3 else "DescribeInstances",
        "eventRW": "Write",
        "eventType": "ApiCall",
        "eventCategory": "Management",
        "acsRegion": "cn-hangzhou",
        "serviceName": "Ecs",
        "requestId": str(uuid.uuid4()),
        "sourceIpAddress": f"203.0.113.{i % 250}",
        "userIdentity": {
            "type": "ram-user",
            "accountId": ACCOUNT,
            "userName": f"user{i % 40}",
            "principalId": "1",
        },
    }


def _setup(db_url: str, oss: Path, bucket: str, project: str) -> tuple[str, str]:
    """Trail, bucket and an ingest token, written straight into the store before the server starts."""
    from trailhouse.model.credentials import TokenScope
    from trailhouse.model.times import now_ms
    from trailhouse.model.trail import EventRW, Trail, TrailStatus
    from trailhouse.service.credentials import create_token
    from trailhouse.storage import open_store

    (oss / bucket).mkdir(parents=True, exist_ok=True)
    store = open_store(db_url)
    try:
        trail = Trail(
            ACCOUNT,
            "bench-trail",
            "cn-hangzhou",
            "All",
            EventRW.ALL,
            TrailStatus.ENABLE,
            oss_bucket_name=bucket,
            sls_project_arn=f"acs:log:cn-hangzhou:{ACCOUNT}:project/{project}",
            create_ms=now_ms(),
            update_ms=now_ms(),
            start_logging_ms=now_ms(),
        )
        assert store.create_trail(trail, max_per_region=5, max_organization=1) is None
        token = create_token(store, account_ids=(ACCOUNT,), all_accounts=False, scopes=(TokenScope.INGEST,))
        return token.secret, store.url
    finally:
        store.close()


class Subscriber:
    """A plain NATS subscription on the trail's subject, in its own thread and event loop."""

    def __init__(self, nats_url: str, subject: str) -> None:
        self.nats_url = nats_url
        self.subject = subject
        self.arrived: dict[str, float] = {}
        self.count = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        import nats

        nc = await nats.connect(self.nats_url)
        self._stop = asyncio.Event()

        async def on_msg(msg: Any) -> None:
            now = time.monotonic()
            self.count += 1
            event_id = orjson.loads(orjson.loads(msg.data)["event"])["eventId"]
            self.arrived.setdefault(event_id, now)

        await nc.subscribe(self.subject, cb=on_msg)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.drain()

    def __enter__(self) -> Subscriber:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _file_events(oss: Path, bucket: str) -> list[str]:
    ids: list[str] = []
    for path in sorted((oss / bucket).rglob("*.gz")):
        if "Actiontrail-Digest" in path.parts or "Actiontrail-Insight" in path.parts:  # not events
            continue
        ids.extend(e["eventId"] for e in orjson.loads(gzip.decompress(path.read_bytes())))
    return ids


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    oss = work / "oss"
    bucket = "bench-bucket"
    project = "bench-" + uuid.uuid4().hex[:8]
    db_url = f"sqlite:///{work / 'bench.db'}"
    token, _ = _setup(db_url, oss, bucket, project)
    port = free_port()
    env = child_env(work) | {
        "TRAILHOUSE_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "TRAILHOUSE_OSS_DIR": str(oss),
        "TRAILHOUSE_NATS_URL": args.nats,
        "TRAILHOUSE_DELIVERY_WINDOW_S": str(args.window),
    }
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trailhouse.cli",
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    acked: dict[str, float] = {}
    behind_at_end = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"serve did not start; see {work / 'serve.log'}")
            time.sleep(0.1)
        time.sleep(3)  # the engine picks up the trail (it refreshes the trail list every 2 s)
        per_tick = max(1, round(args.rate / 10))
        headers = {"authorization": f"Bearer {token}"}
        with Subscriber(args.nats, f"{project}.actiontrail_bench-trail") as sub, httpx.Client() as client:
            started = time.monotonic()
            i = 0
            next_tick = started
            while time.monotonic() - started < args.seconds:
                batch = [_event(i + k) for k in range(per_tick)]
                i += per_tick
                r = client.post(f"{base}/api/v1/events", json=batch, headers=headers, timeout=30)
                r.raise_for_status()
                now = time.monotonic()
                for e in batch:
                    acked[e["eventId"]] = now
                next_tick += 0.1
                time.sleep(max(0.0, next_tick - time.monotonic()))
            ingest_s = time.monotonic() - started
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            behind_at_end = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("trailhouse_delivery_behind_events{")
            )
            ended = time.monotonic()
            while len(sub.arrived) < len(acked) and time.monotonic() - ended < 60:
                time.sleep(0.05)
            stream_drain_s = time.monotonic() - ended
            while len(_file_events(oss, bucket)) < len(acked) and time.monotonic() - ended < args.window + 60:
                time.sleep(0.2)
            files_drain_s = time.monotonic() - ended
            lags = [sub.arrived[k] - acked[k] for k in acked if k in sub.arrived]
            stream_records = sub.count
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    file_ids = _file_events(oss, bucket)
    result = {
        "backend": "sqlite",
        "rate_events_per_s": args.rate,
        "seconds": args.seconds,
        "window_s": args.window,
        "ingested": len(acked),
        "ingest_rate_achieved": round(len(acked) / ingest_s, 1),
        "stream_records": stream_records,
        "stream_distinct_events": len(lags),
        "file_events": len(file_ids),
        "file_distinct_events": len(set(file_ids)),
        "files": len(list((oss / bucket).rglob("*.gz"))),
        "lag_ack_to_stream_s": {
            "p50": round(_pct(lags, 50), 4),
            "p99": round(_pct(lags, 99), 4),
            "max": round(max(lags), 4) if lags else None,
        },
        "behind_events_at_end_of_ingest": behind_at_end,
        "stream_caught_up_after_s": round(stream_drain_s, 2),
        "files_caught_up_after_s": round(files_drain_s, 2),
        "keeps_up": len(lags) == len(acked) and stream_drain_s < 2 and len(set(file_ids)) == len(acked),
        "p99_target_met": bool(lags) and _pct(lags, 99) <= 2.0,
    }
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500, help="events per second ingested (default 500)")
    parser.add_argument("--seconds", type=float, default=60, help="how long to ingest (default 60)")
    parser.add_argument("--window", type=float, default=5, help="TRAILHOUSE_DELIVERY_WINDOW_S (default 5)")
    parser.add_argument("--nats", default=os.environ.get("TRAILHOUSE_BENCH_NATS", "nats://127.0.0.1:4222"))
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    result = run(args)
    payload = {
        "kind": "delivery",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": machine_info(),
        "git": git_state(Path(__file__).resolve().parents[1]),
        "result": result,
    }
    out = args.out or RESULTS / f"delivery-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"results: {out}")
    return 0 if result["keeps_up"] and result["p99_target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
