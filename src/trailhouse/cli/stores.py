"""Commands on a store as a whole: ``migrate``, ``maintain`` and ``copy`` (from one store to another)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from ..model.times import now_ms
from ..storage.base import StoreError
from .common import DbOption, console, fail, load_settings, open_or_fail, opened, safe_url

__all__ = ["copy", "maintain", "migrate"]


class _MigrationProgress(logging.Handler):
    """The migration runner's records (``storage/sql/migrate.py``) as progress: a line per
    migration applied, and on a terminal the one running with its elapsed time."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.INFO)
        self._progress = progress
        self._task: TaskID | None = None

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "migration_step", None)
        if step is None:
            return
        fields = record.__dict__
        place = f"{fields['migration']} ({fields['number']} of {fields['pending']})"
        if step == "start":
            self._task = self._progress.add_task(f"applying {place}", total=None)
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        if step == "done":
            console.print(f"applied {place} in {fields['seconds']:.1f} s")


def migrate(
    db: DbOption = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Create the store if there is none (a new SQLite file, or an empty schema's tables) "
            "and its master key, unless one is set or kept (docs/deployment.md).",
        ),
    ] = False,
) -> None:
    """Apply pending schema migrations and the data repairs that come with them, one line each.

    The service also applies them at start-up. A repair says what it changed, e.g. the events an
    old SQLite store held twice (same account and eventId in two UTC days), of which it keeps the
    first arrival. Without --create a missing store is an error: a mistyped --db must not leave an
    empty store behind that reports itself up to date.
    """
    settings = load_settings(db)
    runner = logging.getLogger("trailhouse.storage")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        handler = _MigrationProgress(progress)
        level = runner.level
        runner.addHandler(handler)
        runner.setLevel(logging.INFO)
        try:
            store = open_or_fail(settings, create=create, missing_hint="or pass --create to make a new one")
        finally:
            runner.removeHandler(handler)
            runner.setLevel(level)
    repairs = list(store.repairs)
    store.close()
    for line in repairs:
        console.print(f"repaired: {line}")
    console.print(f"schema up to date: {safe_url(store.url)}")


def maintain(
    db: DbOption = None,
    retention_days: Annotated[
        int | None, typer.Option(help="Default 400 ($TRAILHOUSE_RETENTION_DAYS).")
    ] = None,
) -> None:
    """Housekeeping the service also runs hourly: partitions ahead, drop those past retention, statistics."""
    settings = load_settings(db, retention_days=retention_days)
    with opened(settings, create=False) as store:
        try:
            done = store.maintain(now_ms=now_ms())
        except StoreError as exc:
            raise fail(str(exc)) from None
    for line in done:
        console.print(line)


def copy(
    source: Annotated[
        str, typer.Option("--from", help="The store to copy from, e.g. sqlite:///trailhouse.db.")
    ],
    target: Annotated[str, typer.Option("--to", help="The store to copy into, e.g. postgresql://…")],
    batch: Annotated[int, typer.Option(help="Events per transaction.")] = 20000,
) -> None:
    """Copy every event, AccessKey and token from one store to another; re-running copies nothing twice."""
    from ..storage.copy import copy_store

    src = open_or_fail(load_settings(source), create=False)
    try:
        # No master key beside a new target: the AccessKeys arrive sealed with the source's key.
        dst = open_or_fail(load_settings(target), with_key=False)
    except typer.Exit:
        src.close()
        raise
    try:
        with Progress(
            TextColumn("copy"),
            BarColumn(),
            TextColumn("{task.completed:,} events"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task("copy", total=None)
            result = copy_store(src, dst, batch=batch, progress=lambda n: progress.update(task, completed=n))
    except StoreError as exc:
        raise fail(f"copy failed (re-run to resume): {exc}") from None
    finally:
        src.close()
        dst.close()
    console.print(
        f"copied {result.copied:,} events ({result.duplicates:,} already there); "
        f"source holds {result.source_count:,}, target holds {result.target_count:,}"
    )
    if result.target_count < result.source_count:
        raise fail("the target holds fewer events than the source")
