"""Console server time at scale: ``python -m bench.console --events 1000000``.

1. the bench dataset (bench/dataset.py, seeded, 90 days, cached under bench/data/);
2. a SQLite store under bench/work/console-<size>/ loaded once with ``trailhouse ingest`` and kept
   (a second run reuses it; ``--fresh`` reloads);
3. the console app in process (``create_app``), signed in with an AccessKey of the busiest account,
   driven through httpx's ASGI transport: the time measured is the server's, from the request's
   arrival at the app to the last byte of the page (the client's view is reported beside it),
   with no network and no browser.

Measured, ``--repeat`` times each after a warm-up: the search page with 50 rows (no filter, the
newest 90 days; and with an event-name filter), the 90-day histogram (no filter; and filtered), an
event's page, and the AccessKey page. Prints p50/p95/max and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .dataset import DAY_MS, day_floor, ensure_dataset

BENCH_DIR = Path(__file__).resolve().parent

#: The issue's targets (server time, 1M events).
TARGETS_MS = {"search_50_rows_p95": 50.0, "histogram_90_days_p95": 300.0}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=40, help="measured requests per page")
    p.add_argument("--data-dir", type=Path, default=BENCH_DIR / "data")
    p.add_argument("--work-dir", type=Path, default=BENCH_DIR / "work")
    p.add_argument("--end-date", help="UTC day the data ends (YYYY-MM-DD, default today)")
    p.add_argument("--fresh", action="store_true", help="reload the store even if one is kept")
    p.add_argument("--prepare-only", action="store_true", help="build dataset and store, measure nothing")
    p.add_argument("--only", help="comma-separated page names to measure (default: every page)")
    p.add_argument("--out", type=Path, help="results JSON (default bench/results/console-<size>-<time>.json)")
    return p.parse_args(argv)


def prepare(args: argparse.Namespace) -> tuple[Path, list[str], int]:
    """The dataset and a loaded SQLite store; returns (db path, accounts, end of data in ms)."""
    if args.end_date:
        import datetime as dt

        end_day = int(
            dt.datetime.strptime(args.end_date, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp() * 1000
        )
    else:
        end_day = day_floor(int(time.time() * 1000))
    ds = ensure_dataset(
        args.data_dir,
        seed=args.seed,
        count=args.events,
        end_day_ms=end_day,
        http_events=1000,
        file_events=1000,
        log=_log,
    )
    work = args.work_dir / f"console-s{args.seed}-n{args.events}"
    work.mkdir(parents=True, exist_ok=True)
    db = work / "trailhouse.db"
    done = work / "loaded.json"
    if args.fresh or not done.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        _log(f"loading {ds.count:,} events into {db}")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "trailhouse.cli", "ingest", *ds.part_paths, "--db", f"sqlite:///{db}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        done.write_text(json.dumps({"events": ds.count, "seconds": round(time.perf_counter() - started, 1)}))
    return db, ds.accounts, ds.main_end_ms


class Timed:
    """The app, timed from the request's arrival to the end of its response: the server's time,
    without the in-process client's own work (building the request, reading the body)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.last_ms = (time.perf_counter() - started) * 1000


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
    return {
        "min_ms": round(ordered[0], 2),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2),
        "n": len(ordered),
    }


async def measure(
    db: Path, accounts: list[str], end_ms: int, repeat: int, only: set[str] | None = None
) -> dict[str, Any]:
    import base64

    import httpx

    from trailhouse.api.app import create_app
    from trailhouse.service.credentials import create_access_key
    from trailhouse.service.secrets import Sealer
    from trailhouse.settings import Settings
    from trailhouse.storage import open_store

    master = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(db_url=f"sqlite:///{db}", master_key=master, data_dir=str(db.parent / "data"))
    store = open_store(settings.db_url)
    try:
        start_ms = end_ms - 90 * DAY_MS
        # The busiest account: most events in the 90 days, so the heaviest pages.
        sizes = {a: store.summarize(account_id=a, start_ms=start_ms, end_ms=end_ms).count for a in accounts}
        account = max(sizes, key=lambda a: sizes[a])
        _log(f"account {account}: {sizes[account]:,} events in the 90 days")
        key = create_access_key(
            store, Sealer(base64.b64decode(master)), account_id=account, user_name="bench"
        )
        app = Timed(create_app(settings, store))
        window = f"start={start_ms}&end={end_ms}"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            page = await client.get("/console/sign-in")
            csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed = await client.post(
                "/console/sign-in",
                data={"csrf": csrf, "key_id": key.key.access_key_id, "secret": key.secret},
            )
            assert signed.status_code in (302, 303), signed.text[:500]
            first = await client.get(f"/console/search?{window}&rows=50")
            assert first.status_code == 200, first.text[:500]
            event_href = first.text.split('href="/console/event/', 1)[1].split('"', 1)[0]
            key_id = first.text.split('data-access-key="', 1)[1].split('"', 1)[0]
            pages = {
                "search_50_rows": f"/console/search?{window}&rows=50&histogram=off",
                "search_50_rows_event_name": f"/console/search?{window}&rows=50&histogram=off"
                "&EventName=DescribeInstances",
                "histogram_90_days": f"/console/histogram?{window}",
                "histogram_90_days_read_only": f"/console/histogram?{window}&EventRW=Read",
                "search_page_with_histogram": f"/console/search?{window}&rows=50",
                "event": f"/console/event/{event_href}",
                "access_key": f"/console/access-key/{key_id}",
            }
            results: dict[str, Any] = {}
            for name, path in pages.items():
                if only and name not in only:
                    continue
                for _ in range(3):
                    warm = await client.get(path)
                    assert warm.status_code == 200, (path, warm.status_code, warm.text[:300])
                samples, seen = [], []
                for _ in range(repeat):
                    started = time.perf_counter()
                    r = await client.get(path)
                    seen.append((time.perf_counter() - started) * 1000)
                    samples.append(app.last_ms)
                    assert r.status_code == 200
                client_side = _stats(seen)
                results[name] = {
                    "path": path,
                    **_stats(samples),
                    "client_p50_ms": client_side["p50_ms"],
                    "client_p95_ms": client_side["p95_ms"],
                }
                _log(f"{name}: {results[name]}")
        results["account_events_90_days"] = sizes[account]
        return results
    finally:
        store.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    db, accounts, end_ms = prepare(args)
    if args.prepare_only:
        return {}
    only = {n.strip() for n in args.only.split(",")} if args.only else None
    results = asyncio.run(measure(db, accounts, end_ms, args.repeat, only))
    out = {
        "events": args.events,
        "backend": "sqlite",
        "loadavg": list(os.getloadavg()),
        "pages": results,
        "targets_ms": TARGETS_MS,
        "met": {
            f"{page}_p95": results[page]["p95_ms"] <= TARGETS_MS[f"{page}_p95"]
            for page in ("search_50_rows", "histogram_90_days")
            if page in results
        },
    }
    path = args.out or BENCH_DIR / "results" / f"console-{args.events}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
