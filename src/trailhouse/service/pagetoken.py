"""Page tokens: opaque, HMAC-signed keyset positions bound to the query that produced them.

The signing key lives in the store (``meta``), so a token stays valid after a restart and on
every node that shares the store. A token carries the position after which the next page starts
and a digest of the other parameters; changing the query, the account or the token itself makes
it invalid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from ..storage.base import EventStore

__all__ = ["InvalidPageToken", "PageTokens", "query_digest"]

_META_NAME = "page_token_key"


class InvalidPageToken(ValueError):
    pass


def query_digest(params: Mapping[str, Any]) -> str:
    """A digest of the query parameters a token is bound to (order-independent)."""
    canonical = orjson.dumps({str(k): v for k, v in params.items()}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_store(cls, store: EventStore) -> PageTokens:
        return cls(store.meta_get_or_set(_META_NAME, secrets.token_bytes(32)))

    def _mac(self, kind: str, account_id: str, payload: bytes) -> bytes:
        msg = kind.encode() + b"\x00" + account_id.encode() + b"\x00" + payload
        return hmac.new(self._key, msg, hashlib.sha256).digest()[:16]

    def issue(self, *, kind: str, account_id: str, digest: str, position: list[Any]) -> str:
        payload = orjson.dumps({"q": digest, "p": position})
        return _b64(payload) + "." + _b64(self._mac(kind, account_id, payload))

    def open(self, token: str, *, kind: str, account_id: str, digest: str) -> list[Any]:
        """The position in a token, checking its signature and that the query is unchanged."""
        try:
            body, mac = token.split(".", 1)
            payload = _unb64(body)
            given = _unb64(mac)
        except ValueError:
            raise InvalidPageToken("NextToken is malformed") from None
        if not hmac.compare_digest(given, self._mac(kind, account_id, payload)):
            raise InvalidPageToken("NextToken was not issued for this account and operation")
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidPageToken("NextToken is malformed") from None
        if not isinstance(data, dict) or not isinstance(data.get("p"), list):
            raise InvalidPageToken("NextToken is malformed")
        if data.get("q") != digest:
            raise InvalidPageToken("the request parameters differ from those of the request that issued NextToken")
        return data["p"]  # type: ignore[no-any-return]
