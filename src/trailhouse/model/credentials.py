"""Credentials: AccessKey pairs for the ActionTrail API and tokens for the native API."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["AccessKey", "ApiToken", "KeyStatus", "TokenScope"]


class KeyStatus(enum.StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


class TokenScope(enum.StrEnum):
    INGEST = "ingest"
    READ = "read"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An AccessKey pair of one account. The secret is held encrypted; only the key service opens it."""

    access_key_id: str
    account_id: str
    user_name: str
    secret_sealed: bytes
    status: KeyStatus
    allowed_actions: tuple[str, ...]  # empty: every action
    created_ms: int

    def allows(self, action: str) -> bool:
        return (
            not self.allowed_actions
            or f"actiontrail:{action}" in self.allowed_actions
            or ("actiontrail:*" in self.allowed_actions)
        )


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A bearer token for the native API, stored as a hash, limited to accounts and scopes."""

    token_id: str
    token_hash: bytes
    account_ids: tuple[str, ...]  # empty with all_accounts=True
    all_accounts: bool
    scopes: tuple[TokenScope, ...]
    created_ms: int

    def may_use(self, account_id: str) -> bool:
        return self.all_accounts or account_id in self.account_ids
