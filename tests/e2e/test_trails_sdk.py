"""The trail operations end to end: the official SDKs' generated methods against a real server, on
both backends. Every operation of both versions where the SDK has it, every documented error code
with its HTTP status, DescribeTrails' fields as the SDK models name them.

OSS buckets are the default directory of buckets (``<data dir>/oss/<bucket>``); a bucket that
refuses writes is a real moto S3 server with authentication on (``test_insufficient_bucket_policy``).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, free_port, run_server
from trailhouse.settings import Settings

from .conftest import (
    SDK_VARIANTS,
    V2017,
    V2020,
    CoreSdkClient,
    SdkError,
    SdkVariant,
    TeaSdkClient,
    make_sdk_client,
    new_access_key,
)

VARIANTS = {v.id: v for v in SDK_VARIANTS}
#: One client per SDK family and version (the signature variants are covered by test_sdk.py).
MAIN = [VARIANTS["tea2017-v3"], VARIANTS["tea2020-v3"], VARIANTS["core2020-v1"]]
V2020_ONLY = [VARIANTS["tea2020-v3"], VARIANTS["core2020-v1"]]

FIELDS_2020 = {
    "Name", "HomeRegion", "Region", "TrailRegion", "TrailArn", "Status", "EventRW", "IsOrganizationTrail",
    "OrganizationId", "OssBucketName", "OssBucketLocation", "OssKeyPrefix", "OssWriteRoleArn",
    "SlsProjectArn", "SlsWriteRoleArn", "MaxComputeProjectArn", "MaxComputeWriteRoleArn",
    "CreateTime", "UpdateTime", "StartLoggingTime", "StopLoggingTime",
}  # fmt: skip
FIELDS_2017 = {
    "Name", "HomeRegion", "TrailRegion", "Status", "EventRW", "OssBucketName", "OssKeyPrefix", "RoleName",
    "SlsProjectArn", "SlsWriteRoleArn", "MnsTopicArn", "IsOrganizationTrail",
    "CreateTime", "UpdateTime", "StartLoggingTime", "StopLoggingTime",
}  # fmt: skip
WIRE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class TrailApi:
    """Calls an operation through the SDK's generated method (tea) or request class (core)."""

    def __init__(self, sdk: Any, account_id: str) -> None:
        self.sdk = sdk
        self.account_id = account_id
        self.variant: SdkVariant = sdk.variant

    def has(self, action: str) -> bool:
        if isinstance(self.sdk, CoreSdkClient):
            return (
                importlib.util.find_spec(f"aliyunsdkactiontrail.request.v20200706.{action}Request")
                is not None
            )
        return hasattr(self.sdk.client, _snake(action))

    def __call__(self, action: str, **params: Any) -> dict[str, Any]:
        if isinstance(self.sdk, TeaSdkClient):
            models = importlib.import_module(
                "alibabacloud_actiontrail20171204.models"
                if self.variant.version == V2017
                else "alibabacloud_actiontrail20200706.models"
            )
            method = getattr(self.sdk.client, _snake(action))
            model = getattr(models, f"{action}Request", None)
            response = method(model().from_map(params)) if model is not None else method()
            assert getattr(response, "status_code", 200) == 200
            body: dict[str, Any] = response.body.to_map()
            assert body["RequestId"] == response.headers["x-acs-request-id"]
            return body
        module = importlib.import_module(f"aliyunsdkactiontrail.request.v20200706.{action}Request")
        request = getattr(module, f"{action}Request")()
        for name, value in params.items():
            # Parameters newer than the request class (MaxComputeProjectArn, OssWriteRoleArn) go
            # in as the class's own set_ methods would put them: query parameters.
            setter = getattr(request, f"set_{name}", None)
            setter(value) if setter is not None else request.add_query_param(name, value)
        result: dict[str, Any] = self.sdk._send(request)
        return result

    def error(self, action: str, **params: Any) -> SdkError:
        error: SdkError = self.sdk.expect_error(lambda: self(action, **params))
        return error


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower().replace("r_w", "rw")


@pytest.fixture(scope="module")
def trail_server(e2e_backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        db_url=e2e_backend_url,
        port=free_port(),
        data_dir=str(tmp_path_factory.mktemp("trail-data")),
        throttle_lookup_events=0,
        throttle_access_key_usage=0,
        throttle_trails=0,
    )
    with run_server(settings) as server:
        yield server
    _close_sdk_sessions(server.port)


