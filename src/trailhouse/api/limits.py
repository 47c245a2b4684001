"""Replay protection (SignatureNonce) and throttling, in process or shared through Redis.

Both use the same algorithm wherever they run, so one node or several behave alike: nonces are
remembered per AccessKey for at least the timestamp window; throttling is GCRA (a leaky bucket
that allows a burst of ``rate`` requests and then ``rate`` per second).

Nonce memory is bounded whatever the clients send:

* a nonce is kept as a 16-byte BLAKE2b digest of (AccessKey, nonce), never as the string the
  client sent (``auth`` refuses nonces longer than ``MAX_NONCE_CHARS`` before they get here);
* at most ``max_nonces_per_key`` live nonces per AccessKey and ``max_nonces`` in all. A full
  cache *refuses* the request (``NonceCapacityExceeded``) instead of forgetting older nonces:
  forgetting a live nonce would let its request be replayed, which is what the cache is for;
* a request refused after authentication for a reason that did no work (routing, permission,
  throttling) gives its nonce back (``forget_nonce``), so throttled floods keep nothing and a
  client retrying the same signed request after a throttle is not told it is a replay.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..storage.base import StoreUnavailable
from ..storage.replay import ReplayReads, current_replay

__all__ = [
    "MAX_NONCES",
    "MAX_NONCES_PER_KEY",
    "MAX_NONCE_CHARS",
    "InProcessLimits",
    "Limits",
    "NonceCapacityExceeded",
    "RedisLimits",
    "nonce_digest",
    "open_limits",
]

#: The longest SignatureNonce accepted (SDKs send 32 hex characters or a 36-character UUID).
MAX_NONCE_CHARS = 128
#: Live nonces one AccessKey may hold: 100,000 in the 1,860 s a nonce lives with the default
#: 900 s timestamp window is 54 signed requests per second, sustained, with one key.
MAX_NONCES_PER_KEY = 100_000
#: Live nonces in all (per process in memory, per Redis prefix shared): about 200 MB at most in
#: process (see docs/api.md, "Gateway limits").
MAX_NONCES = 1_000_000
NONCE_DIGEST_BYTES = 16


class NonceCapacityExceeded(Exception):
    """No room for one more nonce: ``per_key`` when this AccessKey holds its maximum, else the total."""

    def __init__(self, *, per_key: bool, limit: int) -> None:
        self.per_key = per_key
        self.limit = limit
        scope = "this AccessKey" if per_key else "the server"
        super().__init__(f"{scope} holds {limit} live signature nonces, its maximum")


def nonce_digest(access_key_id: str, nonce: str) -> bytes:
    """The 16 bytes kept for ``nonce`` of ``access_key_id`` (length-prefixed: no two pairs collide by
    concatenation; surrogates in either string are encoded, never an error)."""
    text = f"{len(access_key_id)}:{access_key_id}:{nonce}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=NONCE_DIGEST_BYTES).digest()


class Limits(Protocol):
    #: True when no call waits on the network (see ``EventStore.in_process``).
    in_process: bool

    def remember_nonce(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        """Record a nonce; False when it was already used within its lifetime.

        Raises ``NonceCapacityExceeded`` (and records nothing) when the cache is full.
        """
        ...

    def forget_nonce(self, access_key_id: str, nonce: str) -> None:
        """Drop a nonce ``remember_nonce`` recorded (its request was refused before doing any work)."""
        ...

    def allow(self, key: str, rate: float) -> bool:
        """Whether one more request under ``key`` fits ``rate`` per second (rate <= 0: no limit)."""
        ...

    def close(self) -> None: ...

    def replay_calls(self) -> ReplayReads | None:
        """Connections an event loop can wait on, for the limits' calls in work replayed there
        (storage.replay); None when no call waits on the network (``in_process``)."""
        ...


class InProcessLimits:
    in_process = True

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_nonces_per_key: int = MAX_NONCES_PER_KEY,
        max_nonces: int = MAX_NONCES,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.max_nonces_per_key = max_nonces_per_key
        self.max_nonces = max_nonces
        # digest of (AccessKey, nonce) -> when it expires; every entry is live (expired ones are
        # dropped before each look-up).
        self._nonces: dict[bytes, float] = {}
        # Expiry order equals insertion order (one lifetime for all), so expired nonces are always
        # at the front: each request drops the few that expired, never scanning the live ones.
        # Entries of forgotten nonces stay until they expire or ``_compact`` drops them.
        self._expiries: collections.deque[tuple[float, bytes, str]] = collections.deque()
        self._per_key: dict[str, int] = {}
        self._tat: dict[str, float] = {}

    def remember_nonce(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        digest = nonce_digest(access_key_id, nonce)
        now = self._clock()
        with self._lock:
            nonces, expiries, per_key = self._nonces, self._expiries, self._per_key
            while expiries and expiries[0][0] <= now:
                expires, old, owner = expiries.popleft()
                if nonces.get(old) == expires:
                    del nonces[old]
                    self._release(owner)
            if digest in nonces:
                return False
            held = per_key.get(access_key_id, 0)
            if held >= self.max_nonces_per_key:
                raise NonceCapacityExceeded(per_key=True, limit=self.max_nonces_per_key)
            if len(nonces) >= self.max_nonces:
                raise NonceCapacityExceeded(per_key=False, limit=self.max_nonces)
            expires = now + ttl_s
            nonces[digest] = expires
            expiries.append((expires, digest, access_key_id))
            per_key[access_key_id] = held + 1
            return True

    def forget_nonce(self, access_key_id: str, nonce: str) -> None:
        digest = nonce_digest(access_key_id, nonce)
        with self._lock:
            if self._nonces.pop(digest, None) is None:
                return
            self._release(access_key_id)
            # Every live nonce has one entry in _expiries; the others are forgotten ones. Dropping
            # them once they outnumber the live ones keeps the deque within twice the live count.
            if len(self._expiries) > 2 * len(self._nonces) + 1024:
                self._compact()

    def _release(self, access_key_id: str) -> None:
        held = self._per_key.get(access_key_id, 0) - 1
        if held > 0:
            self._per_key[access_key_id] = held
        else:
            self._per_key.pop(access_key_id, None)

    def _compact(self) -> None:
        nonces = self._nonces
        self._expiries = collections.deque(e for e in self._expiries if nonces.get(e[1]) == e[0])

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

    def replay_calls(self) -> None:
        return None

    def close(self) -> None:
        pass


# Nonces of one AccessKey in one sorted set (member: digest, score: expiry in ms), pruned on every
# call and expiring as a whole when no nonce of it is alive, so its size is exact without upkeep. The
# total is counted in buckets of ARGV[5] ms that expire by themselves; the sum of the buckets of the
# last lifetime counts every live nonce (and a few that just expired: it errs on the safe side).
# Returns 1 (recorded), 0 (a replay), -1 (this key is full), -2 (the total is full).
_NONCE_REMEMBER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local bucket_ms = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
local bucket = math.floor(now / bucket_ms)
local total = 0
for i = 0, math.ceil(ttl / bucket_ms) do
  local n = redis.call('GET', KEYS[2] .. ':' .. (bucket - i))
  if n then total = total + tonumber(n) end
end
if total >= tonumber(ARGV[4]) then return -2 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
local counter = KEYS[2] .. ':' .. bucket
redis.call('INCR', counter)
redis.call('PEXPIRE', counter, ttl + 2 * bucket_ms)
return 1
"""

