"""Wire handlers of the trail operations (2017-12-04 and 2020-07-06) and DescribeRegions.

Each reads the string parameters, calls service.trails, and answers with the keys of the SDK
models of its version (2017 has RoleName and MnsTopicArn where 2020 has the *WriteRoleArn and
MaxCompute fields). RequestId is added by the gateway. Everything is scoped to the calling
account; a service refusal becomes its ActionTrail code through ``raise_for``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....model.times import format_wire_time
from ....model.trail import Trail
from ....service import trails
from ....service.regions import describe_regions as region_list
from ....service.trails import Problem, TrailParams, TrailRequestError
from ...context import Services
from ...wire import plain_bool
from .. import errors
from ..call import Call

__all__ = [
    "create_trail",
    "delete_trail",
    "describe_regions",
    "describe_trails",
    "raise_for",
    "required",
    "start_logging",
    "stop_logging",
    "update_trail",
]

V2017 = "2017-12-04"
#: No documented parameter is longer; refusing longer values keeps them out of the store and logs.
MAX_PARAM_LENGTH = 1024

_ERRORS: dict[Problem, type[errors.ApiError]] = {
    Problem.INVALID_TRAIL_NAME: errors.InvalidTrailNameException,
    Problem.INVALID_BUCKET_NAME: errors.InvalidBucketNameException,
    Problem.INVALID_PREFIX: errors.InvalidPrefixException,
    Problem.INVALID_DELIVERY_CONFIGURATION: errors.InvalidDeliveryConfigurationException,
    Problem.UNSUPPORTED_DESTINATION: errors.InvalidDeliveryConfigurationException,
    Problem.TRAIL_ALREADY_EXISTS: errors.TrailAlreadyExistsException,
    Problem.TRAIL_NOT_FOUND: errors.TrailNotFoundException,
    Problem.REPEAT_OSS_BUCKET: errors.RepeatOssBucket,
    Problem.MAXIMUM_TRAILS: errors.MaximumNumberOfTrailsExceededException,
    Problem.MAXIMUM_ORGANIZATION_TRAILS: errors.MaximumNumberOfOrganizationTrailExceeded,
    Problem.NOT_ALLOW_ORGANIZATION_TRAIL: errors.NotAllowCreateOrganizationTrail,
    Problem.BUCKET_DOES_NOT_EXIST: errors.BucketDoesNotExistException,
    Problem.INSUFFICIENT_BUCKET_POLICY: errors.InsufficientBucketPolicyException,
    Problem.DESTINATION_UNAVAILABLE: errors.ServiceUnavailable,
    Problem.DELIVERY_HISTORY_JOB_NOT_FOUND: errors.DeliveryHistoryJobNotFound,
    Problem.MAXIMUM_DELIVERY_HISTORY_JOBS: errors.MaximumNumberOfDeliveryHistoryJobsExceeded,
    Problem.DATA_EVENT_SELECTOR_NOT_FOUND: errors.DataEventSelectorNotFound,
}


def raise_for(exc: TrailRequestError) -> errors.ApiError:
    """The wire error of a service refusal: the documented code, with the service's exact reason."""
    if exc.problem is Problem.INVALID_PARAMETER:
        return errors.InvalidQueryParameter.because(exc.message)
    return _ERRORS[exc.problem](exc.message)


