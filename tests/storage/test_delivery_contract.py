"""Delivery checkpoints and leases on both backends (storage/sql/delivery.py)."""

from __future__ import annotations

from dataclasses import replace

from trailhouse.model.delivery import DeliveryCheckpoint
from trailhouse.storage.base import EventStore

from .conftest import ACCOUNT, record


def test_log_head_follows_appends(backend_store: EventStore) -> None:
    assert backend_store.newest_seq() == 0
    backend_store.append([record("e1"), record("e2")])
    head = backend_store.newest_seq()
    assert head == max(e.seq for e in backend_store.read_log(after_seq=0, limit=10))


def test_lease_is_held_by_one_owner_until_it_expires(backend_store: EventStore) -> None:
    s = backend_store
    assert s.take_lease("trail:1:a", owner="n1", now_ms=1000, ttl_ms=500)
    assert not s.take_lease("trail:1:a", owner="n2", now_ms=1200, ttl_ms=500)
    assert s.lease_owner("trail:1:a", now_ms=1200) == "n1"
    assert s.take_lease("trail:1:a", owner="n1", now_ms=1400, ttl_ms=500)  # renewed to 1900
    assert not s.take_lease("trail:1:a", owner="n2", now_ms=1800, ttl_ms=500)
    assert s.lease_owner("trail:1:a", now_ms=1901) is None
    assert s.take_lease("trail:1:a", owner="n2", now_ms=1901, ttl_ms=500)  # expired: taken over
    assert s.lease_owner("trail:1:a", now_ms=1901) == "n2"
    s.release_lease("trail:1:a", owner="n1")  # not n1's any more: changes nothing
    assert s.lease_owner("trail:1:a", now_ms=1901) == "n2"
    s.release_lease("trail:1:a", owner="n2")
    assert s.lease_owner("trail:1:a", now_ms=1901) is None
    assert s.take_lease("trail:1:b", owner="n1", now_ms=1000, ttl_ms=500)  # leases are independent


def test_checkpoint_saved_only_under_the_lease(backend_store: EventStore) -> None:
    s = backend_store
    cp = DeliveryCheckpoint(ACCOUNT, "trail-one", "oss", "123", 5, window_end_seq=9, window_ms=77)
    assert not s.save_checkpoint(cp, lease="L", owner="n1")  # nobody holds L
    assert s.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss") is None
    assert s.take_lease("L", owner="n1", now_ms=0, ttl_ms=10**15)
    assert s.save_checkpoint(cp, lease="L", owner="n1")
    assert s.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss") == cp
    moved = replace(
        cp, delivered_seq=9, window_end_seq=0, last_delivery_ms=5, last_error="x", last_error_ms=4
    )
    assert not s.save_checkpoint(moved, lease="L", owner="n2")  # n2 lost (or never had) the lease
    assert s.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss") == cp
    assert s.save_checkpoint(moved, lease="L", owner="n1")
    other = replace(cp, sink="sls")
    assert s.save_checkpoint(other, lease="L", owner="n1")
    assert s.list_checkpoints(account_id=ACCOUNT, trail_name="trail-one") == [moved, other]
    assert s.list_checkpoints(account_id="other", trail_name="trail-one") == []
    assert s.delete_checkpoints(account_id=ACCOUNT, trail_name="trail-one") == 2
    assert s.list_checkpoints(account_id=ACCOUNT, trail_name="trail-one") == []
