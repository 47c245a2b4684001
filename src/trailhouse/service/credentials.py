"""AccessKey pairs for the ActionTrail API and bearer tokens for the native API.

Secrets are shown once, at creation; AccessKey secrets are stored sealed with the master key
(the server must recompute signatures with them), token secrets only as a SHA-256 hash.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass

from ..model.credentials import AccessKey, ApiToken, KeyStatus, TokenScope
from ..model.times import now_ms
from ..storage.base import CredentialStore
from .secrets import Sealer

__all__ = [
    "CredentialError",
    "NewAccessKey",
    "NewToken",
    "create_access_key",
    "create_token",
    "token_hash",
]

_ALPHANUM = string.ascii_letters + string.digits
TOKEN_PREFIX = "th_"


class CredentialError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    key: AccessKey
    secret: str


@dataclass(frozen=True, slots=True)
class NewToken:
    token: ApiToken
    secret: str


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHANUM) for _ in range(n))


def _check_account(account_id: str) -> None:
    if (
        not account_id
        or not account_id.isascii()
        or not account_id.strip() == account_id
        or "," in account_id
    ):
        raise CredentialError(f"invalid account id {account_id!r}")


def create_access_key(
    store: CredentialStore,
    sealer: Sealer,
    *,
    account_id: str,
    user_name: str = "root",
    allowed_actions: tuple[str, ...] = (),
) -> NewAccessKey:
    """A new key pair; ``allowed_actions`` are RAM-style names (``actiontrail:LookupEvents``), which
    the door that takes them checks against the operations it serves (a name that matches none
    allows nothing)."""
    _check_account(account_id)
    key_id = "LTAI" + _random(20)
    secret = _random(30)
    key = AccessKey(
        access_key_id=key_id,
        account_id=account_id,
        user_name=user_name,
        secret_sealed=sealer.seal(secret, key_id),
        status=KeyStatus.ACTIVE,
        allowed_actions=tuple(allowed_actions),
        created_ms=now_ms(),
    )
    store.save_access_key(key)
    return NewAccessKey(key, secret)


def token_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_token(
    store: CredentialStore,
    *,
    account_ids: tuple[str, ...],
    all_accounts: bool,
    scopes: tuple[TokenScope, ...] = (TokenScope.INGEST,),
) -> NewToken:
    if all_accounts == bool(account_ids):
        raise CredentialError("give either one or more accounts or all accounts")
    for account in account_ids:
        _check_account(account)
    if not scopes:
        raise CredentialError("a token needs at least one scope")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        token_id="tok-" + _random(12),
        token_hash=token_hash(secret),
        account_ids=tuple(dict.fromkeys(account_ids)),
        all_accounts=all_accounts,
        scopes=tuple(dict.fromkeys(scopes)),
        created_ms=now_ms(),
    )
    store.save_token(token)
    return NewToken(token, secret)
