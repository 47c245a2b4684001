"""Trails: the rules of CreateTrail, UpdateTrail, DeleteTrail, DescribeTrails, Start/StopLogging.

Pure logic over ``TrailStore``: parameters arrive as the strings the wire carried (None when
absent), are checked against ActionTrail's documented rules, and every refusal is a
``TrailRequestError`` whose ``problem`` the wire turns into the exact error code. Whether a bucket
exists is asked of a ``BucketProbe`` (the delivery layer's object storage), never looked up here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ..model.trail import ALL_REGIONS, EventRW, Organization, Trail, TrailStatus
from ..storage.base import TrailConflict, TrailStore
from .regions import REGION_IDS

__all__ = [
    "MAX_ORGANIZATION_TRAILS",
    "MAX_TRAILS_PER_REGION",
    "BucketProbe",
    "Problem",
    "TrailParams",
    "TrailRequestError",
    "create_trail",
    "delete_trail",
    "describe_trails",
    "get_trail",
    "parse_event_rw",
    "parse_trail_region",
    "set_logging",
    "update_trail",
]

MAX_TRAILS_PER_REGION = 5
MAX_ORGANIZATION_TRAILS = 1

_TRAIL_NAME = re.compile(r"^[a-z][a-z0-9_-]{5,35}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9/_-]{5,31}$")
_UID = r"[0-9]{1,32}"
_SLS_PROJECT_ARN = re.compile(rf"^acs:log:[a-z0-9-]+:{_UID}:project/[a-z0-9][a-z0-9-]{{1,61}}[a-z0-9]$")
_ROLE_ARN = re.compile(rf"^acs:ram::{_UID}:role/[A-Za-z0-9._-]{{1,64}}$")
_ODPS_PROJECT_ARN = re.compile(rf"^acs:odps:[a-z0-9-]+:{_UID}:project/([A-Za-z0-9_]{{3,28}})$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Problem(enum.StrEnum):
    """Why a trail request is refused; the wire maps each to ActionTrail's code and HTTP status."""

    INVALID_TRAIL_NAME = "invalid_trail_name"
    INVALID_BUCKET_NAME = "invalid_bucket_name"
    INVALID_PREFIX = "invalid_prefix"
    INVALID_PARAMETER = "invalid_parameter"  # ``parameter`` names which
    INVALID_DELIVERY_CONFIGURATION = "invalid_delivery_configuration"
    UNSUPPORTED_DESTINATION = "unsupported_destination"  # MaxCompute, MNS
    TRAIL_ALREADY_EXISTS = "trail_already_exists"
    TRAIL_NOT_FOUND = "trail_not_found"
    REPEAT_OSS_BUCKET = "repeat_oss_bucket"
    MAXIMUM_TRAILS = "maximum_trails"
    MAXIMUM_ORGANIZATION_TRAILS = "maximum_organization_trails"
    NOT_ALLOW_ORGANIZATION_TRAIL = "not_allow_organization_trail"
    BUCKET_DOES_NOT_EXIST = "bucket_does_not_exist"
    INSUFFICIENT_BUCKET_POLICY = "insufficient_bucket_policy"
    DESTINATION_UNAVAILABLE = "destination_unavailable"
    # history jobs, data event selectors, account settings (service/trail_extras.py)
    DELIVERY_HISTORY_JOB_NOT_FOUND = "delivery_history_job_not_found"
    MAXIMUM_DELIVERY_HISTORY_JOBS = "maximum_delivery_history_jobs"
    DATA_EVENT_SELECTOR_NOT_FOUND = "data_event_selector_not_found"


