"""Replay protection (SignatureNonce) and throttling, in process or shared through Redis.

Both use the same algorithm wherever they run, so one node or several behave alike: nonces are
remembered per AccessKey for at least the timestamp window; throttling is GCRA (a leaky bucket
that allows a burst of ``rate`` requests and then ``rate`` per second).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "InProcessLimits",
    "Limits",
    "RedisLimits",
    "open_limits",
]


class Limits(Protocol):
    #: True when no call waits on the network (see ``EventStore.in_process``).
    in_process: bool

    def remember_nonce(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        """Record a nonce; False when it was already used within its lifetime."""
        ...

    def allow(self, key: str, rate: float) -> bool:
        """Whether one more request under ``key`` fits ``rate`` per second (rate <= 0: no limit)."""
        ...

    def close(self) -> None: ...


class InProcessLimits:
    in_process = True

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._nonces: dict[tuple[str, str], float] = {}
        # Expiry order equals insertion order (one lifetime for all), so expired nonces are always
        # at the front: each request drops the few that expired, never scanning the live ones.
        self._expiries: collections.deque[tuple[float, tuple[str, str]]] = collections.deque()
        self._tat: dict[str, float] = {}

    def remember_nonce(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        now = self._clock()
        with self._lock:
            while self._expiries and self._expiries[0][0] <= now:
                expires, old = self._expiries.popleft()
                if self._nonces.get(old) == expires:
                    del self._nonces[old]
            key = (access_key_id, nonce)
            expires = self._nonces.get(key)
            if expires is not None and expires > now:
                return False
            self._nonces[key] = now + ttl_s
            self._expiries.append((now + ttl_s, key))
            return True

    def allow(self, key: str, rate: float) -> bool:
        if rate <= 0:
            return True
        now = self._clock()
        interval = 1.0 / rate
        burst = max(1.0, rate)
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + interval
            if new_tat - now > burst * interval + 1e-9:
                return False
            self._tat[key] = new_tat
            return True

    def close(self) -> None:
        pass


# GCRA in one round trip, on Redis' clock so that nodes with drifting clocks still agree.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > burst * interval then return 0 end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 1
"""


class RedisLimits:
    """Nonces and throttling shared by every node that points at the same Redis."""

    in_process = False

    def __init__(self, url: str, prefix: str = "trailhouse") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._redis.ping()
        self._prefix = prefix
        self._gcra = self._redis.register_script(_GCRA)

    def remember_nonce(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        key = f"{self._prefix}:nonce:{access_key_id}:{nonce}"
        return bool(self._redis.set(key, b"1", nx=True, ex=ttl_s))

    def allow(self, key: str, rate: float) -> bool:
        if rate <= 0:
            return True
        interval_us = 1_000_000 / rate
        burst = max(1.0, rate)
        result = self._gcra(keys=[f"{self._prefix}:rate:{key}"], args=[math.ceil(interval_us), burst])
        return bool(result)

    def close(self) -> None:
        self._redis.close()


def open_limits(redis_url: str | None, prefix: str = "trailhouse") -> Limits:
    return RedisLimits(redis_url, prefix) if redis_url else InProcessLimits()
