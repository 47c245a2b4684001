"""Console sign-in: who may sign in, the sealed session cookie, CSRF tokens, and slowed-down guessing.

A session is an AES-GCM sealed JSON value in an HttpOnly, SameSite=Lax cookie (sealed with the
master key, bound to the label ``console-session``): the browser can neither read nor forge it.
It names the credential it was opened with; every request checks the credential again, so a
disabled or deleted key or token ends its sessions at once. Its expiry is inside the seal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

import orjson

from ..model.credentials import AccessKey, KeyStatus, TokenScope
from ..service.credentials import token_hash
from ..service.secrets import MasterKeyError, Sealer
from ..storage.base import CredentialStore

__all__ = [
    "SESSION_COOKIE",
    "SIGN_IN_COOKIE",
    "Principal",
    "SessionCodec",
    "SignInRefused",
    "SignInThrottle",
    "check_access_key",
    "check_token",
    "principal_from",
    "same_secret",
]

SESSION_COOKIE = "th_console"
#: The CSRF value of the sign-in form (double-submit: a cookie and the same value in the form).
SIGN_IN_COOKIE = "th_console_signin"
_LABEL = "console-session"
#: Compared against when the key id is unknown, so an unknown id costs the same as a wrong secret.
_DUMMY_SECRET = "x" * 30


class SignInRefused(Exception):
    """Wrong or unusable credentials; the message is safe to show (it never says which part was wrong)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is signed in: an AccessKey (with its allowed actions) or a native read token, on one account."""

    kind: str  # "key" or "token"
    credential_id: str  # the AccessKey id, or the token id
    account_id: str
    allowed_actions: tuple[str, ...]  # empty: every action (tokens with the read scope read everything)
    csrf: str
    expires_ms: int
    label: str  # what the header shows

    def allows(self, action: str) -> bool:
        """The same rule as the API gateway's (``AccessKey.allows``)."""
        return (
            not self.allowed_actions
            or f"actiontrail:{action}" in self.allowed_actions
            or "actiontrail:*" in self.allowed_actions
        )


def same_secret(given: str, expected: str) -> bool:
    """Constant time whatever the lengths (compare_digest leaks only the length of its inputs)."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def check_access_key(store: CredentialStore, sealer: Sealer, key_id: str, secret: str) -> AccessKey:
    key = store.get_access_key(key_id) if key_id else None
    expected = _DUMMY_SECRET
    if key is not None:
        try:
            expected = sealer.open(key.secret_sealed, key.access_key_id)
        except MasterKeyError:
            key = None
    matches = same_secret(secret, expected)
    if key is None or not matches or key.status is not KeyStatus.ACTIVE:
        raise SignInRefused("The AccessKey ID or secret is wrong, or the key is disabled.")
    return key


def check_token(store: CredentialStore, secret: str, account: str) -> tuple[str, str, bytes]:
    """(token id, account, token hash) of a native token with the read scope that may read ``account``.

    The hash is looked up (never compared), so the time taken says nothing about near misses.
    """
    digest = token_hash(secret)
    token = store.find_token(digest) if secret else None
    if token is None or TokenScope.READ not in token.scopes:
        raise SignInRefused("The token is not valid for reading.")
    if not account:
        if token.all_accounts or len(token.account_ids) != 1:
            raise SignInRefused("This token reads several accounts: name the account to open.")
        account = token.account_ids[0]
    if not token.may_use(account):
        raise SignInRefused("The token may not read that account.")
    return token.token_id, account, digest


class SessionCodec:
    """Seals and opens session cookies; the payload is never readable outside the server."""

    def __init__(self, sealer: Sealer, lifetime_s: int) -> None:
        self._sealer = sealer
        self.lifetime_s = lifetime_s

    def issue(self, *, kind: str, credential_id: str, account_id: str, proof: bytes, now_s: float) -> str:
        payload = {
            "k": kind,
            "id": credential_id,
            "a": account_id,
            # For a token: its hash, so each request finds the token again without a list scan.
            "p": base64.b64encode(proof).decode(),
            "c": secrets.token_urlsafe(24),
            "x": int((now_s + self.lifetime_s) * 1000),
        }
        sealed = self._sealer.seal(orjson.dumps(payload).decode(), _LABEL)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, cookie: str, *, now_s: float) -> dict[str, object] | None:
        """The payload of a cookie that is ours and not expired, else None."""
        try:
            sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            payload = orjson.loads(self._sealer.open(sealed, _LABEL))
        except (ValueError, MasterKeyError, orjson.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("x"), int):
            return None
        if payload["x"] <= now_s * 1000:
            return None
        return payload


class SignInThrottle:
    """Slows guessing: after ``free`` failures within ``window_s`` for one key id or one client IP,
    each further attempt must wait, twice as long per failure (up to ``max_wait_s``).

    In process, like the failures it counts: several nodes each slow their own share. The
    tables are bounded, so a flood of made-up key ids cannot grow memory without limit.
    """

    def __init__(
        self, *, free: int = 5, window_s: float = 900.0, max_wait_s: float = 900.0, max_entries: int = 10_000
    ) -> None:
        self.free = free
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self.max_entries = max_entries
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, name: str, now: float) -> deque[float]:
        times = self._failures.get(name)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[name]
        return times

    def wait_s(self, names: tuple[str, ...], now: float | None = None) -> float:
        """Seconds before another attempt for any of these names is allowed (0: go ahead)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for name in names:
            times = self._recent(name, now)
            over = len(times) - self.free + 1
            if over > 0:
                delay = min(self.max_wait_s, 2.0 ** min(over, 30))
                wait = max(wait, times[-1] + delay - now)
        return max(0.0, wait)

    def failed(self, names: tuple[str, ...], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) >= self.max_entries:
            # Forget the quietest names first: the ones whose last failure is oldest.
            for stale in sorted(self._failures, key=lambda n: self._failures[n][-1])[
                : self.max_entries // 10
            ]:
                del self._failures[stale]
        for name in names:
            self._failures.setdefault(name, deque(maxlen=64)).append(now)

    def succeeded(self, names: tuple[str, ...]) -> None:
        for name in names:
            self._failures.pop(name, None)


def principal_from(payload: dict[str, object], store: CredentialStore) -> Principal | None:
    """The signed-in principal, if its credential still exists and still may sign in."""
    kind, cred, account = payload.get("k"), payload.get("id"), payload.get("a")
    csrf, expires = payload.get("c"), payload.get("x")
    if not (isinstance(cred, str) and isinstance(account, str) and isinstance(csrf, str)):
        return None
    assert isinstance(expires, int)
    if kind == "key":
        key = store.get_access_key(cred)
        if key is None or key.status is not KeyStatus.ACTIVE or key.account_id != account:
            return None
        label = f"{key.access_key_id} ({key.user_name})"
        return Principal("key", cred, account, key.allowed_actions, csrf, expires, label)
    if kind == "token":
        proof = payload.get("p")
        if not isinstance(proof, str):
            return None
        token = store.find_token(base64.b64decode(proof))
        if (
            token is None
            or token.token_id != cred
            or TokenScope.READ not in token.scopes
            or not token.may_use(account)
        ):
            return None
        return Principal("token", cred, account, (), csrf, expires, f"token {cred}")
    return None
