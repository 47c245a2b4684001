"""The integrity mark's service function on both backends: every state it can give, and why."""

from __future__ import annotations

from trailhouse.model.event import event_from_mapping
from trailhouse.model.query import EventFilter, StoredEvent
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.integrity.event_mark import MarkState, check_event
from trailhouse.service.integrity.log import sequence
from trailhouse.service.integrity.note import generate_signer
from trailhouse.storage.base import EventStore

ACCOUNT = "1234567890123456"


def _events(store: EventStore, count: int, start: int = 0) -> None:
    now = now_ms()
    store.append(
        [
            event_from_mapping(
                {
                    "eventId": f"mark-{i}",
                    "eventVersion": 1,
                    "eventTime": format_wire_time(now - i * 1000),
                    "eventName": "DescribeInstances",
                    "serviceName": "Ecs",
                    "userIdentity": {"accountId": ACCOUNT, "type": "ram-user", "userName": "u"},
                }
            )
            for i in range(start, start + count)
        ]
    )


def _all(store: EventStore) -> list[StoredEvent]:
    """In arrival (log) order."""
    found = store.iter_events(account_id=ACCOUNT, flt=EventFilter(-(1 << 62), 1 << 62), descending=False)
    return sorted(found, key=lambda e: e.seq)


def test_every_state_of_the_mark(backend_store: EventStore) -> None:
    store = backend_store
    signer = generate_signer("trailhouse.test")
    _events(store, 21)
    while sequence(store, signer, now_ms):
        pass
    _events(store, 1, start=100)  # arrives after the last sequencing step
    events = _all(store)
    logged, late = events[:-1], events[-1]

    for e in (logged[0], logged[10], logged[-1]):
        mark = check_event(store, signer, account_id=ACCOUNT, seq=e.seq, body=e.body)
        assert mark.state is MarkState.CHECKED and mark.tree_size == 21, mark
        assert mark.message == "In the log, proof checked against checkpoint of size 21."

    pending = check_event(store, signer, account_id=ACCOUNT, seq=late.seq, body=late.body)
    assert pending.state is MarkState.PENDING and pending.proof is None

    edited = logged[7].body.replace(b"DescribeInstances", b"DescribeRegions")
    altered = check_event(store, signer, account_id=ACCOUNT, seq=logged[7].seq, body=edited)
    assert altered.state is MarkState.FAILED and "does not match the logged one" in altered.message

    # A checkpoint signed by another key of the same name: the signature check refuses it.
    impostor = generate_signer("trailhouse.test")
    forged_key = check_event(store, impostor, account_id=ACCOUNT, seq=logged[3].seq, body=logged[3].body)
    assert forged_key.state is MarkState.FAILED and "does not verify with the log's key" in forged_key.message

    # Another account's view of the same seq: not in that account's log.
    other = check_event(store, signer, account_id="7777000011112222", seq=logged[3].seq, body=logged[3].body)
    assert other.state is MarkState.PENDING

    assert check_event(store, None, account_id=ACCOUNT, seq=logged[0].seq, body=logged[0].body).state is (
        MarkState.NO_LOG
    )
