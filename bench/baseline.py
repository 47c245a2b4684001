"""The baseline: DuckDB over the same NDJSON, answering the same questions in process.

The table keeps the whole event (``body``, the JSON text) next to the columns the questions filter
on, so a page answer carries what LookupEvents returns. Row order is file order (DuckDB keeps
insertion order), so ``rowid`` plays the part of Trailhouse's arrival ``seq`` and both systems
order ties the same way: page 1 of every LookupEvents shape can be compared event for event.
GetAccessKeyLastUsedIps is computed from events at query time (no usage table), the way a
generic engine answers it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from .shapes import Picks, Shape
from .stats import summarize

__all__ = ["DuckBaseline"]

_COLUMNS = """
    j->>'$.userIdentity.accountId' AS account,
    epoch_ms(CAST(j->>'$.eventTime' AS TIMESTAMP)) AS t,
    j->>'$.eventId' AS event_id,
    j->>'$.eventName' AS event_name,
    j->>'$.eventRW' AS event_rw,
    j->>'$.serviceName' AS service,
    j->>'$.userIdentity.userName' AS user_name,
    j->>'$.userIdentity.accessKeyId' AS access_key,
    j->>'$.sourceIpAddress' AS source_ip,
    list_distinct(list_concat(
        coalesce(json_extract_string(j, '$.referencedResources.*[*]'), []),
        CASE WHEN j->>'$.resourceName' IS NULL THEN [] ELSE [j->>'$.resourceName'] END
    )) AS resources,
    j::VARCHAR AS body
