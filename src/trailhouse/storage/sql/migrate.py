"""The migration runner: each pending migration of a backend applied and recorded in one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from ..base import StoreError
from ..migrations import migrations_for
from .dialect import Dialect

__all__ = ["Execute", "apply_migrations", "split_statements"]

log = logging.getLogger("trailhouse.storage")


class _Cursor(Protocol):
    def fetchone(self) -> object: ...


#: Runs one statement on the migrating connection.
Execute = Callable[[str, Sequence[object]], _Cursor]


def apply_migrations(
    dialect: Dialect,
    *,
    execute: Execute,
    transaction: Callable[[], AbstractContextManager[object]],
    statements: Callable[[str], list[str]],
    applied: Collection[str] = (),
    repairs: Mapping[str, Callable[[], str | None]] | None = None,
) -> list[str]:
    """Apply the migrations not yet recorded; return what their data repairs did, one line each.

    ``transaction`` opens the transaction a migration runs in (and takes whatever lock keeps two
    processes from applying it at once); the record is checked again inside it, so a migration
    another process applied meanwhile is skipped. ``applied`` are the names known to be done
    already, skipped without a transaction. A repair runs in its migration's transaction, after
    its statements.
    """
    ph = dialect.ph
    done: list[str] = []
    pending = [m for m in migrations_for(dialect.name) if m.name not in applied]
    for number, migration in enumerate(pending, 1):
        # Logged with its place among the pending ones: a migration that rewrites a large table
        # takes minutes, and `trailhouse migrate` shows these records as its progress.
        progress = {"migration": migration.name, "number": number, "pending": len(pending)}
        log.info(
            "migration %s (%d of %d): applying",
            migration.name,
            number,
            len(pending),
            extra={**progress, "migration_step": "start"},
        )
        started = time.monotonic()
        with transaction():
            execute(
                f"CREATE TABLE IF NOT EXISTS schema_migrations"
                f" (name {dialect.text_type} PRIMARY KEY, applied_ms {dialect.int_type} NOT NULL)",
                (),
            )
            if execute(f"SELECT 1 FROM schema_migrations WHERE name = {ph}", (migration.name,)).fetchone():
                log.info(
                    "migration %s: applied by another process meanwhile",
                    migration.name,
                    extra={**progress, "migration_step": "skipped"},
                )
                continue
            for statement in statements(migration.sql):
                execute(statement, ())
            repair = (repairs or {}).get(migration.name)
            outcome = repair() if repair is not None else None
            execute(f"INSERT INTO schema_migrations VALUES ({ph}, {dialect.now_ms})", (migration.name,))
        seconds = time.monotonic() - started
        log.info(
            "migration %s: applied in %.1f s",
            migration.name,
            seconds,
            extra={**progress, "migration_step": "done", "seconds": seconds},
        )
        if outcome:
            log.warning("migration %s: %s", migration.name, outcome)
            done.append(f"{migration.name}: {outcome}")
    return done


def split_statements(script: str, is_complete: Callable[[str], bool]) -> list[str]:
    """The statements of a migration file, split where ``is_complete`` (the driver's own parser,
    e.g. ``sqlite3.complete_statement``) says a statement ends."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if is_complete(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(line.strip().startswith("--") for line in buffer.strip().splitlines()):
        raise StoreError("a migration ends with an incomplete statement")
    return statements
