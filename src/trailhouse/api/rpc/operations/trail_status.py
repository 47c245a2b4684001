"""GetTrailStatus (2017-12-04 and 2020-07-06): whether a trail logs, and how its delivery goes.

The answer comes from the delivery checkpoints in the store (any node may be the one delivering)
and a live look at the bucket; delivery/status.py computes it. 2017's SDK model has the OSS
fields only; 2020 adds the stream's (LatestDeliveryLogService*), OssBucketStatus and
SlsLogStoreStatus.
"""

from __future__ import annotations

from typing import Any

from ....delivery.status import TrailDeliveryStatus, trail_delivery_status
from ....service import trails
from ....service.trails import TrailRequestError
from ...context import Services
from ..call import Call
from .trails import flag, raise_for, required, wire_time

__all__ = ["get_trail_status_2017", "get_trail_status_2020"]


def _status(call: Call, svc: Services) -> TrailDeliveryStatus:
    name = required(call.params, "Name")
    is_organization_trail = flag(call.params, "IsOrganizationTrail") or False
    store = svc.store
    trail = store.get_trail(account_id=call.account_id, name=name)
    if trail is None and is_organization_trail:
        # A member account asks about its organization's trail, which its management account owns.
        org = store.organization_of(call.account_id)
        if org is not None and org.management_account_id != call.account_id:
            owned = store.get_trail(account_id=org.management_account_id, name=name)
            trail = owned if owned is not None and owned.is_organization_trail else None
    if trail is None:
        try:
            trails.get_trail(store, account_id=call.account_id, name=name)  # raises TrailNotFound
        except TrailRequestError as exc:
            raise raise_for(exc) from None
    assert trail is not None
    probe = svc.buckets.bucket_status if svc.buckets is not None else None
    return trail_delivery_status(store, probe, trail=trail, stream_configured=bool(svc.settings.nats_url))


def get_trail_status_2017(call: Call, svc: Services) -> dict[str, Any]:
    s = _status(call, svc)
    return {
        "IsLogging": s.trail.is_logging,
        "LatestDeliveryTime": wire_time(s.oss.last_delivery_ms),
        "LatestDeliveryError": s.oss.last_error,
        "StartLoggingTime": wire_time(s.trail.start_logging_ms),
        "StopLoggingTime": wire_time(s.trail.stop_logging_ms),
    }


def get_trail_status_2020(call: Call, svc: Services) -> dict[str, Any]:
    s = _status(call, svc)
    return {
        "IsLogging": s.trail.is_logging,
        "LatestDeliveryTime": wire_time(s.oss.last_delivery_ms),
        "LatestDeliveryError": s.oss.last_error,
        "LatestDeliveryLogServiceTime": wire_time(s.stream.last_delivery_ms),
        "LatestDeliveryLogServiceError": s.stream.last_error,
        "OssBucketStatus": s.oss.healthy,
        "SlsLogStoreStatus": s.stream.healthy,
        "StartLoggingTime": wire_time(s.trail.start_logging_ms),
        "StopLoggingTime": wire_time(s.trail.stop_logging_ms),
    }
