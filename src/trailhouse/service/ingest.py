"""Ingest: turn bytes (JSON array, ``{"events": [...]}``, NDJSON, gzip) into stored events.

Shared by ``POST /api/v1/events`` and ``trailhouse ingest``. Each event is validated on its own:
a bad one is rejected and reported (index, eventId, reason) without stopping the rest, unless
the caller asks for an atomic batch. Accepted events of one call are written in one transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..model.event import EventInvalid, EventRecord, event_from_mapping
from ..storage.base import EventStore

__all__ = [
    "BatchTooLarge",
    "IngestReport",
    "Rejection",
    "UnreadableInput",
    "decode_events",
    "gunzip",
    "ingest_items",
    "is_gzip",
]

GZIP_MAGIC = b"\x1f\x8b"
_SHAPE_HELP = (
    'expected a JSON array of events, an object with an "events" array, or NDJSON (one event per line)'
)


class UnreadableInput(ValueError):
    """The input as a whole cannot be read (corrupt gzip, malformed JSON document, wrong shape)."""


class BatchTooLarge(ValueError):
    """The input is over a configured limit."""


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    event_id: str | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "eventId": self.event_id, "reason": self.reason}


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, other: IngestReport, offset: int = 0) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected.extend(Rejection(r.index + offset, r.event_id, r.reason) for r in other.rejected)

    def to_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejections": [r.to_dict() for r in self.rejected],
        }


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip (several members allowed), refusing to inflate past ``max_bytes``."""
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            out += d.decompress(rest, max_bytes - len(out) + 1)
        except zlib.error as exc:
            raise UnreadableInput(f"corrupt gzip data: {exc}") from None
        if len(out) > max_bytes or d.unconsumed_tail:
            raise BatchTooLarge(f"decompressed body is larger than the limit of {max_bytes} bytes")
        if not d.eof:
            raise UnreadableInput("corrupt gzip data: the stream is truncated")
        rest = d.unused_data
        if rest and not is_gzip(rest):
            break  # trailing garbage after the last member is ignored, as gzip(1) does
    return bytes(out)


# One decoded item: (index, event object) or (index, Rejection) for a line that is not JSON.
Item = tuple[int, Any]


def decode_events(data: bytes) -> list[Item]:
    """Decode a whole document: JSON array, ``{"events": [...]}``, a single event object, or NDJSON."""
    text = data.lstrip()
    if not text:
        return []
    if text[:1] == b"[":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise UnreadableInput(f"malformed JSON: {exc}") from None
        return _from_document(parsed)
    if text[:1] == b"{":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return list(decode_ndjson(text.splitlines()))
        return _from_document(parsed)
    raise UnreadableInput(_SHAPE_HELP)


def _from_document(parsed: Any) -> list[Item]:
    if isinstance(parsed, list):
        return list(enumerate(parsed))
    if isinstance(parsed, dict):
        if "events" in parsed and "eventId" not in parsed:
            events = parsed["events"]
            if not isinstance(events, list):
                raise UnreadableInput('"events" must be an array of events')
            return list(enumerate(events))
        return [(0, parsed)]
    raise UnreadableInput(_SHAPE_HELP)


def decode_ndjson(lines: Iterable[bytes], first_index: int = 0, first_line: int = 1) -> Iterator[Item]:
    """Decode NDJSON lines; blank lines are skipped, a malformed one becomes a Rejection naming its line."""
    index = first_index
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            yield index, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield index, Rejection(index, None, f"line {number}: malformed JSON: {exc}")
        index += 1


def _event_id_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("eventId")
        return value if isinstance(value, str) else None
    return None


def ingest_items(
    store: EventStore,
    items: Sequence[Item],
    *,
    may_write: Callable[[str], bool],
    atomic: bool = False,
) -> IngestReport:
    """Validate every item, then store the valid ones in one transaction.

    ``may_write(account_id)`` says whether the caller may write events of that account. With
    ``atomic`` a single bad item stores nothing.
    """
    report = IngestReport()
    records: list[EventRecord] = []
    for index, obj in items:
        if isinstance(obj, Rejection):
            report.rejected.append(obj)
            continue
        try:
            record = event_from_mapping(obj)
        except EventInvalid as exc:
            report.rejected.append(Rejection(index, _event_id_of(obj), str(exc)))
            continue
        if not may_write(record.account_id):
            report.rejected.append(
                Rejection(
                    index, record.event_id, f"not allowed to write events of account {record.account_id}"
                )
            )
            continue
        records.append(record)
    if atomic and report.rejected:
        return report
    if records:
        result = store.append(records)
        report.accepted = len(result.accepted)
        report.duplicates = len(result.duplicates)
    return report
