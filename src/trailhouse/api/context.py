"""What an operation handler receives: the authenticated call and the services it may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..model.credentials import AccessKey
from ..service.pagetoken import PageTokens
from ..settings import Settings
from ..storage.base import EventStore

__all__ = ["Call", "Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """Long-lived parts shared by every request of one app (no module-level state anywhere)."""

    settings: Settings
    store: EventStore
    page_tokens: PageTokens


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated ActionTrail API call. ``account_id`` scopes everything the handler may see."""

    action: str
    version: str
    params: Mapping[str, str]
    account_id: str
    access_key: AccessKey
    request_id: str
    now_ms: int
