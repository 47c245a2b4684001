"""Summaries of a results file: ``python -m bench.report bench/results/<run>.json [--markdown]``.

The same tables are printed at the end of a run (text) and pasted into docs/benchmarks.md
(Markdown), so the document and the JSON cannot disagree.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["evaluate_targets", "render_markdown", "render_text"]


def _lookup_shapes(outcome: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in outcome.get("queries", {}).items() if k.startswith("LookupEvents")}


def evaluate_targets(outcome: dict[str, Any], targets: dict[str, float]) -> dict[str, Any]:
    """Each target of issue 7: the measured value, the target, met or not, and the worst shape."""
    if "error" in outcome or "queries" not in outcome:
        return {}
    result: dict[str, Any] = {}

    def put(name: str, value: float | None, target: float, higher_is_better: bool, detail: str = "") -> None:
        met = value is not None and (value >= target if higher_is_better else value <= target)
        result[name] = {"value": value, "target": target, "met": met, "detail": detail}

    put(
        "http_ingest_events_per_second",
        outcome["ingest_http"]["events_per_second"],
        targets["http_ingest_events_per_second"],
        True,
    )
    put(
        "file_ingest_events_per_second",
        outcome["ingest_file"]["events_per_second"],
        targets["file_ingest_events_per_second"],
        True,
        "steady: fresh file into the full store",
    )
    put("bytes_per_event", outcome["disk"]["bytes_per_event"], targets["bytes_per_event"], False)
    lookups = _lookup_shapes(outcome)
    worst = max(lookups.items(), key=lambda kv: kv[1]["one_client"]["latency_ms"]["p99"] or 0)
    put(
        "lookup_p99_ms",
        worst[1]["one_client"]["latency_ms"]["p99"],
        targets["lookup_p99_ms"],
        False,
        f"worst shape: {worst[0]}",
    )
    slowest = min(lookups.items(), key=lambda kv: kv[1]["concurrent"]["requests_per_second"] or 0)
    put(
        "lookup_requests_per_second_8_clients",
        slowest[1]["concurrent"]["requests_per_second"],
        targets["lookup_requests_per_second_8_clients"],
        True,
        f"slowest shape: {slowest[0]}",
    )
    hot = outcome["queries"].get("GetAccessKeyLastUsedIps / hot key")
    if hot:
        put(
            "last_used_ips_hot_p99_ms",
            hot["one_client"]["latency_ms"]["p99"],
            targets["last_used_ips_hot_p99_ms"],
            False,
        )
    return result


# ------------------------------------------------------------------------------------- rendering


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _lat(summary: dict[str, Any] | None) -> str:
    if not summary or not summary.get("n"):
        return "–"
    return f"{_fmt(summary['p50'])} / {_fmt(summary['p95'])} / {_fmt(summary['p99'])}"


def _tables(results: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    base = results.get("baseline", {})
    backends = results.get("backends", {})

    rows: list[list[str]] = []
    for name, outcome in backends.items():
        if "error" in outcome:
            rows.append([name, "FAILED", "", "", "", outcome["error"][:80]])
            continue
        for phase, label in (
            ("load", "bulk load: trailhouse ingest (empty store)"),
            ("ingest_http", "HTTP POST /api/v1/events (full store)"),
            ("ingest_file", "trailhouse ingest, fresh file (full store)"),
        ):
            r = outcome.get(phase)
            if not r:
                continue
            extra = ""
            if phase == "ingest_http":
                extra = (
                    f"{r['producers']} producers × {r['batch_events']} events; "
                    f"request p50/p99 {_fmt(r['request_latency_ms']['p50'], 0)}/"
                    f"{_fmt(r['request_latency_ms']['p99'], 0)} ms"
                )
            else:
                extra = f"batch {r['batch_events']}"
            rows.append(
                [
                    name,
                    label,
                    _fmt(r["events"]),
                    _fmt(r["events_per_second"]),
                    _fmt(r["mb_per_second"]),
                    extra,
                ]
            )
    for phase, label in (
        ("load", "bulk load: CREATE TABLE AS read_json_objects"),
        ("ingest_batches", "INSERT per batch file (full table)"),
        ("ingest_file", "INSERT from a fresh file (full table)"),
    ):
        r = base.get(phase)
        if r:
            extra = f"batch {r['batch_events']}" if "batch_events" in r else ""
            rows.append(
                [
                    "duckdb",
                    label,
                    _fmt(r["events"]),
                    _fmt(r["events_per_second"]),
                    _fmt(r["mb_per_second"]),
                    extra,
                ]
            )
    tables.append(("Ingest", ["system", "phase", "events", "events/s", "MB/s", "notes"], rows))

    rows = []
    for name, outcome in backends.items():
        if "error" in outcome:
            continue
        for key, label in (("disk_after_load", "after bulk load"), ("disk", "after all ingest")):
            d = outcome.get(key)
            if not d:
                continue
            events = d["events"]
            idx = d.get("index_bytes")
            tbl = d.get("table_bytes")
            rows.append(
                [
                    name,
                    label,
                    _fmt(events),
                    _fmt(d["total_bytes"] / 1e6),
                    _fmt(d["bytes_per_event"]),
                    _fmt(tbl / events if tbl is not None else None),
                    _fmt(idx / events if idx is not None else None),
                ]
            )
    if base.get("disk"):
        rows.append(
            [
                "duckdb",
                "after all ingest",
                _fmt(base["disk"]["events"]),
                _fmt(base["disk"]["bytes"] / 1e6),
                _fmt(base["disk"]["bytes_per_event"]),
                "",
                "",
            ]
        )
    if base.get("parquet_sorted_zstd"):
        p = base["parquet_sorted_zstd"]
        rows.append(
            [
                "parquet (zstd, sorted)",
                "same table",
                _fmt(base["disk"]["events"]),
                _fmt(p["bytes"] / 1e6),
                _fmt(p["bytes_per_event"]),
                "",
                "",
            ]
        )
    tables.append(
        ("Disk", ["system", "when", "events", "MB", "bytes/event", "data B/ev", "index B/ev"], rows)
    )

    names = [n for n, o in backends.items() if "error" not in o and "queries" in o]
    clients = results.get("run", {}).get("settings", {}).get("clients", 8)
    header = ["question"]
    for n in names:
        header += [
            f"{n} 1 client p50/p95/p99 ms",
            f"{n} {clients} clients p99 ms",
            f"{n} req/s @{clients}",
            f"{n} server / client CPU ms/req",
        ]
    header += ["duckdb 1 thread p50/p95/p99 ms", f"duckdb q/s @{clients}"]
    rows = []
    shapes = results.get("shapes", [])
    for shape in shapes:
        row = [shape["name"]]
        for n in names:
            q = backends[n]["queries"].get(shape["name"], {})
            one, many = q.get("one_client", {}), q.get("concurrent", {})
            row += [
                _lat(one.get("latency_ms")),
                _fmt((many.get("latency_ms") or {}).get("p99")),
                _fmt(many.get("requests_per_second")),
                _fmt(many.get("server_cpu_ms_per_request"), 2)
                + " / "
                + _fmt(many.get("client_cpu_ms_per_request"), 2),
            ]
        bq = base.get("queries", {}).get(shape["filter"], {})
        row += [
            _lat(bq.get("one_client", {}).get("latency_ms")),
            _fmt(bq.get("concurrent", {}).get("requests_per_second")),
        ]
        rows.append(row)
    tables.append(("Queries (per page, 10 pages deep)", header, rows))

    rows = []
    for n, outcome in backends.items():
        for phase, label in (
            ("load", "trailhouse ingest, bulk load"),
            ("ingest_file", "trailhouse ingest, fresh file"),
        ):
            peak = (outcome.get(phase) or {}).get("peak_rss_bytes")
            if peak:
                rows.append([n, label, _fmt(peak / 2**20, 0)])
        for process, peak in (outcome.get("server_peak_rss_bytes") or {}).items():
            label = "serve: all processes (sum of peaks)" if process == "total" else f"serve: {process}"
            rows.append([n, label, _fmt(peak / 2**20, 0)])
    if rows:
        tables.append(("Memory (peak resident set)", ["backend", "process", "MiB"], rows))

    rows = []
    for n, outcome in backends.items():
        for target, r in outcome.get("targets", {}).items():
            rows.append(
                [
                    n,
                    target,
                    _fmt(r["value"]),
                    _fmt(r["target"]),
                    "met" if r["met"] else "MISSED",
                    r.get("detail", ""),
                ]
            )
    tables.append(("Targets (issue 7)", ["backend", "target", "measured", "goal", "", "detail"], rows))
    return tables


def _header_lines(results: dict[str, Any]) -> list[str]:
    run = results.get("run", {})
    m = run.get("machine", {})
    ds = results.get("dataset", {})
    mem = m.get("memory_bytes")
    lines = [
        f"run {run.get('id')}: {run.get('command')}",
        f"machine: {m.get('cpu_model')}, {m.get('cpu_count')} cores, "
        f"{(mem or 0) / 2**30:.0f} GiB RAM; Python {m.get('python')}, SQLite {m.get('sqlite')}, "
        f"DuckDB {m.get('duckdb')}",
        f"code: {run.get('git', {}).get('commit')} (src dirty: {run.get('git', {}).get('src_dirty')}), "
        f"source sha256 {str(run.get('trailhouse_source_sha256'))[:12]}",
        f"dataset: {_fmt(ds.get('count'))} events, {_fmt(ds.get('bytes_per_event'))} bytes/event of NDJSON, "
        f"seed {ds.get('seed')}; {run.get('started')} → {run.get('finished')} ({run.get('seconds')} s)",
    ]
    for name, outcome in results.get("backends", {}).items():
        if "version" in outcome:
            lines.append(f"{name}: {outcome['version']}")
    return lines


def _text_table(header: list[str], rows: Iterable[list[str]]) -> str:
    rows = list(rows)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(out)


def render_text(results: dict[str, Any]) -> str:
    parts = ["\n".join(_header_lines(results))]
    for title, header, rows in _tables(results):
        parts.append(f"\n{title}\n{_text_table(header, rows)}")
    return "\n".join(parts) + "\n"


def render_markdown(results: dict[str, Any]) -> str:
    parts = ["\n".join(f"- {line}" for line in _header_lines(results))]
    for title, header, rows in _tables(results):
        md = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
        md += [f"| {' | '.join(c.replace('|', '/') for c in r)} |" for r in rows]
        parts.append(f"\n#### {title}\n\n" + "\n".join(md))
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.report")
    p.add_argument("results", type=Path)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())
    print(render_markdown(results) if args.markdown else render_text(results), end="")


if __name__ == "__main__":
    main()
