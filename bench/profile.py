"""In-process profiles with pyinstrument, against a store a benchmark run kept (``--keep``).

    RUN=bench/work/<run>
    python -m bench.profile ingest --db sqlite:///$RUN/trailhouse.db --data-dir $RUN/sqlite-data
    python -m bench.profile lookup --db … --data-dir … --results bench/results/<run>.json

``ingest`` feeds fresh events to ``service.ingest.ingest_items`` in batches (as the HTTP endpoint
does, without HTTP); ``lookup`` sends signed requests straight to the gateway's synchronous pipeline
(``Gateway.process``: parse, authenticate, dispatch, query, render), without uvicorn. Both print a
pyinstrument call tree and a per-stage timing table; py-spy profiles of the real server are taken
by ``bench.run --profile``. pyinstrument is not a project dependency: ``pip install pyinstrument``.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

from .dataset import account_ids
from .shapes import Picks, build_shapes
from .signing import Credentials, sign
from .stats import summarize


def _profiler() -> Any:
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("pyinstrument is not installed: pip install pyinstrument") from None
    return Profiler(interval=0.0005)


def profile_ingest(args: argparse.Namespace) -> None:
    import orjson

    from trailhouse.demo.generate import generate_events
    from trailhouse.model.event import event_from_mapping
    from trailhouse.model.times import now_ms
    from trailhouse.service.ingest import decode_events, ingest_items
    from trailhouse.storage import open_store
    from trailhouse.storage.codec import pack

    day = 86_400_000
    events = list(
        generate_events(
            seed=args.seed + 100 + int(time.time()) % 1000,
            count=args.events,
            end_ms=now_ms() // day * day,
            days=1,
            account_ids=account_ids(args.seed),
        )
    )
    bodies = [
        b"\n".join(orjson.dumps(e) for e in events[i : i + args.batch])
        for i in range(0, len(events), args.batch)
    ]
    # Stage timings without the store: what a batch costs before any SQL runs.
    t0 = time.perf_counter()
    decoded = [decode_events(b) for b in bodies]
    t1 = time.perf_counter()
    records = [[event_from_mapping(obj) for _, obj in items] for items in decoded]
    t2 = time.perf_counter()
    for batch in records:
        for r in batch:
            pack(r.body)
    t3 = time.perf_counter()
    n = len(events)
    print(f"per event, without the store ({n:,} events):")
    print(f"  decode NDJSON (orjson)         {1e6 * (t1 - t0) / n:8.1f} µs")
    print(
        f"  validate + extract (model)     {1e6 * (t2 - t1) / n:8.1f} µs  (includes orjson.dumps of the body)"
    )
    print(f"  pack body (zlib with zdict)    {1e6 * (t3 - t2) / n:8.1f} µs")

    store = open_store(args.db)
    profiler = _profiler()
    try:
        started = time.perf_counter()
        profiler.start()
        for body in bodies:
            ingest_items(store, decode_events(body), may_write=lambda _a: True)
        profiler.stop()
        wall = time.perf_counter() - started
    finally:
        store.close()
    print(f"ingest_items: {n:,} events in {wall:.2f}s = {n / wall:,.0f} events/s (under the profiler)")
    _emit(profiler, args)


def _gateway(db: str, data_dir: str) -> tuple[Any, Any, Any]:
    from trailhouse.api.context import Services
    from trailhouse.api.rpc.gateway import build_gateway
    from trailhouse.service.pagetoken import PageTokens
    from trailhouse.settings import Settings
    from trailhouse.storage import open_store

    settings = Settings(db_url=db, data_dir=data_dir, throttle_lookup_events=0, throttle_access_key_usage=0)
    store = open_store(db)
    svc = Services(settings=settings, store=store, page_tokens=PageTokens.for_store(store))
    return build_gateway(svc), store, settings


def profile_lookup(args: argparse.Namespace) -> None:
    from trailhouse.service.credentials import create_access_key
    from trailhouse.service.secrets import Sealer, load_master_key

    results = json.loads(Path(args.results).read_text())
    picks_data = dict(results["baseline"]["picks"])
    matches = picks_data.pop("matches", {})
    picks = Picks(**picks_data, matches=matches)
    shapes = [
        s for s in build_shapes(picks, page_size=args.page_size) if not args.shape or args.shape in s.name
    ]
    gateway, store, settings = _gateway(args.db, args.data_dir)
    sealer = Sealer(load_master_key(settings.master_key, settings.resolved_data_dir()))
    created = create_access_key(store, sealer, account_id=picks.account, user_name="bench-profile")
    creds = Credentials(created.key.access_key_id, created.secret, "127.0.0.1:1")
    profiler = _profiler()
    per_shape: dict[str, list[float]] = {}
    try:
        for shape in shapes:  # warm-up
            _walk(gateway, creds, shape, args.pages)
        profiler.start()
        for _ in range(args.walks):
            for shape in shapes:
                per_shape.setdefault(shape.name, []).extend(_walk(gateway, creds, shape, args.pages))
        profiler.stop()
    finally:
        gateway.close()
        store.close()
    print("Gateway.process per request, in process (under the profiler), ms:")
    for name, lat in per_shape.items():
        s = summarize(lat)
        print(f"  {name:45s} p50 {s['p50']:7.2f}  p99 {s['p99']:7.2f}  n={s['n']}")
    _emit(profiler, args)


def _walk(gateway: Any, creds: Credentials, shape: Any, pages: int) -> list[float]:
    import orjson

    out: list[float] = []
    token = None
    for _ in range(pages):
        params = dict(shape.params)
        if token:
            params["NextToken"] = token
        req = sign(shape.style, creds, shape.api, shape.version, params)
        headers = {"host": creds.host, **req.headers}
        t0 = time.perf_counter()
        outcome = gateway.process("GET", req.query.encode(), headers, b"", str(uuid.uuid4()), "/")
        out.append((time.perf_counter() - t0) * 1000)
        if outcome.status != 200:
            raise SystemExit(f"{shape.name}: {outcome.status} {outcome.body[:300]!r}")
        token = orjson.loads(outcome.body).get("NextToken")
        if not token:
            break
    return out


def _emit(profiler: Any, args: argparse.Namespace) -> None:
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    if args.output:
        Path(args.output).write_text(text)
        print(f"profile written to {args.output}")
    lines = text.splitlines()
    print("\n".join(lines[: args.lines]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("ingest", "lookup"):
        s = sub.add_parser(name)
        s.add_argument("--db", required=True)
        s.add_argument("--data-dir", required=True, help="the run's <backend>-data directory (master key)")
        s.add_argument("--output", help="write the full pyinstrument text here")
        s.add_argument("--lines", type=int, default=120, help="lines of the call tree to print")
        s.add_argument("--seed", type=int, default=7)
    sub.choices["ingest"].add_argument("--events", type=int, default=20_000)
    sub.choices["ingest"].add_argument("--batch", type=int, default=1000)
    sub.choices["lookup"].add_argument("--results", required=True, help="the run's results JSON (picks)")
    sub.choices["lookup"].add_argument("--shape", help="only shapes whose name contains this")
    sub.choices["lookup"].add_argument("--walks", type=int, default=5)
    sub.choices["lookup"].add_argument("--pages", type=int, default=10)
    sub.choices["lookup"].add_argument("--page-size", type=int, default=20)
    args = p.parse_args(argv)
    (profile_ingest if args.what == "ingest" else profile_lookup)(args)


if __name__ == "__main__":
    main()
