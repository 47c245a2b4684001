"""Authentication of an ActionTrail API request, in the order of spec §2.

Parsing and common parameters (steps 1–3) and the signature arithmetic (step 7) live in
``protocol``/``signature``; this module adds what needs state: the clock window, the AccessKey,
STS tokens, and the nonce cache.
"""

from __future__ import annotations

from ..model.credentials import AccessKey, KeyStatus
from ..model.times import TimeFormatError, parse_wire_time
from ..service.secrets import Sealer
from ..storage.base import EventStore
from . import errors
from .limits import Limits
from .protocol import RpcRequest, request_nonce, request_timestamp, validate_common, verify

__all__ = ["authenticate"]


def authenticate(
    req: RpcRequest, *, store: EventStore, sealer: Sealer, limits: Limits, skew_s: int, now_ms: int
) -> AccessKey:
    """Return the AccessKey that validly signed ``req``, or raise the documented ApiError."""
    validate_common(req)  # steps 2–3

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
    key = store.get_access_key(key_id)
    if key is None:
        raise errors.InvalidAccessKeyIdNotFound()
    if key.status is not KeyStatus.ACTIVE:
        raise errors.InvalidAccessKeyIdInactive()

    if req.security_token:  # step 6: this server issues no STS tokens
        raise errors.InvalidSecurityTokenMalformed()

    verify(req, sealer.open(key.secret_sealed, key.access_key_id))  # step 7

    nonce = request_nonce(req)  # step 8, only once the request is known to be genuine
    if nonce is None:
        raise errors.Missing("SignatureNonce")
    # Kept twice the skew: a timestamp may be up to `skew` in the future as well as in the past.
    if not limits.remember_nonce(key.access_key_id, nonce, 2 * skew_s + 60):
        raise errors.SignatureNonceUsed()
    return key
