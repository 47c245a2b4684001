"""Run the benchmark: ``python -m bench.run --events 1000000`` (see ``--help``).

One run, for each backend (SQLite, PostgreSQL):

1. the dataset: ``--events`` seeded events over 90 days plus two fresh slices (bench/dataset.py);
2. bulk load: ``trailhouse ingest`` of the dataset into a fresh store (timed);
3. ``trailhouse serve`` starts (throttling off); HTTP ingest of the first slice through
   ``POST /api/v1/events`` from ``--producers`` concurrent producers, batches of ``--batch``, once
   the server's Merkle log has taken the loaded events (after a bulk load its sequencer works
   through the backlog in the server's process; the time it took is reported);
4. steady file ingest: ``trailhouse ingest`` of the second slice into the full store, server up;
5. bytes on disk per event, data, indexes and the Merkle log (once it has taken every event);
6. LookupEvents (2017-12-04 signed V1, 2020-07-06 signed V3) for every filter shape and
   GetAccessKeyLastUsedIps for a hot and a cold key, ``--pages`` pages deep: p50/p95/p99 with one
   client, then with ``--clients`` concurrent clients and their requests/s.

The baseline, in the same run: DuckDB loads the same NDJSON (bulk, then the first slice in batches
of ``--batch``, then the second slice) and answers the same questions in process. Page 1 of every
LookupEvents shape is compared event for event with the server's answer.

Results: one JSON file (``--out``, default bench/results/) with machine details, the code's
commit and digest, the command, timestamps and every figure; a summary is printed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import trailhouse

from . import report
from .dataset import DAY_MS, Dataset, day_floor, ensure_dataset, read_batches
from .machine import git_state, machine_info, package_digest
from .profiles import PySpy, py_spy_binary, summarize_collapsed, wrap_command
from .server import Server, run_cli
from .shapes import Picks, Shape, build_shapes
from .stores import Backend, pg_backend, sqlite_backend

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_PG = os.environ.get("TRAILHOUSE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/trailhouse_bench")

#: The targets of issue 7 (SQLite, 10M events stored).
TARGETS = {
    "http_ingest_events_per_second": 30_000,
    "file_ingest_events_per_second": 50_000,
    "bytes_per_event": 600,
    "lookup_p99_ms": 10,
    "lookup_requests_per_second_8_clients": 1_000,
    "last_used_ips_hot_p99_ms": 5,
}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=1_000_000, help="events in the main dataset (default 1M)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="a dedicated database (created if missing)")
    p.add_argument("--pg-schema", default="bench", help="dropped and recreated for the run")
    p.add_argument("--http-events", type=int, help="fresh events sent over HTTP (default N/10, 1k..100k)")
    p.add_argument(
        "--file-events", type=int, help="fresh events ingested from a file (default N/10, 1k..100k)"
    )
    p.add_argument("--producers", type=int, default=4, help="concurrent HTTP ingest producers")
    p.add_argument("--batch", type=int, default=1000, help="events per HTTP ingest request")
    p.add_argument("--ingest-batch", type=int, default=20000, help="trailhouse ingest --batch")
    p.add_argument("--walks", type=int, default=20, help="walks per shape with one client")
    p.add_argument("--walks-concurrent", type=int, default=20, help="walks per client per shape, concurrent")
    p.add_argument("--clients", type=int, default=8, help="concurrent query clients")
    p.add_argument("--pages", type=int, default=10, help="pages per walk (NextToken depth)")
    p.add_argument("--page-size", type=int, default=20, help="MaxResults / PageSize")
    p.add_argument("--end-date", help="UTC day the data ends (YYYY-MM-DD, default today)")
    p.add_argument("--data-dir", type=Path, default=BENCH_DIR / "data", help="dataset cache")
    p.add_argument("--work-dir", type=Path, default=BENCH_DIR / "work", help="stores and logs of runs")
    p.add_argument("--out", type=Path, help="results JSON (default bench/results/<size>-<time>.json)")
    p.add_argument("--profile", action="store_true", help="record py-spy profiles of every phase")
    p.add_argument("--keep", action="store_true", help="keep the stores (work dir, PG schema) afterwards")
    p.add_argument(
        "--baseline-budget",
        type=float,
        default=10.0,
        help="seconds per DuckDB measurement before it stops walking",
    )
    p.add_argument("--server-log-level", default="info", help="trailhouse serve --log-level")
    args = p.parse_args(argv)
    default_slice = min(100_000, max(1_000, args.events // 10))
    args.http_events = args.http_events or default_slice
    args.file_events = args.file_events or default_slice
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in args.backends:
        if b not in ("sqlite", "postgres"):
            p.error(f"unknown backend {b!r}")
    return args


# ------------------------------------------------------------------------------------- baseline


def run_baseline(
    args: argparse.Namespace, ds: Dataset, work: Path
) -> tuple[dict[str, Any], Picks, list[Shape], dict[str, list[list[str]]]]:
    from .baseline import DuckBaseline

    out: dict[str, Any] = {"engine": "duckdb", "in_process": True}
    base = DuckBaseline(work / "baseline.duckdb", args.page_size)
    try:
        _log(f"DuckDB: loading {ds.count:,} events")
        out["load"] = base.load(ds.part_paths, ds.main_bytes)
        loaded_size = base.size()
        out["disk_after_load"] = {"bytes": loaded_size, "bytes_per_event": round(loaded_size / ds.count, 1)}

        assert ds.slice_http is not None and ds.slice_file is not None
        batch_dir = work / "duckdb-batches"
        batch_dir.mkdir(exist_ok=True)
        files = []
        for i, body in enumerate(read_batches(ds.slice_http.path, args.batch)):
            f = batch_dir / f"batch-{i:05d}.ndjson"
            f.write_bytes(body)
            files.append(str(f))
        _log(f"DuckDB: appending {ds.slice_http.events:,} events in batches of {args.batch}")
        out["ingest_batches"] = base.append_batches(files, ds.slice_http.events, ds.slice_http.bytes)
        out["ingest_batches"]["batch_events"] = args.batch
        shutil.rmtree(batch_dir)
        out["ingest_file"] = base.append_file(ds.slice_file.path, ds.slice_file.events, ds.slice_file.bytes)
        size = base.size()
        out["disk"] = {"bytes": size, "events": base.events, "bytes_per_event": round(size / base.events, 1)}
        parquet = base.parquet_bytes(work / "sorted.parquet")
        out["parquet_sorted_zstd"] = {"bytes": parquet, "bytes_per_event": round(parquet / base.events, 1)}

        window_end = ds.main_end_ms - 1000
        picks = base.pick(window_end - 7 * DAY_MS + 1000, window_end)
        shapes = build_shapes(picks, page_size=args.page_size)
        picks.matches.update(base.count_matches(picks, shapes))
        out["picks"] = picks.to_dict()

        queries: dict[str, Any] = {}
        first_pages: dict[str, list[list[str]]] = {}
        seen: set[str] = set()
        for shape in shapes:
            if shape.filter in seen:
                continue
            seen.add(shape.filter)
            budget = args.baseline_budget
            base.measure(picks, shape, walks=1, pages=args.pages, threads=1)  # warm-up
            one = base.measure(picks, shape, walks=args.walks, pages=args.pages, threads=1, budget_s=budget)
            many = base.measure(
                picks,
                shape,
                walks=args.walks_concurrent,
                pages=args.pages,
                threads=args.clients,
                budget_s=budget,
            )
            first_pages[shape.filter] = one.pop("_first_walk")
            many.pop("_first_walk")
            queries[shape.filter] = {"one_client": one, "concurrent": many}
            _log(
                f"DuckDB {shape.filter}: p50 {one['latency_ms']['p50']} ms, p99 {one['latency_ms']['p99']} ms"
            )
        out["queries"] = queries
    finally:
        base.close()
        for suffix in ("", ".wal"):
            Path(f"{work / 'baseline.duckdb'}{suffix}").unlink(missing_ok=True)
    return out, picks, shapes, first_pages


# -------------------------------------------------------------------------------------- backends


def _ingest_cli(
    files: list[str], url: str, data_dir: Path, batch: int, profile_to: Path | None
) -> dict[str, Any]:
    wrapper = None
    binary = py_spy_binary() if profile_to else None
    if binary and profile_to:
        wrapper = wrap_command(binary, profile_to, idle=True)
    usage: dict[str, Any] = {}
    report_, wall = run_cli(
        ["ingest", *files, "--db", url, "--batch", str(batch)], data_dir, wrapper=wrapper, usage=usage
    )
    nbytes = sum(Path(f).stat().st_size for f in files)
    done = report_["accepted"] + report_["duplicates"] + report_["rejected"]
    return {
        "events": done,
        "accepted": report_["accepted"],
        "duplicates": report_["duplicates"],
        "rejected": report_["rejected"],
        "bytes": nbytes,
        "seconds": report_["seconds"],
        "events_per_second": report_["eventsPerSecond"],
        "mb_per_second": round(nbytes / report_["seconds"] / 1e6, 2) if report_["seconds"] else None,
        "wall_seconds_with_process_start": round(wall, 3),
        "batch_events": batch,
        "profiled": wrapper is not None,
        "peak_rss_bytes": usage.get("peak_rss_bytes"),
        "peak_rss_by_process": usage.get("peak_rss_by_process"),
    }


def _profile(results: dict[str, Any], name: str, path: Path | None) -> None:
    if path is not None and path.exists():
        results.setdefault("profiles", {})[name] = summarize_collapsed(path)


def run_backend(
    name: str, args: argparse.Namespace, ds: Dataset, picks: Picks, shapes: list[Shape], work: Path
) -> dict[str, Any]:
    from .loadgen import ClientPool, http_ingest
    from .signing import Credentials

    backend: Backend = sqlite_backend(work) if name == "sqlite" else pg_backend(args.pg_url, args.pg_schema)
    data_dir = work / f"{name}-data"
    data_dir.mkdir(exist_ok=True)
    out: dict[str, Any] = {"backend": name, "version": backend.version()}
    if name == "postgres":
        out["settings"] = backend.detail["settings"]
    url = backend.url
    spy = py_spy_binary() if args.profile else None
    prof_dir = work / f"{name}-profiles"
    prof_dir.mkdir(exist_ok=True)
    try:
        key, _ = run_cli(["keys", "create", "--account", picks.account, "--db", url], data_dir)
        token, _ = run_cli(["tokens", "create", "--all-accounts", "--scope", "ingest", "--db", url], data_dir)

        _log(f"{name}: trailhouse ingest of {ds.count:,} events ({len(ds.parts)} file(s))")
        load_prof = prof_dir / "load.raw" if spy else None
        out["load"] = _ingest_cli(ds.part_paths, url, data_dir, args.ingest_batch, load_prof)
        _profile(out, "load", load_prof)
        _log(f"{name}: loaded at {out['load']['events_per_second']:,} events/s")
        size = backend.size()
        out["disk_after_load"] = {
            **size,
            "events": ds.count,
            "bytes_per_event": round(size["total_bytes"] / ds.count, 1),
        }

        server = Server(url, data_dir, work / f"{name}-serve.log", log_level=args.server_log_level)
        server.start()
        server_started = time.perf_counter()
        out["server_pid"] = server.pid
        try:
            # Ingest and queries are measured in steady state: after a bulk load the server's
            # Merkle log sequencer first works through the backlog, in the server's process.
            _log(f"{name}: waiting for the server's Merkle log to take the {ds.count:,} loaded events")
            out["log_catch_up_after_load"] = _wait_for_log(url, ds.count, server, server_started)
            _log(f"{name}: the log took them in {out['log_catch_up_after_load']['after_server_start_s']:,} s")
            assert ds.slice_http is not None and ds.slice_file is not None
            batches = read_batches(ds.slice_http.path, args.batch)
            _log(f"{name}: HTTP ingest of {ds.slice_http.events:,} events, {args.producers} producers")
            spy_proc = PySpy(spy, server.pid, prof_dir / "ingest_http.raw") if spy else None
            out["ingest_http"] = http_ingest(server.base_url, token["token"], batches, args.producers)
            out["ingest_http"]["batch_events"] = args.batch
            if spy_proc:
                _profile(out, "ingest_http", spy_proc.stop())
            _log(f"{name}: HTTP ingest at {out['ingest_http']['events_per_second']:,} events/s")

            _log(f"{name}: trailhouse ingest of {ds.slice_file.events:,} fresh events into the full store")
            file_prof = prof_dir / "ingest_file.raw" if spy else None
            out["ingest_file"] = _ingest_cli(
                [ds.slice_file.path], url, data_dir, args.ingest_batch, file_prof
            )
            _profile(out, "ingest_file", file_prof)

            stored = ds.count + out["ingest_http"]["accepted"] + out["ingest_file"]["accepted"]
            # The log's tables are part of the store: measured once it holds every event.
            out["log_catch_up"] = _wait_for_log(url, stored, server, server_started)
            out["analyze_seconds"] = backend.analyze()
            size = backend.size()
            out["disk"] = {
                **size,
                "events": stored,
                "bytes_per_event": round(size["total_bytes"] / stored, 1),
            }
            _log(f"{name}: {out['disk']['bytes_per_event']} bytes/event")

            creds = Credentials(key["accessKeyId"], key["accessKeySecret"], server.host)
            out["queries"] = _queries(name, args, shapes, server, creds, spy, prof_dir, out, ClientPool)
        finally:
            out["server_exit"] = server.stop()
            out["server_peak_rss_bytes"] = server.peak_rss_at_stop
    finally:
        if not args.keep:
            _drop(backend, work)
    return out


def _wait_for_log(
    url: str, stored: int, server: Server, server_started: float, timeout_s: float = 3600
) -> dict[str, float]:
    """Wait until the log sequencer's watermark reaches the last stored seq (seqs run 1..stored
    here); how long that took, from now and from the server's start."""
    from trailhouse.storage import open_store

    store = open_store(url, create=False)
    started = time.perf_counter()
    try:
        while (mark := store.log_watermark()) < stored:
            if server.proc is None or server.proc.poll() is not None:
                raise RuntimeError(f"trailhouse serve exited with the log at {mark:,} of {stored:,} events")
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(
                    f"the log sequencer reached {mark:,} of {stored:,} events in {timeout_s:.0f} s"
                )
            time.sleep(1.0)
    finally:
        store.close()
    now = time.perf_counter()
    return {"waited_s": round(now - started, 1), "after_server_start_s": round(now - server_started, 1)}


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process and its live children (``serve --workers``) have used
    (Linux /proc), to price a request in server CPU."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = children.read_text().split()
        except OSError:
            continue
        total += sum(_cpu_seconds(int(kid)) or 0.0 for kid in kids)
    return total


