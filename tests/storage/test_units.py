"""Write units (``storage.units``): what a decode process builds is what the writer would have
written from the records, whichever way the batch is cut, and it crosses a process boundary
unchanged."""

from __future__ import annotations

import random
from dataclasses import replace

import msgspec

from trailhouse.demo.generate import generate_events
from trailhouse.model.event import EventRecord, event_from_mapping, usage_source
from trailhouse.model.query import UsageKind
from trailhouse.storage import codec
from trailhouse.storage.sql.pending import pending_row, queued_leaves
from trailhouse.storage.sql.rows import EVENT_COLUMNS, Placed, merge_usage
from trailhouse.storage.units import STS_PREFIX, WriteUnit, build_unit, leaf_hash, select

END_MS = 1_790_000_000_000


def _records(count: int, seed: int) -> list[EventRecord]:
    records = [event_from_mapping(e) for e in generate_events(seed=seed, count=count, end_ms=END_MS)]
    rng = random.Random(seed)
    # Repeats inside the batch, and keys of both kinds (the demo's are mostly AccessKeys).
    records += [rng.choice(records) for _ in range(count // 10)]
    records[3] = replace(records[3], access_key_id=STS_PREFIX + "token", event_id="sts-call")
    # Empty strings where the usage rules test truth: no failure, no IP row, the "" service.
    records[5] = replace(
        records[5], error_code="", source_ip="", service_name="", event_id="empties", access_key_id="LTAIe"
    )
    records[6] = replace(
        records[6],
        error_code=None,
        source_ip=None,
        service_name=None,
        event_id="nones",
        access_key_id="LTAIn",
    )
    return records


def _as_text(unit: WriteUnit, seqs: range | list[int]) -> Placed:
    """A unit placed with its terms as their own ids: its rows then read as strings."""
    return Placed(unit, [None, *unit.terms], seqs)


def _fresh(records: list[EventRecord]) -> list[EventRecord]:
    seen: set[tuple[str, str]] = set()
    fresh = []
    for rec in records:
        if (rec.account_id, rec.event_id) not in seen:
            seen.add((rec.account_id, rec.event_id))
            fresh.append(rec)
    return fresh


def _expected_usage(records: list[EventRecord], seqs: list[int]) -> dict[tuple[object, ...], list[object]]:
    """The usage of events one by one, straight from the documented rules (no folding code)."""
    rows: dict[tuple[object, ...], list[object]] = {}
    for rec, seq in zip(records, seqs, strict=True):
        key = rec.access_key_id
        if not key or key.startswith(STS_PREFIX):
            continue
        items = [(UsageKind.PRODUCT, "", ""), (UsageKind.EVENT, rec.event_name, "")]
        if rec.source_ip:
            items.append((UsageKind.IP, rec.source_ip, ""))
        items += [(UsageKind.RESOURCE, name, rtype) for rtype, name in rec.resources if name]
        for kind, item, item_type in items:
            k = (rec.account_id, key, int(kind), rec.service_name or "", item, item_type)
            t, failed = rec.event_time_ms, 1 if rec.error_code else 0
            now = rows.setdefault(k, [t, t, seq, usage_source(rec.event_category), 0, 0])
            now[0] = min(now[0], t)  # type: ignore[type-var]
            if t >= now[1]:  # type: ignore[operator]
                now[1:4] = [t, seq, usage_source(rec.event_category)]
            now[4] += 1  # type: ignore[operator]
            now[5] += failed  # type: ignore[operator]
    return rows


def _usage(rows: list[tuple[object, ...]]) -> dict[tuple[object, ...], list[object]]:
    folded = {row[:6]: list(row[6:]) for row in rows}
    assert len(folded) == len(rows), "one row per key"
    return folded


def test_a_unit_holds_each_first_event_as_the_records_say() -> None:
    records = _records(400, seed=11)
    unit = build_unit(records)
    fresh = _fresh(records)
    assert unit.size == len(records) and unit.events == len(fresh)
    firsts = {(r.account_id, r.event_id): i for i, r in reversed(list(enumerate(records)))}
    assert unit.repeats == [i for i, r in enumerate(records) if firsts[r.account_id, r.event_id] != i]
    assert "" in unit.terms and len(set(unit.terms)) == len(unit.terms)
    assert unit.leaf == [leaf_hash(rec.body) for rec in fresh]
    assert None in unit.request_key and any(k is not None for k in unit.request_key)  # both cases
    rows = list(_as_text(unit, range(1, unit.events + 1)).event_rows())
    for seq, (rec, row) in enumerate(zip(fresh, rows, strict=True), 1):
        got = dict(zip(EVENT_COLUMNS, row, strict=True))
        assert codec.unpack(got.pop("body")) == rec.body
        assert got == {
            "seq": seq,
            "account": rec.account_id,
            "event_time": rec.event_time_ms,
            "event_key": rec.event_key,
            # A requestId that is the eventId is found through the eventId's key, not its own.
            "request_key": None if rec.request_id == rec.event_id else rec.request_key,
            "event_name": rec.event_name,
            "event_type": rec.event_type,
            "event_rw": rec.event_rw,
            "category": rec.event_category,
            "service": rec.service_name,
            "user_name": rec.user_name,
            "access_key": rec.access_key_id,
            "source_ip": rec.source_ip,
            "role_name": rec.role_name,
            "sensitive": None if rec.sensitive_action is None else int(rec.sensitive_action),
            "error_code": rec.error_code,
        }
    assert unit.event_id == [rec.event_id for rec in fresh]  # for the dedupe; the rows keep none
    resources = _as_text(unit, range(1, unit.events + 1)).resource_rows()
    assert resources == [
        (seq, rec.account_id, rec.event_time_ms, rtype, rname)
        for seq, rec in enumerate(fresh, 1)
        for rtype, rname in rec.resources
    ]
    assert resources, "the demo's events name resources"


def test_usage_is_folded_as_the_events_one_by_one_would_be() -> None:
    records = _records(600, seed=12)
    fresh = _fresh(records)
    seqs = list(range(100, 100 + len(fresh)))
    unit = build_unit(records)
    expected = _expected_usage(fresh, seqs)
    assert _usage(_as_text(unit, seqs).usage_rows()) == expected
    assert len(expected) < 3 * len(fresh), "the fold folds"
    assert not [k for k in expected if str(k[1]).startswith(STS_PREFIX)]


def test_units_of_any_cut_merge_into_the_fold_of_the_whole() -> None:
    """The writer merges the usage of a transaction's units: the same rows, whatever the pieces."""
    records = _fresh(_records(900, seed=13))
    seqs = list(range(1, len(records) + 1))
    whole = _expected_usage(records, seqs)
    rng = random.Random(13)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(records)), 6))
        parts, start = [], 0
        for end in [*cuts, len(records)]:
            parts.append(_as_text(build_unit(records[start:end]), seqs[start:end]))
            start = end
        assert _usage(merge_usage(parts)) == whole


