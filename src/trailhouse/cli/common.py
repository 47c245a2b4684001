"""What every command shares: the two consoles, the common options, exit codes, and opening a store.

A failure leaves through ``fail``: one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..model.query import EventFilter
from ..model.times import TimeFormatError, parse_event_time
from ..service.secrets import MasterKeyError, Sealer, check_master_key, key_source, load_master_key
from ..settings import Settings, SettingsError
from ..storage import open_store
from ..storage.base import EventStore, StoreError, StoreMissing

__all__ = [
    "EXIT_FAILURE",
    "EXIT_NOTHING",
    "EXIT_USAGE",
    "DbOption",
    "JsonOption",
    "account_has_events",
    "check_sealer",
    "cli_time",
    "console",
    "fail",
    "load_settings",
    "note",
    "open_or_fail",
    "opened",
    "out",
    "safe_url",
    "sealer_or_fail",
]

#: Messages, progress and notes; stdout (``out``) carries only what a command answers.
console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="sqlite:///path or postgresql://…; default $TRAILHOUSE_DB or ./trailhouse.db"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


#: Exit codes besides 0: 1 a failure, 2 a bad setting or argument (as for click's usage errors),
#: 3 ingest rejected events, 4 nothing to report (an AccessKey with no events).
EXIT_FAILURE, EXIT_USAGE, EXIT_NOTHING = 1, 2, 4


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    # One line, whatever the terminal width, and the message's own brackets are not markup.
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def note(message: str) -> None:
    console.print(escape(message), soft_wrap=True, style="yellow")


def load_settings(db: str | None, **overrides: object) -> Settings:
    try:
        return Settings.from_env(db_url=db, **overrides)
    except SettingsError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def open_or_fail(settings: Settings, *, create: bool = True) -> EventStore:
    """The store; ``create=False`` for commands that only read what is there."""
    try:
        return open_store(
            settings.db_url,
            retention_days=settings.retention_days,
            create=create,
            sqlite_cache_mib=settings.sqlite_cache_mib,
        )
    except StoreMissing:
        raise fail(
            f"no store at {safe_url(settings.db_url)}: nothing has been ingested there; "
            "check --db or TRAILHOUSE_DB"
        ) from None
    except StoreError as exc:
        raise fail(str(exc)) from None


@contextlib.contextmanager
def opened(settings: Settings, *, create: bool = True) -> Iterator[EventStore]:
    """``open_or_fail`` for the length of a ``with`` block, closed however the block ends."""
    store = open_or_fail(settings, create=create)
    try:
        yield store
    finally:
        store.close()


def sealer_or_fail(settings: Settings) -> Sealer:
    try:
        return Sealer(load_master_key(settings.master_key, settings.resolved_data_dir()))
    except MasterKeyError as exc:
        raise fail(str(exc)) from None


def check_sealer(settings: Settings, sealer: Sealer, store: EventStore) -> None:
    """Refuse to start with a master key that cannot open the stored AccessKey secrets."""
    try:
        check_master_key(sealer, store)
    except MasterKeyError:
        source = key_source(settings.master_key, settings.resolved_data_dir())
        raise fail(
            f"the master key ({source}) cannot open the AccessKey secrets stored in "
            f"{safe_url(settings.db_url)}: they were sealed with another key; point TRAILHOUSE_DATA_DIR "
            "at the directory holding the master.key they were created with, or set TRAILHOUSE_MASTER_KEY "
            "to that key"
        ) from None


def cli_time(value: str | None, default: int, name: str) -> int:
    if not value:
        return default
    try:
        return parse_event_time(value)
    except TimeFormatError as exc:
        raise fail(f"{name}: {exc}") from None


def account_has_events(store: EventStore, account: str) -> bool:
    return bool(
        store.find_events(account_id=account, flt=EventFilter(0, 2**62), after=None, descending=True, limit=1)
    )
