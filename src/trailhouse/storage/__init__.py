"""Storage: one protocol (``EventStore``), one module per backend. The only place SQL lives."""

from __future__ import annotations

from ..settings import sqlite_path_from_url
from .base import AppendResult, EventStore, LogEntry, StoreError, StoreMissing, StoreUnavailable

__all__ = [
    "AppendResult",
    "EventStore",
    "LogEntry",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "open_store",
]


def open_store(
    url: str, *, retention_days: int = 400, create: bool = True, sqlite_cache_mib: int = 256
) -> EventStore:
    """Open (and migrate) the store a URL names: ``sqlite:///path`` or ``postgresql://…``.

    ``retention_days`` matters to PostgreSQL, whose monthly partitions past it are dropped;
    ``sqlite_cache_mib`` to SQLite (its page cache).
    With ``create=False`` (commands that only read) a store that was never created raises
    ``StoreMissing`` instead of being created empty: a mistyped path must not answer "0 events".
    """
    path = sqlite_path_from_url(url)
    if path is not None:
        from .sqlite import SqliteStore

        return SqliteStore(path, create=create, cache_mib=sqlite_cache_mib)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, retention_days=retention_days, create=create)
    raise StoreError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://…")
