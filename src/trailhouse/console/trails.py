"""The trails page: the account's trails, as DescribeTrails lists them, with GetTrailStatus's delivery status.

The list is ``service.trails.describe_trails`` with the account's organization trails and the
trails of other home regions (shadow trails) included, so a person sees every trail that delivers
the account's events. The status of each is ``delivery.status.trail_delivery_status``, the very
function GetTrailStatus answers from, shown only to a key that may call GetTrailStatus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..delivery.status import TrailDeliveryStatus, trail_delivery_status
from ..model.trail import Trail
from ..service.trails import describe_trails
from .session import Principal
from .web import Console

__all__ = ["trails_page"]

DESCRIBE = "DescribeTrails"
STATUS = "GetTrailStatus"


@dataclass(frozen=True, slots=True)
class TrailRow:
    trail: Trail
    #: The member account sees its management account's organization trail, which that account owns.
    owned: bool
    status: TrailDeliveryStatus | None


def _rows(console: Console, request: Request) -> tuple[Principal, list[TrailRow], bool]:
    who = console.check(request, DESCRIBE)
    svc = console.svc
    found = describe_trails(
        svc.store,
        account_id=who.account_id,
        home_region=svc.settings.region,
        names=None,
        include_shadow_trails=True,
        include_organization_trail=True,
    )
    with_status = who.allows(STATUS)
    probe = svc.buckets.bucket_status if svc.buckets is not None else None
    stream_configured = bool(svc.settings.nats_url)
    rows = []
    for trail in sorted(found, key=lambda t: (t.account_id != who.account_id, t.name)):
        status = (
            trail_delivery_status(svc.store, probe, trail=trail, stream_configured=stream_configured)
            if with_status
            else None
        )
        rows.append(TrailRow(trail, trail.account_id == who.account_id, status))
    return who, rows, with_status


async def trails_page(console: Console, request: Request) -> Response:
    who, rows, with_status = await console.bounded(request, _rows, console, request)
    context: dict[str, Any] = {
        "rows": rows,
        "with_status": with_status,
        "region": console.svc.settings.region,
        "stream_configured": bool(console.svc.settings.nats_url),
        "storage_configured": console.svc.buckets is not None,
    }
    return console.page(request, "trails.html", who=who, nav="trails", title="Trails", **context)
