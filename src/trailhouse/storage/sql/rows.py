"""The rows an ingest writes, the same on both backends: events, their resources, AccessKey usage."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from ...model.event import EventRecord
from .. import codec
from .dialect import Dialect

__all__ = [
    "EVENT_COLUMNS",
    "event_columns",
    "PackedRecord",
    "attach_packing",
    "RESOURCE_COLUMNS",
    "USAGE_COLUMNS",
    "TermId",
    "event_row",
    "leaf_hash",
    "packed_record",
    "packing",
    "resource_rows",
    "split_batch",
    "upsert_usage",
]

#: The columns of ``events``, in the order ``event_row`` gives their values (``event_columns``:
#: SQLite's rows have no ``request_id``).
EVENT_COLUMNS = (
    "seq",
    "account",
    "event_time",
    "event_key",
    "request_key",
    "event_name",
    "event_type",
    "event_rw",
    "category",
    "service",
    "user_name",
    "access_key",
    "source_ip",
    "role_name",
    "sensitive",
    "error_code",
    "event_id",
    "request_id",
    "body",
    "leaf",
)


def event_columns(dialect: Dialect) -> tuple[str, ...]:
    """The ``events`` columns an ingest writes on ``dialect``, in ``event_row`` order."""
    if dialect.request_id_in_row:
        return EVENT_COLUMNS
    return tuple(c for c in EVENT_COLUMNS if c != "request_id")


RESOURCE_COLUMNS = ("seq", "account", "event_time", "rtype", "rname")
#: The columns of ``key_usage``, in the order of ``usage.usage_rows``.
USAGE_COLUMNS = (
    "account",
    "access_key",
    "kind",
    "service",
    "item",
    "item_type",
    "first_used",
    "last_used",
    "last_seq",
    "source",
    "calls",
    "failed",
)
_USAGE_KEY = "account, access_key, kind, service, item, item_type"

#: A term's id; None for a missing value (the column is NULL).
TermId = Callable[[str | None], int | None]


_LEAF_PREFIX = hashlib.sha256(b"\x00")


def leaf_hash(body: bytes) -> bytes:
    """The Merkle log's leaf of a stored body, ``SHA-256(0x00 ‖ body)`` (RFC 6962; the tree itself
    is service/integrity's). Taken at ingest, where the body is in memory before it is packed,
    and stored with the event so that the log's sequencer reads 32 bytes instead of unpacking."""
    hasher = _LEAF_PREFIX.copy()  # a hasher primed with the prefix: no copy of the body
    hasher.update(body)
    return hasher.digest()


@dataclass(frozen=True, slots=True)
class PackedRecord(EventRecord):
    """A record whose stored body (``codec.pack``) and Merkle leaf were computed ahead, off the
    writer: ``trailhouse ingest`` computes them in its decode processes (``packing``), so the one
    writer only copies them into the row. Empty until ``attach_packing`` fills them in; an empty
    one is packed by ``event_row`` as a plain record's is (a packed body is never empty)."""

    packed_body: bytes = b""
    leaf: bytes = b""


_RECORD_FIELDS = tuple(f.name for f in fields(EventRecord))


def packing(records: Sequence[EventRecord]) -> tuple[list[bytes], list[bytes]]:
    """The packed bodies and the leaves of records, in their order."""
    return [codec.pack(r.body) for r in records], [leaf_hash(r.body) for r in records]


def attach_packing(records: Sequence[PackedRecord], bodies: Sequence[bytes], leaves: Sequence[bytes]) -> None:
    """Give records decoded without it (msgspec leaves the defaults) the packing computed with them
    in another process: setting two fields costs a tenth of building each record again."""
    set_field = object.__setattr__  # as the dataclass's own __init__ sets a frozen field
    for rec, body, leaf in zip(records, bodies, leaves, strict=True):
        set_field(rec, "packed_body", body)
        set_field(rec, "leaf", leaf)


def packed_record(rec: EventRecord) -> PackedRecord:
    return PackedRecord(
        **{name: getattr(rec, name) for name in _RECORD_FIELDS},
        packed_body=codec.pack(rec.body),
        leaf=leaf_hash(rec.body),
    )


def split_batch(records: Sequence[EventRecord]) -> tuple[list[tuple[int, EventRecord]], list[int]]:
    """(index, record) of each first (account, eventId) of a batch, and the indexes repeating one."""
    fresh: list[tuple[int, EventRecord]] = []
    duplicates: list[int] = []
    seen: set[tuple[str, str]] = set()
    for index, rec in enumerate(records):
        ident = (rec.account_id, rec.event_id)
        if ident in seen:
            duplicates.append(index)
        else:
            seen.add(ident)
            fresh.append((index, rec))
    return fresh, duplicates


def event_row(rec: EventRecord, seq: int, tid: TermId, dialect: Dialect) -> tuple[object, ...]:
    """The ``events`` row of a record, in ``EVENT_COLUMNS`` order."""
    if isinstance(rec, PackedRecord) and rec.packed_body:
        body, leaf = rec.packed_body, rec.leaf
    else:
        body, leaf = codec.pack(rec.body), leaf_hash(rec.body)
    return (
        seq,
        tid(rec.account_id),
        rec.event_time_ms,
        rec.event_key,
        rec.request_key,
        tid(rec.event_name),
        tid(rec.event_type),
        tid(rec.event_rw),
        tid(rec.event_category),
        tid(rec.service_name),
        tid(rec.user_name),
        tid(rec.access_key_id),
        tid(rec.source_ip),
        tid(rec.role_name),
        None if rec.sensitive_action is None else int(rec.sensitive_action),
        tid(rec.error_code),
        dialect.text(rec.event_id),
        *(
            (None if rec.request_id is None else dialect.text(rec.request_id),)
            if dialect.request_id_in_row
            else ()
        ),
        body,
        leaf,
    )


def resource_rows(
    records: Sequence[EventRecord], seqs: Sequence[int], tid: TermId
) -> list[tuple[int, int | None, int, int | None, int | None]]:
    """The ``event_resources`` rows of records stored under ``seqs``, in ``RESOURCE_COLUMNS`` order."""
    return [
        (seq, tid(rec.account_id), rec.event_time_ms, tid(rtype), tid(rname))
        for rec, seq in zip(records, seqs, strict=True)
        for rtype, rname in rec.resources
    ]


def upsert_usage(dialect: Dialect, source: str) -> str:
    """Fold usage rows into ``key_usage``: counts add up, first/last widen, the latest call's seq and
    source win. ``source`` gives the rows (``VALUES (…)`` or a SELECT) in ``USAGE_COLUMNS`` order."""
    return (
        f"INSERT INTO key_usage AS u ({', '.join(USAGE_COLUMNS)}) {source}"
        f" ON CONFLICT ({_USAGE_KEY}) DO UPDATE SET"
        f" first_used = {dialect.least}(u.first_used, excluded.first_used),"
        " last_seq = CASE WHEN excluded.last_used >= u.last_used THEN excluded.last_seq ELSE u.last_seq END,"
        " source = CASE WHEN excluded.last_used >= u.last_used THEN excluded.source ELSE u.source END,"
        f" last_used = {dialect.greatest}(u.last_used, excluded.last_used),"
        " calls = u.calls + excluded.calls, failed = u.failed + excluded.failed"
    )
