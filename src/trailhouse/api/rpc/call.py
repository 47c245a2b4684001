"""What an operation handler receives besides the services: the authenticated ActionTrail call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ...model.credentials import AccessKey

__all__ = ["Call"]


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated ActionTrail API call. ``account_id`` scopes everything the handler may see.

    Wire parameters as strings and the caller's identity; no HTTP object, so a handler cannot
    reach the request (operations/ reads parameters and returns a dict).
    """

    action: str
    version: str
    params: Mapping[str, str]
    account_id: str
    access_key: AccessKey
    request_id: str
    now_ms: int