def _measured(pool: Any, shape: Shape, walks: int, pages: int, pid: int) -> dict[str, Any]:
    clients = pool.pids()
    before = _cpu_seconds(pid)
    clients_before = [_cpu_seconds(c) for c in clients]
    result: dict[str, Any] = pool.run(shape, walks, pages)
    after = _cpu_seconds(pid)
    clients_after = [_cpu_seconds(c) for c in clients]
    if before is not None and after is not None and result["requests"]:
        result["server_cpu_ms_per_request"] = round(1000 * (after - before) / result["requests"], 3)
    # The clients share the machine with the server: their CPU per request says how much of the
    # box the load generator itself takes.
    spent = [
        b - a for a, b in zip(clients_before, clients_after, strict=True) if a is not None and b is not None
    ]
    if spent and result["requests"]:
        result["client_cpu_ms_per_request"] = round(1000 * sum(spent) / result["requests"], 3)
    return result


def _queries(
    name: str,
    args: argparse.Namespace,
    shapes: list[Shape],
    server: Server,
    creds: Any,
    spy: str | None,
    prof_dir: Path,
    out: dict[str, Any],
    pool_cls: Any,
) -> dict[str, Any]:
    queries: dict[str, Any] = {}
    with pool_cls(1, server.base_url, creds) as pool:
        for shape in shapes:  # warm-up: one walk of each shape, not recorded
            pool.run(shape, 1, args.pages)
        for api in ("LookupEvents", "GetAccessKeyLastUsedIps"):
            spy_proc = PySpy(spy, server.pid, prof_dir / f"{api}_1client.raw") if spy else None
            for shape in (s for s in shapes if s.api == api):
                queries[shape.name] = {
                    "one_client": _measured(pool, shape, args.walks, args.pages, server.pid)
                }
                lat = queries[shape.name]["one_client"]["latency_ms"]
                _log(f"{name} {shape.name}: p50 {lat['p50']} ms, p99 {lat['p99']} ms")
            if spy_proc:
                _profile(out, f"{api}_1client", spy_proc.stop())
    with pool_cls(args.clients, server.base_url, creds) as pool:
        for api in ("LookupEvents", "GetAccessKeyLastUsedIps"):
            spy_proc = PySpy(spy, server.pid, prof_dir / f"{api}_{args.clients}clients.raw") if spy else None
            for shape in (s for s in shapes if s.api == api):
                result = _measured(pool, shape, args.walks_concurrent, args.pages, server.pid)
                result.pop("_first_walk")
                queries[shape.name]["concurrent"] = result
                _log(
                    f"{name} {shape.name} x{args.clients}: {result['requests_per_second']} req/s, "
                    f"p99 {result['latency_ms']['p99']} ms"
                )
            if spy_proc:
                _profile(out, f"{api}_{args.clients}clients", spy_proc.stop())
    return queries


