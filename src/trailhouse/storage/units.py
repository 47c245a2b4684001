"""A piece of a batch made ready for the one writer by whoever decoded it.

Everything a store writes for an event that does not need the store itself is computed here: the
packed body and its Merkle leaf, the event's strings gathered into the piece's own term list (a
column holds indexes into it), its resources, and its AccessKey usage folded by value. A decode
process builds the unit and sends it as columns (msgspec decodes lists of ints and bytes in C);
the writer then maps the piece's distinct strings to term ids once and zips columns into rows,
instead of touching every field of every event in Python (docs/benchmarks.md, "Write units").

Inside a unit an event is addressed by its *rank*: its position among the unit's events that do
not repeat an earlier (account, eventId) of the unit. Repeats are not in the columns; ``repeats``
names their indexes in the piece, so the writer can report them as duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from ..model.event import EventRecord, usage_source
from ..model.query import UsageKind
from . import codec

__all__ = ["STS_PREFIX", "UsageFold", "WriteUnit", "build_unit", "leaf_hash", "select", "split_repeats"]

#: STS tokens (``STS.…``) have no usage rows: they live an hour, GetAccessKeyLastUsed* is asked
#: about AccessKeys, and they made up two thirds of the rows. Their events stay searchable by key.
STS_PREFIX = "STS."

#: One folded usage row: (account, access key, kind, service, item, item type) as term indexes of
#: the unit, then first used, last used, the rank of the last call, its source, calls, failed calls.
UsageFold = tuple[int, int, int, int, int, int, int, int, int, str, int, int]

_PRODUCT, _EVENT, _IP, _RESOURCE = (
    int(UsageKind.PRODUCT),
    int(UsageKind.EVENT),
    int(UsageKind.IP),
    int(UsageKind.RESOURCE),
)


_LEAF_PREFIX = hashlib.sha256(b"\x00")


def leaf_hash(body: bytes) -> bytes:
    """The Merkle log's leaf of a stored body, ``SHA-256(0x00 ‖ body)`` (RFC 6962; the tree itself
    is service/integrity's). Taken at ingest, where the body is in memory before it is packed,
    and stored with the event so that the log's sequencer reads 32 bytes instead of unpacking."""
    hasher = _LEAF_PREFIX.copy()  # a hasher primed with the prefix: no copy of the body
    hasher.update(body)
    return hasher.digest()


class WriteUnit(msgspec.Struct, array_like=True, frozen=True):
    """The events of one piece as columns; term columns hold 1-based indexes into ``terms``, 0 for
    a missing value. ``terms`` always holds ``""``, the value usage rows use for "none"."""

    size: int  # the piece's events, repeats included
    repeats: list[int]  # indexes in the piece of events repeating an earlier one of the piece
    terms: list[str]
    account: list[int]
    event_name: list[int]
    event_type: list[int]
    event_rw: list[int]
    category: list[int]
    service: list[int]
    user_name: list[int]
    access_key: list[int]
    source_ip: list[int]
    role_name: list[int]
    error_code: list[int]
    event_time: list[int]
    event_key: list[int]
    request_key: list[int | None]  # None without a requestId, or when it is the eventId
    sensitive: list[int | None]
    event_id: list[str]  # for the dedupe: (account, eventId) pairs; the rows do not keep it
    body: list[bytes]
    leaf: list[bytes]
    resources: list[tuple[int, int, int]]  # (rank, type, name), in rank order
    usage: list[UsageFold]

    @property
    def events(self) -> int:
        """Events in the columns (the piece's events less its repeats)."""
        return len(self.event_id)


def split_repeats(records: Sequence[EventRecord]) -> tuple[list[int], list[int]]:
    """The indexes of each first (account, eventId) of a batch, and of the records repeating one."""
    firsts: list[int] = []
    repeats: list[int] = []
    seen: set[tuple[str, str]] = set()
    for index, rec in enumerate(records):
        ident = (rec.account_id, rec.event_id)
        if ident in seen:
            repeats.append(index)
        else:
            seen.add(ident)
            firsts.append(index)
    return firsts, repeats


