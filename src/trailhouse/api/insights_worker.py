"""The Insights worker: the detector and its webhook in a process of their own, beside ingest.

In ``serve``'s process the detector took CPU and the interpreter lock from ingest (docs/insights.md,
"Quality and cost"); as a process it only shares the machine. ``serve`` starts one as its child
(``api/insights_supervisor.py``) and passes ``--parent-pid``: the worker stops within a second of
its parent's end, however that came (a kill -9 included), so it is never left behind.
``trailhouse insights worker`` runs one standalone, on another machine or with ``serve``'s detector
off; the store's lease still lets one worker detect at a time.

What the worker has done is in its status file (JSON, ``insights-worker.json`` in the data
directory unless ``--status-file``), rewritten atomically every second: the detector's counts and
the webhook's (delivered, retried, dead letters and their ids). ``serve``'s ``/metrics`` and
``trailhouse insights status`` read it; the worker also logs the webhook's counts each minute they
change, and every dead letter at error level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from ..settings import Settings
from ..storage.base import EventStore
from .insights_task import DetectorStats, Webhook, detect_forever

__all__ = ["STATUS_FILE", "read_status", "run_worker", "status_path", "write_status"]

log = logging.getLogger("trailhouse.insights")

STATUS_FILE = "insights-worker.json"
#: How often the worker checks its parent and rewrites its status file.
TICK_S = 1.0
#: How often, at most, the webhook's counts are logged (when they changed).
WEBHOOK_LOG_EVERY_S = 60.0


def status_path(settings: Settings) -> Path:
    """Where the worker of these settings writes its status: the data directory."""
    return settings.resolved_data_dir() / STATUS_FILE


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the file whole (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(orjson.dumps(status, option=orjson.OPT_INDENT_2))
    os.replace(partial, path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status a worker wrote there, or None (no file, or not a worker's)."""
    try:
        status = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return status if isinstance(status, dict) else None


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Status:
    """The worker's status document, from its detector's and webhook's counters."""

    def __init__(self, stats: DetectorStats, webhook: Webhook | None, parent_pid: int | None) -> None:
        self.stats, self.webhook, self.parent_pid = stats, webhook, parent_pid
        self.started_ms = _now_ms()

    def document(self, *, stopped: str | None = None) -> dict[str, Any]:
        s = self.stats
        status: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "parent_pid": self.parent_pid,
            "started_ms": self.started_ms,
            "updated_ms": _now_ms(),
            "stopped": stopped,
            "detector": {
                "leader": s.leader,
                "events_processed": s.processed,
                "records_stored": s.stored,
                "failed_steps": s.failed_steps,
                "deferring": s.deferring,
                "last_step_ms": s.last_step_ms,
            },
            "webhook": None,
        }
        if self.webhook is not None:
            w = self.webhook.stats
            status["webhook"] = {
                "url": self.webhook.url,
                "delivered": w.delivered,
                "retried": w.retried,
                "dead_letters": w.dead_letters,
                "queued": self.webhook.queued,
                # The latest dead letters' insight ids, to re-read from the API and resend.
                "dead_letter_ids": list(w.dead_ids)[-100:],
            }
        return status


async def run_worker(
    store: EventStore,
    settings: Settings,
    *,
    status_file: Path | None = None,
    parent_pid: int | None = None,
    lease_owner: str | None = None,
) -> str:
    """Detect (and deliver the webhook) until SIGTERM or SIGINT, or until the process
    ``parent_pid`` is no longer this one's parent. Returns why it stopped. A detector or webhook
    loop that fails unexpectedly re-raises here: the worker exits non-zero and is restarted.
    ``lease_owner``: the name it holds the detector's lease by (default: unique to this process).
    ``serve`` gives its workers one name, so a worker started after one died takes its lease over
    at once instead of waiting out the lease's 30 s."""
    stop = asyncio.Event()
    why = ["stopped"]

    def on_signal(signum: int) -> None:
        why[0] = f"stopped by {signal.Signals(signum).name}"
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    webhook = None
    if settings.insight_webhook_url:
        webhook = Webhook(settings.insight_webhook_url, settings.insight_webhook_secret)
    stats = DetectorStats()
    status = _Status(stats, webhook, parent_pid)
    tasks = [asyncio.create_task(detect_forever(store, settings, stats, owner=lease_owner))]
    if webhook is not None:
        tasks.append(
            asyncio.create_task(
                webhook.deliver_forever(
                    store,
                    owner=lease_owner or f"{socket.gethostname()}:{uuid.uuid4()}",
                    lease_ms=int(settings.insights_lease_s * 1000),
                )
            )
        )
    log.info("insights worker %d started%s", os.getpid(), f" (parent {parent_pid})" if parent_pid else "")
    logged: tuple[int, int, int] = (0, 0, 0)
    logged_at = time.monotonic()
    try:
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                why[0] = f"stopped: its parent process {parent_pid} is gone"
                break
            for task in tasks:
                if task.done():  # only by an exception: both loops run until cancelled
                    task.result()
            if status_file is not None:
                write_status(status_file, status.document())
            if webhook is not None and time.monotonic() - logged_at >= WEBHOOK_LOG_EVERY_S:
                w = webhook.stats
                counts = (w.delivered, w.retried, w.dead_letters)
                if counts != logged:
                    log.info(
                        "insights webhook: delivered %d, retried %d, dead letters %d, queued %d",
                        *counts,
                        webhook.queued,
                    )
                    logged, logged_at = counts, time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # a step in its thread ends first: its commit is whole or not made
        if status_file is not None:
            with contextlib.suppress(OSError):
                write_status(status_file, status.document(stopped=why[0]))
    log.info("insights worker %d %s", os.getpid(), why[0])
    return why[0]
