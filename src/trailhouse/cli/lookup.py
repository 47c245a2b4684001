"""``trailhouse lookup``: events by any filters and window, as a table, NDJSON, JSON or CSV."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.table import Table

from ..model.event_text import parse_body
from ..model.query import StoredEvent
from ..model.times import now_ms
from .common import (
    DbOption,
    account_has_events,
    cli_time,
    console,
    fail,
    load_settings,
    note,
    opened,
    out,
    safe_url,
)

__all__ = ["lookup"]


def lookup(
    account: Annotated[str, typer.Option("--account", help="The account to search.")],
    where: Annotated[
        list[str] | None,
        typer.Argument(help="Filters: Key=Value (exact), Key.prefix=Value, SourceIpAddress=10.0.0.0/8."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="ISO 8601; default: start of retention.")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601; default: now.")] = None,
    failed: Annotated[
        bool | None, typer.Option("--failed/--succeeded", help="Only failed or successful calls.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many events (default: all).")] = None,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="Ascending time order.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, ndjson, json or csv.")] = "table",
    db: DbOption = None,
) -> None:
    """Search events without the cloud API's limits: any filters, any window, no page limit."""
    from ..model.times import DAY_MS
    from ..service.search import FILTER_PARAMS, SearchParamError, build_search_filter

    if fmt not in ("table", "ndjson", "json", "csv"):
        raise fail("--format must be table, ndjson, json or csv")
    pairs = []
    for item in where or []:
        name, sep, value = item.partition("=")
        if not sep or name.partition(".")[0] not in FILTER_PARAMS:
            raise fail(f"{item!r} is not a filter; known keys: {', '.join(FILTER_PARAMS)}")
        pairs.append((name, value))
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        now = now_ms()
        oldest_kept = now - settings.retention_days * DAY_MS
        start_ms = cli_time(start, oldest_kept, "--start")
        end_ms = cli_time(end, now, "--end")
        try:
            flt, _ = build_search_filter(
                store, account_id=account, pairs=pairs, failed=failed, start_ms=start_ms, end_ms=end_ms
            )
        except SearchParamError as exc:
            raise fail(str(exc)) from None
        events = store.iter_events(account_id=account, flt=flt, descending=not oldest_first)
        if limit is not None:
            events = itertools.islice(events, limit)
        shown = _print_events(events, fmt)
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


def _print_events(events: Iterator[StoredEvent], fmt: str) -> int:
    """Print the events in ``fmt``; return how many there were."""
    import csv

    from ..render.events_csv import CSV_COLUMNS, csv_row

    stream = sys.stdout
    shown = 0
    if fmt == "ndjson":
        for e in events:
            stream.write(e.body.decode() + "\n")
            shown += 1
        return shown
    if fmt == "json":
        bodies = [e.body.decode() for e in events]
        stream.write("[" + ",".join(bodies) + "]\n")
        return len(bodies)
    if fmt == "csv":
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        for e in events:
            writer.writerow(csv_row(parse_body(e.body)))
            shown += 1
        return shown
    table = Table("eventTime", "eventName", "serviceName", "user", "sourceIp", "accessKeyId", "error")
    for e in events:
        ev = parse_body(e.body)
        who = ev.get("userIdentity") or {}
        table.add_row(
            ev.get("eventTime", ""),
            ev.get("eventName", ""),
            ev.get("serviceName", ""),
            str(who.get("userName", "")),
            ev.get("sourceIpAddress", ""),
            str(who.get("accessKeyId", "")),
            ev.get("errorCode", "") or "",
        )
        shown += 1
    out.print(table)
    console.print(f"{shown:,} events")
    return shown
