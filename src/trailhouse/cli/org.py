"""``trailhouse org``: the operator declares organizations, whose management account may create an
organization trail that delivers every member's events. ``org list`` is a listing like the others:
whole ids through ``RowWriter``, camelCase JSON keys (docs/cli.md "Output")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..model.times import format_wire_time, now_ms
from ..model.trail import Organization
from ..render.table import Column
from ..service.organizations import OrganizationError, add_member, dissolve, remove_member
from .common import (
    DbOption,
    JsonOption,
    console,
    fail,
    load_settings,
    note,
    note_hidden,
    opened,
    row_writer,
    write_json,
)

__all__ = ["ORG_COLUMNS", "org_add_member", "org_delete", "org_list", "org_remove_member"]

#: Ids stay whole; the members, one id after another, wrap between ids.
ORG_COLUMNS = (
    Column("OrganizationId", whole=True),
    Column("Management", whole=True),
    Column("Members", priority=1),
    Column("Created", whole=True, priority=2),
)

ManagementOption = Annotated[str, typer.Option("--management", help="The management account id.")]
MemberOption = Annotated[str, typer.Option("--member", help="A member account id.")]


def _row(o: Organization) -> dict[str, Any]:
    return {
        "organizationId": o.organization_id,
        "managementAccountId": o.management_account_id,
        "memberAccountIds": list(o.member_account_ids),
        "createTime": format_wire_time(o.created_ms),
    }


def org_add_member(management: ManagementOption, member: MemberOption, db: DbOption = None) -> None:
    """Make --member a member of --management's organization (created on first use)."""
    with opened(load_settings(db)) as store:
        try:
            organization = add_member(
                store, management_account_id=management, member_account_id=member, now_ms=now_ms()
            )
        except OrganizationError as exc:
            raise fail(str(exc)) from None
    console.print(f"{member} is a member of {organization.organization_id} (managed by {management})")


def org_remove_member(management: ManagementOption, member: MemberOption, db: DbOption = None) -> None:
    """Remove a member: the organization's trails stop delivering its events."""
    with opened(load_settings(db), create=False) as store:
        try:
            remove_member(store, management_account_id=management, member_account_id=member)
        except OrganizationError as exc:
            raise fail(str(exc)) from None
    console.print(f"{member} removed from {management}'s organization")


def org_delete(management: ManagementOption, db: DbOption = None) -> None:
    """Dissolve an organization (refused while it has organization trails)."""
    with opened(load_settings(db), create=False) as store:
        try:
            dissolve(store, management_account_id=management)
        except OrganizationError as exc:
            raise fail(str(exc)) from None
    console.print(f"{management}'s organization dissolved")


def org_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Every organization with its management account and members."""
    with opened(load_settings(db), create=False) as store:
        rows = [_row(o) for o in store.list_organizations()]
    if json_out:
        write_json(rows)
        return
    if not rows:
        note("no organizations")
        return
    table = row_writer(ORG_COLUMNS)
    table.write_all(
        [r["organizationId"], r["managementAccountId"], ", ".join(r["memberAccountIds"]), r["createTime"]]
        for r in rows
    )
    note_hidden(table)
