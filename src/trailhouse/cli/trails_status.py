"""``trailhouse trails status`` and ``trailhouse trails deliver --once``: trail delivery for operators."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..model.times import format_wire_time, now_ms
from ..storage.base import StoreError
from .common import DbOption, JsonOption, fail, load_settings, opened, out

__all__ = ["trails_deliver", "trails_status"]


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
                        "Account": trail.account_id,
                        "Name": trail.name,
                        "Status": str(trail.status),
                        "IsLogging": trail.is_logging,
                        "OssBucketName": trail.oss_bucket_name,
                        "OssBucketStatus": s.oss.healthy if s.oss.configured else None,
                        "LatestDeliveryTime": _when(s.oss.last_delivery_ms),
                        "LatestDeliveryError": s.oss.last_error,
                        "OssDeliveredEvents": s.oss.delivered_events,
                        "SlsProjectArn": trail.sls_project_arn,
                        "SlsLogStoreStatus": s.stream.healthy if s.stream.configured else None,
                        "LatestDeliveryLogServiceTime": _when(s.stream.last_delivery_ms),
                        "LatestDeliveryLogServiceError": s.stream.last_error,
                        "StreamDeliveredEvents": s.stream.delivered_events,
                        "BehindEvents": s.behind,
                    }
                )
        except StoreError as exc:
            raise fail(f"the store failed: {exc}") from None
    if json_out:
        out.print(json.dumps(rows))
        return
    table = Table(
        "account", "trail", "status", "OSS", "last file", "stream", "last record", "behind", "error"
    )
    for r in rows:
        oss = (
            "-"
            if r["OssBucketStatus"] is None
            else f"{r['OssBucketName']} ({'ok' if r['OssBucketStatus'] else 'failing'})"
        )
        stream = "-" if r["SlsLogStoreStatus"] is None else ("ok" if r["SlsLogStoreStatus"] else "failing")
        error = r["LatestDeliveryError"] or r["LatestDeliveryLogServiceError"]
        table.add_row(
            r["Account"],
            r["Name"],
            r["Status"],
            escape(oss),
            r["LatestDeliveryTime"] or "never",
            stream,
            r["LatestDeliveryLogServiceTime"] or ("never" if stream != "-" else "-"),
            f"{r['BehindEvents']:,}",
            escape(error),
        )
    out.print(table if rows else "no trails")


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
        out.print(json.dumps(summary))
    else:
        out.print(
            f"{summary['trails']} trails: {summary['files']} files ({summary['events']['oss']:,} events), "
            f"{summary['events']['sls']:,} stream records, errors {summary['errors']}"
        )
    if any(summary["errors"].values()):
        raise typer.Exit(1)