def _close_sdk_sessions(port: int) -> None:
    """The tea SDKs keep one requests session per endpoint for the life of the process; the
    connections to a stopped server would otherwise be closed by the collector, which pytest
    reports as a ResourceWarning."""
    from darabonba.core import DaraCore

    for key in [k for k in DaraCore._sessions if f":{port}:" in k]:
        DaraCore._sessions.pop(key).close()


def _account() -> str:
    return str(1_000_000_000_000_000 + uuid.uuid4().int % 10**15)


def _bucket(server: LiveServer, *, create: bool = True) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    if create:
        assert server.settings.data_dir is not None
        (Path(server.settings.data_dir) / "oss" / name).mkdir(parents=True)
    return name


@pytest.fixture
def api(trail_server: LiveServer) -> Callable[..., TrailApi]:
    def make(variant: SdkVariant, account_id: str | None = None) -> TrailApi:
        account = account_id or _account()
        key = new_access_key(trail_server, account)
        return TrailApi(make_sdk_client(variant, trail_server, key.key.access_key_id, key.secret), account)

    return make


def _names(api: TrailApi, **params: Any) -> list[str]:
    return [t["Name"] for t in api("DescribeTrails", **params).get("TrailList") or []]


# -- the life of a trail --------------------------------------------------------------------------


@pytest.mark.parametrize("variant", SDK_VARIANTS, ids=[v.id for v in SDK_VARIANTS])
def test_a_trail_from_creation_to_deletion(
    variant: SdkVariant, api: Callable[..., TrailApi], trail_server: LiveServer
) -> None:
    client = api(variant)
    bucket = _bucket(trail_server)
    created = client(
        "CreateTrail",
        Name="audit-trail",
        OssBucketName=bucket,
        OssKeyPrefix="audit/logs",
        EventRW="All",
        TrailRegion="cn-shanghai,cn-hangzhou",
        SlsProjectArn="acs:log:cn-hangzhou:1234567890123456:project/audit",
    )
    assert created["Name"] == "audit-trail" and created["HomeRegion"] == "cn-hangzhou"
    assert created["OssBucketName"] == bucket and created["OssKeyPrefix"] == "audit/logs"
    assert created["EventRW"] == "All" and created["TrailRegion"] == "cn-hangzhou,cn-shanghai"

    (trail,) = client("DescribeTrails")["TrailList"]
    assert set(trail) == (FIELDS_2017 if variant.version == V2017 else FIELDS_2020)
    assert trail["Status"] == "Fresh" and trail["IsOrganizationTrail"] is False
    assert WIRE_TIME.match(trail["CreateTime"]) and trail["UpdateTime"] == trail["CreateTime"]
    assert trail["StartLoggingTime"] == "" and trail["StopLoggingTime"] == ""
    if variant.version == V2020:
        assert trail["TrailArn"] == f"acs:actiontrail:cn-hangzhou:{client.account_id}:trail/audit-trail"
        assert trail["OssBucketLocation"] == "cn-hangzhou" and trail["Region"] == "cn-hangzhou"

    client("StartLogging", Name="audit-trail")
    (trail,) = client("DescribeTrails", NameList="audit-trail")["TrailList"]
    assert trail["Status"] == "Enable" and WIRE_TIME.match(trail["StartLoggingTime"])
    client("StopLogging", Name="audit-trail")
    (trail,) = client("DescribeTrails")["TrailList"]
    assert trail["Status"] == "Disable" and WIRE_TIME.match(trail["StopLoggingTime"])
    client("StartLogging", Name="audit-trail")
    assert client("DescribeTrails")["TrailList"][0]["Status"] == "Enable"

    updated = client("UpdateTrail", Name="audit-trail", EventRW="Read", OssKeyPrefix="other/prefix")
    assert updated["EventRW"] == "Read" and updated["OssKeyPrefix"] == "other/prefix"
    assert updated["OssBucketName"] == bucket and updated["TrailRegion"] == "cn-hangzhou,cn-shanghai"
    (trail,) = client("DescribeTrails")["TrailList"]
    assert trail["EventRW"] == "Read" and trail["Status"] == "Enable"

    assert _names(client, NameList="nope-trail,other-one") == []
    client("DeleteTrail", Name="audit-trail")
    assert _names(client) == []
    err = client.error("DeleteTrail", Name="audit-trail")
    assert (err.code, err.status) == ("TrailNotFoundException", 404)


