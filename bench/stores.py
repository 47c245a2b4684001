"""Backends under test: a fresh store for each run, and its size on disk (data and indexes).

SQLite: a new file in the run's work directory; its size is the main file plus the WAL after a
``wal_checkpoint(TRUNCATE)``, split per table and index with the ``dbstat`` virtual table.
PostgreSQL: a dedicated database (``trailhouse_bench`` by default, never the test database) with a
schema dropped and recreated for each run; its size is the sum of ``pg_total_relation_size`` over
the schema's tables, partitions included, split into heap (with TOAST) and indexes.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["Backend", "pg_backend", "sqlite_backend"]


@dataclass
class Backend:
    name: str  # "sqlite" or "postgres"
    url: str  # what --db gets
    detail: dict[str, Any]

    def size(self) -> dict[str, Any]:
        return sqlite_size(self.detail["path"]) if self.name == "sqlite" else pg_size(self.detail)

    def analyze(self) -> float | None:
        """PostgreSQL: refresh planner statistics, as autovacuum would; seconds taken (None: SQLite).

        The local server runs with autovacuum off; without statistics the planner picks a bitmap
        scan and a sort for keyset pages (hundreds of ms), which production would not see.
        """
        if self.name != "postgres":
            return None
        import time

        import psycopg
        from psycopg import sql

        started = time.perf_counter()
        with psycopg.connect(self.detail["admin_url"], autocommit=True) as conn:
            tables = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
                (self.detail["schema"],),
            ).fetchall()
            for (table,) in tables:
                statement = sql.SQL("ANALYZE {}.{}").format(
                    sql.Identifier(self.detail["schema"]), sql.Identifier(table)
                )
                # The server's housekeeping may be rebuilding an ended month's indexes
                # (REINDEX … CONCURRENTLY waits for older transactions, this one among them,
                # while it holds the partition this ANALYZE reaches): a deadlock, which
                # PostgreSQL may resolve by failing either side. Failed here, it is run again.
                for attempt in range(10):
                    try:
                        conn.execute(statement)
                        break
                    except psycopg.errors.DeadlockDetected:
                        if attempt == 9:
                            raise
                        time.sleep(1.0)
        return round(time.perf_counter() - started, 2)

    def version(self) -> str:
        if self.name == "sqlite":
            return sqlite3.sqlite_version
        import psycopg

        with psycopg.connect(self.detail["admin_url"]) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


def _alone(conn: Any, dbname: str, wait_s: float) -> None:
    """Refuse a benchmark database another client uses: a server left running by an earlier run
    would keep writing into the schema made again under the same name (its connections name
    tables through the search path), and its work would be timed with ours."""
    deadline = time.monotonic() + wait_s
    while True:
        others = conn.execute(
            "SELECT pid, application_name, client_addr FROM pg_stat_activity WHERE datname = %s"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            (dbname,),
        ).fetchall()
        if not others:
            return
        if time.monotonic() >= deadline:
            who = ", ".join(
                " ".join(filter(None, (f"pid {pid}", app, f"from {addr or 'a local socket'}")))
                for pid, app, addr in others
            )
            raise RuntimeError(
                f"{len(others)} other connection(s) to the benchmark database {dbname!r} ({who}): a"
                " trailhouse serve left running by an earlier run? (pgrep -af 'trailhouse'); the"
                " benchmark needs the database to itself"
            )
        time.sleep(0.1)


def sqlite_backend(work: Path) -> Backend:
    path = work / "trailhouse.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Backend("sqlite", f"sqlite:///{path}", {"path": str(path)})


def sqlite_size(path: str) -> dict[str, Any]:
    conn = sqlite3.connect(path, timeout=60)
    try:
        busy, wal_pages, moved = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        main = Path(path).stat().st_size
        wal_path = Path(f"{path}-wal")
        wal = wal_path.stat().st_size if wal_path.exists() else 0
        kinds = {name: kind for kind, name in conn.execute("SELECT type, name FROM sqlite_master")}
        objects: dict[str, int] = {}
        try:
            for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                objects[name] = int(size)
        except sqlite3.OperationalError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            pass
        freelist = (
            conn.execute("PRAGMA freelist_count").fetchone()[0]
            * conn.execute("PRAGMA page_size").fetchone()[0]
        )
    finally:
        conn.close()
    # Automatic indexes (UNIQUE/PRIMARY KEY) are named sqlite_autoindex_<table>_N.
    index_bytes = sum(
        v for k, v in objects.items() if kinds.get(k) == "index" or k.startswith("sqlite_autoindex")
    )
    return {
        "total_bytes": main + wal,
        "file_bytes": main,
        "wal_bytes": wal,
        "checkpoint_busy": busy,
        "freelist_bytes": freelist,
        "index_bytes": index_bytes if objects else None,
        "table_bytes": (sum(objects.values()) - index_bytes) if objects else None,
        "objects": dict(sorted(objects.items(), key=lambda kv: -kv[1])),
    }


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def pg_backend(url: str, schema: str, *, wait_s: float = 5.0) -> Backend:
    """Recreate ``schema`` in the database ``url`` names (creating the database if needed), once no
    other client is connected to that database (``wait_s`` at most: a server just stopped may take
    a moment to leave)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    if not dbname or dbname in ("test", "postgres"):
        raise ValueError(f"use a dedicated benchmark database, not {dbname or 'the default'!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    with psycopg.connect(url, autocommit=True) as conn:
        _alone(conn, dbname, wait_s)
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in (
                "server_version",
                "shared_buffers",
                "synchronous_commit",
                "fsync",
                "wal_level",
                "max_wal_size",
                "work_mem",
                "effective_cache_size",
            )
        }
    return Backend(
        "postgres",
        _with_search_path(url, schema),
        {
            "admin_url": url,
            "schema": schema,
            "settings": settings,
        },
    )


def pg_size(detail: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    schema = detail["schema"]
    with psycopg.connect(detail["admin_url"], autocommit=True) as conn:
        tables = conn.execute(
            """
            SELECT coalesce(root.relname, c.relname) AS family,
                   sum(pg_total_relation_size(c.oid)) AS total,
                   sum(pg_indexes_size(c.oid)) AS indexes
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_class root ON root.oid = pg_partition_root(c.oid) AND root.oid <> c.oid
            WHERE n.nspname = %s AND c.relkind = 'r'
            GROUP BY 1 ORDER BY 2 DESC
            """,
            (schema,),
        ).fetchall()
        indexes = conn.execute(
            """
            SELECT coalesce(root.relname, i.relname) AS family, sum(pg_relation_size(i.oid))
            FROM pg_class i
            JOIN pg_namespace n ON n.oid = i.relnamespace
            LEFT JOIN pg_class root ON root.oid = pg_partition_root(i.oid) AND root.oid <> i.oid
            WHERE n.nspname = %s AND i.relkind = 'i'
            GROUP BY 1 ORDER BY 2 DESC
            """,
            (schema,),
        ).fetchall()
    total = sum(int(t[1]) for t in tables)
    index_bytes = sum(int(t[2]) for t in tables)
    objects = {f"table:{name}": int(tot) - int(idx) for name, tot, idx in tables}
    objects.update({f"index:{name}": int(size) for name, size in indexes})
    return {
        "total_bytes": total,
        "index_bytes": index_bytes,
        "table_bytes": total - index_bytes,
        "objects": dict(sorted(objects.items(), key=lambda kv: -kv[1])),
    }
