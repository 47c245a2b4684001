"""What GetTrailStatus and ``trailhouse trails status`` report: the truth from the store.

Delivery can run on any node, so the status is read from the checkpoints in the store (the
last delivery and the last error of each destination, saved by whichever node delivered), plus
a live look at the bucket. ``behind`` is how many log entries the trail's slowest destination
has still to go through (in scope or not): 0 when delivery is caught up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..model.delivery import DeliveryCheckpoint, Sink
from ..model.trail import HistoryJobStatus, Trail
from ..storage.base import EventStore
from .object_storage import BucketStatus, ObjectStorageError
from .stream import StreamTarget

__all__ = ["DestinationStatus", "InsightDeliveryStatus", "TrailDeliveryStatus", "trail_delivery_status"]


@dataclass(frozen=True, slots=True)
class DestinationStatus:
    configured: bool
    last_delivery_ms: int | None
    #: The error of the last attempt, "" when it succeeded (an error older than the last delivery is over).
    last_error: str
    delivered_events: int
    behind: int
    healthy: bool


@dataclass(frozen=True, slots=True)
class InsightDeliveryStatus:
    """The trail's Insights records (its insight selectors) on their way to the same destinations.
    GetTrailStatus has no field for them; the CLI and the console show them."""

    #: The trail's insight selectors: the types it delivers (an organization trail delivers none).
    selected: tuple[str, ...]
    delivered_records: int
    last_delivery_ms: int | None
    #: The current error of each destination that has one, as "oss: …" / "sls: …"; "" when none.
    last_error: str


@dataclass(frozen=True, slots=True)
class TrailDeliveryStatus:
    trail: Trail
    oss: DestinationStatus
    stream: DestinationStatus
    bucket_status: BucketStatus | None
    insights: InsightDeliveryStatus

    @property
    def behind(self) -> int:
        return max(
            self.oss.behind if self.oss.configured else 0, self.stream.behind if self.stream.configured else 0
        )


def _current_error(cp: DeliveryCheckpoint | None) -> str:
    if cp is None or not cp.last_error:
        return ""
    if (
        cp.last_delivery_ms is not None
        and cp.last_error_ms is not None
        and cp.last_error_ms < cp.last_delivery_ms
    ):
        return ""
    return cp.last_error


def _latest(*times: int | None) -> int | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _backfilled_ms(store: EventStore, trail: Trail) -> int | None:
    """When a delivery-history job of the trail last delivered something: a backfill's files and
    records are deliveries too, and a trail whose only deliveries so far are its backfill (the
    demo's, before any new event) must not report that nothing was ever delivered."""
    jobs, _ = store.list_history_jobs(account_id=trail.account_id, offset=0, limit=1000)
    times = [
        j.finished_ms if j.status is HistoryJobStatus.COMPLETE else j.updated_ms
        for j in jobs
        if j.trail_name == trail.name
        and (
            j.status is HistoryJobStatus.COMPLETE
            or (j.status is HistoryJobStatus.DELIVERING and j.checkpoint)
        )
    ]
    return _latest(*times)


def _destination(
    configured: bool,
    cp: DeliveryCheckpoint | None,
    head: int,
    healthy: bool,
    logging: bool,
    backfilled_ms: int | None = None,
) -> DestinationStatus:
    if not configured:
        return DestinationStatus(False, None, "", 0, 0, False)
    error = _current_error(cp)
    if cp is None:
        # Not picked up yet: everything since the trail started is still to go (nothing before it).
        return DestinationStatus(True, backfilled_ms, "", 0, 0, healthy and not error)
    behind = max(0, head - cp.delivered_seq) if logging else 0
    return DestinationStatus(
        True,
        _latest(cp.last_delivery_ms, backfilled_ms),
        error,
        cp.delivered_events,
        behind,
        healthy and not error,
    )


def _insight_delivery(
    store: EventStore, trail: Trail, checkpoints: dict[str, DeliveryCheckpoint]
) -> InsightDeliveryStatus:
    selected = store.get_insight_selectors(account_id=trail.account_id, trail_name=trail.name) or []
    sinks = [
        (label, checkpoints.get(sink.value))
        for label, sink in (("oss", Sink.INSIGHT_OSS), ("sls", Sink.INSIGHT_STREAM))
    ]
    errors = [f"{label}: {error}" for label, cp in sinks if (error := _current_error(cp))]
    return InsightDeliveryStatus(
        tuple(selected),
        sum(cp.delivered_events for _, cp in sinks if cp is not None),
        _latest(*(cp.last_delivery_ms for _, cp in sinks if cp is not None)),
        "; ".join(errors),
    )


def trail_delivery_status(
    store: EventStore,
    bucket_status_of: Callable[[str], str] | None,
    *,
    trail: Trail,
    stream_configured: bool,
) -> TrailDeliveryStatus:
    """``bucket_status_of`` is the object storage's ``bucket_status`` (None: no storage configured)."""
    checkpoints = {
        cp.sink: cp for cp in store.list_checkpoints(account_id=trail.account_id, trail_name=trail.name)
    }
    head = store.newest_seq()
    backfilled_ms = _backfilled_ms(store, trail)
    bucket_status: BucketStatus | None = None
    if trail.oss_bucket_name and bucket_status_of is not None:
        try:
            bucket_status = BucketStatus(bucket_status_of(trail.oss_bucket_name))
        except ObjectStorageError:
            bucket_status = None  # the endpoint is unreachable: not known to be writable
    oss = _destination(
        bool(trail.oss_bucket_name),
        checkpoints.get(Sink.OSS.value),
        head,
        bucket_status is BucketStatus.OK,
        trail.is_logging,
        backfilled_ms,
    )
    stream_ok = stream_configured and StreamTarget.for_trail(trail.sls_project_arn, trail.name) is not None
    stream = _destination(
        bool(trail.sls_project_arn),
        checkpoints.get(Sink.STREAM.value),
        head,
        stream_ok,
        trail.is_logging,
        backfilled_ms,
    )
    return TrailDeliveryStatus(
        trail, oss, stream, bucket_status, _insight_delivery(store, trail, checkpoints)
    )