def optional(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > MAX_PARAM_LENGTH:
        raise errors.InvalidQueryParameter.because(f"{name} is longer than {MAX_PARAM_LENGTH} characters.")
    return value


def required(params: Mapping[str, str], name: str) -> str:
    value = optional(params, name)
    if value is None or value == "":
        raise errors.Missing(name)
    return value


def flag(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = plain_bool(raw)
    if value is None:
        raise errors.InvalidQueryParameter.because(f"{name} must be true or false.")
    return value


def wire_time(ms: int | None) -> str:
    return "" if ms is None else format_wire_time(ms)


def _params(call: Call, *, create: bool) -> TrailParams:
    p = call.params
    v2017 = call.version == V2017
    return TrailParams(
        name=required(p, "Name"),
        oss_bucket_name=optional(p, "OssBucketName"),
        oss_key_prefix=optional(p, "OssKeyPrefix"),
        oss_write_role_arn=None if v2017 else optional(p, "OssWriteRoleArn"),
        sls_project_arn=optional(p, "SlsProjectArn"),
        sls_write_role_arn=optional(p, "SlsWriteRoleArn"),
        max_compute_project_arn=None if v2017 else optional(p, "MaxComputeProjectArn"),
        max_compute_write_role_arn=None if v2017 else optional(p, "MaxComputeWriteRoleArn"),
        event_rw=optional(p, "EventRW"),
        trail_region=optional(p, "TrailRegion"),
        is_organization_trail=flag(p, "IsOrganizationTrail") if create else None,
        role_name=optional(p, "RoleName") if v2017 else None,
        mns_topic_arn=optional(p, "MnsTopicArn") if v2017 else None,
    )


def _echo(trail: Trail, version: str) -> dict[str, Any]:
    """CreateTrail/UpdateTrail's response: the trail's configuration as stored."""
    body: dict[str, Any] = {
        "Name": trail.name,
        "HomeRegion": trail.home_region,
        "OssBucketName": trail.oss_bucket_name,
        "OssKeyPrefix": trail.oss_key_prefix,
    }
    if version == V2017:
        body |= {"RoleName": trail.role_name, "MnsTopicArn": trail.mns_topic_arn}
    else:
        body |= {
            "OssWriteRoleArn": trail.oss_write_role_arn,
            "MaxComputeProjectArn": trail.max_compute_project_arn,
            "MaxComputeWriteRoleArn": trail.max_compute_write_role_arn,
        }
    body |= {
        "SlsProjectArn": trail.sls_project_arn,
        "SlsWriteRoleArn": trail.sls_write_role_arn,
        "EventRW": trail.event_rw.value,
        "TrailRegion": trail.trail_region,
    }
    return body


def describe(trail: Trail, version: str) -> dict[str, Any]:
    """One entry of DescribeTrails' TrailList, every field of the version's SDK model."""
    if version == V2017:
        return {
            "Name": trail.name,
            "HomeRegion": trail.home_region,
            "TrailRegion": trail.trail_region,
            "Status": trail.status.value,
            "EventRW": trail.event_rw.value,
            "OssBucketName": trail.oss_bucket_name,
            "OssKeyPrefix": trail.oss_key_prefix,
            "RoleName": trail.role_name,
            "SlsProjectArn": trail.sls_project_arn,
            "SlsWriteRoleArn": trail.sls_write_role_arn,
            "MnsTopicArn": trail.mns_topic_arn,
            "IsOrganizationTrail": trail.is_organization_trail,
            "CreateTime": wire_time(trail.create_ms),
            "UpdateTime": wire_time(trail.update_ms),
            "StartLoggingTime": wire_time(trail.start_logging_ms),
            "StopLoggingTime": wire_time(trail.stop_logging_ms),
        }
    return {
        "Name": trail.name,
        "HomeRegion": trail.home_region,
        "Region": trail.home_region,
        "TrailRegion": trail.trail_region,
        "TrailArn": trail.trail_arn,
        "Status": trail.status.value,
        "EventRW": trail.event_rw.value,
        "IsOrganizationTrail": trail.is_organization_trail,
        "OrganizationId": trail.organization_id,
        "OssBucketName": trail.oss_bucket_name,
        "OssBucketLocation": trail.oss_bucket_location,
        "OssKeyPrefix": trail.oss_key_prefix,
        "OssWriteRoleArn": trail.oss_write_role_arn,
        "SlsProjectArn": trail.sls_project_arn,
        "SlsWriteRoleArn": trail.sls_write_role_arn,
        "MaxComputeProjectArn": trail.max_compute_project_arn,
        "MaxComputeWriteRoleArn": trail.max_compute_write_role_arn,
        "CreateTime": wire_time(trail.create_ms),
        "UpdateTime": wire_time(trail.update_ms),
        "StartLoggingTime": wire_time(trail.start_logging_ms),
        "StopLoggingTime": wire_time(trail.stop_logging_ms),
    }


def create_trail(call: Call, svc: Services) -> dict[str, Any]:
    params = _params(call, create=True)
    try:
        trail = trails.create_trail(
            svc.store,
            svc.buckets,
            params,
            account_id=call.account_id,
            home_region=svc.settings.region,
            now_ms=call.now_ms,
        )
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return _echo(trail, call.version)


def update_trail(call: Call, svc: Services) -> dict[str, Any]:
    params = _params(call, create=False)
    try:
        trail = trails.update_trail(
            svc.store, svc.buckets, params, account_id=call.account_id, now_ms=call.now_ms
        )
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return _echo(trail, call.version)


def delete_trail(call: Call, svc: Services) -> dict[str, Any]:
    name = required(call.params, "Name")
    try:
        trails.delete_trail(svc.store, account_id=call.account_id, name=name)
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {}


def _logging(call: Call, svc: Services, logging: bool) -> dict[str, Any]:
    name = required(call.params, "Name")
    try:
        trails.set_logging(
            svc.store, account_id=call.account_id, name=name, logging=logging, now_ms=call.now_ms
        )
    except TrailRequestError as exc:
        raise raise_for(exc) from None
    return {}


def start_logging(call: Call, svc: Services) -> dict[str, Any]:
    return _logging(call, svc, True)


def stop_logging(call: Call, svc: Services) -> dict[str, Any]:
    return _logging(call, svc, False)


def describe_trails(call: Call, svc: Services) -> dict[str, Any]:
    p = call.params
    raw_names = optional(p, "NameList")
    names = [n.strip() for n in raw_names.split(",") if n.strip()] if raw_names else None
    found = trails.describe_trails(
        svc.store,
        account_id=call.account_id,
        home_region=svc.settings.region,
        names=names,
        include_shadow_trails=bool(flag(p, "IncludeShadowTrails")),
        include_organization_trail=bool(flag(p, "IncludeOrganizationTrail")),
    )
    return {"TrailList": [describe(t, call.version) for t in found]}


def describe_regions(call: Call, svc: Services) -> dict[str, Any]:
    if call.version == V2017:
        return {"Regions": {"Region": [{"RegionId": r} for r, _, _ in region_list(None)]}}
    language = optional(call.params, "AcceptLanguage")
    regions = region_list(language)
    return {
        "Regions": {
            "Region": [
                {"RegionId": region_id, "LocalName": name, "RegionEndpoint": endpoint}
                for region_id, name, endpoint in regions
            ]
        }
    }
