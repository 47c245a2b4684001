"""Ingest: turn bytes (JSON array, ``{"events": [...]}``, NDJSON, gzip) into stored events.

Shared by ``POST /api/v1/events`` and ``trailhouse ingest``. Each event is judged on its own
(the contract is in docs/api.md, "Ingest contract"): one that cannot be an audit record is
rejected and reported (index, eventId, reason) without stopping the rest, unless the caller asks
for an atomic batch; one that is only odd is stored as sent and reported with warnings. Accepted
events of one call are written in one transaction.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from ..model.event import EventInvalid, EventRecord, event_from_mapping
from ..model.event_text import depth_reason, event_from_json, malformed_json_reason, prepare_event_text
from ..model.times import DAY_MS, now_ms
from ..storage.base import EventLog, WriteUnit, build_unit

__all__ = [
    "BatchTooLarge",
    "IngestLimits",
    "IngestReport",
    "IngestWarning",
    "Prepared",
    "Rejection",
    "TooManyEvents",
    "UnreadableInput",
    "decode_body",
    "decode_events",
    "delivered_order",
    "is_event_file",
    "gunzip",
    "ingest_items",
    "is_gzip",
    "store_valid",
    "validate_items",
]

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
#: How far ahead of the receiver's clock an eventTime may be without a warning (clock skew).
FUTURE_SKEW_MS = 15 * 60 * 1000
_SHAPE_HELP = (
    'expected a JSON array of events, an object with an "events" array, or NDJSON (one event per line)'
)


class UnreadableInput(ValueError):
    """The input as a whole cannot be read (corrupt gzip, malformed JSON document, wrong shape)."""


class BatchTooLarge(ValueError):
    """The input is over a configured limit."""


class TooManyEvents(ValueError):
    """One request's batch holds more events than a request may (``TRAILHOUSE_MAX_BATCH_EVENTS``)."""

    def __init__(self, events: int, limit: int) -> None:
        super().__init__(f"the batch has {events} events; the limit is {limit} per request")
        self.events = events
        self.limit = limit

    def __reduce__(self) -> tuple[type[TooManyEvents], tuple[int, int]]:
        # Raised in a decode process and raised again in the server's: pickled by its arguments.
        return type(self), (self.events, self.limit)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    event_id: str | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "eventId": self.event_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class IngestWarning:
    index: int
    event_id: str
    warning: str

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "eventId": self.event_id, "warning": self.warning}


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[IngestWarning] = field(default_factory=list)

    def add(self, other: IngestReport, offset: int = 0) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected.extend(Rejection(r.index + offset, r.event_id, r.reason) for r in other.rejected)
        self.warnings.extend(IngestWarning(w.index + offset, w.event_id, w.warning) for w in other.warnings)

    @property
    def warned_events(self) -> int:
        return len({w.index for w in self.warnings})

    def to_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejections": [r.to_dict() for r in self.rejected],
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """What one event may be: its size, and how old (the store keeps ``retention_days``)."""

    max_event_bytes: int = 1024 * 1024
    retention_days: int | None = None

    @classmethod
    def of(cls, settings: Any) -> IngestLimits:
        return cls(max_event_bytes=settings.max_event_bytes, retention_days=settings.retention_days)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An event text that needed repair before it could be stored, and what was repaired."""

    text: bytes
    warnings: tuple[str, ...]


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


# One decoded item: (index, the compact JSON text of one event, a Prepared text, or a decoded event
# object) or (index, Rejection) for one that is not JSON. Text is validated later, in C
# (event_from_json).
Item = tuple[int, Any]

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_WRAPPER = re.compile(rb'\{\s*"events"\s*:\s*(?=\[)')
_SPLIT_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]')
_EVENT_ID = re.compile(rb'"eventId"\s*:\s*"((?:[^"\\]|\\.){1,256})"')


def _elements(raws: list[msgspec.Raw]) -> list[Item]:
    # Each element is compacted on its own: the document's whitespace is not part of the event.
    return [_item(i, bytes(raw)) for i, raw in enumerate(raws)]


def _item(index: int, text: bytes) -> Item:
    try:
        body, warnings = prepare_event_text(text)
    except EventInvalid as exc:
        return index, Rejection(index, _event_id_in(text), str(exc))
    return index, (Prepared(body, warnings) if warnings else body)


def _event_id_in(text: bytes) -> str | None:
    """The eventId of a text that cannot be parsed, when it is plainly there (for the rejection)."""
    match = _EVENT_ID.search(text)
    if match is None:
        return None
    try:
        value = orjson.loads(b'"' + match.group(1) + b'"')
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str) else None


def _split_array(text: bytes, start: int, closing: bytes = b"") -> list[bytes] | None:
    """The element texts of the JSON array at ``text[start]``, found by bracket counting, for a
    document the decoder refused as a whole (lone surrogates, nesting beyond its recursion limit);
    None when the brackets do not balance or something other than ``closing`` follows."""
    elements: list[bytes] = []
    depth = 0
    begin = start + 1
    end = None
    for match in _SPLIT_TOKENS.finditer(text, start):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                end = match.end()
                last = text[begin : match.start()]
                if last.strip():
                    elements.append(last)
                elif elements:
                    return None  # a trailing comma
                break
        elif token == b"," and depth == 1:
            elements.append(text[begin : match.start()])
            begin = match.end()
    if end is None or text[end:].strip() != closing or any(not e.strip() for e in elements):
        return None
    return elements


#: The name of a file a trail delivers (delivery/files.py writes it; ActionTrail's layout):
#: ``Actiontrail_<region>_<YYYYMMDDHHMMSS>_1002_<count>_<bytes>_<md5>.gz``.
_DELIVERED_NAME = re.compile(r"Actiontrail_[A-Za-z0-9-]+_(\d{14})_\d+_\d+_\d+_[0-9a-f]{32}\.gz$")
#: What a tree of files holds that ingest reads: delivered .gz files and exports.
EVENT_FILE_SUFFIXES = (".gz", ".json", ".ndjson", ".jsonl")


#: Folders of a delivered tree that hold no events: a trail's Insights records and digests.
NOT_EVENT_FOLDERS = ("Actiontrail-Insight", "Actiontrail-Digest")


def is_event_file(name: str) -> bool:
    """Whether a file found in a delivered tree (a directory, a bucket prefix) is one to ingest;
    ``name`` is its path (or key) below the tree, so the folders it is in can be told."""
    *folders, base = name.split("/")
    if any(f in NOT_EVENT_FOLDERS for f in folders):
        return False
    return not base.startswith(".") and base.endswith(EVENT_FILE_SUFFIXES)


def delivered_order(names: Iterable[str]) -> list[str]:
    """A delivered tree's files in the order they were written: by the window time in ActionTrail's
    file name (its date folders sort by region first), then by path; other files after, by path.
    Ingesting in this order restores the events in their arrival order."""

    def key(name: str) -> tuple[int, str, str]:
        m = _DELIVERED_NAME.search(name)
        return (0, m.group(1), name) if m else (1, "", name)

    return sorted(names, key=key)


def without_bom(data: bytes) -> bytes:
    """A UTF-8 byte order mark before a body (or a file's first line) is not part of it."""
    return data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data


def is_events_wrapper(members: Mapping[str, object]) -> bool:
    """The rule that tells ``{"events": [...]}`` from a single event: an ``events`` member, no eventId."""
    return "events" in members and "eventId" not in members


def is_ndjson_start(first_line: bytes) -> bool:
    """Whether a stream whose first non-blank line is ``first_line`` is NDJSON, read line by line,
    rather than one JSON document (an array, ``{"events": [...]}``, or an object over several lines)."""
    head = first_line.lstrip()[:1]
    if head == b"[":
        return False
    if head != b"{":
        return True  # not JSON at all: line by line, so the rejection names the line
    try:
        parsed = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return False  # a pretty-printed object spans lines
    return not (isinstance(parsed, dict) and is_events_wrapper(parsed))


def decode_events(data: bytes) -> list[Item]:
    """Decode a whole document: JSON array, ``{"events": [...]}``, a single event object, or NDJSON."""
    text = without_bom(data).lstrip()
    if not text:
        return []
    if text[:1] == b"[":
        try:
            return _elements(_RAW_LIST.decode(text))
        except (msgspec.DecodeError, RecursionError):
            return _split_elements(text, 0)
    if text[:1] == b"{":
        try:
            members = _RAW_OBJECT.decode(text)
        except (msgspec.DecodeError, RecursionError):
            wrapper = _WRAPPER.match(text)
            if wrapper is not None:
                return _split_elements(text, wrapper.end(), b"}")
            return list(decode_ndjson(text.splitlines()))
        if is_events_wrapper(members):
            try:
                return _elements(_RAW_LIST.decode(members["events"]))
            except msgspec.ValidationError:
                raise UnreadableInput('"events" must be an array of events') from None
        return [_item(0, text)]
    raise UnreadableInput(_SHAPE_HELP)


def decode_body(data: bytes, *, gzipped: bool, max_bytes: int, max_events: int) -> list[Item]:
    """One request's body as items: gunzipped (to at most ``max_bytes``) when ``gzipped``, then
    decoded; more than ``max_events`` of them is ``TooManyEvents``. The same steps in the server's
    process and in a decode process, so both refuse a body with the same words."""
    if gzipped:
        data = gunzip(data, max_bytes)
    items = decode_events(data)
    if len(items) > max_events:
        raise TooManyEvents(len(items), max_events)
    return items


def _split_elements(text: bytes, start: int, closing: bytes = b"") -> list[Item]:
    """Each element of a refused array on its own: an element that cannot be read is rejected alone
    when the rest can, but a document that is not JSON at all is refused as a whole."""
    elements = _split_array(text, start, closing)
    if elements is None:
        raise UnreadableInput(malformed_json_reason(text))
    items = [_item(i, element) for i, element in enumerate(elements)]
    malformed = [
        obj.reason for _, obj in items if isinstance(obj, Rejection) and obj.reason != depth_reason()
    ]
    if malformed:
        raise UnreadableInput(malformed[0])
    return items


def decode_ndjson(lines: Iterable[bytes], first_index: int = 0, first_line: int = 1) -> Iterator[Item]:
    """Split NDJSON into compact event texts; blank lines are skipped, a malformed one becomes a
    Rejection naming its line."""
    index = first_index
    for number, line in enumerate(lines, start=first_line):
        if number == 1:
            line = without_bom(line)
        if not line.strip():
            continue
        try:
            body, warnings = prepare_event_text(line)
        except EventInvalid as exc:
            yield index, Rejection(index, _event_id_in(line), f"line {number}: {exc}")
        else:
            yield index, (Prepared(body, warnings) if warnings else body)
        index += 1


def _event_id_of(obj: Any) -> str | None:
    if isinstance(obj, Prepared):
        obj = obj.text
    if isinstance(obj, bytes):
        try:
            obj = orjson.loads(obj)
        except orjson.JSONDecodeError:
            return _event_id_in(obj)
    if isinstance(obj, dict):
        value = obj.get("eventId")
        return value if isinstance(value, str) else None
    return None


def _duration(ms: int) -> str:
    minutes = ms // 60_000
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes // (24 * 60)} days"


def validate_items(
    items: Sequence[Item],
    *,
    may_write: Callable[[str], bool],
    limits: IngestLimits | None = None,
    now: int | None = None,
) -> tuple[list[EventRecord], list[Rejection], list[IngestWarning]]:
    """The valid events of a batch, a Rejection for each of the others, and the warnings of the
    valid ones."""
    limits = limits or IngestLimits()
    now = now_ms() if now is None else now
    oldest = now - limits.retention_days * DAY_MS if limits.retention_days else None
    records: list[EventRecord] = []
    rejected: list[Rejection] = []
    warnings: list[IngestWarning] = []
    for index, obj in items:
        if isinstance(obj, Rejection):
            rejected.append(obj)
            continue
        text = obj.text if isinstance(obj, Prepared) else obj
        if isinstance(text, bytes) and len(text) > limits.max_event_bytes:
            rejected.append(
                Rejection(
                    index,
                    _event_id_in(text),
                    f"the event is {len(text):,} bytes, over the limit of {limits.max_event_bytes:,} "
                    "bytes per event (TRAILHOUSE_MAX_EVENT_BYTES)",
                )
            )
            continue
        try:
            if isinstance(obj, Prepared):
                record = event_from_json(obj.text, compact=True, warnings=obj.warnings)
            elif isinstance(obj, bytes):
                record = event_from_json(obj, compact=True)
            else:
                record = event_from_mapping(obj)
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
        if oldest is not None and record.event_time_ms < oldest:
            rejected.append(
                Rejection(
                    index,
                    record.event_id,
                    f"eventTime is older than the retention window of {limits.retention_days} days "
                    "(TRAILHOUSE_RETENTION_DAYS): the store would not keep it",
                )
            )
            continue
        warnings.extend(IngestWarning(index, record.event_id, w) for w in record.warnings)
        ahead = record.event_time_ms - now
        if ahead > FUTURE_SKEW_MS:
            warnings.append(
                IngestWarning(
                    index,
                    record.event_id,
                    f"eventTime is {_duration(ahead)} ahead of this server's clock: stored as sent",
                )
            )
        records.append(record)
    return records, rejected, warnings


def ingest_items(
    store: EventLog,
    items: Sequence[Item],
    *,
    may_write: Callable[[str], bool],
    atomic: bool = False,
    limits: IngestLimits | None = None,
) -> IngestReport:
    """Validate every item, then store the valid ones in one transaction.

    ``may_write(account_id)`` says whether the caller may write events of that account. With
    ``atomic`` a single bad item stores nothing.
    """
    records, rejected, warnings = validate_items(items, may_write=may_write, limits=limits)
    if atomic and rejected:
        return IngestReport(rejected=rejected, warnings=warnings)
    return store_valid(store, [build_unit(records)] if records else [], rejected, warnings)


def store_valid(
    store: EventLog,
    units: Sequence[WriteUnit],
    rejected: list[Rejection],
    warnings: list[IngestWarning],
    *,
    atomic: bool = False,
) -> IngestReport:
    """Store what ``validate_items`` found valid, built into units (``build_unit``), in one
    transaction, and report the whole batch (``trailhouse ingest`` and ``serve`` with decode
    workers validate and build the units in other processes and write here, in input order)."""
    report = IngestReport(rejected=rejected, warnings=warnings)
    if atomic and report.rejected:
        return report
    if any(u.size for u in units):
        result = store.append_units(units)
        report.accepted = len(result.accepted)
        report.duplicates = len(result.duplicates)
    return report