def _drop(backend: Backend, work: Path) -> None:
    if backend.name == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{backend.detail['path']}{suffix}").unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(backend.detail["admin_url"], autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(backend.detail["schema"]))
            )
    except psycopg.Error as exc:
        _log(f"could not drop the benchmark schema: {exc}")


# ---------------------------------------------------------------------------------- cross-checks


def cross_check(
    shapes: list[Shape], server_first: dict[str, list[list[str]]], base_first: dict[str, list[list[str]]]
) -> dict[str, Any]:
    """Page by page, does the server return what DuckDB returns for the same question?"""
    checks: dict[str, Any] = {}
    for shape in shapes:
        mine, theirs = server_first.get(shape.name), base_first.get(shape.filter)
        if mine is None or theirs is None:
            continue
        pages = min(len(mine), len(theirs))
        if shape.api == "LookupEvents":
            same = [mine[i] == theirs[i] for i in range(pages)]
        else:  # ties on the last-used second may be ordered differently: compare as sets
            same = [sorted(mine[i]) == sorted(theirs[i]) for i in range(pages)]
        checks[shape.name] = {
            "pages_compared": pages,
            "pages_equal": sum(same),
            "page_counts_equal": len(mine) == len(theirs),
            "first_page_equal": bool(same and same[0]),
        }
    return checks


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.time()
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)) + f"-{_label(args.events)}"
    work = args.work_dir / run_id
    work.mkdir(parents=True, exist_ok=True)
    out_path = args.out or BENCH_DIR / "results" / f"{run_id}.json"
    if args.end_date:
        end_day = int(
            dt.datetime.strptime(args.end_date, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp() * 1000
        )
    else:
        end_day = day_floor(int(started * 1000))
    package_dir = Path(trailhouse.__file__).resolve().parent
    results: dict[str, Any] = {
        "run": {
            "id": run_id,
            "command": " ".join([Path(sys.executable).name, "-m", "bench.run", *(argv or sys.argv[1:])]),
            "argv": argv if argv is not None else sys.argv[1:],
            "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            # Other work on the machine skews every figure: the load average says whether there was any.
            "loadavg_at_start": list(os.getloadavg()),
            "git": git_state(REPO),
            "trailhouse_package": str(package_dir),
            "trailhouse_source_sha256": package_digest(package_dir),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "targets": TARGETS,
        },
    }
    _log(f"run {run_id}: {args.events:,} events, backends {', '.join(args.backends)}; work dir {work}")
    ds = ensure_dataset(
        args.data_dir,
        seed=args.seed,
        count=args.events,
        end_day_ms=end_day,
        http_events=args.http_events,
        file_events=args.file_events,
        log=_log,
    )
    results["dataset"] = ds.describe()

    baseline, picks, shapes, base_first = run_baseline(args, ds, work)
    results["baseline"] = baseline
    results["shapes"] = [
        {
            "name": s.name,
            "filter": s.filter,
            "api": s.api,
            "version": s.version,
            "signature": s.style,
            "params": s.params,
        }
        for s in shapes
    ]
    results["backends"] = {}
    for name in args.backends:
        try:
            outcome = run_backend(name, args, ds, picks, shapes, work)
            server_first = {
                k: v["one_client"].pop("_first_walk") for k, v in outcome.get("queries", {}).items()
            }
            outcome["cross_check"] = cross_check(shapes, server_first, base_first)
            results["backends"][name] = outcome
        except Exception as exc:  # one backend failing must not lose the other's figures
            _log(f"{name}: FAILED: {exc}")
            results["backends"][name] = {
                "backend": name,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-4000:],
            }
    for outcome in results["backends"].values():
        outcome["targets"] = report.evaluate_targets(outcome, TARGETS)
    finished = time.time()
    results["run"]["finished"] = dt.datetime.fromtimestamp(finished, dt.UTC).isoformat(timespec="seconds")
    results["run"]["seconds"] = round(finished - started, 1)
    results["run"]["loadavg_at_end"] = list(os.getloadavg())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(report.render_text(results))
    _log(f"results written to {out_path}")
    failed = any("error" in o for o in results["backends"].values())
    if failed or args.keep or args.profile:
        _log(f"kept {work} (logs, profiles{', stores' if args.keep else ''})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