@pytest.mark.parametrize("variant", MAIN, ids=[v.id for v in MAIN])
def test_trails_are_scoped_to_the_calling_account(
    variant: SdkVariant, api: Callable[..., TrailApi], trail_server: LiveServer
) -> None:
    owner, stranger = api(variant), api(variant)
    owner("CreateTrail", Name="private-trail", OssBucketName=_bucket(trail_server))
    assert _names(owner) == ["private-trail"]
    assert _names(stranger) == [] and _names(stranger, NameList="private-trail") == []
    for action in ("DeleteTrail", "StartLogging", "StopLogging", "UpdateTrail"):
        err = stranger.error(action, Name="private-trail")
        assert (err.code, err.status) == ("TrailNotFoundException", 404), action
    # The same name is free in another account.
    stranger("CreateTrail", Name="private-trail", OssBucketName=_bucket(trail_server))
    assert _names(owner) == ["private-trail"]


def test_describe_regions_in_both_versions(api: Callable[..., TrailApi]) -> None:
    v2017 = api(VARIANTS["tea2017-v3"])("DescribeRegions")["Regions"]["Region"]
    assert {"RegionId": "cn-hangzhou"} in v2017 and all(set(r) == {"RegionId"} for r in v2017)
    v2020 = api(VARIANTS["tea2020-v3"])
    english = {r["RegionId"]: r for r in v2020("DescribeRegions")["Regions"]["Region"]}
    assert english["ap-southeast-1"] == {
        "RegionId": "ap-southeast-1",
        "LocalName": "Singapore",
        "RegionEndpoint": "actiontrail.ap-southeast-1.aliyuncs.com",
    }
    chinese = v2020("DescribeRegions", AcceptLanguage="zh-CN")["Regions"]["Region"]
    assert {
        "RegionId": "cn-hangzhou",
        "LocalName": "华东1（杭州）",
        "RegionEndpoint": "actiontrail.cn-hangzhou.aliyuncs.com",
    } in chinese
    core = api(VARIANTS["core2020-v1"])("DescribeRegions")["Regions"]["Region"]
    assert [r["RegionId"] for r in core] == list(english)


