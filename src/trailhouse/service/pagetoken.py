"""Page tokens: opaque, authenticated keyset positions bound to the query that produced them.

The key lives in the store (``meta``), so a token stays valid after a restart and on every node
that shares the store. A token carries the position after which the next page starts and a digest
of the other parameters; changing the query, the account or the token itself makes it invalid.
It is sealed with AES-GCM rather than only signed: a position holds the store-wide arrival number,
which would otherwise let one tenant estimate how many events every tenant together has sent.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..storage.base import MetadataStore

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
        self._aead = AESGCM(hashlib.sha256(b"trailhouse page token\x00" + key).digest())

    @classmethod
    def for_store(cls, store: MetadataStore) -> PageTokens:
        return cls(store.meta_get_or_set(_META_NAME, secrets.token_bytes(32)))

    @staticmethod
    def _context(kind: str, account_id: str) -> bytes:
        return kind.encode() + b"\x00" + account_id.encode()

    def issue(self, *, kind: str, account_id: str, digest: str, position: list[Any]) -> str:
        payload = orjson.dumps({"q": digest, "p": position})
        nonce = secrets.token_bytes(12)
        return _b64(nonce + self._aead.encrypt(nonce, payload, self._context(kind, account_id)))

    def open(self, token: str, *, kind: str, account_id: str, digest: str) -> list[Any]:
        """The position in a token, checking that it is ours, for this account and query."""
        try:
            raw = _unb64(token)
        except ValueError:
            raise InvalidPageToken("NextToken is malformed") from None
        if len(raw) < 12 + 16:
            raise InvalidPageToken("NextToken is malformed")
        try:
            payload = self._aead.decrypt(raw[:12], raw[12:], self._context(kind, account_id))
        except InvalidTag:
            raise InvalidPageToken("NextToken was not issued for this account and operation") from None
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidPageToken("NextToken is malformed") from None
        if not isinstance(data, dict) or not isinstance(data.get("p"), list):
            raise InvalidPageToken("NextToken is malformed")
        if data.get("q") != digest:
            raise InvalidPageToken(
                "the request parameters differ from those of the request that issued NextToken"
            )
        return data["p"]  # type: ignore[no-any-return]