class TrailRequestError(Exception):
    def __init__(self, problem: Problem, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.parameter = parameter


class BucketProbe(Protocol):
    """Whether a bucket can take a trail's files: ``"ok"``, ``"missing"`` or ``"refused"``.

    May raise when the storage cannot be reached (the request then fails as unavailable).
    """

    def bucket_status(self, bucket: str) -> str: ...


@dataclass(frozen=True, slots=True)
class TrailParams:
    """CreateTrail/UpdateTrail parameters as sent (None: absent). 2017 adds RoleName and MnsTopicArn."""

    name: str
    oss_bucket_name: str | None = None
    oss_key_prefix: str | None = None
    oss_write_role_arn: str | None = None
    sls_project_arn: str | None = None
    sls_write_role_arn: str | None = None
    max_compute_project_arn: str | None = None
    max_compute_write_role_arn: str | None = None
    event_rw: str | None = None
    trail_region: str | None = None
    is_organization_trail: bool | None = None
    role_name: str | None = None
    mns_topic_arn: str | None = None


def _invalid(parameter: str, message: str) -> TrailRequestError:
    return TrailRequestError(Problem.INVALID_PARAMETER, message, parameter=parameter)


def check_trail_name(name: str) -> None:
    if not _TRAIL_NAME.fullmatch(name):
        raise TrailRequestError(
            Problem.INVALID_TRAIL_NAME,
            "The trail name must be 6 to 36 characters long, start with a lowercase letter and contain "
            "only lowercase letters, digits, hyphens (-) and underscores (_).",
        )


def parse_event_rw(value: str | None) -> EventRW:
    """EventRW as sent; absent means Write, as the API reference and DescribeTrails document."""
    if value is None or value == "":
        return EventRW.WRITE
    for rw in EventRW:
        if value == rw.value:
            return rw
    raise _invalid("EventRW", "EventRW must be Read, Write or All.")


def parse_trail_region(value: str | None) -> str:
    """``All`` or a comma-separated list of known region ids (sorted, without repeats)."""
    if value is None or value == "" or value == ALL_REGIONS:
        return ALL_REGIONS
    regions = [r.strip() for r in value.split(",")]
    unknown = [r for r in regions if r not in REGION_IDS]
    if unknown:
        raise _invalid(
            "TrailRegion",
            f"TrailRegion must be All or region ids from DescribeRegions; unknown: {unknown[0][:64]!r}.",
        )
    return ",".join(sorted(set(regions)))


def _check_arn(parameter: str, value: str, pattern: re.Pattern[str], shape: str) -> None:
    if not pattern.fullmatch(value):
        raise _invalid(parameter, f"{parameter} must look like {shape}.")


def _check_destinations(t: Trail) -> None:
    """The merged trail's destinations, by the documented rules, in the order a caller fixes them."""
    if t.mns_topic_arn:
        raise TrailRequestError(
            Problem.UNSUPPORTED_DESTINATION,
            "Trailhouse does not deliver to MNS topics (MnsTopicArn); deliver to OSS (OssBucketName) "
            "or SLS (SlsProjectArn) instead.",
        )
    if t.max_compute_project_arn:
        found = _ODPS_PROJECT_ARN.fullmatch(t.max_compute_project_arn)
        if not found or not found.group(1).startswith("actiontrail_"):
            raise _invalid(
                "MaxComputeProjectArn",
                "MaxComputeProjectArn must look like acs:odps:<region>:<uid>:project/actiontrail_<name>.",
            )
        raise TrailRequestError(
            Problem.UNSUPPORTED_DESTINATION,
            "Trailhouse does not deliver to MaxCompute (MaxComputeProjectArn); deliver to OSS "
            "(OssBucketName) or SLS (SlsProjectArn) instead.",
        )
    if not t.oss_bucket_name and not t.sls_project_arn:
        raise TrailRequestError(
            Problem.INVALID_DELIVERY_CONFIGURATION,
            "You must specify at least one SLS project (SlsProjectArn) or OSS bucket (OssBucketName).",
        )
    if t.oss_bucket_name and not _BUCKET_NAME.fullmatch(t.oss_bucket_name):
        raise TrailRequestError(
            Problem.INVALID_BUCKET_NAME,
            "The bucket name must be 3 to 63 characters long, start and end with a lowercase letter or a "
            "digit, and contain only lowercase letters, digits and hyphens (-).",
        )
    if t.oss_key_prefix:
        if not t.oss_bucket_name:
            raise TrailRequestError(
                Problem.INVALID_DELIVERY_CONFIGURATION, "OssKeyPrefix needs an OSS bucket (OssBucketName)."
            )
        if not _PREFIX.fullmatch(t.oss_key_prefix):
            raise TrailRequestError(
                Problem.INVALID_PREFIX,
                "The prefix must be 6 to 32 characters long, start with a letter and contain only letters, "
                "digits, hyphens (-), forward slashes (/) and underscores (_).",
            )
    if t.sls_project_arn:
        _check_arn(
            "SlsProjectArn", t.sls_project_arn, _SLS_PROJECT_ARN, "acs:log:<region>:<uid>:project/<name>"
        )
    for parameter, value in (
        ("OssWriteRoleArn", t.oss_write_role_arn),
        ("SlsWriteRoleArn", t.sls_write_role_arn),
        ("MaxComputeWriteRoleArn", t.max_compute_write_role_arn),
    ):
        if value:
            _check_arn(parameter, value, _ROLE_ARN, "acs:ram::<uid>:role/<name>")
    if t.role_name and not _ROLE_NAME.fullmatch(t.role_name):
        raise _invalid(
            "RoleName", "RoleName must be 1 to 64 letters, digits, periods, hyphens or underscores."
        )


def _probe_bucket(buckets: BucketProbe | None, bucket: str) -> None:
    if buckets is None:
        raise TrailRequestError(
            Problem.DESTINATION_UNAVAILABLE, "No object storage is configured for OSS delivery."
        )
    try:
        status = str(buckets.bucket_status(bucket))
    except Exception as exc:  # the storage is down or misconfigured: the caller may retry
        raise TrailRequestError(
            Problem.DESTINATION_UNAVAILABLE, f"The object storage cannot be reached: {type(exc).__name__}."
        ) from None
    if status == "missing":
        raise TrailRequestError(Problem.BUCKET_DOES_NOT_EXIST, f"The bucket {bucket} does not exist.")
    if status != "ok":
        raise TrailRequestError(
            Problem.INSUFFICIENT_BUCKET_POLICY, f"Trailhouse is not allowed to write to the bucket {bucket}."
        )


_CONFLICTS = {
    TrailConflict.NAME_TAKEN: (Problem.TRAIL_ALREADY_EXISTS, "A trail with this name already exists."),
    TrailConflict.NOT_FOUND: (Problem.TRAIL_NOT_FOUND, "The trail does not exist."),
    TrailConflict.REGION_FULL: (
        Problem.MAXIMUM_TRAILS,
        f"The number of trails in this region exceeds the upper limit ({MAX_TRAILS_PER_REGION}).",
    ),
    TrailConflict.ORGANIZATION_FULL: (
        Problem.MAXIMUM_ORGANIZATION_TRAILS,
        "Your account can create only one organization trail.",
    ),
    TrailConflict.BUCKET_TAKEN: (Problem.REPEAT_OSS_BUCKET, "The bucket is already used by another trail."),
}


def _refuse(conflict: TrailConflict) -> TrailRequestError:
    problem, message = _CONFLICTS[conflict]
    return TrailRequestError(problem, message)


def _text(value: str | None, current: str) -> str:
    """An optional string parameter applied to a stored value: absent keeps it, "" clears it."""
    return current if value is None else value


def _apply(base: Trail, p: TrailParams) -> Trail:
    return replace(
        base,
        oss_bucket_name=_text(p.oss_bucket_name, base.oss_bucket_name),
        oss_key_prefix=_text(p.oss_key_prefix, base.oss_key_prefix),
        oss_write_role_arn=_text(p.oss_write_role_arn, base.oss_write_role_arn),
        sls_project_arn=_text(p.sls_project_arn, base.sls_project_arn),
        sls_write_role_arn=_text(p.sls_write_role_arn, base.sls_write_role_arn),
        max_compute_project_arn=_text(p.max_compute_project_arn, base.max_compute_project_arn),
        max_compute_write_role_arn=_text(p.max_compute_write_role_arn, base.max_compute_write_role_arn),
        role_name=_text(p.role_name, base.role_name),
        mns_topic_arn=_text(p.mns_topic_arn, base.mns_topic_arn),
        event_rw=base.event_rw if p.event_rw is None else parse_event_rw(p.event_rw),
        trail_region=base.trail_region if p.trail_region is None else parse_trail_region(p.trail_region),
    )


def create_trail(
    store: TrailStore,
    buckets: BucketProbe | None,
    params: TrailParams,
    *,
    account_id: str,
    home_region: str,
    now_ms: int,
) -> Trail:
    """Check and store a new trail (Status Fresh: it delivers nothing until StartLogging)."""
    check_trail_name(params.name)
    organization: Organization | None = None
    if params.is_organization_trail:
        organization = store.organization_of(account_id)
        if organization is None or organization.management_account_id != account_id:
            raise TrailRequestError(
                Problem.NOT_ALLOW_ORGANIZATION_TRAIL,
                "Only the management account of an organization can create an organization trail; "
                "the operator makes one with `trailhouse org add-member`.",
            )
    fresh = Trail(
        account_id=account_id,
        name=params.name,
        home_region=home_region,
        trail_region=parse_trail_region(params.trail_region),
        event_rw=parse_event_rw(params.event_rw),
        status=TrailStatus.FRESH,
        is_organization_trail=organization is not None,
        organization_id=organization.organization_id if organization is not None else "",
        create_ms=now_ms,
        update_ms=now_ms,
    )
    trail = _apply(fresh, replace(params, event_rw=None, trail_region=None))
    _check_destinations(trail)
    if trail.oss_bucket_name:
        _probe_bucket(buckets, trail.oss_bucket_name)
        trail = replace(trail, oss_bucket_location=home_region)
    conflict = store.create_trail(
        trail, max_per_region=MAX_TRAILS_PER_REGION, max_organization=MAX_ORGANIZATION_TRAILS
    )
    if conflict is not None:
        raise _refuse(conflict)
    return trail


def get_trail(store: TrailStore, *, account_id: str, name: str) -> Trail:
    found = store.get_trail(account_id=account_id, name=name)
    if found is None:
        raise _refuse(TrailConflict.NOT_FOUND)
    return found


def update_trail(
    store: TrailStore, buckets: BucketProbe | None, params: TrailParams, *, account_id: str, now_ms: int
) -> Trail:
    """Change a trail's destinations and scope; its name, status and logging times stay."""
    current = get_trail(store, account_id=account_id, name=params.name)
    trail = replace(_apply(current, params), update_ms=now_ms)
    _check_destinations(trail)
    if params.oss_bucket_name:
        # The documentation asks that the bucket exist before the update: it is checked each time it is named.
        _probe_bucket(buckets, params.oss_bucket_name)
        trail = replace(trail, oss_bucket_location=current.oss_bucket_location or current.home_region)
    if not trail.oss_bucket_name:
        trail = replace(trail, oss_bucket_location="")
    conflict = store.update_trail(trail)
    if conflict is not None:
        raise _refuse(conflict)
    return trail


def delete_trail(store: TrailStore, *, account_id: str, name: str) -> None:
    if not store.delete_trail(account_id=account_id, name=name):
        raise _refuse(TrailConflict.NOT_FOUND)


def set_logging(store: TrailStore, *, account_id: str, name: str, logging: bool, now_ms: int) -> Trail:
    """StartLogging (Fresh/Disable → Enable) or StopLogging (Enable → Disable).

    Asking for the state a trail is already in changes nothing, so its logging times keep
    saying when it really started or stopped.
    """
    trail = get_trail(store, account_id=account_id, name=name)
    if logging == trail.is_logging:
        return trail
    changed = trail.with_status(TrailStatus.ENABLE if logging else TrailStatus.DISABLE, now_ms)
    conflict = store.update_trail(changed)
    if conflict is not None:
        raise _refuse(conflict)
    return changed


def describe_trails(
    store: TrailStore,
    *,
    account_id: str,
    home_region: str,
    names: Sequence[str] | None,
    include_shadow_trails: bool,
    include_organization_trail: bool,
) -> list[Trail]:
    """The account's trails (only ``names`` when given), then its organization's trails if asked.

    A trail whose home region is not this server's region is a shadow trail here: shown only
    with ``include_shadow_trails``. A member account sees its management account's organization
    trails only with ``include_organization_trail``.
    """
    wanted = set(names) if names is not None else None
    trails = list(store.list_trails(account_id=account_id))
    if include_organization_trail:
        organization = store.organization_of(account_id)
        if organization is not None and organization.management_account_id != account_id:
            trails += [
                t
                for t in store.list_trails(account_id=organization.management_account_id)
                if t.is_organization_trail
            ]
    return [
        t
        for t in trails
        if (wanted is None or t.name in wanted) and (include_shadow_trails or t.home_region == home_region)
    ]