# -- every error code ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", MAIN, ids=[v.id for v in MAIN])
def test_every_documented_create_error(
    variant: SdkVariant, api: Callable[..., TrailApi], trail_server: LiveServer
) -> None:
    client = api(variant)
    bucket = _bucket(trail_server)

    def expect(code: str, status: int, **params: Any) -> SdkError:
        err = client.error("CreateTrail", **params)
        assert (err.code, err.status) == (code, status), (params, err.message)
        return err

    expect("MissingName", 400, OssBucketName=bucket)
    expect("InvalidTrailNameException", 400, Name="Bad-Name", OssBucketName=bucket)
    expect("InvalidTrailNameException", 400, Name="short", OssBucketName=bucket)
    expect("InvalidTrailNameException", 400, Name="9starts-with-digit", OssBucketName=bucket)
    expect("InvalidTrailNameException", 400, Name="a" * 37, OssBucketName=bucket)
    expect("InvalidDeliveryConfigurationException", 400, Name="no-destination")
    expect("InvalidBucketNameException", 400, Name="bad-bucket", OssBucketName="Upper_Case")
    expect("InvalidPrefixException", 400, Name="bad-prefix", OssBucketName=bucket, OssKeyPrefix="1starts")
    expect("InvalidPrefixException", 400, Name="bad-prefix", OssBucketName=bucket, OssKeyPrefix="short")
    expect("InvalidPrefixException", 400, Name="bad-prefix", OssBucketName=bucket, OssKeyPrefix="has space x")
    err = expect("InvalidQueryParameter", 400, Name="bad-rw-trail", OssBucketName=bucket, EventRW="Both")
    assert "EventRW" in err.message
    err = expect("InvalidQueryParameter", 400, Name="bad-region", OssBucketName=bucket, TrailRegion="mars-1")
    assert "TrailRegion" in err.message
    expect("InvalidQueryParameter", 400, Name="bad-sls-arn", SlsProjectArn="project/audit")
    expect(
        "BucketDoesNotExistException",
        404,
        Name="no-bucket",
        OssBucketName=_bucket(trail_server, create=False),
    )
    if variant.version == V2017:
        err = expect(
            "InvalidDeliveryConfigurationException",
            400,
            Name="mns-trail",
            MnsTopicArn="acs:mns:cn-hangzhou:1234567890123456:/topics/audit",
        )
        assert "MNS" in err.message
    else:
        err = expect(
            "InvalidDeliveryConfigurationException",
            400,
            Name="odps-trail",
            MaxComputeProjectArn="acs:odps:cn-hangzhou:1234567890123456:project/actiontrail_audit",
        )
        assert "MaxCompute" in err.message
        expect(
            "InvalidQueryParameter",
            400,
            Name="odps-trail",
            MaxComputeProjectArn="acs:odps:cn-hangzhou:1234567890123456:project/audit",
        )
        expect("InvalidQueryParameter", 400, Name="bad-role", OssBucketName=bucket, OssWriteRoleArn="role")

    client("CreateTrail", Name="first-trail", OssBucketName=bucket)
    expect("TrailAlreadyExistsException", 400, Name="first-trail", OssBucketName=_bucket(trail_server))
    expect("RepeatOssBucket", 400, Name="second-trail", OssBucketName=bucket)
    for i in range(4):
        client("CreateTrail", Name=f"sls-trail-{i}", SlsProjectArn="acs:log:cn-hangzhou:1:project/audit")
    err = expect(
        "MaximumNumberOfTrailsExceededException",
        403,
        Name="sixth-trail",
        SlsProjectArn="acs:log:cn-hangzhou:1:project/audit-6",
    )
    assert "(5)" in err.message
    assert len(_names(client)) == 5
    expect(
        "NotAllowCreateOrganizationTrail",
        400,
        Name="org-trail",
        OssBucketName=_bucket(trail_server),
        IsOrganizationTrail=True,
    )


@pytest.mark.parametrize("variant", MAIN, ids=[v.id for v in MAIN])
def test_update_errors(variant: SdkVariant, api: Callable[..., TrailApi], trail_server: LiveServer) -> None:
    client = api(variant)
    bucket, other = _bucket(trail_server), _bucket(trail_server)
    client("CreateTrail", Name="update-me", OssBucketName=bucket)
    client("CreateTrail", Name="bucket-owner", OssBucketName=other)

    def expect(code: str, status: int, **params: Any) -> None:
        err = client.error("UpdateTrail", **params)
        assert (err.code, err.status) == (code, status), (params, err.message)

    expect("MissingName", 400, EventRW="Read")
    expect("TrailNotFoundException", 404, Name="missing-trail", EventRW="Read")
    expect("RepeatOssBucket", 400, Name="update-me", OssBucketName=other)
    expect(
        "BucketDoesNotExistException",
        404,
        Name="update-me",
        OssBucketName=_bucket(trail_server, create=False),
    )
    expect("InvalidPrefixException", 400, Name="update-me", OssKeyPrefix="-bad-prefix")
    expect("InvalidQueryParameter", 400, Name="update-me", EventRW="write")
    expect("InvalidDeliveryConfigurationException", 400, Name="update-me", OssBucketName="")
    # Nothing above changed the trail.
    (trail,) = client("DescribeTrails", NameList="update-me")["TrailList"]
    assert trail["OssBucketName"] == bucket and trail["EventRW"] == "Write" and trail["OssKeyPrefix"] == ""
    for action in ("StartLogging", "StopLogging", "DeleteTrail"):
        err = client.error(action)
        assert (err.code, err.status) == ("MissingName", 400)


