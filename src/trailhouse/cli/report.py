"""``trailhouse access-key report``: the leaked-key report of one AccessKey, as tables, JSON or HTML."""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated

import typer

from ..model.times import format_wire_time, now_ms
from .common import (
    EXIT_NOTHING,
    EXIT_USAGE,
    DbOption,
    account_has_events,
    fail,
    load_settings,
    opened,
    out,
    safe_url,
)

__all__ = ["access_key_report"]


class ReportFormat(enum.StrEnum):
    """The forms of the report, so that --help lists them and typer refuses others."""

    TABLE = "table"
    JSON = "json"
    HTML = "html"


def access_key_report(
    key: Annotated[str, typer.Argument(help="The AccessKey id.")],
    account: Annotated[str, typer.Option("--account", help="The account the key belongs to.")],
    since: Annotated[
        str | None,
        typer.Option(
            help="The suspected leak time: IPs first used from then on are new, and the findings start"
            " there. YYYY-MM-DD (UTC) or ISO 8601 with a zone (2026-12-03T18:00:00Z). Default: derived"
            " from the key's history (the first call from a network outside its first days of use)."
        ),
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table, json or html.", case_sensitive=False)
    ] = ReportFormat.TABLE,
    db: DbOption = None,
) -> None:
    """The leaked-key report: when the key leaked, new IPs, what it created, bulk reads, dangerous actions."""
    from ..model.times import DAY_MS, TimeFormatError
    from ..render.report_html import report_to_html
    from ..render.report_json import report_to_json
    from ..render.report_table import report_to_table
    from ..service.access_key_report import build_report
    from ..service.report.leak_time import parse_leak_time

    settings = load_settings(db)
    with opened(settings, create=False) as store:
        now = now_ms()
        try:
            since_ms = parse_leak_time(since) if since else None
        except TimeFormatError as exc:
            raise fail(f"--since: {exc}", EXIT_USAGE) from None
        report = build_report(
            store,
            account_id=account,
            access_key_id=key,
            since_ms=since_ms,
            now_ms=now,
            window_start_ms=now - settings.usage_window_days * DAY_MS,
        )
        account_known = report.used or account_has_events(store, account)
    if not report.used:
        # A report of nothing would read as "the key was never used", which the store cannot
        # tell from a mistyped key or account: say what is known and exit non-zero.
        if not account_known:
            why = f"account {account} has no events in {safe_url(settings.db_url)}"
        else:
            since_text = format_wire_time(report.since_ms)
            why = f"AccessKey {key} made no calls in account {account} since {since_text}"
        if fmt == "json":
            sys.stdout.write(json.dumps(report_to_json(report), ensure_ascii=False, indent=2) + "\n")
        raise fail(f"{why}; check the key id, --account and --since", EXIT_NOTHING)
    if fmt == "json":
        sys.stdout.write(json.dumps(report_to_json(report), ensure_ascii=False, indent=2) + "\n")
    elif fmt == "html":
        sys.stdout.write(report_to_html(report))
    else:
        report_to_table(report, out)
