"""What the pages show, as plain values for the templates: event rows, event facts, the histogram.

Nothing here escapes: the templates do (Jinja autoescape), so every value a key holder chose (a
user agent, a resource name, an error message) reaches the page as text, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from ..model.event import EventInvalid, EventRecord, event_from_mapping, fast_record
from ..model.event_text import parse_body
from ..model.query import EventFilter, StoredEvent
from ..model.times import format_wire_time
from ..storage.base import EventLog

__all__ = ["Bar", "EventView", "Histogram", "bucket_width", "event_view", "histogram", "pretty_json"]

_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
#: Bucket widths a person reads easily; the narrowest that keeps the bars at most MAX_BARS.
NICE_WIDTHS = (
    1000,
    5000,
    15_000,
    _MINUTE,
    5 * _MINUTE,
    15 * _MINUTE,
    30 * _MINUTE,
    _HOUR,
    3 * _HOUR,
    6 * _HOUR,
    12 * _HOUR,
    _DAY,
    2 * _DAY,
    7 * _DAY,
    30 * _DAY,
)
MAX_BARS = 120


@dataclass(frozen=True, slots=True)
class EventView:
    """One event as a row and a header: the facts people read first."""

    event_id: str
    time: str
    time_ms: int
    name: str
    service: str
    user: str
    key: str
    ip: str
    rw: str
    resources: tuple[tuple[str, str], ...]
    error: str
    error_message: str
    agent: str
    region: str
    type: str
    request: str
    role: str

    def column(self, name: str) -> str:
        if name == "resources":
            return ", ".join(rname or rtype for rtype, rname in self.resources)
        value = getattr(self, name)
        return value if isinstance(value, str) else ""


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    return value if isinstance(value, str) else "" if value is None else str(value)


class _Extras(msgspec.Struct):
    """The shown fields no filter indexes, decoded in C without building the rest of the event."""

    userAgent: str | None = None
    acsRegion: str | None = None
    errorMessage: str | None = None


_EXTRAS = msgspec.json.Decoder(_Extras)


def event_view(stored: StoredEvent) -> EventView:
    # The typed decodes in C first (a search page shows dozens of rows); the careful reader and
    # the checks in Python only for what they leave to them (other types, odd numbers).
    rec: EventRecord | None = fast_record(stored.body)
    doc: dict[str, Any] = {}
    if rec is not None:
        try:
            extras = _EXTRAS.decode(stored.body)
            doc = {
                "userAgent": extras.userAgent,
                "acsRegion": extras.acsRegion,
                "errorMessage": extras.errorMessage,
            }
        except (msgspec.ValidationError, msgspec.DecodeError):
            rec = None
    if rec is None:
        parsed = parse_body(stored.body)
        doc = parsed if isinstance(parsed, dict) else {}
        try:
            rec = event_from_mapping(doc, body=stored.body)
        except EventInvalid:  # stored events were validated at ingest; show what there is anyway
            rec = None
    return EventView(
        event_id=stored.event_id,
        time=format_wire_time(stored.event_time_ms),
        time_ms=stored.event_time_ms,
        name=rec.event_name if rec else _text(doc, "eventName"),
        service=(rec.service_name if rec else None) or "",
        user=(rec.user_name if rec else None) or "",
        key=(rec.access_key_id if rec else None) or "",
        ip=(rec.source_ip if rec else None) or "",
        rw=(rec.event_rw if rec else None) or "",
        resources=rec.resources if rec else (),
        error=(rec.error_code if rec else None) or "",
        error_message=_text(doc, "errorMessage"),
        agent=_text(doc, "userAgent"),
        region=_text(doc, "acsRegion"),
        type=(rec.event_type if rec else None) or "",
        request=(rec.request_id if rec else None) or "",
        role=(rec.role_name if rec else None) or "",
    )


def pretty_json(body: bytes) -> str:
    """The stored event as indented JSON, keys in their stored order, numbers as spelled."""
    return orjson.dumps(parse_body(body), option=orjson.OPT_INDENT_2).decode()


# ------------------------------------------------------------------------------------ histogram


@dataclass(frozen=True, slots=True)
class Bar:
    start_ms: int
    end_ms: int  # inclusive
    count: int

    @property
    def start(self) -> str:
        return format_wire_time(self.start_ms)

    @property
    def end(self) -> str:
        return format_wire_time(self.end_ms)


@dataclass(frozen=True, slots=True)
class Histogram:
    bars: tuple[Bar, ...]
    width_ms: int
    total: int
    peak: int
    start_ms: int
    end_ms: int

    @property
    def width_label(self) -> str:
        for unit, name in ((_DAY, "day"), (_HOUR, "hour"), (_MINUTE, "minute"), (1000, "second")):
            if self.width_ms % unit == 0:
                n = self.width_ms // unit
                return f"{n} {name}{'s' if n != 1 else ''}"
        return f"{self.width_ms} ms"


def bucket_width(span_ms: int, max_bars: int = MAX_BARS) -> int:
    for width in NICE_WIDTHS:
        if span_ms / width <= max_bars:
            return width
    return -(-span_ms // max_bars)


def histogram(store: EventLog, *, account_id: str, flt: EventFilter) -> Histogram:
    """Matches per bucket over the window, empty buckets included, buckets aligned to UTC."""
    width = bucket_width(flt.end_ms - flt.start_ms + 1)
    origin = flt.start_ms - flt.start_ms % width
    counts = dict(store.count_by_time(account_id=account_id, flt=flt, origin_ms=origin, bucket_ms=width))
    bars = []
    t = origin
    while t <= flt.end_ms:
        bars.append(Bar(max(t, flt.start_ms), min(t + width - 1, flt.end_ms), counts.get(t, 0)))
        t += width
    total = sum(b.count for b in bars)
    return Histogram(
        tuple(bars), width, total, max((b.count for b in bars), default=0), flt.start_ms, flt.end_ms
    )
