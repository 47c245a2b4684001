"""AccessKey usage: the GetAccessKeyLastUsed* family.

Transport-free: the wire handlers, the native API, the console and the CLI all call these
functions. The per-operation lists come from the ``key_usage`` aggregates the store maintains in
the ingest transaction (so an answer is current the moment an event is stored); the ``Detail`` of
an entry is the stored event that made it most recent. The leaked-key report built on the same
aggregates is in ``access_key_report``.

Decisions and their reasons are in docs/compatibility.md ("AccessKey usage").
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import orjson

from ..model.event_text import parse_body
from ..model.query import UsageEntry, UsageKind, UsagePosition
from ..model.times import DAY_MS
from ..storage.base import EventStore
from .catalog import ServiceCatalog, default_catalog
from .pagetoken import InvalidPageToken, PageTokens, query_digest

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "LastUse",
    "LastUsedInfo",
    "ProductUse",
    "UsageList",
    "UsagePage",
    "UsageQueryInvalid",
    "Use",
    "all_usage",
    "format_detail",
    "last_used_info",
    "last_used_products",
    "list_last_used",
    "page_size_or_default",
    "window_start",
]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
#: Detail of an entry whose event is no longer stored (retention shorter than the usage window).
MISSING_DETAIL = "{}"
_SCAN_BATCH = 500


class UsageQueryInvalid(ValueError):
    """A parameter of a usage query is out of range; the wire answers InvalidQueryParameter."""


class UsageList(enum.Enum):
    """The three paged lists, each a usage kind under its own page-token namespace."""

    IPS = UsageKind.IP
    EVENTS = UsageKind.EVENT
    RESOURCES = UsageKind.RESOURCE

    @property
    def token_kind(self) -> str:
        # Tokens are HMAC-bound to this string, so a token of one list is refused by another.
        return f"AccessKeyLastUsed.{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Use:
    """What every entry of the family tells: the last and first use, the calls, the event behind it."""

    used_ms: int
    first_used_ms: int
    calls: int
    failed_calls: int
    source: str
    detail: str

    @classmethod
    def of(cls, entry: UsageEntry, details: Mapping[int, str], **names: str) -> Self:
        """The entry's counts, with ``Detail`` from ``details`` (by seq) and the subclass's names."""
        return cls(
            used_ms=entry.last_used_ms,
            first_used_ms=entry.first_used_ms,
            calls=entry.calls,
            failed_calls=entry.failed_calls,
            source=entry.source,
            detail=details.get(entry.last_seq, MISSING_DETAIL),
            **names,
        )


@dataclass(frozen=True, slots=True)
class LastUse(Use):
    """One entry of Ips / Events / Resources: the item and the most recent call that used it."""

    service_name: str
    item: str  # the IP, the event name or the resource name
    item_type: str  # the resource type; "" for IPs and event names


@dataclass(frozen=True, slots=True)
class UsagePage:
    items: tuple[LastUse, ...]
    next_token: str | None  # None on the last page


@dataclass(frozen=True, slots=True)
class ProductUse(Use):
    service_name: str
    service_name_cn: str
    service_name_en: str


@dataclass(frozen=True, slots=True)
class LastUsedInfo:
    """GetAccessKeyLastUsedInfo. Every field but ``access_key_id`` is None when the key was not used."""

    access_key_id: str
    account_id: str | None = None
    owner_id: str | None = None
    user_name: str | None = None
    account_type: str | None = None
    service_name: str | None = None
    service_name_cn: str | None = None
    service_name_en: str | None = None
    used_ms: int | None = None
    source: str | None = None
    detail: str | None = None

    @property
    def used(self) -> bool:
        return self.used_ms is not None


# -------------------------------------------------------------------------------------- helpers


def window_start(now_ms: int, window_days: int) -> int:
    """The oldest last-use that still counts: the window is counted back from now."""
    return now_ms - window_days * DAY_MS


def page_size_or_default(page_size: int | None) -> int:
    """PageSize 0–100; absent or 0 means the default 20.

    0 is not "an empty page": a client that pages while NextToken is present would then loop
    forever, and in the SDKs 0 is what an unset integer field looks like.
    """
    if page_size is None or page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 0 < page_size <= MAX_PAGE_SIZE:
        raise UsageQueryInvalid(f"PageSize must be between 0 and {MAX_PAGE_SIZE}")
    return page_size


def format_detail(body: bytes) -> str:
    """The stored event as the ``Detail`` string: JSON indented by two spaces, as documented.

    Keys keep their stored order and values their types; only whitespace differs from the body.
    """
    return orjson.dumps(parse_body(body), option=orjson.OPT_INDENT_2).decode()


def _details(store: EventStore, account_id: str, entries: list[UsageEntry]) -> dict[int, str]:
    found = store.events_by_seq(account_id=account_id, seqs=[e.last_seq for e in entries])
    return {seq: format_detail(ev.body) for seq, ev in found.items()}


def all_usage(
    store: EventStore, *, account_id: str, access_key_id: str, kind: UsageKind, since_ms: int
) -> list[UsageEntry]:
    """Every usage row of a kind across all services, most recent first; ties: latest arrival first.

    Not paged with UsagePosition on purpose: the position has no service component, so rows of
    two services with the same last use and item would be ambiguous at a page boundary. The rows
    per key are few (services, or IPs times services), so one query with a growing limit is cheap.
    """
    limit = _SCAN_BATCH
    while True:
        rows = store.usage(
            account_id=account_id,
            access_key_id=access_key_id,
            kind=kind,
            service_name=None,
            since_ms=since_ms,
            after=None,
            limit=limit,
        )
        if len(rows) < limit:
            return sorted(rows, key=lambda e: (-e.last_used_ms, -e.last_seq))
        limit *= 4


def _resolve_service(
    store: EventStore, *, account_id: str, access_key_id: str, service_name: str, since_ms: int
) -> str:
    """The spelling of ``service_name`` this key's events use.

    Events spell some codes in more than one case (``Actiontrail`` / ``ActionTrail``) while callers
    follow the docs, so an exact spelling the key used wins, and otherwise the most recently used
    spelling that matches case-insensitively.
    """
    exact = store.usage(
        account_id=account_id,
        access_key_id=access_key_id,
        kind=UsageKind.PRODUCT,
        service_name=service_name,
        since_ms=since_ms,
        after=None,
        limit=1,
    )
    if exact:
        return service_name
    wanted = service_name.casefold()
    for product in all_usage(
        store, account_id=account_id, access_key_id=access_key_id, kind=UsageKind.PRODUCT, since_ms=since_ms
    ):
        if product.service_name.casefold() == wanted:
            return product.service_name
    return service_name


def _open_token(
    tokens: PageTokens, token: str, *, kind: str, account_id: str, digest: str
) -> tuple[UsagePosition, str]:
    position = tokens.open(token, kind=kind, account_id=account_id, digest=digest)
    # The HMAC makes a forged position impossible; the shape check guards against our own old formats.
    if (
        len(position) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in position[:3])
        or not isinstance(position[3], str)
    ):
        raise InvalidPageToken("NextToken is malformed")
    return UsagePosition(position[0], position[1], position[2]), position[3]


# ---------------------------------------------------------------------------- the five operations


def list_last_used(
    store: EventStore,
    tokens: PageTokens,
    which: UsageList,
    *,
    account_id: str,
    access_key_id: str,
    service_name: str,
    now_ms: int,
    page_size: int | None = None,
    next_token: str | None = None,
    window_days: int = 400,
) -> UsagePage:
    """One page of IPs, event names or resources the key used on a service, most recent first.

    Raises UsageQueryInvalid for a bad parameter and InvalidPageToken for a token that is
    malformed, forged, from another account or list, or from a query with other parameters.
    """
    if not access_key_id or not service_name:
        raise UsageQueryInvalid("AccessKey and ServiceName must not be empty")
    limit = page_size_or_default(page_size)
    since = window_start(now_ms, window_days)
    # PageSize is left out of the binding: a keyset position is valid for any page size.
    digest = query_digest({"AccessKey": access_key_id, "ServiceName": service_name})
    after: UsagePosition | None = None
    resolved = service_name
    if next_token:
        after, resolved = _open_token(
            tokens, next_token, kind=which.token_kind, account_id=account_id, digest=digest
        )

    def read(service: str) -> list[UsageEntry]:
        # One row more than asked tells whether another page exists, so the last page has no
        # token; the Details come in the same statement.
        return store.usage(
            account_id=account_id,
            access_key_id=access_key_id,
            kind=which.value,
            service_name=service,
            since_ms=since,
            after=after,
            limit=limit + 1,
            with_details=True,
        )

    rows = read(resolved)
    if not rows and not next_token:
        # The spelling as given has no rows: another spelling may. (Rows as given mean the key used
        # that exact spelling, which _resolve_service would have kept: every row of a service
        # comes with a product row of it, used as late or later.)
        resolved = _resolve_service(
            store,
            account_id=account_id,
            access_key_id=access_key_id,
            service_name=service_name,
            since_ms=since,
        )
        if resolved != service_name:
            rows = read(resolved)
    page, more = rows[:limit], len(rows) > limit
    details = {e.last_seq: format_detail(e.last_event) for e in page if e.last_event is not None}
    items = tuple(
        LastUse.of(e, details, service_name=e.service_name, item=e.item, item_type=e.item_type) for e in page
    )
    token = None
    if more:
        last = page[-1].position
        token = tokens.issue(
            kind=which.token_kind,
            account_id=account_id,
            digest=digest,
            position=[last.last_used_ms, last.item_ref, last.type_ref, resolved],
        )
    return UsagePage(items, token)


def last_used_products(
    store: EventStore,
    *,
    account_id: str,
    access_key_id: str,
    now_ms: int,
    window_days: int = 400,
    catalog: ServiceCatalog | None = None,
) -> list[ProductUse]:
    """Every service the key called in the window, most recent first (not paged on the wire).

    Services last used at the same millisecond are ordered by arrival, latest first.

    Events without a serviceName name no service, so they are not listed here (Info still
    counts them as a use).
    """
    if not access_key_id:
        raise UsageQueryInvalid("AccessKey must not be empty")
    names = catalog or default_catalog()
    entries = [
        e
        for e in all_usage(
            store,
            account_id=account_id,
            access_key_id=access_key_id,
            kind=UsageKind.PRODUCT,
            since_ms=window_start(now_ms, window_days),
        )
        if e.service_name
    ]
    details: dict[int, str] = {}
    for start in range(0, len(entries), _SCAN_BATCH):
        details.update(_details(store, account_id, entries[start : start + _SCAN_BATCH]))
    out: list[ProductUse] = []
    for e in entries:
        service = names.names(e.service_name)
        out.append(
            ProductUse.of(
                e,
                details,
                service_name=e.service_name,
                service_name_cn=service.name_cn,
                service_name_en=service.name_en,
            )
        )
    return out


def _identity(event: dict[str, Any], account_id: str) -> tuple[str, str]:
    """(AccountType, UserName) of the principal behind an event."""
    identity = event.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    kind = identity.get("type")
    if not isinstance(kind, str) or not kind:
        # Old events lack the type: a root key's principal is the account itself.
        kind = "root-account" if str(identity.get("principalId", "")) == account_id else "ram-user"
    if kind == "root-account":
        return kind, "root"
    name = identity.get("userName")
    return kind, name if isinstance(name, str) else ""


def last_used_info(
    store: EventStore,
    *,
    account_id: str,
    access_key_id: str,
    now_ms: int,
    window_days: int = 400,
    catalog: ServiceCatalog | None = None,
) -> LastUsedInfo:
    """The owner of a key and its most recent use in the window.

    A key that was not used in the window (or belongs to another account, which must look the
    same) gives a LastUsedInfo with only ``access_key_id`` set.
    """
    if not access_key_id:
        raise UsageQueryInvalid("AccessKey must not be empty")
    # All products, not limit=1: the store breaks ties between services arbitrarily, while the
    # latest arrival among simultaneous uses is the deterministic answer (and Products' first row).
    latest = all_usage(
        store,
        account_id=account_id,
        access_key_id=access_key_id,
        kind=UsageKind.PRODUCT,
        since_ms=window_start(now_ms, window_days),
    )
    if not latest:
        return LastUsedInfo(access_key_id)
    entry = latest[0]
    stored = store.events_by_seq(account_id=account_id, seqs=[entry.last_seq]).get(entry.last_seq)
    event: dict[str, Any] = parse_body(stored.body) if stored is not None else {}
    account_type, user_name = _identity(event, account_id)
    service = (catalog or default_catalog()).names(entry.service_name)
    return LastUsedInfo(
        access_key_id=access_key_id,
        account_id=account_id,
        owner_id=account_id,
        user_name=user_name,
        account_type=account_type,
        service_name=entry.service_name,
        service_name_cn=service.name_cn,
        service_name_en=service.name_en,
        used_ms=entry.last_used_ms,
        source=entry.source,
        detail=format_detail(stored.body) if stored is not None else MISSING_DETAIL,
    )
