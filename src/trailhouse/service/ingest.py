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

import msgspec
import orjson

from ..model.event import (
    EventInvalid,
    EventRecord,
    compact_json,
    event_from_json,
    event_from_mapping,
    malformed_json_reason,
)
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
    "validate_items",
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


# One decoded item: (index, the compact JSON text of one event, or a decoded event object) or
# (index, Rejection) for a line that is not JSON. Text is validated later, in C (event_from_json).
Item = tuple[int, Any]

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _elements(raws: list[msgspec.Raw]) -> list[Item]:
    # Each element is compacted on its own: the document's whitespace is not part of the event.
    return [(i, msgspec.json.format(bytes(raw), indent=-1)) for i, raw in enumerate(raws)]


def decode_events(data: bytes) -> list[Item]:
    """Decode a whole document: JSON array, ``{"events": [...]}``, a single event object, or NDJSON."""
    text = data.lstrip()
    if not text:
        return []
    if text[:1] == b"[":
        try:
            return _elements(_RAW_LIST.decode(text))
        except msgspec.DecodeError:
            raise UnreadableInput(malformed_json_reason(text)) from None
    if text[:1] == b"{":
        try:
            members = _RAW_OBJECT.decode(text)
        except msgspec.DecodeError:
            return list(decode_ndjson(text.splitlines()))
        if "events" in members and "eventId" not in members:
            try:
                return _elements(_RAW_LIST.decode(members["events"]))
            except msgspec.ValidationError:
                raise UnreadableInput('"events" must be an array of events') from None
        return [(0, msgspec.json.format(text, indent=-1))]
    raise UnreadableInput(_SHAPE_HELP)


def decode_ndjson(lines: Iterable[bytes], first_index: int = 0, first_line: int = 1) -> Iterator[Item]:
    """Split NDJSON into compact event texts; blank lines are skipped, a malformed one becomes a
    Rejection naming its line."""
    index = first_index
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            yield index, compact_json(line)
        except EventInvalid as exc:
            yield index, Rejection(index, None, f"line {number}: {exc}")
        index += 1


def _event_id_of(obj: Any) -> str | None:
    if isinstance(obj, bytes):
        try:
            obj = orjson.loads(obj)
        except orjson.JSONDecodeError:
            return None
    if isinstance(obj, dict):
        value = obj.get("eventId")
        return value if isinstance(value, str) else None
    return None


def validate_items(
    items: Sequence[Item], *, may_write: Callable[[str], bool]
) -> tuple[list[EventRecord], list[Rejection]]:
    """The valid events of a batch, and a Rejection for each of the others."""
    records: list[EventRecord] = []
    rejected: list[Rejection] = []
    for index, obj in items:
        if isinstance(obj, Rejection):
            rejected.append(obj)
            continue
        try:
            record = event_from_json(obj, compact=True) if isinstance(obj, bytes) else event_from_mapping(obj)
        except EventInvalid as exc:
            rejected.append(Rejection(index, _event_id_of(obj), str(exc)))
            continue
        if not may_write(record.account_id):
            rejected.append(
                Rejection(
                    index, record.event_id, f"not allowed to write events of account {record.account_id}"
                )
            )
            continue
        records.append(record)
    return records, rejected


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
    records, report.rejected = validate_items(items, may_write=may_write)
    if atomic and report.rejected:
        return report
    if records:
        result = store.append(records)
        report.accepted = len(result.accepted)
        report.duplicates = len(result.duplicates)
    return report
