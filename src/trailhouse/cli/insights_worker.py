"""``trailhouse insights worker`` and ``insights status``: the detector as a process, and what it did."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ..api.insights_worker import read_status, run_worker, status_path
from ..model.times import format_wire_time
from .common import EXIT_NOTHING, DbOption, load_settings, opened, out

__all__ = ["insights_status", "insights_worker"]

StatusFileOption = Annotated[
    Path | None,
    typer.Option(
        "--status-file",
        help="The worker's status file (default: insights-worker.json in the data directory).",
    ),
]


def insights_worker(
    db: DbOption = None,
    status_file: StatusFileOption = None,
    parent_pid: Annotated[
        int | None,
        typer.Option(
            "--parent-pid",
            help="Stop when this process is no longer the parent (serve passes its own id).",
            hidden=True,
        ),
    ] = None,
    lease_owner: Annotated[
        str | None,
        typer.Option(
            "--lease-owner",
            help="The name the detector's lease is held by (serve passes one per server).",
            hidden=True,
        ),
    ] = None,
) -> None:
    """Run the Insights detector and its webhook until stopped (SIGTERM, Ctrl-C).

    `serve` runs this as a child process when TRAILHOUSE_INSIGHTS_DETECTOR is on. Run it yourself
    to detect on another machine: set TRAILHOUSE_INSIGHTS_DETECTOR=off on the servers and point
    this at the same store. However many run, one detects at a time (the store's lease).
    """
    settings = load_settings(db)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    path = status_file or status_path(settings)
    if settings.insights_worker_nice:
        # Detection can wait a few seconds; ingest, sharing the CPU, should not.
        os.nice(settings.insights_worker_nice)
    with opened(settings) as store:
        asyncio.run(
            run_worker(store, settings, status_file=path, parent_pid=parent_pid, lease_owner=lease_owner)
        )


def _ago(ms: object) -> str:
    if not isinstance(ms, int) or ms <= 0:
        return "never"
    return f"{format_wire_time(ms)} ({max(0.0, time.time() - ms / 1000):.0f} s ago)"


def _detecting(detector: dict[str, Any]) -> str:
    if not detector.get("leader"):
        return "no (standing by)"
    if detector.get("deferring"):
        return "yes (holds the lease; waiting for a gap in a busy ingest)"
    return "yes (holds the lease)"


def insights_status(
    db: DbOption = None,
    status_file: StatusFileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The status file as it is.")] = False,
) -> None:
    """What this machine's Insights worker reports: detecting or standing by, and its webhook's counts."""
    path = status_file or status_path(load_settings(db))
    status = read_status(path)
    if status is None:
        out.print(f"no Insights worker status at {path}: no worker has run with this data directory")
        raise typer.Exit(EXIT_NOTHING)
    if as_json:
        out.print(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode(), soft_wrap=True)
        return
    updated = status.get("updated_ms")
    stale = not isinstance(updated, int) or time.time() * 1000 - updated > 10_000
    state = status.get("stopped") or ("not running (status not updated)" if stale else "running")
    detector: dict[str, Any] = status.get("detector") or {}
    lines = [
        f"worker        pid {status.get('pid')} on {status.get('host')}: {state}",
        f"started       {_ago(status.get('started_ms'))}",
        f"updated       {_ago(updated)}",
        f"detecting     {_detecting(detector)}",
        f"events read   {detector.get('events_processed', 0)}",
        f"records       {detector.get('records_stored', 0)} stored",
        f"failed steps  {detector.get('failed_steps', 0)}",
        f"last step     {_ago(detector.get('last_step_ms'))}",
    ]
    webhook = status.get("webhook")
    if isinstance(webhook, dict):
        lines.append(
            f"webhook       {webhook.get('url')}: delivered {webhook.get('delivered', 0)}, "
            f"retried {webhook.get('retried', 0)}, dead letters {webhook.get('dead_letters', 0)}, "
            f"queued {webhook.get('queued', 0)}"
        )
        for insight_id in webhook.get("dead_letter_ids") or []:
            lines.append(f"dead letter   {insight_id}")
    else:
        lines.append("webhook       none (TRAILHOUSE_INSIGHT_WEBHOOK_URL unset)")
    for line in lines:
        out.print(line, soft_wrap=True)
