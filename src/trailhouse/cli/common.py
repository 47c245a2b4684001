"""What every command shares: the two consoles, the common options, exit codes, and opening a store.

A failure leaves through ``fail``: one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import json
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..model.query import EventFilter
from ..model.times import TimeFormatError, parse_event_time
from ..render.table import Column, RowWriter
from ..service.integrity.keys import has_log_key
from ..service.secrets import (
    MasterKeyError,
    MasterKeyMissing,
    Sealer,
    check_master_key,
    has_master_key,
    key_source,
    load_master_key,
)
from ..settings import Settings, SettingsError, sqlite_path_from_url
from ..storage import open_store
from ..storage.base import EventStore, StoreError, StoreMissing

__all__ = [
    "check_log_key",
    "EXIT_FAILURE",
    "EXIT_NOTHING",
    "EXIT_USAGE",
    "DbOption",
    "JsonOption",
    "OutputFormat",
    "TIME_HELP",
    "account_has_events",
    "check_sealer",
    "cli_time",
    "console",
    "fail",
    "load_settings",
    "note",
    "note_hidden",
    "open_or_fail",
    "opened",
    "out",
    "row_writer",
    "safe_url",
    "sealer_or_fail",
    "write_json",
]

#: Messages, progress and notes; stdout (``out``) carries only what a command answers.
# soft_wrap: a message is never broken inside a path or an id, whatever the terminal width.
console = Console(stderr=True, soft_wrap=True)
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


def open_or_fail(
    settings: Settings, *, create: bool = True, missing_hint: str = "", with_key: bool = True
) -> EventStore:
    """The store; ``create=False`` for commands that only read what is there.

    A store this call creates gets its master key too when none is configured or kept in the data
    directory: a key is made with its store and nowhere else (``sealer_or_fail`` never makes one).
    Beside a store that exists, a new key would open none of the secrets sealed before it (a store
    copied to another folder, a mistyped TRAILHOUSE_DATA_DIR) and seal new ones no other node can
    open. ``with_key=False`` for a store that receives secrets sealed elsewhere (``copy``'s target)."""
    data_dir = settings.resolved_data_dir()
    try:
        if not (create and with_key) or has_master_key(settings.master_key, data_dir):
            return _open_store(settings, create=create)
        if sqlite_path_from_url(settings.db_url) != ":memory:":  # an in-memory store is always new
            try:
                return _open_store(settings, create=False)  # it exists: its key is kept elsewhere
            except StoreMissing:
                pass
        store = _open_store(settings, create=True)
    except StoreMissing:
        raise fail(
            f"no store at {safe_url(settings.db_url)}: nothing has been ingested there; "
            f"check --db or TRAILHOUSE_DB{', ' + missing_hint if missing_hint else ''}"
        ) from None
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        load_master_key(settings.master_key, data_dir, create=True)
    except MasterKeyError as exc:
        store.close()
        raise fail(str(exc)) from None
    return store


def _open_store(settings: Settings, *, create: bool) -> EventStore:
    return open_store(
        settings.db_url,
        retention_days=settings.retention_days,
        create=create,
        sqlite_cache_mib=settings.sqlite_cache_mib,
    )


@contextlib.contextmanager
def opened(settings: Settings, *, create: bool = True) -> Iterator[EventStore]:
    """``open_or_fail`` for the length of a ``with`` block, closed however the block ends."""
    store = open_or_fail(settings, create=create)
    try:
        yield store
    finally:
        store.close()


def sealer_or_fail(settings: Settings) -> Sealer:
    """The master key's sealer; never a new key (``open_or_fail`` makes one with a new store)."""
    try:
        return Sealer(load_master_key(settings.master_key, settings.resolved_data_dir(), create=False))
    except MasterKeyMissing as exc:
        raise fail(
            f"{exc} for the existing store {safe_url(settings.db_url)} (a key is generated only with a "
            "new store): point TRAILHOUSE_DATA_DIR at the directory holding the master.key its AccessKey "
            "secrets were sealed with, or set TRAILHOUSE_MASTER_KEY to that key"
        ) from None
    except MasterKeyError as exc:
        raise fail(str(exc)) from None


def check_log_key(settings: Settings, store: EventStore) -> None:
    """Refuse to start without the log key of a store whose Merkle log has been signed.

    The server would make a new key and sign on under it: checkpoints that no verifier holding
    the old key accepts, for a reason nobody chose (a store moved without its data directory, a
    mistyped TRAILHOUSE_DATA_DIR). Rotating is deliberate: TRAILHOUSE_LOG_KEY.
    """
    data_dir = settings.resolved_data_dir()
    if has_log_key(settings.log_key, data_dir):
        return
    try:
        signed = store.log_watermark() > 0
    except StoreError as exc:
        raise fail(str(exc)) from None
    if signed:
        raise fail(
            f"no log key at {data_dir / 'log.key'} for {safe_url(settings.db_url)}, whose Merkle log "
            "was signed with one: point TRAILHOUSE_DATA_DIR at the directory holding that log.key, or "
            "set TRAILHOUSE_LOG_KEY (to a new key only to rotate on purpose; docs/integrity.md)"
        )


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


#: ``YYYY-MM-DD`` alone: a UTC day, which every option that takes a time accepts.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME_HELP = "ISO 8601 with Z (2026-11-29T08:00:00Z) or a UTC date (2026-11-29)"


def cli_time(value: str | None, default: int, name: str, *, end: bool = False) -> int:
    """A time option: ISO 8601 with a UTC designator, or a date ``YYYY-MM-DD`` meaning that UTC
    day: its first millisecond, or with ``end`` (an ``--end`` option) its last, so that
    ``--start 2026-11-29 --end 2026-11-29`` is the whole day."""
    if not value:
        return default
    if _DATE.fullmatch(value):
        try:
            day = datetime.date.fromisoformat(value)
        except ValueError:
            raise fail(f"{name}: {value!r} is not a date", EXIT_USAGE) from None
        first = int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp()) * 1000
        return first + 86_400_000 - 1 if end else first
    try:
        return parse_event_time(value)
    except TimeFormatError as exc:
        raise fail(f"{name}: {exc}; give {TIME_HELP}", EXIT_USAGE) from None


class OutputFormat(enum.StrEnum):
    """What ``--format`` takes for listings; ``table`` is tab-separated when stdout is not a terminal."""

    TABLE = "table"
    TSV = "tsv"
    NDJSON = "ndjson"
    JSON = "json"
    CSV = "csv"


def write_json(value: object) -> None:
    """JSON on stdout, unformatted by rich (whose markup would eat ``[...]`` in values)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def row_writer(columns: Sequence[Column], *, tsv: bool = False) -> RowWriter:
    """Rows on stdout: aligned on a terminal of its width, tab-separated in a pipe (or with ``tsv``)."""
    return RowWriter(columns, sys.stdout, terminal=out.is_terminal and not tsv, width=out.width)


def note_hidden(writer: RowWriter) -> None:
    if writer.hidden:
        note(
            f"not shown at this terminal width: {', '.join(writer.hidden)} "
            "(--format tsv, or a pipe, shows every column)"
        )


def account_has_events(store: EventStore, account: str) -> bool:
    return bool(
        store.find_events(account_id=account, flt=EventFilter(0, 2**62), after=None, descending=True, limit=1)
    )
