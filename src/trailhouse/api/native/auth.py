"""Bearer-token authentication for the native API (``/api/v1``)."""

from __future__ import annotations

from starlette.requests import Request

from ...model.credentials import ApiToken, TokenScope
from ...service.credentials import token_hash
from ...storage.base import EventStore
from .errors import Forbidden, MissingAccount, Unauthorized

__all__ = ["authenticate_token", "choose_account"]


def authenticate_token(request: Request, store: EventStore, scope: TokenScope) -> ApiToken:
    header = request.headers.get("authorization", "")
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send the token as 'Authorization: Bearer <token>'")
    token = store.find_token(token_hash(secret.strip()))
    if token is None:
        raise Unauthorized("the token is not valid")
    if scope not in token.scopes:
        raise Forbidden(f"the token does not have the '{scope}' scope")
    return token


def choose_account(token: ApiToken, requested: str | None) -> str:
    """The one account a read is scoped to: the token's only account, or the one asked for."""
    if requested:
        if not token.may_use(requested):
            raise Forbidden(f"the token may not read account {requested}")
        return requested
    if not token.all_accounts and len(token.account_ids) == 1:
        return token.account_ids[0]
    raise MissingAccount()
