"""Where a trail's delivery stands: one checkpoint per trail and destination ("sink").

The engine follows the event log by seq. ``delivered_seq`` is the seq through which every event
of the log has been delivered or found out of the trail's scope. A file window is recorded
(``window_end_seq``, ``window_ms``) before its files are written, so a crash between the record
and the commit writes the same files again: same object keys, same bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["EVENT_SINKS", "DeliveryCheckpoint", "Sink"]


class Sink(enum.StrEnum):
    """A destination of a trail. History jobs use ``job:<id>`` names of their own.

    The insight sinks deliver the trail's Insights records to the same destinations; their
    checkpoints count insight refs (``delivered_seq``, ``window_end_seq``), not log seqs.
    """

    OSS = "oss"
    STREAM = "sls"
    INSIGHT_OSS = "oss-insight"
    INSIGHT_STREAM = "sls-insight"


#: The sinks that follow the event log by seq (what a logging run's start and ``behind`` are about).
EVENT_SINKS = frozenset({Sink.OSS.value, Sink.STREAM.value})


@dataclass(frozen=True, slots=True)
class DeliveryCheckpoint:
    account_id: str
    trail_name: str
    #: ``oss``, ``sls`` (the stream), or ``job:<id>`` for a delivery-history job.
    sink: str
    #: Which logging run the checkpoint belongs to: ``<StartLoggingTime ms>@<seq it started after>``.
    #: A trail stopped and started again begins a new run at the log head, as ActionTrail delivers
    #: nothing of the time it was off; a delivery-history job delivers up to the run's start.
    run: str
    delivered_seq: int
    #: A window recorded but not yet committed: events in (delivered_seq, window_end_seq]; 0: none.
    window_end_seq: int = 0
    #: The window's time, which names its files (UTC, to the second); after the commit, the last
    #: window's (the next is at least a second later).
    window_ms: int = 0
    last_delivery_ms: int | None = None
    last_error: str = ""
    last_error_ms: int | None = None
    #: Events delivered by this checkpoint in all (for /metrics and the status).
    delivered_events: int = 0
    updated_ms: int = 0