def test_organization_trails(api: Callable[..., TrailApi], trail_server: LiveServer) -> None:
    variant = VARIANTS["tea2020-v3"]
    management, member = _account(), _account()
    organization = trail_server.store.add_organization_member(
        management_account_id=management, member_account_id=member, organization_id="rd-e2e01", now_ms=1
    )
    boss, staff = api(variant, management), api(variant, member)
    boss("CreateTrail", Name="org-trail", OssBucketName=_bucket(trail_server), IsOrganizationTrail=True)
    err = boss.error(
        "CreateTrail", Name="org-trail-2", OssBucketName=_bucket(trail_server), IsOrganizationTrail=True
    )
    assert (err.code, err.status) == ("MaximumNumberOfOrganizationTrailExceeded", 400)
    (trail,) = boss("DescribeTrails")["TrailList"]
    assert trail["IsOrganizationTrail"] is True and trail["OrganizationId"] == organization.organization_id
    # A member sees its organization's trail only when it asks for it, and cannot change it.
    assert _names(staff) == []
    (seen,) = staff("DescribeTrails", IncludeOrganizationTrail=True)["TrailList"]
    assert seen["Name"] == "org-trail" and seen["TrailArn"] == trail["TrailArn"]
    err = staff.error("DeleteTrail", Name="org-trail")
    assert (err.code, err.status) == ("TrailNotFoundException", 404)
    # A member account is not a management account.
    err = staff.error(
        "CreateTrail", Name="member-org", OssBucketName=_bucket(trail_server), IsOrganizationTrail=True
    )
    assert (err.code, err.status) == ("NotAllowCreateOrganizationTrail", 400)
    core = api(VARIANTS["core2020-v1"], member)
    assert [t["Name"] for t in core("DescribeTrails", IncludeOrganizationTrail=True)["TrailList"]] == [
        "org-trail"
    ]


def test_shadow_trails_are_those_of_another_home_region(
    api: Callable[..., TrailApi], trail_server: LiveServer
) -> None:
    client = api(VARIANTS["tea2020-v3"])
    client("CreateTrail", Name="home-trail", OssBucketName=_bucket(trail_server))
    (home,) = trail_server.store.list_trails(account_id=client.account_id)
    elsewhere = replace(
        home,
        name="away-trail",
        home_region="cn-beijing",
        oss_bucket_name="",
        sls_project_arn="acs:log:cn-beijing:1:project/away",
    )
    assert trail_server.store.create_trail(elsewhere, max_per_region=5, max_organization=1) is None
    assert _names(client) == ["home-trail"]
    assert _names(client, IncludeShadowTrails=True) == ["away-trail", "home-trail"]


# -- a bucket that refuses us -------------------------------------------------------------------------


@pytest.fixture
def refusing_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real moto S3 server with authentication on from the first request: our credentials are
    unknown to it, so every bucket answers 403 (as a bucket policy denying ActionTrail would)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        from tests.delivery.conftest import _wait_port

        _wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_insufficient_bucket_policy(
    refusing_s3: str, server_factory: Callable[..., LiveServer], backend_url: str
) -> None:
    server = server_factory(db_url=backend_url, oss_endpoint=refusing_s3, throttle_trails=0)
    try:
        for variant in MAIN:
            key = new_access_key(server, _account())
            client = TrailApi(
                make_sdk_client(variant, server, key.key.access_key_id, key.secret), key.key.account_id
            )
            err = client.error("CreateTrail", Name="denied-trail", OssBucketName="some-bucket")
            assert (err.code, err.status) == ("InsufficientBucketPolicyException", 403), variant.id
            # An SLS-only trail names no bucket and is not refused.
            client("CreateTrail", Name="sls-trail", SlsProjectArn="acs:log:cn-hangzhou:1:project/audit")
            err = client.error("UpdateTrail", Name="sls-trail", OssBucketName="some-bucket")
            assert (err.code, err.status) == ("InsufficientBucketPolicyException", 403), variant.id
    finally:
        _close_sdk_sessions(server.port)


# -- 2020-07-06: delivery-history jobs, data event selectors, global events region ----------------


