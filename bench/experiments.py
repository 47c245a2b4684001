"""Design experiments behind the recommendations in docs/benchmarks.md, runnable again.

    python -m bench.experiments ingest-variants --events 300000   # SQLite schema/pragma variants
    python -m bench.experiments python-floor                       # ingest CPU without any store
    python -m bench.experiments body-codecs                        # stored body size and speed
    python -m bench.experiments render                             # page rendering: parse+dump vs splice
    python -m bench.experiments nonces                             # the nonce cache's purge pauses
    python -m bench.experiments decode                             # orjson + model vs msgspec
    python -m bench.experiments serve-workers --db … --data-dir … --results …  # 1 vs 2 processes

Each experiment uses the project's own code (the store, the codec, ingest_items) and changes one
thing from outside (dropping an index, a pragma), so a gain measured here is a gain the change
would bring. Nothing here edits src/.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson

from .dataset import account_ids, day_floor

BENCH_DIR = Path(__file__).resolve().parent

LOW_VALUE_INDEXES = (
    "events_rw",  # 2 values: a filter on it alone matches half the events; the time index serves it
    "events_type",  # ~4 values
    "events_category",  # 2 values
    "events_sensitive",  # 2 values
    "events_error",  # rare values, but no LookupEvents filter uses it
    "events_request",  # the 2017 Request filter only; the eventId index can serve requestId == eventId
)
ALL_TERM_INDEXES = (
    *LOW_VALUE_INDEXES,
    "events_name",
    "events_service",
    "events_user",
    "events_access_key",
    "events_source_ip",
    "events_role",
)


def _events(seed: int, count: int) -> list[bytes]:
    from trailhouse.demo.generate import generate_events

    end = day_floor(int(time.time() * 1000))
    return [
        orjson.dumps(e)
        for e in generate_events(seed=seed, count=count, end_ms=end, days=90, account_ids=account_ids(7))
    ]


def _batches(lines: list[bytes], size: int) -> Iterator[bytes]:
    for i in range(0, len(lines), size):
        yield b"\n".join(lines[i : i + size])


# ------------------------------------------------------------------------------- ingest variants

Variant = Callable[[Any], None]


def _drop(names: tuple[str, ...]) -> Variant:
    def apply(store: Any) -> None:
        for name in names:
            store._writer.execute(f"DROP INDEX IF EXISTS {name}")

    return apply


def _pragma(sql: str) -> Variant:
    def apply(store: Any) -> None:
        store._writer.execute(sql)

    return apply


def _both(*variants: Variant) -> Variant:
    def apply(store: Any) -> None:
        for v in variants:
            v(store)

    return apply


VARIANTS: dict[str, Variant] = {
    "as-is (17 indexes, synchronous=FULL)": lambda _s: None,
    "drop 6 low-value event indexes": _drop(LOW_VALUE_INDEXES),
    "synchronous=NORMAL": _pragma("PRAGMA synchronous=NORMAL"),
    "drop 6 + synchronous=NORMAL": _both(_drop(LOW_VALUE_INDEXES), _pragma("PRAGMA synchronous=NORMAL")),
    "floor: only events_time + events_key": _drop(ALL_TERM_INDEXES),
}


def ingest_variants(args: argparse.Namespace) -> None:
    from trailhouse.service.ingest import decode_events, ingest_items
    from trailhouse.storage.sqlite import SqliteStore

    lines = _events(args.seed, args.events)
    bodies = list(_batches(lines, args.batch))
    tail_from = len(bodies) - max(1, args.tail // args.batch)
    work = args.work_dir / "experiments"
    work.mkdir(parents=True, exist_ok=True)
    print(f"{args.events:,} events in batches of {args.batch}; steady rate = the last {args.tail:,} events")
    print(f"{'variant':42s} {'all ev/s':>9s} {'last ev/s':>9s} {'B/event':>8s}")
    for name, apply in VARIANTS.items():
        if args.only and not any(part in name for part in args.only.split(",")):
            continue
        path = work / "variant.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        store = SqliteStore(path)
        apply(store)
        t0 = time.perf_counter()
        t_tail = t0
        for i, body in enumerate(bodies):
            if i == tail_from:
                t_tail = time.perf_counter()
            ingest_items(store, decode_events(body), may_write=lambda _a: True)
        t1 = time.perf_counter()
        store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        size = path.stat().st_size
        tail_events = sum(body.count(b"\n") + 1 for body in bodies[tail_from:])
        print(
            f"{name:42s} {args.events / (t1 - t0):9,.0f} {tail_events / (t1 - t_tail):9,.0f} "
            f"{size / args.events:8,.0f}",
            flush=True,
        )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


# ----------------------------------------------------------------------------------- python floor


class _NullStore:
    def append(self, records: Any) -> Any:
        from trailhouse.storage.base import AppendResult

        return AppendResult(list(range(len(records))), [])


def python_floor(args: argparse.Namespace) -> None:
    from trailhouse.model.event import event_from_mapping
    from trailhouse.service.ingest import decode_events, ingest_items
    from trailhouse.storage.codec import pack

    lines = _events(args.seed, args.events)
    bodies = list(_batches(lines, args.batch))
    n = len(lines)

    def timed(label: str, fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        print(f"  {label:52s} {1e6 * dt / n:7.2f} µs/event  ({n / dt:10,.0f} events/s)")
        return dt

    print(f"{n:,} events, batches of {args.batch}, one thread:")
    decoded = [decode_events(b) for b in bodies]
    timed("orjson.loads per line (decode_events)", lambda: [decode_events(b) for b in bodies])
    timed(
        "event_from_mapping (validate, extract, dumps body)",
        lambda: [event_from_mapping(o) for items in decoded for _, o in items],
    )
    records = [event_from_mapping(o) for items in decoded for _, o in items]
    timed("codec.pack as shipped", lambda: [pack(r.body) for r in records])
    timed(
        "orjson.dumps alone (the body re-serialised)",
        lambda: [orjson.dumps(o) for items in decoded for _, o in items],
    )
    null = _NullStore()
    timed(
        "ingest_items into a null store (all of the above)",
        lambda: [ingest_items(null, decode_events(b), may_write=lambda _a: True) for b in bodies],
    )  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ body codecs


def body_codecs(args: argparse.Namespace) -> None:
    from trailhouse.storage.codec import _ZDICT_V1, pack, unpack

    sample = _events(args.seed, args.events)
    # A dictionary made of real events of another seed (what a trained dictionary would capture).
    trained = b"".join(_events(args.seed + 1000, 400))[-32768:]
    n = len(sample)
    raw = sum(len(b) for b in sample)
    print(f"{n:,} bodies, {raw / n:,.0f} bytes each as JSON")

    def measure(label: str, enc: Callable[[bytes], bytes], dec: Callable[[bytes], bytes]) -> None:
        t0 = time.perf_counter()
        packed = [enc(b) for b in sample]
        t1 = time.perf_counter()
        for p in packed:
            dec(p)
        t2 = time.perf_counter()
        size = sum(len(p) for p in packed) / n
        print(
            f"  {label:50s} {size:7.1f} B  pack {1e6 * (t1 - t0) / n:5.1f} µs"
            f"  unpack {1e6 * (t2 - t1) / n:5.1f} µs"
        )

    def zlib_with(zdict: bytes, level: int) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
        def enc(b: bytes) -> bytes:
            c = zlib.compressobj(level=level, zdict=zdict)
            return c.compress(b) + c.flush()

        def dec(p: bytes) -> bytes:
            d = zlib.decompressobj(zdict=zdict)
            return d.decompress(p) + d.flush()

        return enc, dec

    measure("codec.pack as shipped", pack, unpack)
    measure("zlib level 6, shipped zdict", *zlib_with(_ZDICT_V1, 6))
    measure("zlib level 1, 32 KB dictionary of sample events", *zlib_with(trained, 1))
    measure("zlib level 6, 32 KB dictionary of sample events", *zlib_with(trained, 6))
    measure("zlib level 9, 32 KB dictionary of sample events", *zlib_with(trained, 9))
    measure("raw deflate (wbits=-15) level 6, 32 KB dictionary", *_raw_deflate(trained, 6))
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        print("  (zstandard not installed: skipped the zstd dictionary variant)")
    else:
        zd = zstandard.train_dictionary(16384, _events(args.seed + 2000, 5000))
        cz = zstandard.ZstdCompressor(level=3, dict_data=zd)
        dz = zstandard.ZstdDecompressor(dict_data=zd)
        measure("zstd level 3, 16 KB trained dictionary", cz.compress, dz.decompress)


def _raw_deflate(zdict: bytes, level: int) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    def enc(b: bytes) -> bytes:
        c = zlib.compressobj(level=level, wbits=-15, zdict=zdict)
        return c.compress(b) + c.flush()

    def dec(p: bytes) -> bytes:
        d = zlib.decompressobj(wbits=-15, zdict=zdict)
        return d.decompress(p) + d.flush()

    return enc, dec


# --------------------------------------------------------------------------------------- render


def render(args: argparse.Namespace) -> None:
    from trailhouse.storage.codec import pack, unpack

    bodies = _events(args.seed, 21 * 200)
    pages = [bodies[i : i + 20] for i in range(0, len(bodies) - 20, 21)]
    packed = [[pack(b) for b in page] for page in pages]

    def parse_and_dump() -> None:
        for page in packed:
            events = [orjson.loads(unpack(p)) for p in page]
            orjson.dumps(
                {"RequestId": "x", "StartTime": "a", "EndTime": "b", "Events": events, "NextToken": "t"}
            )

    def splice() -> None:
        for page in packed:
            raw = b",".join(unpack(p) for p in page)
            b'{"RequestId":"x","StartTime":"a","EndTime":"b","Events":[' + raw + b'],"NextToken":"t"}'

    def unpack_only() -> None:
        for page in packed:
            [unpack(p) for p in page]

    for label, fn in (
        ("unpack 20 bodies", unpack_only),
        ("unpack + orjson.loads + orjson.dumps (as now)", parse_and_dump),
        ("unpack + splice raw JSON", splice),
    ):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t0) / len(packed) * 1000)
        print(f"  {label:50s} {statistics.median(runs):6.3f} ms per page of 20")


# --------------------------------------------------------------------------------------- decode


# Local classes cannot be resolved under postponed annotations: the decode experiment's types live here.
class _Identity(msgspec.Struct):
    type: str | None = None
    accountId: str | int | None = None
    userName: str | None = None
    accessKeyId: str | None = None


class _Indexed(msgspec.Struct):  # only what the store indexes; unknown fields are skipped in C
    eventId: str
    eventTime: str
    eventName: str
    userIdentity: _Identity
    eventType: str | None = None
    eventRW: str | None = None
    eventCategory: str | None = None
    serviceName: str | None = None
    requestId: str | None = None
    sourceIpAddress: str | None = None
    errorCode: str | None = None
    resourceName: str | None = None
    resourceType: str | None = None
    referencedResources: dict[str, list[str]] | None = None
    sensitiveAction: bool | str | None = None


def decode(args: argparse.Namespace) -> None:
    """Per-event cost of reading an event: as now, without re-serialising, and msgspec-typed."""
    from trailhouse.model.event import event_from_mapping
    from trailhouse.model.event_text import compact_json, event_from_json

    lines = _events(args.seed, args.events)
    typed = msgspec.json.Decoder(_Indexed)

    def best(fn: Callable[[], object]) -> float:
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        return min(runs) * 1e6 / len(lines)

    print(f"{len(lines):,} events, µs per event (best of 3):")
    for label, fn in (
        ("orjson.loads", lambda: [orjson.loads(x) for x in lines]),
        (
            "orjson.loads + event_from_mapping (before 183dfac; now the fallback)",
            lambda: [event_from_mapping(orjson.loads(x)) for x in lines],
        ),
        (
            "  same, body = the input line (no orjson.dumps)",
            lambda: [event_from_mapping(orjson.loads(x), body=x) for x in lines],
        ),
        ("msgspec decode of the indexed fields only", lambda: [typed.decode(x) for x in lines]),
        (
            "event_from_json (shipped: compact + typed decode + record)",
            lambda: [event_from_json(x) for x in lines],
        ),
        ("  whitespace removal alone (compact_json)", lambda: [compact_json(x) for x in lines]),
    ):
        print(f"  {label:60s} {best(fn):7.2f}")


# --------------------------------------------------------------------------------------- nonces


def nonces(args: argparse.Namespace) -> None:
    from trailhouse.api.limits import InProcessLimits

    limits = InProcessLimits()
    counter = itertools.count()
    for size in (100_000, 400_000, 1_600_000):
        while len(limits._nonces) < size:
            limits.remember_nonce("key", str(next(counter)), 1860)
        samples = []
        for _ in range(2048):
            t0 = time.perf_counter()
            limits.remember_nonce("key", str(next(counter)), 1860)
            samples.append((time.perf_counter() - t0) * 1000)
        print(
            f"  {size:>9,} live nonces: median {statistics.median(samples) * 1000:5.1f} µs, "
            f"worst (a purge every 1,024 calls) {max(samples):7.1f} ms"
        )


# -------------------------------------------------------------------------------- serve workers


def serve_workers(args: argparse.Namespace) -> None:
    """Query throughput of one ``trailhouse serve`` process against two on the same store.

    ``serve --workers 2`` does not start (uvicorn needs an import string for workers), so two
    processes on two ports, each with half of the clients, stand in for two workers.
    """
    import json
    import subprocess
    import sys
    import threading

    import httpx

    from .loadgen import ClientPool
    from .server import child_env, free_port, run_cli
    from .shapes import Picks, build_shapes
    from .signing import Credentials

    results = json.loads(Path(args.results).read_text())
    picks_data = dict(results["baseline"]["picks"])
    matches = picks_data.pop("matches", {})
    picks = Picks(**picks_data, matches=matches)
    wanted = (
        "LookupEvents 2020 / EventName",
        "LookupEvents 2017 / User",
        "GetAccessKeyLastUsedIps / hot key",
    )
    shapes = [s for s in build_shapes(picks) if s.name in wanted]
    data_dir = Path(args.data_dir)
    key, _ = run_cli(["keys", "create", "--account", picks.account, "--db", args.db], data_dir)
    for processes in (1, 2):
        procs, pools = [], []
        try:
            for i in range(processes):
                port = free_port()
                log = open(args.work_dir / f"serve-{processes}-{i}.log", "wb")  # noqa: SIM115
                procs.append(
                    (
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "trailhouse.cli",
                                "serve",
                                "--db",
                                args.db,
                                "--port",
                                str(port),
                                "--throttle-lookup",
                                "0",
                                "--throttle-usage",
                                "0",
                            ],
                            env=child_env(data_dir),
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        ),
                        log,
                    )
                )
                for _ in range(300):
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                creds = Credentials(key["accessKeyId"], key["accessKeySecret"], f"127.0.0.1:{port}")
                pools.append(ClientPool(args.clients // processes, f"http://127.0.0.1:{port}", creds))
            for shape in shapes:
                out: list[dict[str, Any]] = [{} for _ in pools]

                def go(
                    i: int, shape: Any = shape, out: list[dict[str, Any]] = out, pools: list[Any] = pools
                ) -> None:
                    pools[i].run(shape, 1, 10)
                    out[i] = pools[i].run(shape, args.walks, 10)

                threads = [threading.Thread(target=go, args=(i,)) for i in range(len(pools))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                rps = sum(r["requests_per_second"] for r in out)
                p99 = max(r["latency_ms"]["p99"] for r in out)
                print(
                    f"  processes={processes} clients={args.clients} {shape.name:40s} {rps:7.1f} req/s"
                    f"  worst p99 {p99:6.1f} ms  errors {sum(r['errors'] for r in out)}",
                    flush=True,
                )
        finally:
            for pool in pools:
                pool.close()
            for proc, log in procs:
                proc.terminate()
                proc.wait(timeout=60)
                log.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "what",
        choices=[
            "ingest-variants",
            "python-floor",
            "body-codecs",
            "render",
            "nonces",
            "serve-workers",
            "decode",
        ],
    )
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--tail", type=int, default=50_000, help="ingest-variants: events of the steady rate")
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--only", help="ingest-variants: only variants whose name contains one of these (comma-separated)"
    )
    p.add_argument("--work-dir", type=Path, default=BENCH_DIR / "work")
    p.add_argument("--db", help="serve-workers: the kept store")
    p.add_argument("--data-dir", help="serve-workers: the run's <backend>-data directory")
    p.add_argument("--results", help="serve-workers: the run's results JSON")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--walks", type=int, default=5)
    args = p.parse_args(argv)
    {
        "ingest-variants": ingest_variants,
        "python-floor": python_floor,
        "body-codecs": body_codecs,
        "render": render,
        "nonces": nonces,
        "serve-workers": serve_workers,
        "decode": decode,
    }[args.what](args)


if __name__ == "__main__":
    main()
