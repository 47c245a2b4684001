"""AccessKey usage rows derived from a batch of events, ready for an upsert into ``key_usage``.

A batch is folded in memory first, so a burst of calls from one key and IP costs one upsert.
STS tokens (``STS.…``) are not tracked: they live an hour, GetAccessKeyLastUsed* is asked about
AccessKeys, and they made up two thirds of the rows. Their events stay searchable by key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..model.event import EventRecord, usage_source
from ..model.query import UsageKind

__all__ = ["STS_PREFIX", "usage_rows"]

STS_PREFIX = "STS."

UsageRow = tuple[int, int, int, int, int, int, int, int, int, str, int, int]


def usage_rows(
    records: Sequence[EventRecord], seqs: Sequence[int], term_id: Callable[[str], int | None]
) -> list[UsageRow]:
    # key -> [first_used, last_used, last_seq, source, calls, failed]
    folded: dict[tuple[int, int, int, int, int, int], list[object]] = {}
    empty = term_id("")
    assert empty is not None
    for rec, seq in zip(records, seqs, strict=True):
        if not rec.access_key_id or rec.access_key_id.startswith(STS_PREFIX):
            continue
        account = term_id(rec.account_id)
        key = term_id(rec.access_key_id)
        service = term_id(rec.service_name) if rec.service_name else empty
        assert account is not None and key is not None and service is not None
        source = usage_source(rec.event_category)
        failed = 1 if rec.error_code else 0
        items: list[tuple[UsageKind, int, int]] = [(UsageKind.PRODUCT, empty, empty)]
        name = term_id(rec.event_name)
        assert name is not None
        items.append((UsageKind.EVENT, name, empty))
        if rec.source_ip:
            ip = term_id(rec.source_ip)
            assert ip is not None
            items.append((UsageKind.IP, ip, empty))
        for rtype, rname in rec.resources:
            if rname:
                tid_name, tid_type = term_id(rname), term_id(rtype)
                assert tid_name is not None and tid_type is not None
                items.append((UsageKind.RESOURCE, tid_name, tid_type))
        t = rec.event_time_ms
        for kind, item, item_type in items:
            k = (account, key, int(kind), service, item, item_type)
            row = folded.get(k)
            if row is None:
                folded[k] = [t, t, seq, source, 1, failed]
                continue
            if t < row[0]:  # type: ignore[operator]
                row[0] = t
            if t >= row[1]:  # type: ignore[operator]
                row[1], row[2], row[3] = t, seq, source
            row[4] += 1  # type: ignore[operator]
            row[5] += failed  # type: ignore[operator]
    return [(*k, *v) for k, v in folded.items()]  # type: ignore[misc]
