"""``trailhouse access-key report``: the leaked-key report of one AccessKey, as tables, JSON or HTML."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..model.times import format_wire_time, now_ms
from .common import (
    EXIT_NOTHING,
    DbOption,
    account_has_events,
    cli_time,
    fail,
    load_settings,
    opened,
    out,
    safe_url,
)

__all__ = ["access_key_report"]


def access_key_report(
    key: Annotated[str, typer.Argument(help="The AccessKey id.")],
    account: Annotated[str, typer.Option("--account", help="The account the key belongs to.")],
    since: Annotated[str | None, typer.Option(help="ISO 8601; default: the usage window (400 days).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or html.")] = "table",
    db: DbOption = None,
) -> None:
    """The leaked-key report: IPs, services, resources, failed calls and dangerous actions, as a timeline."""
    from ..model.times import DAY_MS
    from ..render.report_html import report_to_html
    from ..render.report_json import report_to_json
    from ..render.report_table import report_to_table
    from ..service.access_key_report import build_report

    if fmt not in ("table", "json", "html"):
        raise fail("--format must be table, json or html")
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        now = now_ms()
        since_ms = cli_time(since, now - settings.usage_window_days * DAY_MS, "--since")
        report = build_report(store, account_id=account, access_key_id=key, since_ms=since_ms, now_ms=now)
        account_known = report.used or account_has_events(store, account)
    if not report.used:
        # A report of nothing would read as "the key was never used", which the store cannot
        # tell from a mistyped key or account: say what is known and exit non-zero.
        if not account_known:
            why = f"account {account} has no events in {safe_url(settings.db_url)}"
        else:
            why = f"AccessKey {key} made no calls in account {account} since {format_wire_time(since_ms)}"
        if fmt == "json":
            sys.stdout.write(json.dumps(report_to_json(report), ensure_ascii=False, indent=2) + "\n")
        raise fail(f"{why}; check the key id, --account and --since", EXIT_NOTHING)
    if fmt == "json":
        sys.stdout.write(json.dumps(report_to_json(report), ensure_ascii=False, indent=2) + "\n")
    elif fmt == "html":
        sys.stdout.write(report_to_html(report))
    else:
        report_to_table(report, out)