_NONCE_FORGET = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local counter = KEYS[2] .. ':' .. math.floor(now / tonumber(ARGV[2]))
if redis.call('EXISTS', counter) == 1 then redis.call('DECR', counter) end
return 1
"""

#: The width of the Redis total's buckets.
_TOTAL_BUCKET_MS = 60_000


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

    def __init__(
        self,
        url: str,
        prefix: str = "trailhouse",
        *,
        max_nonces_per_key: int = MAX_NONCES_PER_KEY,
        max_nonces: int = MAX_NONCES,
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._redis.ping()
        self._prefix = prefix
        self.max_nonces_per_key = max_nonces_per_key
        self.max_nonces = max_nonces
        self._url = url
        self._redis_error = redis.RedisError
        self._scripts = {name: self._redis.register_script(source) for name, source in _SCRIPTS.items()}

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Redis that refuses, stalls (socket timeout) or errs: the request answers 503, not 500."""
        try:
            yield
        except self._redis_error as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def _nonce_keys(self, access_key_id: str) -> list[str]:
        return [f"{self._prefix}:nonces:{access_key_id}", f"{self._prefix}:nonces-total"]

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """One script; inside replayed work (storage.replay), the result its fetch recorded."""
        with self._reaching():
            replay = current_replay()
            if replay is not None:
                return replay.result(LimitCall(script, tuple(keys), tuple(args)))
            return self._scripts[script](keys=keys, args=args)

    def remember_nonce(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        result = int(
            self._run(
                "remember",
                self._nonce_keys(access_key_id),
                [
                    nonce_digest(access_key_id, nonce),
                    int(ttl_s * 1000),
                    self.max_nonces_per_key,
                    self.max_nonces,
                    _TOTAL_BUCKET_MS,
                ],
            )
        )
        if result == -1:
            raise NonceCapacityExceeded(per_key=True, limit=self.max_nonces_per_key)
        if result == -2:
            raise NonceCapacityExceeded(per_key=False, limit=self.max_nonces)
        return result == 1

    def forget_nonce(self, access_key_id: str, nonce: str) -> None:
        self._run(
            "forget", self._nonce_keys(access_key_id), [nonce_digest(access_key_id, nonce), _TOTAL_BUCKET_MS]
        )

    def allow(self, key: str, rate: float) -> bool:
        if rate <= 0:
            return True
        interval_us = 1_000_000 / rate
        burst = max(1.0, rate)
        result = self._run("gcra", [f"{self._prefix}:rate:{key}"], [math.ceil(interval_us), burst])
        return bool(result)

    def replay_calls(self) -> RedisReplayCalls:
        return RedisReplayCalls(self._url)

    def close(self) -> None:
        self._redis.close()


@dataclass(frozen=True, slots=True)
class LimitCall:
    """One script of ``RedisLimits``, as replayed work asks for it."""

    script: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]


class RedisReplayCalls:
    """``RedisLimits``' scripts for replayed work, on an asynchronous client. Its connections are
    made in the loop that first fetches (the server's) and closed with it (``aclose``)."""

    def __init__(self, url: str) -> None:
        import redis
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._redis_error = redis.RedisError
        self._scripts = {name: self._redis.register_script(source) for name, source in _SCRIPTS.items()}

    async def open(self) -> None:
        return None

    async def fetch(self, call: LimitCall, *, timeout_s: float | None) -> Any:
        try:
            return await self._scripts[call.script](keys=list(call.keys), args=list(call.args))
        except self._redis_error as exc:  # refused, stalled past the socket timeout, or an error
            return exc

    async def aclose(self) -> None:
        await self._redis.aclose()


_SCRIPTS = {"remember": _NONCE_REMEMBER, "forget": _NONCE_FORGET, "gcra": _GCRA}


def open_limits(redis_url: str | None, prefix: str = "trailhouse") -> Limits:
    return RedisLimits(redis_url, prefix) if redis_url else InProcessLimits()
