"""``trailhouse trails status`` and ``trailhouse trails deliver --once``: trail delivery for operators.

The status is a listing like the others: a table through ``RowWriter`` (the account and the trail's
name whole, tab-separated in a pipe) and camelCase JSON keys (docs/cli.md "Output")."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from ..model.times import format_wire_time, now_ms
from ..render.table import Column
from ..storage.base import StoreError
from .common import (
    DbOption,
    JsonOption,
    fail,
    load_settings,
    note,
    note_hidden,
    opened,
    out,
    row_writer,
    write_json,
)

__all__ = ["STATUS_COLUMNS", "trails_deliver", "trails_status"]

#: What names the trail stays whole and goes last; then when it last delivered, how far behind and
#: the error; the stream's columns go first at a narrow terminal. Only the error wraps.
STATUS_COLUMNS = (
    Column("account", whole=True),
    Column("trail", whole=True),
    Column("status", whole=True, priority=2),
    Column("OSS", whole=True, priority=2),
    Column("last file", whole=True, priority=1),
    Column("stream", whole=True, priority=3),
    Column("last record", whole=True, priority=3),
    Column("behind", whole=True, priority=1),
    Column("error", priority=1),
)


def _when(ms: int | None) -> str:
    return format_wire_time(ms) if ms else ""


def trails_status(
    name: Annotated[str | None, typer.Argument(help="A trail's name (default: every trail).")] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="The trail's account (default: every account).")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Where each trail's delivery stands: last delivery and error per destination, how far behind."""
    from ..delivery.object_storage import open_object_storage
    from ..delivery.status import trail_delivery_status

    settings = load_settings(db)
    storage = open_object_storage(settings)
    rows: list[dict[str, Any]] = []
    with opened(settings, create=False) as store:
        try:
            trails = store.list_trails(account_id=account) if account else store.list_all_trails()
            trails = [t for t in trails if name is None or t.name == name]
            if name is not None and not trails:
                raise fail(f"no trail named {name!r}" + (f" in account {account}" if account else ""))
            for trail in trails:
                s = trail_delivery_status(
                    store, storage.bucket_status, trail=trail, stream_configured=bool(settings.nats_url)
                )
                rows.append(
                    {
                        "accountId": trail.account_id,
                        "name": trail.name,
                        "status": str(trail.status),
                        "isLogging": trail.is_logging,
                        "ossBucketName": trail.oss_bucket_name,
                        "ossBucketStatus": s.oss.healthy if s.oss.configured else None,
                        "latestDeliveryTime": _when(s.oss.last_delivery_ms),
                        "latestDeliveryError": s.oss.last_error,
                        "ossDeliveredEvents": s.oss.delivered_events,
                        "slsProjectArn": trail.sls_project_arn,
                        "slsLogStoreStatus": s.stream.healthy if s.stream.configured else None,
                        "latestDeliveryLogServiceTime": _when(s.stream.last_delivery_ms),
                        "latestDeliveryLogServiceError": s.stream.last_error,
                        "streamDeliveredEvents": s.stream.delivered_events,
                        "behindEvents": s.behind,
                        "insightSelectors": list(s.insights.selected),
                        "insightDeliveredRecords": s.insights.delivered_records,
                        "latestInsightDeliveryTime": _when(s.insights.last_delivery_ms),
                        "latestInsightDeliveryError": s.insights.last_error,
                    }
                )
        except StoreError as exc:
            raise fail(f"the store failed: {exc}") from None
    if json_out:
        write_json(rows)
        return
    if not rows:
        note("no trails" + (f" in account {account}" if account else ""))
        return
    table = row_writer(STATUS_COLUMNS)
    table.write_all(_status_cells(r) for r in rows)
    note_hidden(table)


def _status_cells(r: dict[str, Any]) -> list[str]:
    oss = (
        "-"
        if r["ossBucketStatus"] is None
        else f"{r['ossBucketName']} ({'ok' if r['ossBucketStatus'] else 'failing'})"
    )
    stream = "-" if r["slsLogStoreStatus"] is None else ("ok" if r["slsLogStoreStatus"] else "failing")
    return [
        r["accountId"],
        r["name"],
        r["status"],
        oss,
        r["latestDeliveryTime"] or "never",
        stream,
        r["latestDeliveryLogServiceTime"] or ("never" if stream != "-" else "-"),
        str(r["behindEvents"]),
        r["latestDeliveryError"]
        or r["latestDeliveryLogServiceError"]
        or (f"insights: {r['latestInsightDeliveryError']}" if r["latestInsightDeliveryError"] else ""),
    ]


def _add_digests(engine: Any, store: Any, settings: Any) -> None:
    """Each OSS window also delivers its digest; without serve running, this process logs the
    events itself while a digest waits for them (the sequencer is safe to run twice at once)."""
    from ..delivery.digests import DigestWriter
    from ..service.integrity.keys import load_log_signer
    from ..service.integrity.log import sequence

    signer = load_log_signer(settings.log_key, settings.resolved_data_dir())
    engine.after_window.append(DigestWriter(store, signer, catch_up=lambda: sequence(store, signer, now_ms)))


def trails_deliver(
    once: Annotated[bool, typer.Option("--once", help="Deliver what is in the log now, then exit.")] = False,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Deliver every enabled trail (serve does this in the background; this is for operators and cron)."""
    from ..delivery.engine import DeliveryEngine

    if not once:
        raise fail("trails deliver runs with --once (serve delivers continuously)", 2)
    settings = load_settings(db)
    started = now_ms()
    with opened(settings, create=False) as store:
        engine = DeliveryEngine(store, settings)
        if settings.log_sequencer == "on":
            _add_digests(engine, store, settings)
        try:
            asyncio.run(engine.run_once())
            trails = len(engine.trails())
        except StoreError as exc:
            raise fail(f"the store failed: {exc}") from None
        finally:
            asyncio.run(engine.close())
    summary: dict[str, Any] = {
        "trails": trails,
        "events": engine.stats.events,
        "files": engine.stats.files,
        "errors": engine.stats.errors,
        "seconds": round((now_ms() - started) / 1000, 3),
    }
    if json_out:
        write_json(summary)
    else:
        insights = sum(n for sink, n in summary["events"].items() if sink.endswith("-insight"))
        out.print(
            f"{summary['trails']} trails: {summary['files']} files ({summary['events']['oss']:,} events), "
            f"{summary['events']['sls']:,} stream records, {insights:,} insight records,"
            f" errors {summary['errors']}"
        )
    if any(summary["errors"].values()):
        raise typer.Exit(1)
