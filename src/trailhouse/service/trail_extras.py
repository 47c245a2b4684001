"""What hangs off a trail: delivery-history jobs, data event selectors, GlobalEventsStorageRegion.

Pure logic over ``TrailStore``, refusing with ``TrailRequestError`` like service.trails. A
delivery-history job is only recorded here; the delivery engine picks it up
(``TrailStore.list_open_history_jobs``) and replays its window into the trail.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ..model.times import DAY_MS
from ..model.trail import DataEventSelector, HistoryJob, HistoryJobStatus
from ..storage.base import TrailStore
from .regions import REGION_IDS
from .trails import Problem, TrailRequestError, get_trail

__all__ = [
    "DATA_EVENT_SERVICES",
    "GLOBAL_EVENTS_STORAGE_REGIONS",
    "HISTORY_DAYS",
    "create_history_job",
    "delete_data_event_selector",
    "delete_history_job",
    "get_data_event_selector",
    "get_global_events_storage_region",
    "get_history_job",
    "list_history_jobs",
    "put_data_event_selector",
    "selector_covers",
    "update_global_events_storage_region",
]

#: A delivery-history job replays this many days before it was created (ActionTrail's 90).
HISTORY_DAYS = 90
MAX_OPEN_HISTORY_JOBS = 1
MAX_CLIENT_TOKEN = 64
MAX_EVENT_SELECTORS = 20
MAX_EVENT_SELECTORS_BYTES = 16 * 1024

#: The services whose data events a selector may ask for, with their data event names.
DATA_EVENT_SERVICES: dict[str, tuple[str, ...]] = {
    "OSS": (
        "AppendObject",
        "CopyObject",
        "DeleteMultipleObjects",
        "DeleteObject",
        "GetObject",
        "GetObjectMeta",
        "HeadObject",
        "PostObject",
        "PutObject",
    ),
}

GLOBAL_EVENTS_STORAGE_REGIONS = ("cn-hangzhou", "ap-southeast-1")
GLOBAL_EVENTS_SETTING = "GlobalEventsStorageRegion"


def _invalid(parameter: str, message: str) -> TrailRequestError:
    return TrailRequestError(Problem.INVALID_PARAMETER, message, parameter=parameter)


# -- delivery-history jobs ----------------------------------------------------------------------


def create_history_job(
    store: TrailStore, *, account_id: str, trail_name: str, client_token: str | None, now_ms: int
) -> HistoryJob:
    """Record a job replaying the trail's last 90 days; the same ClientToken returns the same job."""
    token = client_token or ""
    if len(token) > MAX_CLIENT_TOKEN or not token.isascii():
        raise _invalid("ClientToken", f"ClientToken must be at most {MAX_CLIENT_TOKEN} ASCII characters.")
    trail = get_trail(store, account_id=account_id, name=trail_name)
    job = HistoryJob(
        job_id=0,
        account_id=account_id,
        trail_name=trail.name,
        home_region=trail.home_region,
        status=HistoryJobStatus.INITIALIZING,
        window_start_ms=now_ms - HISTORY_DAYS * DAY_MS,
        window_end_ms=now_ms,
        client_token=token,
        created_ms=now_ms,
        updated_ms=now_ms,
    )
    stored = store.create_history_job(job, max_open_per_account=MAX_OPEN_HISTORY_JOBS)
    if stored is None:
        raise TrailRequestError(
            Problem.MAXIMUM_DELIVERY_HISTORY_JOBS,
            "Your account already has a delivery history job that is initializing or delivering; "
            "wait for it to finish or delete it.",
        )
    return stored


def get_history_job(store: TrailStore, *, account_id: str, job_id: int) -> HistoryJob:
    job = store.get_history_job(account_id=account_id, job_id=job_id)
    if job is None:
        raise TrailRequestError(Problem.DELIVERY_HISTORY_JOB_NOT_FOUND, f"No delivery history job {job_id}.")
    return job


@dataclass(frozen=True, slots=True)
class HistoryJobPage:
    jobs: list[HistoryJob]
    page_number: int
    page_size: int
    total: int


def list_history_jobs(
    store: TrailStore, *, account_id: str, page_number: int, page_size: int
) -> HistoryJobPage:
    jobs, total = store.list_history_jobs(
        account_id=account_id, offset=(page_number - 1) * page_size, limit=page_size
    )
    return HistoryJobPage(jobs, page_number, page_size, total)


def delete_history_job(store: TrailStore, *, account_id: str, job_id: int) -> None:
    """Delete a job in any state: a deliverer replaying it sees it gone and stops."""
    if not store.delete_history_job(account_id=account_id, job_id=job_id):
        raise TrailRequestError(Problem.DELIVERY_HISTORY_JOB_NOT_FOUND, f"No delivery history job {job_id}.")


# -- data event selectors -----------------------------------------------------------------------


