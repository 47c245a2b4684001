"""In-process nonces and throttling, on a fake clock."""

from __future__ import annotations

from trailhouse.api.limits import InProcessLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_nonce_is_refused_within_its_lifetime_and_forgotten_after() -> None:
    clock = Clock()
    limits = InProcessLimits(clock)
    assert limits.remember_nonce("k", "n1", 60)
    assert not limits.remember_nonce("k", "n1", 60)
    assert limits.remember_nonce("other-key", "n1", 60)  # per AccessKey
    clock.now += 61
    assert limits.remember_nonce("k", "n2", 60)  # purges n1 on the way
    assert ("k", "n1") not in limits._nonces
    assert limits.remember_nonce("k", "n1", 60)


def test_memory_stays_bounded_by_live_nonces() -> None:
    clock = Clock()
    limits = InProcessLimits(clock)
    for i in range(10_000):
        clock.now += 0.01
        assert limits.remember_nonce("k", str(i), 5)
    assert len(limits._nonces) <= 501 and len(limits._expiries) <= 501


def test_gcra_allows_a_burst_of_rate_then_rate_per_second() -> None:
    clock = Clock()
    limits = InProcessLimits(clock)
    assert [limits.allow("a", 2) for _ in range(3)] == [True, True, False]
    assert limits.allow("b", 2)  # another key has its own budget
    clock.now += 0.5
    assert limits.allow("a", 2) and not limits.allow("a", 2)
    assert all(limits.allow("a", 0) for _ in range(100))  # 0 switches the limit off