def test_selecting_events_refolds_their_usage() -> None:
    """The writer drops events it finds stored with ``select``: the rest's rows and usage are those
    of a unit built from the rest alone."""
    records = _fresh(_records(300, seed=14))
    unit = build_unit(records)
    ranks = sorted(random.Random(14).sample(range(unit.events), 120))
    picked = select(unit, ranks)
    alone = build_unit([records[r] for r in ranks])
    seqs = list(range(1, len(ranks) + 1))
    assert list(_as_text(picked, seqs).event_rows()) == list(_as_text(alone, seqs).event_rows())
    assert _as_text(picked, seqs).resource_rows() == _as_text(alone, seqs).resource_rows()
    assert _usage(_as_text(picked, seqs).usage_rows()) == _usage(_as_text(alone, seqs).usage_rows())
    assert select(unit, []).events == 0


def test_a_unit_crosses_a_process_boundary_unchanged() -> None:
    """Decode processes send units as msgpack; the writer must get the very same unit back."""
    unit = build_unit(_records(200, seed=15))
    sent = msgspec.msgpack.encode(unit)
    assert msgspec.msgpack.decode(sent, type=WriteUnit) == unit
    empty = build_unit([])
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(empty), type=WriteUnit) == empty
    assert empty.events == 0 and empty.terms == [""]


def test_a_pending_row_gives_back_each_events_account_and_leaf() -> None:
    """log_pending's one row per transaction (storage/sql/pending.py): the units' leaves and
    accounts come back per seq, from any watermark inside the row, at most ``limit`` of them."""
    units = [build_unit(_records(300, seed=s)) for s in (3, 4)]
    placed, seq = [], 100
    for unit in units:
        ids = [None, *range(1, len(unit.terms) + 1)]
        placed.append(Placed(unit, ids, range(seq, seq + unit.events)))
        seq += unit.events
    want = [
        (s, a, leaf) for p in placed for s, a, leaf in zip(p.seqs, p.accounts(), p.unit.leaf, strict=True)
    ]
    assert len({a for _, a, _ in want}) > 1
    row = pending_row(placed)
    assert (row[0], row[1], row[2]) == (seq - 1, 100, None)
    read = lambda sql, params: [row]  # noqa: E731
    assert list(queued_leaves(read, "?", 99, 10_000)) == want
    assert list(queued_leaves(read, "?", 250, 7)) == [w for w in want if w[0] > 250][:7]
    one = Placed(units[0], [None, *[5] * len(units[0].terms)], range(1, units[0].events + 1))
    single = pending_row([one])
    assert single[2:4] == (5, None)  # one account: its id, no per-event column
    assert [a for _, a, _ in queued_leaves(lambda sql, params: [single], "?", 0, 10_000)] == [5] * units[
        0
    ].events
