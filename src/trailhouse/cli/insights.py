"""``trailhouse insights``: list and show insight records, turn types on and off, run the detector."""

from __future__ import annotations

import enum
import json
import socket
import sys
from typing import Annotated

import orjson
import typer

from ..model.insights import INSIGHT_TYPES, InsightAttr, InsightQuery
from ..model.times import DAY_MS, format_wire_time, now_ms
from ..render.table import Column
from .common import (
    EXIT_NOTHING,
    EXIT_USAGE,
    DbOption,
    cli_time,
    fail,
    load_settings,
    note_hidden,
    opened,
    out,
    row_writer,
)

__all__ = [
    "insights_detect",
    "insights_disable",
    "insights_enable",
    "insights_list",
    "insights_show",
    "insights_types",
]


class ListFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


#: Times, types and the object (an AccessKey, a user) are never cut (docs/cli.md, "Output").
INSIGHT_COLUMNS = (
    Column("time", whole=True),
    Column("type", whole=True),
    Column("state", whole=True, priority=2),
    Column("object", whole=True, priority=1),
    Column("events", priority=3),
    Column("explanation", priority=4),
)

AccountOption = Annotated[str, typer.Option("--account", help="The account whose insights these are.")]


def _check_type(kind: str) -> str:
    if kind not in INSIGHT_TYPES:
        raise fail(f"{kind!r} is not an Insights type; one of: {', '.join(INSIGHT_TYPES)}", EXIT_USAGE)
    return kind


def insights_list(
    account: AccountOption,
    kind: Annotated[str | None, typer.Option("--type", help="Only this Insights type.")] = None,
    since: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (UTC) or ISO 8601 with a zone; default: 7 days ago.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many records, newest first.")] = 50,
    fmt: Annotated[
        ListFormat,
        typer.Option("--format", help="table (tab-separated when piped) or json.", case_sensitive=False),
    ] = ListFormat.TABLE,
    db: DbOption = None,
) -> None:
    """Insight records of an account, newest first: type, state, object and why."""
    equals = {InsightAttr.INSIGHT_TYPE: _check_type(kind)} if kind else {}
    settings = load_settings(db)
    now = now_ms()
    start = cli_time(since, now - 7 * DAY_MS, "--since")
    with opened(settings, create=False) as store:
        found = store.find_insights(
            account_id=account,
            query=InsightQuery(start, now + DAY_MS, equals),
            after=None,
            limit=max(1, limit),
        )
    records = [orjson.loads(i.body) for _, i in found]
    if fmt == "json":
        sys.stdout.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")
        return
    if not records:
        raise fail(f"no insights for account {account} since {format_wire_time(start)}", EXIT_NOTHING)
    table = row_writer(INSIGHT_COLUMNS)
    table.write_all(
        [
            r["eventTime"],
            r["insightDetails"]["insightType"],
            r["insightDetails"]["state"],
            r["insightDetails"]["insightObject"],
            str(len(r.get("triggeringEventIds", []))),
            r.get("explanation", ""),
        ]
        for r in records
    )
    note_hidden(table)


def insights_show(
    insight_id: Annotated[str, typer.Argument(help="The record's eventId, or its sharedEventId.")],
    account: AccountOption,
    db: DbOption = None,
) -> None:
    """One insight as JSON: its Start and End records, with the events that raised it."""
    settings = load_settings(db)
    window = InsightQuery(0, now_ms() + DAY_MS, {InsightAttr.EVENT_ID: insight_id})
    with opened(settings, create=False) as store:
        found = store.find_insights(account_id=account, query=window, after=None, limit=1)
        shared = found[0][1].shared_id if found else insight_id
        both = [
            i
            for _, i in store.find_insights(
                account_id=account, query=InsightQuery(0, now_ms() + DAY_MS), after=None, limit=10_000
            )
            if i.shared_id == shared
        ]
    if not both:
        raise fail(f"no insight {insight_id} in account {account}", EXIT_NOTHING)
    records = [orjson.loads(i.body) for i in sorted(both, key=lambda i: i.state != "Start")]
    sys.stdout.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")


def _set(account: str, kind: str, enabled: bool, db: str | None) -> None:
    settings = load_settings(db)
    with opened(settings) as store:
        store.set_insight_type(
            account_id=account, insight_type=_check_type(kind), enabled=enabled, now_ms=now_ms()
        )
    out.print(f"{kind} {'enabled' if enabled else 'disabled'} for account {account}")


def insights_enable(
    kind: Annotated[str, typer.Argument(help="The Insights type (or 'all').")],
    account: AccountOption,
    db: DbOption = None,
) -> None:
    """Turn an Insights type on for an account (as EnableInsight does)."""
    for one in INSIGHT_TYPES if kind == "all" else (kind,):
        _set(account, one, True, db)


def insights_disable(
    kind: Annotated[str, typer.Argument(help="The Insights type (or 'all').")],
    account: AccountOption,
    db: DbOption = None,
) -> None:
    """Turn an Insights type off for an account (as DisableInsight does)."""
    for one in INSIGHT_TYPES if kind == "all" else (kind,):
        _set(account, one, False, db)


def insights_types(account: AccountOption, db: DbOption = None) -> None:
    """The seven Insights types and whether the account enabled each."""
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        enabled = set(store.insight_types_enabled(account_id=account))
    for kind in INSIGHT_TYPES:
        out.print(f"{kind:<26} {'on' if kind in enabled else 'off'}")


def insights_detect(db: DbOption = None) -> None:
    """Run the detector until it has caught up with the log (what `serve` does continuously)."""
    from ..service.insights.config import thresholds_from
    from ..service.insights.detector import Detector

    settings = load_settings(db)
    with opened(settings, create=False) as store:
        # One owner name per host: a later run here takes over the lease an earlier one left behind.
        detector = Detector(
            store,
            thresholds_from(settings),
            owner=f"cli@{socket.gethostname()}",
            checkpoint_ms=int(settings.insights_checkpoint_s * 1000),
        )
        processed = stored = 0
        while True:
            result = detector.step()
            if not result.leader:
                if not store.all_enabled_insight_types():
                    raise fail("no account has an Insights type enabled (trailhouse insights enable …)")
                raise fail("another node holds the detector lease (a running `serve`); it is detecting")
            processed += result.processed
            stored += result.stored
            if result.processed == 0:
                break
    out.print(f"read {processed} event(s); {stored} new insight record(s)")
