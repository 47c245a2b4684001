"""``trailhouse keys`` (AccessKey pairs for the ActionTrail API) and ``trailhouse tokens`` (native API)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from ..api.rpc.dispatch import RAM_ACTIONS
from ..model.credentials import KeyStatus, TokenScope
from ..model.times import format_wire_time
from ..render.table import Column
from ..service.credentials import CredentialError, create_access_key, create_token
from .common import (
    EXIT_USAGE,
    DbOption,
    JsonOption,
    console,
    fail,
    load_settings,
    note_hidden,
    opened,
    out,
    row_writer,
    sealer_or_fail,
    write_json,
)

__all__ = [
    "keys_create",
    "keys_delete",
    "keys_disable",
    "keys_enable",
    "keys_list",
    "tokens_create",
    "tokens_delete",
    "tokens_list",
]

#: Ids and times are never wrapped: ``keys disable`` wants the id exactly as listed.
KEY_COLUMNS = (
    Column("AccessKeyId", whole=True),
    Column("AccountId", whole=True),
    Column("UserName", priority=1),
    Column("Status", priority=1),
    Column("Allowed", priority=3),
    Column("Created", whole=True, priority=2),
)
TOKEN_COLUMNS = (
    Column("TokenId", whole=True),
    Column("Accounts", priority=1),
    Column("Scopes", priority=1),
    Column("Created", whole=True, priority=2),
)


@contextlib.contextmanager
def _credential_errors() -> Iterator[None]:
    """A refused key or token (unknown account, bad scope…) as a one-line failure."""
    try:
        yield
    except CredentialError as exc:
        raise fail(str(exc)) from None


def keys_create(
    account: Annotated[str, typer.Option("--account", help="The account the key belongs to.")],
    user: Annotated[str, typer.Option("--user", help="The RAM user name shown for the key.")] = "root",
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Limit to an action, e.g. actiontrail:LookupEvents.")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create an AccessKey pair. The secret is shown once."""
    for action in allow or ():
        if action not in RAM_ACTIONS:
            raise fail(f"unknown action {action!r}; known: {', '.join(RAM_ACTIONS)}", EXIT_USAGE)
    settings = load_settings(db)
    with opened(settings) as store, _credential_errors():
        created = create_access_key(
            store,
            sealer_or_fail(settings),
            account_id=account,
            user_name=user,
            allowed_actions=tuple(allow or ()),
        )
    if json_out:
        write_json(
            {
                "accessKeyId": created.key.access_key_id,
                "accessKeySecret": created.secret,
                "accountId": created.key.account_id,
                "userName": created.key.user_name,
            }
        )
    else:
        out.print(f"AccessKeyId:     {created.key.access_key_id}")
        out.print(f"AccessKeySecret: {created.secret}")
        out.print(f"AccountId:       {created.key.account_id}")
        console.print("[dim]The secret is not stored in clear and cannot be shown again.[/]")


def keys_list(
    account: Annotated[str | None, typer.Option("--account")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """List AccessKeys (never their secrets)."""
    with opened(load_settings(db), create=False) as store:
        keys = store.list_all_access_keys() if account is None else store.list_access_keys(account_id=account)
    rows: list[dict[str, Any]] = [
        {
            "accessKeyId": k.access_key_id,
            "accountId": k.account_id,
            "userName": k.user_name,
            "status": str(k.status),
            "allowedActions": list(k.allowed_actions),
            "createTime": format_wire_time(k.created_ms),
        }
        for k in keys
    ]
    if json_out:
        write_json(rows)
        return
    table = row_writer(KEY_COLUMNS)
    table.write_all(
        [
            r["accessKeyId"],
            r["accountId"],
            r["userName"],
            r["status"],
            ", ".join(r["allowedActions"]) or "all",
            r["createTime"],
        ]
        for r in rows
    )
    note_hidden(table)


def _set_status(key_id: str, status: KeyStatus | None, db: str | None) -> None:
    with opened(load_settings(db), create=False) as store:
        done = (
            store.delete_access_key(key_id) if status is None else store.set_access_key_status(key_id, status)
        )
    if not done:
        raise fail(f"no AccessKey {key_id}")
    console.print(f"{key_id}: {'deleted' if status is None else status}")


def keys_disable(key_id: str, db: DbOption = None) -> None:
    """Disable a key: requests signed with it get InvalidAccessKeyId.Inactive."""
    _set_status(key_id, KeyStatus.INACTIVE, db)


def keys_enable(key_id: str, db: DbOption = None) -> None:
    """Enable a disabled key again."""
    _set_status(key_id, KeyStatus.ACTIVE, db)


def keys_delete(key_id: str, db: DbOption = None) -> None:
    """Delete a key for good."""
    _set_status(key_id, None, db)


def tokens_create(
    account: Annotated[
        list[str] | None, typer.Option("--account", help="An account the token may use.")
    ] = None,
    all_accounts: Annotated[bool, typer.Option("--all-accounts", help="Any account.")] = False,
    scope: Annotated[
        list[TokenScope] | None, typer.Option("--scope", help="ingest (default) and/or read.")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a bearer token for the native API. The token is shown once."""
    with opened(load_settings(db)) as store, _credential_errors():
        created = create_token(
            store,
            account_ids=tuple(account or ()),
            all_accounts=all_accounts,
            scopes=tuple(scope or (TokenScope.INGEST,)),
        )
    if json_out:
        write_json({"token": created.secret, "tokenId": created.token.token_id})
    else:
        out.print(f"Token:   {created.secret}")
        out.print(f"TokenId: {created.token.token_id}")
        console.print("[dim]Only a hash of the token is stored; it cannot be shown again.[/]")


def tokens_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List tokens (never the token itself)."""
    with opened(load_settings(db), create=False) as store:
        tokens = store.list_tokens()
    rows: list[dict[str, Any]] = [
        {
            "tokenId": t.token_id,
            "accounts": ["*"] if t.all_accounts else list(t.account_ids),
            "scopes": [str(scope) for scope in t.scopes],
            "createTime": format_wire_time(t.created_ms),
        }
        for t in tokens
    ]
    if json_out:
        write_json(rows)
        return
    table = row_writer(TOKEN_COLUMNS)
    table.write_all(
        [r["tokenId"], ",".join(r["accounts"]), ",".join(r["scopes"]), r["createTime"]] for r in rows
    )
    note_hidden(table)


def tokens_delete(token_id: str, db: DbOption = None) -> None:
    """Revoke a token."""
    with opened(load_settings(db), create=False) as store:
        done = store.delete_token(token_id)
    if not done:
        raise fail(f"no token {token_id}")
    console.print(f"{token_id}: deleted")