@pytest.mark.parametrize("variant", V2020_ONLY, ids=[v.id for v in V2020_ONLY])
def test_delivery_history_jobs(
    variant: SdkVariant, api: Callable[..., TrailApi], trail_server: LiveServer
) -> None:
    client, stranger = api(variant), api(variant)
    err = client.error("CreateDeliveryHistoryJob", TrailName="no-such-trail")
    assert (err.code, err.status) == ("TrailNotFoundException", 404)
    err = client.error("CreateDeliveryHistoryJob")
    assert (err.code, err.status) == ("MissingTrailName", 400)
    client("CreateTrail", Name="backfilled", SlsProjectArn="acs:log:cn-hangzhou:1:project/audit")
    job_id = client("CreateDeliveryHistoryJob", TrailName="backfilled", ClientToken="token-1")["JobId"]
    assert isinstance(job_id, int) and job_id > 0
    # The same ClientToken is the same job; another job while one is open is refused.
    assert (
        client("CreateDeliveryHistoryJob", TrailName="backfilled", ClientToken="token-1")["JobId"] == job_id
    )
    err = client.error("CreateDeliveryHistoryJob", TrailName="backfilled", ClientToken="token-2")
    assert (err.code, err.status) == ("MaximumNumberOfDeliveryHistoryJobsExceeded", 403)

    job = client("GetDeliveryHistoryJob", JobId=job_id)
    assert job["JobId"] == job_id and job["TrailName"] == "backfilled" and job["JobStatus"] == 0
    assert job["HomeRegion"] == "cn-hangzhou" and job["Status"] == [{"Region": "cn-hangzhou", "Status": 0}]
    for field in ("StartTime", "EndTime", "CreatedTime", "UpdatedTime"):
        assert WIRE_TIME.match(job[field]), field
    assert job["EndTime"] == job["CreatedTime"] and job["StartTime"] < job["EndTime"]
    (stored,) = [j for j in trail_server.store.list_open_history_jobs() if j.job_id == job_id]
    assert stored.window_end_ms - stored.window_start_ms == 90 * 86_400_000

    listed = client("ListDeliveryHistoryJobs")
    assert listed["TotalCount"] == 1 and listed["PageNumber"] == 1 and listed["PageSize"] == 20
    assert [j["JobId"] for j in listed["DeliveryHistoryJobs"]] == [job_id]
    assert stranger("ListDeliveryHistoryJobs")["TotalCount"] == 0
    err = stranger.error("GetDeliveryHistoryJob", JobId=job_id)
    assert (err.code, err.status) == ("DeliveryHistoryJobNotFound", 404)
    err = client.error("ListDeliveryHistoryJobs", PageSize=101)
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)
    err = client.error("ListDeliveryHistoryJobs", PageNumber=0)
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)

    err = stranger.error("DeleteDeliveryHistoryJob", JobId=job_id)
    assert (err.code, err.status) == ("DeliveryHistoryJobNotFound", 404)
    client("DeleteDeliveryHistoryJob", JobId=job_id)
    err = client.error("GetDeliveryHistoryJob", JobId=job_id)
    assert (err.code, err.status) == ("DeliveryHistoryJobNotFound", 404)
    # Once it is gone, a new job may start.
    assert client("CreateDeliveryHistoryJob", TrailName="backfilled")["JobId"] > job_id