def build_unit(records: Sequence[EventRecord]) -> WriteUnit:
    """The unit of a piece's records, in their order (pure: no store, no I/O)."""
    firsts, repeats = split_repeats(records)
    fresh = [records[i] for i in firsts]
    local: dict[str | None, int] = {None: 0}
    put = local.setdefault

    def column(values: list[str | None]) -> list[int]:
        # setdefault's default is evaluated first: a new value gets the next index.
        return [put(v, len(local)) for v in values]

    put("", len(local))
    account = column([r.account_id for r in fresh])
    names = column([r.event_name for r in fresh])
    types = column([r.event_type for r in fresh])
    rws = column([r.event_rw for r in fresh])
    categories = column([r.event_category for r in fresh])
    services = column([r.service_name for r in fresh])
    users = column([r.user_name for r in fresh])
    keys = column([r.access_key_id for r in fresh])
    ips = column([r.source_ip for r in fresh])
    roles = column([r.role_name for r in fresh])
    errors = column([r.error_code for r in fresh])
    resources = [
        (rank, put(rtype, len(local)), put(rname, len(local)))
        for rank, rec in enumerate(fresh)
        for rtype, rname in rec.resources
    ]
    terms = [t for t in local if t is not None]  # in index order: None is index 0
    unit = WriteUnit(
        size=len(records),
        repeats=repeats,
        terms=terms,
        account=account,
        event_name=names,
        event_type=types,
        event_rw=rws,
        category=categories,
        service=services,
        user_name=users,
        access_key=keys,
        source_ip=ips,
        role_name=roles,
        error_code=errors,
        event_time=[r.event_time_ms for r in fresh],
        event_key=[r.event_key for r in fresh],
        # ActionTrail's events carry their request's id as their eventId: such a requestId is found
        # through the eventId's key (storage.sql.find), and an index entry of its own would be a
        # second random B-tree write per event.
        request_key=[None if r.request_id == r.event_id else r.request_key for r in fresh],
        sensitive=[None if r.sensitive_action is None else int(r.sensitive_action) for r in fresh],
        event_id=[r.event_id for r in fresh],
        body=[codec.pack(r.body) for r in fresh],
        leaf=[leaf_hash(r.body) for r in fresh],
        resources=resources,
        usage=[],
    )
    return msgspec.structs.replace(unit, usage=fold_usage(unit))


def select(unit: WriteUnit, ranks: Sequence[int]) -> WriteUnit:
    """The unit with only the events at ``ranks`` (ascending), which become ranks 0, 1, …; its
    usage folded again over them. The writer's way to drop events it found already stored."""

    def pick(col: list[object]) -> list[object]:
        return [col[r] for r in ranks]

    renumber = {old: new for new, old in enumerate(ranks)}
    picked = WriteUnit(
        size=len(ranks),
        repeats=[],
        terms=unit.terms,
        **{name: pick(getattr(unit, name)) for name in _EVENT_COLUMNS},  # type: ignore[arg-type]
        resources=[(renumber[r], t, n) for r, t, n in unit.resources if r in renumber],
        usage=[],
    )
    return msgspec.structs.replace(picked, usage=fold_usage(picked))


_EVENT_COLUMNS = tuple(
    f for f in WriteUnit.__struct_fields__ if f not in {"size", "repeats", "terms", "resources", "usage"}
)


def fold_usage(unit: WriteUnit) -> list[UsageFold]:
    """The unit's AccessKey usage folded by (account, key, kind, service, item, item type), so a
    burst of calls from one key and IP costs the store one upsert: counts add up, first and last
    widen, the latest call's rank and source win."""
    terms = unit.terms
    empty = terms.index("") + 1
    tracked = {i for i, t in enumerate(terms, 1) if t and not t.startswith(STS_PREFIX)}
    sources: dict[int, str] = {}
    resources: dict[int, list[tuple[int, int]]] = {}
    for rank, rtype, rname in unit.resources:
        if rname != empty:
            resources.setdefault(rank, []).append((rname, rtype))
    # key -> [first_used, last_used, last_rank, source, calls, failed]
    folded: dict[tuple[int, int, int, int, int, int], list[object]] = {}
    for rank, key in enumerate(unit.access_key):
        if key not in tracked:
            continue
        account = unit.account[rank]
        service = unit.service[rank] or empty
        category = unit.category[rank]
        source = sources.get(category)
        if source is None:
            source = sources[category] = usage_source(terms[category - 1] if category else None)
        error = unit.error_code[rank]
        failed = 1 if error and error != empty else 0
        items = [(_PRODUCT, empty, empty), (_EVENT, unit.event_name[rank], empty)]
        ip = unit.source_ip[rank]
        if ip and ip != empty:
            items.append((_IP, ip, empty))
        for name, rtype in resources.get(rank, ()):
            items.append((_RESOURCE, name, rtype))
        t = unit.event_time[rank]
        for kind, item, item_type in items:
            k = (account, key, kind, service, item, item_type)
            row = folded.get(k)
            if row is None:
                folded[k] = [t, t, rank, source, 1, failed]
                continue
            if t < row[0]:  # type: ignore[operator]
                row[0] = t
            if t >= row[1]:  # type: ignore[operator]
                row[1], row[2], row[3] = t, rank, source
            row[4] += 1  # type: ignore[operator]
            row[5] += failed  # type: ignore[operator]
    return [(*k, *v) for k, v in folded.items()]  # type: ignore[misc]
