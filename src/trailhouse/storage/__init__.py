"""Storage: one protocol (``EventStore``), one module per backend. The only place SQL lives."""

from __future__ import annotations

from ..settings import sqlite_path_from_url
from .base import AppendResult, EventStore, LogEntry, StoreError, StoreUnavailable

__all__ = ["AppendResult", "EventStore", "LogEntry", "StoreError", "StoreUnavailable", "open_store"]


def open_store(url: str) -> EventStore:
    """Open (and migrate) the store a URL names: ``sqlite:///path`` or ``postgresql://…``."""
    path = sqlite_path_from_url(url)
    if path is not None:
        from .sqlite import SqliteStore

        return SqliteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore  # type: ignore[import-not-found]
        except ImportError as exc:  # pragma: no cover - until the backend lands
            raise StoreError("the PostgreSQL backend is not available in this build") from exc
        return PostgresStore(url)  # type: ignore[no-any-return]
    raise StoreError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://…")