"""

_CONDITIONS = {
    "event_name": "event_name = ?",
    "event_rw": "event_rw = ?",
    "service": "service = ?",
    "user_name": "user_name = ?",
    "access_key": "access_key = ?",
    "source_ip": "source_ip = ?",
    "resource": "list_contains(resources, ?)",
}


def _source(files: list[str]) -> str:
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"read_json_objects([{quoted}], format = 'newline_delimited') AS r(j)"


class DuckBaseline:
    def __init__(self, path: Path, page_size: int) -> None:
        self.path = path
        for suffix in ("", ".wal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.con = duckdb.connect(str(path))
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET preserve_insertion_order = true")
        self.page_size = page_size
        self.events = 0

    def close(self) -> None:
        self.con.close()

    def size(self) -> int:
        self.con.execute("CHECKPOINT")
        wal = Path(f"{self.path}.wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    # -- ingest ----------------------------------------------------------------------------------
    def load(self, files: list[str], nbytes: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.con.execute(f"CREATE TABLE ev AS SELECT {_COLUMNS} FROM {_source(files)}")
        self.con.execute("CHECKPOINT")
        wall = time.perf_counter() - t0
        self.events = self.con.execute("SELECT count(*) FROM ev").fetchone()[0]  # type: ignore[index]
        return _rate(self.events, nbytes, wall)

    def append_batches(self, batch_files: list[str], events: int, nbytes: int) -> dict[str, Any]:
        """Steady ingest: one INSERT (its own transaction) per batch file of 1000 events."""
        t0 = time.perf_counter()
        for f in batch_files:
            self.con.execute(f"INSERT INTO ev SELECT {_COLUMNS} FROM {_source([f])}")
        self.con.execute("CHECKPOINT")
        wall = time.perf_counter() - t0
        self.events += events
        return _rate(events, nbytes, wall)

    def append_file(self, path: str, events: int, nbytes: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.con.execute(f"INSERT INTO ev SELECT {_COLUMNS} FROM {_source([path])}")
        self.con.execute("CHECKPOINT")
        wall = time.perf_counter() - t0
        self.events += events
        return _rate(events, nbytes, wall)

    def parquet_bytes(self, path: Path) -> int:
        """Sorted, zstd-compressed Parquet of the same table: the floor for a columnar layout."""
        path.unlink(missing_ok=True)
        self.con.execute(
            f"COPY (SELECT * FROM ev ORDER BY account, t) TO '{path}' (FORMAT parquet, COMPRESSION zstd)"
        )
        size = path.stat().st_size
        path.unlink()
        return size

    # -- picking the question parameters ---------------------------------------------------------
    def pick(self, window_start_ms: int, window_end_ms: int) -> Picks:
        c = self.con
        lo, hi = window_start_ms, window_end_ms + 999
        account = c.execute(
            "SELECT account FROM ev WHERE t BETWEEN ? AND ? GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            [lo, hi],
        ).fetchone()[0]  # type: ignore[index]
        win = "account = ? AND t BETWEEN ? AND ?"
        args = [account, lo, hi]

        def top(column: str, extra: str = "") -> str:
            return c.execute(  # type: ignore[index, no-any-return]
                f"SELECT {column} FROM ev WHERE {win} AND {column} IS NOT NULL {extra}"
                f" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
                args,
            ).fetchone()[0]

        key_hot = top("access_key", "AND access_key NOT LIKE 'STS.%'")
        key_cold = c.execute(
            f"SELECT access_key FROM ev WHERE {win} AND access_key NOT LIKE 'STS.%'"
            " GROUP BY 1 ORDER BY abs(count(*) - 10), 1 LIMIT 1",
            args,
        ).fetchone()[0]  # type: ignore[index]
        resource = c.execute(
            f"SELECT r FROM (SELECT unnest(resources) AS r FROM ev WHERE {win}) WHERE r <> ''"
            " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            args,
        ).fetchone()[0]  # type: ignore[index]

        def top_service(key: str) -> str:
            return c.execute(  # type: ignore[index, no-any-return]
                "SELECT service FROM ev WHERE account = ? AND access_key = ? AND source_ip IS NOT NULL"
                " GROUP BY 1 ORDER BY count(DISTINCT source_ip) DESC, 1 LIMIT 1",
                [account, key],
            ).fetchone()[0]

        picks = Picks(
            account=account,
            window_start_ms=window_start_ms,
            window_end_ms=window_end_ms,
            event_name=top("event_name"),
            service=top("service"),
            user=top("user_name"),
            key_hot=key_hot,
            key_cold=key_cold,
            source_ip=top("source_ip"),
            resource_name=resource,
            write_event_name=top("event_name", "AND event_rw = 'Write'"),
            ips_hot_service=top_service(key_hot),
            ips_cold_service=top_service(key_cold),
        )
        return picks

    def count_matches(self, picks: Picks, shapes: list[Shape]) -> dict[str, int]:
        out: dict[str, int] = {}
        for shape in shapes:
            if shape.filter in out:
                continue
            if shape.api == "LookupEvents":
                sql, params = self._lookup_sql(picks, shape.baseline, None, count=True)
            else:
                sql = (
                    "SELECT count(DISTINCT source_ip) FROM ev WHERE account = ? AND access_key = ?"
                    " AND service = ? AND source_ip IS NOT NULL"
                )
                params = [picks.account, shape.baseline["access_key"], shape.baseline["service"]]
            out[shape.filter] = self.con.execute(sql, params).fetchone()[0]  # type: ignore[index]
        return out

    # -- the questions ---------------------------------------------------------------------------
    def _lookup_sql(
        self, picks: Picks, base: dict[str, str], after: tuple[int, int] | None, *, count: bool = False
    ) -> tuple[str, list[Any]]:
        conds = ["account = ?", "t BETWEEN ? AND ?"]
        params: list[Any] = [picks.account, picks.window_start_ms, picks.window_end_ms + 999]
        for column, value in base.items():
            conds.append(_CONDITIONS[column])
            params.append(value)
        if count:
            return f"SELECT count(*) FROM ev WHERE {' AND '.join(conds)}", params
        if after is not None:
            conds.append("(t < ? OR (t = ? AND rowid < ?))")
            params += [after[0], after[0], after[1]]
        params.append(self.page_size + 1)
        return (
            f"SELECT t, rowid, event_id, body FROM ev WHERE {' AND '.join(conds)}"
            " ORDER BY t DESC, rowid DESC LIMIT ?",
            params,
        )

    def _ips_sql(
        self, picks: Picks, base: dict[str, str], after: tuple[int, str] | None
    ) -> tuple[str, list[Any]]:
        params: list[Any] = [picks.account, base["access_key"], base["service"]]
        having = ""
        if after is not None:
            having = "HAVING max(t) < ? OR (max(t) = ? AND source_ip > ?)"
            params += [after[0], after[0], after[1]]
        params.append(self.page_size + 1)
        return (
            "SELECT source_ip, max(t) AS last_used, min(t) AS first_used, count(*) AS calls,"
            " arg_max(body, t) AS detail"
            " FROM ev WHERE account = ? AND access_key = ? AND service = ? AND source_ip IS NOT NULL"
            f" GROUP BY source_ip {having} ORDER BY last_used DESC, source_ip LIMIT ?",
            params,
        )

    def walk(
        self, con: duckdb.DuckDBPyConnection, picks: Picks, shape: Shape, pages: int
    ) -> tuple[list[tuple[int, float]], list[list[str]]]:
        """One walk of up to ``pages`` pages: [(page, ms)], and the item ids of each page."""
        timings: list[tuple[int, float]] = []
        ids: list[list[str]] = []
        after: Any = None
        for page in range(pages):
            if shape.api == "LookupEvents":
                sql, params = self._lookup_sql(picks, shape.baseline, after)
            else:
                sql, params = self._ips_sql(picks, shape.baseline, after)
            t0 = time.perf_counter()
            rows = con.execute(sql, params).fetchall()
            timings.append((page, (time.perf_counter() - t0) * 1000))
            more = len(rows) > self.page_size
            rows = rows[: self.page_size]
            if shape.api == "LookupEvents":
                ids.append([r[2] for r in rows])
                after = (rows[-1][0], rows[-1][1]) if rows else None
            else:
                ids.append([r[0] for r in rows])
                after = (rows[-1][1], rows[-1][0]) if rows else None
            if not more:
                break
        return timings, ids

    def measure(
        self,
        picks: Picks,
        shape: Shape,
        *,
        walks: int,
        pages: int,
        threads: int,
        budget_s: float | None = None,
    ) -> dict[str, Any]:
        """``threads`` connections (cursors) each doing ``walks`` walks, started together.

        With ``budget_s``, a connection starts no new walk once that many seconds have passed (it
        always does one): computing GetAccessKeyLastUsedIps from events takes seconds per page at
        10M events, and the baseline must not dominate the run.
        """
        results: list[list[tuple[int, float]]] = [[] for _ in range(threads)]
        first: list[list[str]] = []
        barrier = threading.Barrier(threads)
        bounds: list[float] = []
        done = [0] * threads

        def run(i: int) -> None:
            con = self.con.cursor()
            try:
                barrier.wait()
                start = time.perf_counter()
                bounds.append(start)
                for w in range(walks):
                    if w and budget_s is not None and time.perf_counter() - start > budget_s:
                        break
                    done[i] += 1
                    timings, ids = self.walk(con, picks, shape, pages)
                    results[i].extend(timings)
                    if i == 0 and w == 0:
                        first.extend(ids)
                bounds.append(time.perf_counter())
            finally:
                con.close()

        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        latencies = [ms for r in results for _, ms in r]
        wall = max(bounds) - min(bounds) if bounds else 0.0
        by_page: dict[int, list[float]] = {}
        for r in results:
            for page, ms in r:
                by_page.setdefault(page, []).append(ms)
        return {
            "clients": threads,
            "walks_per_client": walks,
            "walks_done": sum(done),
            "requests": len(latencies),
            "seconds": round(wall, 3),
            "requests_per_second": round(len(latencies) / wall, 1) if wall > 0 else None,
            "latency_ms": summarize(latencies),
            "p50_by_page_ms": [summarize(by_page[p])["p50"] for p in sorted(by_page)],
            "pages_reached_max": len(by_page),
            "_first_walk": first,
        }


def _rate(events: int, nbytes: int, wall: float) -> dict[str, Any]:
    return {
        "events": events,
        "bytes": nbytes,
        "seconds": round(wall, 3),
        "events_per_second": round(events / wall, 1) if wall else None,
        "mb_per_second": round(nbytes / wall / 1e6, 2) if wall else None,
        "threads": os.cpu_count(),
    }
