"""Wire handlers of the 2020-07-06 operations around trails: delivery-history jobs, data event
selectors and services, and GlobalEventsStorageRegion (service.trail_extras)."""

from __future__ import annotations

from typing import Any

from ....model.trail import DataEventSelector, HistoryJob
from ....service import trail_extras
from ....service.pagetoken import InvalidPageToken
from ....service.trails import TrailRequestError
from ...context import Services
from ...wire import plain_int
from .. import errors
from ..call import Call
from .trails import flag, optional, raise_for, required, wire_time

__all__ = [
    "create_delivery_history_job",
    "delete_data_event_selector",
    "delete_delivery_history_job",
    "get_data_event_selector",
    "get_delivery_history_job",
    "get_global_events_storage_region",
    "list_data_event_selectors",
    "list_data_event_services",
    "list_delivery_history_jobs",
    "put_data_event_selector",
    "update_global_events_storage_region",
]

_invalid = errors.InvalidQueryParameter.because
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def _number(call: Call, name: str, *, default: int | None, low: int, high: int) -> int:
    raw = optional(call.params, name)
    if raw is None or raw == "":
        if default is None:
            raise errors.Missing(name)
        return default
    value = plain_int(raw, max_digits=19)
    if value is None or not low <= value <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}.")
    return value


# -- delivery-history jobs ----------------------------------------------------------------------


def _job(job: HistoryJob, *, with_regions: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "JobId": job.job_id,
        "TrailName": job.trail_name,
        "HomeRegion": job.home_region,
        "JobStatus": int(job.status),
        # StartTime/EndTime bound the replayed window, as in the API reference's example (90 days).
        "StartTime": wire_time(job.window_start_ms),
        "EndTime": wire_time(job.window_end_ms),
        "CreatedTime": wire_time(job.created_ms),
        "UpdatedTime": wire_time(job.updated_ms),
    }
    if with_regions:
        body["Status"] = [{"Region": job.home_region, "Status": int(job.status)}]
    return body


def create_delivery_history_job(call: Call, svc: Services) -> dict[str, Any]:
    trail_name = required(call.params, "TrailName")
    try:
        job = trail_extras.create_history_job(
            svc.store,
            account_id=call.account_id,
            trail_name=trail_name,
            client_token=optional(call.params, "ClientToken"),
            now_ms=call.now_ms,
        )
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {"JobId": job.job_id}


def get_delivery_history_job(call: Call, svc: Services) -> dict[str, Any]:
    job_id = _number(call, "JobId", default=None, low=0, high=2**63 - 1)
    try:
        job = trail_extras.get_history_job(svc.store, account_id=call.account_id, job_id=job_id)
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return _job(job, with_regions=True)