def test_data_event_selectors_and_services(api: Callable[..., TrailApi], trail_server: LiveServer) -> None:
    client = api(VARIANTS["tea2020-v3"])
    selectors = '[{"ServiceName":"OSS"}]'
    err = client.error("PutDataEventSelector", TrailName="data-trail", EventSelectors=selectors)
    assert (err.code, err.status) == ("TrailNotFoundException", 404)
    client("CreateTrail", Name="data-trail", SlsProjectArn="acs:log:cn-hangzhou:1:project/audit")
    err = client.error("GetDataEventSelector", TrailName="data-trail")
    assert (err.code, err.status) == ("DataEventSelectorNotFound", 404)
    for bad in ("not json", "[]", '[{"ServiceName":"Ecs"}]', '{"ServiceName":"OSS"}', "[1]"):
        err = client.error("PutDataEventSelector", TrailName="data-trail", EventSelectors=bad)
        assert (err.code, err.status) == ("InvalidQueryParameter", 400), bad
    err = client.error("PutDataEventSelector", TrailName="data-trail")
    assert (err.code, err.status) == ("MissingEventSelectors", 400)

    put = client("PutDataEventSelector", TrailName="data-trail", EventSelectors=selectors)
    arn = f"acs:actiontrail:cn-hangzhou:{client.account_id}:trail/data-trail"
    assert put["DataEventSelectors"] == selectors and put["TrailArn"] == arn
    got = client("GetDataEventSelector", TrailName="data-trail")
    assert (
        got["DataEventSelectors"] == selectors and got["IsTrailAllRegion"] is True and got["TrailArn"] == arn
    )
    (config,) = got["SlsDeliveryConfigs"]
    assert (
        config["RegionSlsProjectArn"] == "acs:log:cn-hangzhou:1:project/audit"
        and config["TrailRegion"] == "All"
    )

    client(
        "PutDataEventSelector",
        TrailName="data-trail",
        EventSelectors=selectors,
        IsTrailAllRegion=False,
        TrailRegionIds="cn-shanghai,cn-hangzhou",
    )
    got = client("GetDataEventSelector", TrailName="data-trail")
    assert got["IsTrailAllRegion"] is False
    assert [c["TrailRegion"] for c in got["SlsDeliveryConfigs"]] == ["cn-hangzhou", "cn-shanghai"]
    err = client.error(
        "PutDataEventSelector", TrailName="data-trail", EventSelectors=selectors, TrailRegionIds="x-1"
    )
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)

    client("CreateTrail", Name="data-trail-2", OssBucketName=_bucket(trail_server))
    client("PutDataEventSelector", TrailName="data-trail-2", EventSelectors=selectors)
    first = client("ListDataEventSelectors", MaxResults=1)["Data"]
    assert [i["TrailName"] for i in first["DataEventSelectorInfos"]] == ["data-trail"] and first[
        "MaxResults"
    ] == 1
    second = client("ListDataEventSelectors", MaxResults=1, NextToken=first["NextToken"])["Data"]
    (info,) = second["DataEventSelectorInfos"]
    assert (
        info["TrailName"] == "data-trail-2" and info["SlsDeliveryConfigs"] == [] and "NextToken" not in second
    )
    err = api(VARIANTS["tea2020-v3"]).error("ListDataEventSelectors", NextToken=first["NextToken"])
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)  # another account's token

    services = client("ListDataEventServices")["Data"]["ServiceInfos"]
    assert [s["ServiceName"] for s in services] == ["OSS"] and "GetObject" in services[0]["EventNames"]

    client("DeleteDataEventSelector", TrailName="data-trail")
    err = client.error("DeleteDataEventSelector", TrailName="data-trail")
    assert (err.code, err.status) == ("DataEventSelectorNotFound", 404)
    client("DeleteTrail", Name="data-trail-2")
    assert client("ListDataEventSelectors")["Data"]["DataEventSelectorInfos"] == []


def test_global_events_storage_region(api: Callable[..., TrailApi]) -> None:
    client, other = api(VARIANTS["tea2020-v3"]), api(VARIANTS["tea2020-v3"])
    assert client("GetGlobalEventsStorageRegion")["StorageRegion"] == "cn-hangzhou"
    client("UpdateGlobalEventsStorageRegion", StorageRegion="ap-southeast-1")
    assert client("GetGlobalEventsStorageRegion")["StorageRegion"] == "ap-southeast-1"
    assert other("GetGlobalEventsStorageRegion")["StorageRegion"] == "cn-hangzhou"
    err = client.error("UpdateGlobalEventsStorageRegion", StorageRegion="cn-beijing")
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)
    err = client.error("UpdateGlobalEventsStorageRegion")
    assert (err.code, err.status) == ("MissingStorageRegion", 400)


# -- the gateway's rules apply to trail operations too ------------------------------------------


def test_permissions_and_throttling(server_factory: Callable[..., LiveServer], backend_url: str) -> None:
    server = server_factory(db_url=backend_url, throttle_trails=0.1)
    try:
        variant = VARIANTS["tea2020-v3"]
        account = _account()
        reader = new_access_key(server, account, allowed_actions=("actiontrail:DescribeTrails",))
        limited = TrailApi(make_sdk_client(variant, server, reader.key.access_key_id, reader.secret), account)
        assert limited("DescribeTrails")["TrailList"] == []
        err = limited.error(
            "CreateTrail", Name="not-allowed", SlsProjectArn="acs:log:cn-hangzhou:1:project/audit"
        )
        assert (err.code, err.status) == ("NoPermission", 403)
        # One call per ten seconds per account and operation: the second at once is throttled.
        err = limited.error("DescribeTrails")
        assert (err.code, err.status) == ("Throttling.User", 400)
    finally:
        _close_sdk_sessions(server.port)