def _parse_selectors(text: str) -> str:
    """The EventSelectors JSON: an array of 1-20 objects each naming a service with data events."""
    if len(text.encode()) > MAX_EVENT_SELECTORS_BYTES:
        raise _invalid("EventSelectors", f"EventSelectors is longer than {MAX_EVENT_SELECTORS_BYTES} bytes.")
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _invalid("EventSelectors", "EventSelectors must be a JSON array of selector objects.") from None
    if not isinstance(parsed, list) or not 1 <= len(parsed) <= MAX_EVENT_SELECTORS:
        raise _invalid(
            "EventSelectors", f"EventSelectors must be a JSON array of 1 to {MAX_EVENT_SELECTORS} objects."
        )
    for selector in parsed:
        service = selector.get("ServiceName") if isinstance(selector, dict) else None
        if not isinstance(service, str) or service.upper() not in DATA_EVENT_SERVICES:
            raise _invalid(
                "EventSelectors",
                "Each selector must be an object whose ServiceName is one of ListDataEventServices' "
                f"services ({', '.join(DATA_EVENT_SERVICES)}).",
            )
    return text


def put_data_event_selector(
    store: TrailStore,
    *,
    account_id: str,
    trail_name: str,
    event_selectors: str,
    is_trail_all_region: bool | None,
    trail_region_ids: str | None,
    now_ms: int,
) -> DataEventSelector:
    text = _parse_selectors(event_selectors)
    regions: tuple[str, ...] = ()
    if trail_region_ids:
        listed = [r.strip() for r in trail_region_ids.split(",") if r.strip()]
        unknown = [r for r in listed if r not in REGION_IDS]
        if unknown:
            raise _invalid("TrailRegionIds", f"TrailRegionIds names an unknown region: {unknown[0][:64]!r}.")
        regions = tuple(sorted(set(listed)))
    all_regions = is_trail_all_region if is_trail_all_region is not None else not regions
    if not all_regions and not regions:
        raise _invalid("TrailRegionIds", "TrailRegionIds is required when IsTrailAllRegion is false.")
    selector = DataEventSelector(
        account_id=account_id,
        trail_name=trail_name,
        event_selectors=text,
        is_trail_all_region=all_regions,
        trail_region_ids=() if all_regions else regions,
        create_ms=now_ms,
        update_ms=now_ms,
    )
    if not store.put_data_event_selector(selector):
        raise TrailRequestError(Problem.TRAIL_NOT_FOUND, "The trail does not exist.")
    stored = store.get_data_event_selector(account_id=account_id, trail_name=trail_name)
    return stored if stored is not None else selector


def get_data_event_selector(store: TrailStore, *, account_id: str, trail_name: str) -> DataEventSelector:
    get_trail(store, account_id=account_id, name=trail_name)
    selector = store.get_data_event_selector(account_id=account_id, trail_name=trail_name)
    if selector is None:
        raise TrailRequestError(
            Problem.DATA_EVENT_SELECTOR_NOT_FOUND, "The trail has no data event selector."
        )
    return selector


def delete_data_event_selector(store: TrailStore, *, account_id: str, trail_name: str) -> None:
    get_trail(store, account_id=account_id, name=trail_name)
    if not store.delete_data_event_selector(account_id=account_id, trail_name=trail_name):
        raise TrailRequestError(
            Problem.DATA_EVENT_SELECTOR_NOT_FOUND, "The trail has no data event selector."
        )


def selector_covers(selector: DataEventSelector, *, service_name: str, acs_region: str) -> bool:
    """Whether a data event of ``service_name`` in ``acs_region`` is one the selector asks for."""
    if not selector.is_trail_all_region and acs_region not in selector.trail_region_ids:
        return False
    parsed = orjson.loads(selector.event_selectors)
    wanted = service_name.upper()
    return any(isinstance(s, dict) and str(s.get("ServiceName", "")).upper() == wanted for s in parsed)


# -- GlobalEventsStorageRegion ------------------------------------------------------------------


def get_global_events_storage_region(store: TrailStore, *, account_id: str) -> str:
    """Where the account's global events are kept; cn-hangzhou until it is changed."""
    stored = store.get_account_setting(account_id=account_id, name=GLOBAL_EVENTS_SETTING)
    return stored if stored is not None else GLOBAL_EVENTS_STORAGE_REGIONS[0]


def update_global_events_storage_region(store: TrailStore, *, account_id: str, storage_region: str) -> None:
    if storage_region not in GLOBAL_EVENTS_STORAGE_REGIONS:
        raise _invalid(
            "StorageRegion", f"StorageRegion must be one of {', '.join(GLOBAL_EVENTS_STORAGE_REGIONS)}."
        )
    store.set_account_setting(account_id=account_id, name=GLOBAL_EVENTS_SETTING, value=storage_region)
