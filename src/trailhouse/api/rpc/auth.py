"""Authentication of an ActionTrail API request, in the order of docs/api.md "Order of checks".

Parsing and common parameters (steps 1–3) and the signature arithmetic (step 7) live in
``protocol``/``signature``; this module adds what needs state: the clock window, the AccessKey,
STS tokens, and the nonce cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ...model.credentials import AccessKey, KeyStatus
from ...model.times import TimeFormatError, parse_wire_time
from ...service.secrets import Sealer
from ...storage.base import EventStore
from ..limits import MAX_NONCE_CHARS, Limits, NonceCapacityExceeded
from . import errors
from .protocol import RpcRequest, request_nonce, request_timestamp, validate_common, verify

__all__ = ["KEY_CACHE_TTL_S", "AccessKeyCache", "authenticate"]

#: How long an active AccessKey row (and its opened secret) is reused without asking the store: a
#: key that is disabled, deleted or given other allowed actions is seen within this many seconds.
KEY_CACHE_TTL_S = 5.0
#: More distinct active keys than this within one TTL: the cache starts over rather than growing.
KEY_CACHE_MAX_ENTRIES = 10_000


@dataclass(slots=True)
class _CachedKey:
    key: AccessKey
    expires: float
    secret: str | None = None  # opened on first use: a request may fail before step 7


class AccessKeyCache:
    """Active AccessKey rows by id for ``ttl_s`` seconds, and their opened secrets.

    Only active keys are kept, so a key that is enabled (or created) works at once, and one that is
    disabled or deleted stops working within ``ttl_s``. ``ttl_s=0`` asks the store every time.
    Shared by the gateway's worker threads: every step is a single dict operation, and two threads
    filling the same entry compute the same value.
    """

    def __init__(
        self,
        store: EventStore,
        sealer: Sealer,
        *,
        ttl_s: float = KEY_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = KEY_CACHE_MAX_ENTRIES,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, _CachedKey] = {}

    def get(self, access_key_id: str) -> AccessKey | None:
        now = self.clock()
        entry = self._entries.get(access_key_id)
        if entry is not None and now < entry.expires:
            return entry.key
        key = self.store.get_access_key(access_key_id)
        if key is None or key.status is not KeyStatus.ACTIVE or self.ttl_s <= 0:
            self._entries.pop(access_key_id, None)
            return key
        if len(self._entries) >= self.max_entries:
            self._prune(now)
        self._entries[access_key_id] = _CachedKey(key, now + self.ttl_s)
        return key

    def secret(self, key: AccessKey) -> str:
        """The opened secret of ``key`` (a key ``get`` returned)."""
        entry = self._entries.get(key.access_key_id)
        if entry is None or entry.key is not key:
            return self.sealer.open(key.secret_sealed, key.access_key_id)
        if entry.secret is None:
            entry.secret = self.sealer.open(key.secret_sealed, key.access_key_id)
        return entry.secret

    def _prune(self, now: float) -> None:
        live = {k: e for k, e in list(self._entries.items()) if now < e.expires}
        self._entries = live if len(live) < self.max_entries else {}


def authenticate(
    req: RpcRequest, *, keys: AccessKeyCache, limits: Limits, skew_s: int, now_ms: int
) -> AccessKey:
    """Return the AccessKey that validly signed ``req``, or raise the documented ApiError."""
    validate_common(req)  # steps 2–3
    nonce = request_nonce(req)
    if nonce is not None and len(nonce) > MAX_NONCE_CHARS:  # a malformed common parameter (step 2)
        raise errors.Invalid(
            "SignatureNonce",
            f"Specified parameter SignatureNonce is not valid: at most {MAX_NONCE_CHARS} characters.",
        )

    timestamp = request_timestamp(req)  # step 4
    if timestamp is None:
        raise errors.Missing("Timestamp")
    try:
        sent_ms = parse_wire_time(timestamp)
    except TimeFormatError:
        raise errors.InvalidTimeStampFormat() from None
    if abs(now_ms - sent_ms) > skew_s * 1000:
        raise errors.InvalidTimeStampExpired()

    key_id = req.access_key_id  # step 5
    if not key_id:
        raise errors.Missing("AccessKeyId")
    key = keys.get(key_id)
    if key is None:
        raise errors.InvalidAccessKeyIdNotFound()
    if key.status is not KeyStatus.ACTIVE:
        raise errors.InvalidAccessKeyIdInactive()

    if req.security_token:  # step 6: this server issues no STS tokens
        raise errors.InvalidSecurityTokenMalformed()

    verify(req, keys.secret(key))  # step 7

    # Step 8, only once the request is known to be genuine.
    if nonce is None:
        raise errors.Missing("SignatureNonce")
    # Kept twice the skew: a timestamp may be up to `skew` in the future as well as in the past.
    try:
        fresh = limits.remember_nonce(key.access_key_id, nonce, 2 * skew_s + 60)
    except NonceCapacityExceeded as full:  # refused, never forgotten: see limits
        raise nonce_capacity_error(full, 2 * skew_s + 60) from None
    if not fresh:
        raise errors.SignatureNonceUsed()
    return key


def nonce_capacity_error(full: NonceCapacityExceeded, lifetime_s: int) -> errors.ApiError:
    """The answer when the nonce cache has no room: the key's own flow control when it is this
    AccessKey that holds its maximum, a temporary server failure when the server is full."""
    if full.per_key:
        return errors.ThrottlingUser(
            message=f"Request was denied due to user flow control: this AccessKey signed {full.limit}"
            f" requests within the {lifetime_s} s a signature nonce is remembered; retry later."
        )
    return errors.ServiceUnavailable(
        message=f"The request has failed due to a temporary failure of the server: it remembers"
        f" {full.limit} signature nonces, its maximum, for replay protection; retry later."
    )
