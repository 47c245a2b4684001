"""``trailhouse lookup``: events by any filters and window, as a table, TSV, NDJSON, JSON or CSV.

Rows are written as the store finds them, so the first ones show at once however large the
store; ``--limit`` (100 unless given) bounds how many, and ``--all`` (or ``--limit 0``) lifts it.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import Annotated

import orjson
import typer

from ..model.event_text import parse_body
from ..model.query import StoredEvent
from ..model.times import now_ms
from ..render.table import Column
from .common import (
    EXIT_USAGE,
    TIME_HELP,
    DbOption,
    OutputFormat,
    account_has_events,
    cli_time,
    fail,
    load_settings,
    note,
    note_hidden,
    opened,
    row_writer,
    safe_url,
)

__all__ = ["DEFAULT_LIMIT", "lookup"]

#: Rows shown unless --limit or --all says otherwise: a screenful or two, as the native API's page.
DEFAULT_LIMIT = 100

#: The table's columns: ids, times and addresses are never wrapped or cut; on a narrow terminal
#: the highest priority numbers are left out first (a pipe or --format tsv always has them all).
EVENT_COLUMNS = (
    Column("eventTime", whole=True, priority=0),
    Column("eventName", priority=0),
    Column("user", priority=1),
    Column("sourceIpAddress", whole=True, priority=1),
    Column("errorCode", priority=2),
    Column("accessKeyId", whole=True, priority=3),
    Column("serviceName", priority=4),
    Column("eventId", whole=True, priority=5),
)


def lookup(
    account: Annotated[str, typer.Option("--account", help="The account to search.")],
    where: Annotated[
        list[str] | None,
        typer.Argument(help="Filters: Key=Value (exact), Key.prefix=Value, SourceIpAddress=10.0.0.0/8."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", "--since", help=f"{TIME_HELP}; default: start of retention.")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help=f"{TIME_HELP}, a date meaning its end; default: now.")
    ] = None,
    failed: Annotated[
        bool | None, typer.Option("--failed/--succeeded", help="Only failed or successful calls.")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many events; 0 for all.")] = DEFAULT_LIMIT,
    all_events: Annotated[
        bool, typer.Option("--all", help="Every matching event (same as --limit 0).")
    ] = False,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="Ascending time order.")] = False,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table (tab-separated when stdout is not a terminal), tsv, ndjson, json or csv.",
            case_sensitive=False,
        ),
    ] = OutputFormat.TABLE,
    db: DbOption = None,
) -> None:
    """Search events without the cloud API's limits: any filters, any window, rows as they are found."""
    from ..model.times import DAY_MS
    from ..service.search import FILTER_PARAMS, SearchParamError, build_search_filter

    pairs = []
    for item in where or []:
        name, sep, value = item.partition("=")
        if not sep or name.partition(".")[0] not in FILTER_PARAMS:
            raise fail(f"{item!r} is not a filter; known keys: {', '.join(FILTER_PARAMS)}", EXIT_USAGE)
        pairs.append((name, value))
    cap = None if all_events or limit == 0 else limit
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        now = now_ms()
        oldest_kept = now - settings.retention_days * DAY_MS
        start_ms = cli_time(start, oldest_kept, "--start")
        end_ms = cli_time(end, now, "--end", end=True)
        try:
            flt, _ = build_search_filter(
                store, account_id=account, pairs=pairs, failed=failed, start_ms=start_ms, end_ms=end_ms
            )
        except SearchParamError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        # Small pages while few rows are wanted: the first rows come back as soon as the store has them.
        batch = 1000 if cap is None else min(cap + 1, 1000)
        events = store.iter_events(account_id=account, flt=flt, descending=not oldest_first, batch=batch)
        shown, more = _print_events(events, fmt, cap)
        if more:
            note(
                f"showing the first {shown:,} events ({'oldest' if oldest_first else 'newest'} first); "
                "--limit N or --all for more"
            )
        if not shown:
            # The rows stay on stdout (empty); why there are none goes to stderr.
            if not account_has_events(store, account):
                note(f"account {account} has no events in {safe_url(store.url)}")
            elif end_ms < oldest_kept:
                note(
                    f"the window ends before the retention of {settings.retention_days} days "
                    "(TRAILHOUSE_RETENTION_DAYS): events that old are not kept"
                )
            else:
                note("no events match")


def _capped(events: Iterator[StoredEvent], cap: int | None, seen: list[bool]) -> Iterator[StoredEvent]:
    for n, e in enumerate(events):
        if cap is not None and n >= cap:
            seen.append(True)
            return
        yield e


def _print_events(events: Iterator[StoredEvent], fmt: OutputFormat, cap: int | None) -> tuple[int, bool]:
    """Print the events in ``fmt`` as they come; return how many, and whether more were left out."""
    from ..render.events_csv import CSV_COLUMNS, csv_row

    more: list[bool] = []
    rows = _capped(events, cap, more)
    stream = sys.stdout
    shown = 0
    if fmt is OutputFormat.NDJSON:
        for e in rows:
            stream.write(e.body.decode() + "\n")
            shown += 1
            if shown == 1:
                stream.flush()
    elif fmt is OutputFormat.JSON:
        stream.write("[")
        for e in rows:
            stream.write(("," if shown else "") + e.body.decode())
            shown += 1
            if shown == 1:
                stream.flush()
        stream.write("]\n")
    elif fmt is OutputFormat.CSV:
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        for e in rows:
            writer.writerow(csv_row(parse_body(e.body)))
            shown += 1
            if shown == 1:
                stream.flush()
    else:
        table = row_writer(EVENT_COLUMNS, tsv=fmt is OutputFormat.TSV)
        shown = table.write_all(_event_row(e) for e in rows)
        note_hidden(table)
    stream.flush()
    return shown, bool(more)


def _event_row(e: StoredEvent) -> list[str]:
    try:
        # orjson is several times faster than parse_body, and exact for the text fields shown.
        row = _row_of(orjson.loads(e.body))
    except orjson.JSONDecodeError:
        row = None
    # A field of another type than text (a number, kept as spelled) is shown as parse_body reads it.
    return row if row is not None else _row_of(parse_body(e.body), exact=True) or []


def _row_of(ev: object, *, exact: bool = False) -> list[str] | None:
    if not isinstance(ev, dict):
        return None if not exact else [""] * len(EVENT_COLUMNS)
    who = ev.get("userIdentity")
    who = who if isinstance(who, dict) else {}
    values = [
        ev.get("eventTime"),
        ev.get("eventName"),
        who.get("userName"),
        ev.get("sourceIpAddress"),
        ev.get("errorCode"),
        who.get("accessKeyId"),
        ev.get("serviceName"),
        ev.get("eventId"),
    ]
    if not exact and any(v is not None and not isinstance(v, str) for v in values):
        return None
    return ["" if v is None else v if isinstance(v, str) else _text(v) for v in values]


def _text(value: object) -> str:
    # orjson writes a number no double holds (an orjson.Fragment) back as it was spelled.
    return orjson.dumps(value).decode()
