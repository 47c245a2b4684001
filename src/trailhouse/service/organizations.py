"""Organizations for organization (multi-account) trails: a management account and its members.

ActionTrail takes them from Alibaba Cloud's Resource Directory; a self-hosted service has none,
so the operator declares them (``trailhouse org``). The rules: an account is in at most one
organization, as its management account or as a member, and never both.
"""

from __future__ import annotations

import re
import secrets
import string

from ..model.trail import Organization
from ..storage.base import TrailStore

__all__ = ["OrganizationError", "add_member", "dissolve", "remove_member"]

_ACCOUNT = re.compile(r"^[0-9]{1,32}$")
_ID_ALPHABET = string.ascii_lowercase + string.digits


class OrganizationError(ValueError):
    """An organization change that would break the rules; the message says which."""


def _check_account(account_id: str) -> None:
    if not _ACCOUNT.fullmatch(account_id):
        raise OrganizationError(f"{account_id!r} is not an account id (digits only)")


def new_organization_id() -> str:
    """A resource-directory style id, ``rd-`` and 10 lowercase letters or digits."""
    return "rd-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def add_member(
    store: TrailStore, *, management_account_id: str, member_account_id: str, now_ms: int
) -> Organization:
    """Make ``member_account_id`` a member of the management account's organization (created if needed)."""
    _check_account(management_account_id)
    _check_account(member_account_id)
    if management_account_id == member_account_id:
        raise OrganizationError("an account cannot be a member of its own organization")
    managed = store.organization_of(management_account_id)
    if managed is not None and managed.management_account_id != management_account_id:
        raise OrganizationError(
            f"{management_account_id} is a member of {managed.organization_id} "
            f"(managed by {managed.management_account_id}); it cannot manage an organization"
        )
    current = store.organization_of(member_account_id)
    if current is not None:
        if current.management_account_id == member_account_id:
            raise OrganizationError(
                f"{member_account_id} manages {current.organization_id}; it cannot be a member"
            )
        if current.management_account_id == management_account_id:
            return current
        raise OrganizationError(
            f"{member_account_id} is already a member of {current.organization_id} "
            f"(managed by {current.management_account_id})"
        )
    return store.add_organization_member(
        management_account_id=management_account_id,
        member_account_id=member_account_id,
        organization_id=new_organization_id(),
        now_ms=now_ms,
    )


def remove_member(store: TrailStore, *, management_account_id: str, member_account_id: str) -> None:
    if not store.remove_organization_member(
        management_account_id=management_account_id, member_account_id=member_account_id
    ):
        raise OrganizationError(
            f"{member_account_id} is not a member of {management_account_id}'s organization"
        )


def dissolve(store: TrailStore, *, management_account_id: str) -> None:
    """Remove the organization; refused while its organization trails exist (they would deliver nothing)."""
    if store.organization_of(management_account_id) is None:
        raise OrganizationError(f"{management_account_id} manages no organization")
    trails = [t.name for t in store.list_trails(account_id=management_account_id) if t.is_organization_trail]
    if trails:
        raise OrganizationError(f"delete its organization trails first: {', '.join(trails)}")
    store.delete_organization(management_account_id=management_account_id)