def list_delivery_history_jobs(call: Call, svc: Services) -> dict[str, Any]:
    page_number = _number(call, "PageNumber", default=1, low=1, high=1_000_000)
    page_size = _number(call, "PageSize", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    page = trail_extras.list_history_jobs(
        svc.store, account_id=call.account_id, page_number=page_number, page_size=page_size
    )
    return {
        "DeliveryHistoryJobs": [_job(j, with_regions=False) for j in page.jobs],
        "PageNumber": page.page_number,
        "PageSize": page.page_size,
        "TotalCount": page.total,
    }


def delete_delivery_history_job(call: Call, svc: Services) -> dict[str, Any]:
    job_id = _number(call, "JobId", default=None, low=0, high=2**63 - 1)
    try:
        trail_extras.delete_history_job(svc.store, account_id=call.account_id, job_id=job_id)
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {}


# -- data event selectors -----------------------------------------------------------------------


def _sls_configs(selector: DataEventSelector, svc: Services) -> list[dict[str, Any]]:
    """Where the trail's data events go in SLS, one entry per region the selector covers."""
    trail = svc.store.get_trail(account_id=selector.account_id, name=selector.trail_name)
    if trail is None or not trail.sls_project_arn:
        return []
    regions = ["All"] if selector.is_trail_all_region else list(selector.trail_region_ids)
    return [
        {
            "TrailRegion": region,
            "RegionSlsProjectArn": trail.sls_project_arn,
            "Status": "Enable" if trail.is_logging else "Disable",
            "CreateTime": wire_time(selector.create_ms),
            "ErrorCode": "",
            "ErrorMessage": "",
        }
        for region in regions
    ]


def _arn(call: Call, svc: Services, trail_name: str) -> str:
    return f"acs:actiontrail:{svc.settings.region}:{call.account_id}:trail/{trail_name}"


def put_data_event_selector(call: Call, svc: Services) -> dict[str, Any]:
    trail_name = required(call.params, "TrailName")
    selectors = required(call.params, "EventSelectors")
    try:
        selector = trail_extras.put_data_event_selector(
            svc.store,
            account_id=call.account_id,
            trail_name=trail_name,
            event_selectors=selectors,
            is_trail_all_region=flag(call.params, "IsTrailAllRegion"),
            trail_region_ids=optional(call.params, "TrailRegionIds"),
            now_ms=call.now_ms,
        )
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {"DataEventSelectors": selector.event_selectors, "TrailArn": _arn(call, svc, trail_name)}


def get_data_event_selector(call: Call, svc: Services) -> dict[str, Any]:
    trail_name = required(call.params, "TrailName")
    try:
        selector = trail_extras.get_data_event_selector(
            svc.store, account_id=call.account_id, trail_name=trail_name
        )
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {
        "DataEventSelectors": selector.event_selectors,
        "IsTrailAllRegion": selector.is_trail_all_region,
        "SlsDeliveryConfigs": _sls_configs(selector, svc),
        "TrailArn": _arn(call, svc, trail_name),
    }


def delete_data_event_selector(call: Call, svc: Services) -> dict[str, Any]:
    trail_name = required(call.params, "TrailName")
    try:
        trail_extras.delete_data_event_selector(svc.store, account_id=call.account_id, trail_name=trail_name)
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {}


def _page_start(call: Call, svc: Services, kind: str) -> int:
    token = optional(call.params, "NextToken")
    if not token:
        return 0
    try:
        position = svc.page_tokens.open(token, kind=kind, account_id=call.account_id, digest="")
    except InvalidPageToken as exc:
        raise _invalid(f"{str(exc).rstrip('.')}.") from None
    if len(position) != 1 or not isinstance(position[0], int) or position[0] < 0:
        raise _invalid("NextToken is malformed.")
    return position[0]


def _paged(call: Call, svc: Services, kind: str, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    size = _number(call, "MaxResults", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    start = _page_start(call, svc, kind)
    page = items[start : start + size]
    meta: dict[str, Any] = {"MaxResults": size}
    if start + size < len(items):
        meta["NextToken"] = svc.page_tokens.issue(
            kind=kind, account_id=call.account_id, digest="", position=[start + size]
        )
    return page, meta


def list_data_event_selectors(call: Call, svc: Services) -> dict[str, Any]:
    selectors = svc.store.list_data_event_selectors(account_id=call.account_id)
    page, meta = _paged(call, svc, "data_event_selectors", selectors)
    infos = [
        {
            "TrailName": s.trail_name,
            "TrailArn": _arn(call, svc, s.trail_name),
            "EventSelectors": s.event_selectors,
            "IsTrailAllRegion": s.is_trail_all_region,
            "SlsDeliveryConfigs": _sls_configs(s, svc),
        }
        for s in page
    ]
    return {"Data": {"DataEventSelectorInfos": infos, **meta}}


def list_data_event_services(call: Call, svc: Services) -> dict[str, Any]:
    services = sorted(trail_extras.DATA_EVENT_SERVICES.items())
    page, meta = _paged(call, svc, "data_event_services", services)
    infos = [{"ServiceName": name, "EventNames": list(events)} for name, events in page]
    return {"Data": {"ServiceInfos": infos, **meta}}


# -- GlobalEventsStorageRegion ------------------------------------------------------------------


def get_global_events_storage_region(call: Call, svc: Services) -> dict[str, Any]:
    region = trail_extras.get_global_events_storage_region(svc.store, account_id=call.account_id)
    return {"StorageRegion": region}


def update_global_events_storage_region(call: Call, svc: Services) -> dict[str, Any]:
    region = required(call.params, "StorageRegion")
    try:
        trail_extras.update_global_events_storage_region(
            svc.store, account_id=call.account_id, storage_region=region
        )
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {}
