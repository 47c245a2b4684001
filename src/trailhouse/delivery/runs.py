"""What the delivery engine shares with its helpers and hooks: lease and run names, the window a
hook receives, and the counters /metrics reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..model.delivery import DeliveryCheckpoint
from ..model.trail import Trail
from .files import OssFile
from .object_storage import ObjectStorage

__all__ = [
    "DeliveryFailed",
    "DeliveryStats",
    "SinkState",
    "WindowDelivered",
    "WindowHook",
    "lease_name",
    "run_of",
    "run_start",
]


class DeliveryFailed(Exception):
    """A destination failed; the checkpoint keeps the message and the step is retried later."""


@dataclass
class SinkState:
    """One destination of a trail's run in memory: the events' (``oss``, ``sls``) or the insight
    records' (``oss-insight``, ``sls-insight``), each stepped by its own code with the engine's
    checkpoint, failure and back-off handling."""

    sink: str
    checkpoint: DeliveryCheckpoint | None = None
    #: How far the destination has read: a log seq, or for the insight sinks an insight ref.
    scan_seq: int = 0
    in_window: int = 0
    window_open: float | None = None
    failures: int = 0
    retry_at: float = 0.0
    persisted_at: float = 0.0
    reconciled: bool = False
    #: The checkpoint in memory is ahead of the stored one (stream saves are spaced out).
    dirty: bool = False
    #: The last read found nothing more to deliver (the insight sinks, for ``run_once``).
    caught_up: bool = False


def lease_name(account_id: str, trail_name: str) -> str:
    return f"trail/{account_id}/{trail_name}"


def run_of(run: str) -> str:
    """A checkpoint's logging run (the trail's StartLoggingTime) from ``<run>@<start seq>``."""
    return run.partition("@")[0]


def run_start(run: str) -> int:
    """The seq a logging run started after (its destinations deliver what comes after it)."""
    start = run.partition("@")[2]
    return int(start) if start.isdigit() else 0


@dataclass(frozen=True, slots=True)
class WindowDelivered:
    """A window's files, written and not yet committed: what an ``after_window`` hook receives.

    A hook runs after every file of the window is stored and before the checkpoint moves past
    it; if it raises, the window is written again later (same keys, same bytes) and the hook runs
    again, so a hook must be idempotent. (wt-integrity writes its digest here.)
    """

    trail: Trail
    bucket: str
    window_ms: int
    first_seq: int  # exclusive: the window holds seqs in (first_seq, last_seq]
    last_seq: int
    files: tuple[OssFile, ...]
    storage: ObjectStorage


WindowHook = Callable[[WindowDelivered], Awaitable[None] | None]


@dataclass
class DeliveryStats:
    """Counters of this node's engine, for /metrics."""

    events: dict[str, int] = field(default_factory=lambda: {"oss": 0, "sls": 0})
    files: int = 0
    errors: dict[str, int] = field(default_factory=lambda: {"oss": 0, "sls": 0})
    #: Seconds from an event's arrival in the log (as this node saw it) to its stream record's ack.
    stream_lag_s: list[float] = field(default_factory=list)
    #: Log entries between the head and each trail's slowest checkpoint, by trail ARN.
    behind: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """Plain values for /metrics (api/metrics.py knows nothing of the engine's types)."""
        lags = sorted(self.stream_lag_s[-10_000:])
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
        return {
            "events": dict(self.events),
            "files": self.files,
            "errors": dict(self.errors),
            "behind": dict(self.behind),
            "stream_lag_p99_s": p99,
        }
