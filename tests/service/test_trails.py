"""The trail rules of service.trails and service.trail_extras, over a real SQLite store and a real
directory of buckets: every documented parameter rule, each refusal's problem, the status machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trailhouse.delivery.object_storage import DirectoryStorage
from trailhouse.model.trail import EventRW, TrailStatus
from trailhouse.service import trail_extras, trails
from trailhouse.service.trails import Problem, TrailParams, TrailRequestError
from trailhouse.storage.sqlite import SqliteStore

ACCOUNT = "1234567890123456"
NOW = 1_780_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "trails.db")
    yield s
    s.close()


@pytest.fixture
def buckets(tmp_path: Path) -> DirectoryStorage:
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("audit-bucket")
    storage.create_bucket("other-bucket")
    return storage


def create(store: SqliteStore, buckets: DirectoryStorage, **params: object) -> trails.Trail:
    values: dict[str, object] = {"name": "audit-trail", "oss_bucket_name": "audit-bucket"} | params
    return trails.create_trail(
        store,
        buckets,
        TrailParams(**values),
        account_id=ACCOUNT,
        home_region="cn-hangzhou",
        now_ms=NOW,  # type: ignore[arg-type]
    )


def problem(fn: object, *args: object, **kwargs: object) -> Problem:
    with pytest.raises(TrailRequestError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value.problem


@pytest.mark.parametrize(
    "name, ok",
    [
        ("abcdef", True),
        ("a" * 36, True),
        ("audit_trail-01", True),
        ("abcde", False),  # 5 characters
        ("a" * 37, False),
        ("Audit-trail", False),
        ("1audit-trail", False),
        ("-audit-trail", False),
        ("audit.trail", False),
        ("audit trail", False),
        ("audit-trail\n", False),
        ("ａudit-trail", False),  # a full-width letter
    ],
)
def test_trail_names(name: str, ok: bool) -> None:
    if ok:
        trails.check_trail_name(name)
    else:
        assert problem(trails.check_trail_name, name) is Problem.INVALID_TRAIL_NAME


@pytest.mark.parametrize(
    "prefix, ok",
    [
        ("audits", True),
        ("a" * 32, True),
        ("Audit/Logs_2026-x", True),
        ("audit", False),  # 5
        ("a" * 33, False),
        ("1audit", False),
        ("/audit", False),
        ("audit logs", False),
        ("audit.logs", False),
    ],
)
def test_oss_key_prefixes(store: SqliteStore, buckets: DirectoryStorage, prefix: str, ok: bool) -> None:
    if ok:
        assert create(store, buckets, oss_key_prefix=prefix).oss_key_prefix == prefix
    else:
        assert problem(create, store, buckets, oss_key_prefix=prefix) is Problem.INVALID_PREFIX


@pytest.mark.parametrize("bucket", ["ab", "a" * 64, "Audit", "audit_bucket", "-audit", "audit-", "au dit"])
def test_bucket_names(store: SqliteStore, buckets: DirectoryStorage, bucket: str) -> None:
    assert problem(create, store, buckets, oss_bucket_name=bucket) is Problem.INVALID_BUCKET_NAME


def test_event_rw_and_trail_region() -> None:
    assert trails.parse_event_rw(None) is EventRW.WRITE
    assert trails.parse_event_rw("") is EventRW.WRITE
    assert [trails.parse_event_rw(v) for v in ("Read", "Write", "All")] == [
        EventRW.READ,
        EventRW.WRITE,
        EventRW.ALL,
    ]
    for bad in ("read", "ALL", "Both", " Read"):
        assert problem(trails.parse_event_rw, bad) is Problem.INVALID_PARAMETER
    assert trails.parse_trail_region(None) == "All"
    assert trails.parse_trail_region("All") == "All"
    assert trails.parse_trail_region("cn-shanghai, cn-hangzhou,cn-shanghai") == "cn-hangzhou,cn-shanghai"
    for bad in ("all", "cn-hangzhou,mars-1", ",", "All,cn-hangzhou"):
        assert problem(trails.parse_trail_region, bad) is Problem.INVALID_PARAMETER


def test_destinations(store: SqliteStore, buckets: DirectoryStorage) -> None:
    no_oss = {"oss_bucket_name": None}
    assert problem(create, store, buckets, **no_oss) is Problem.INVALID_DELIVERY_CONFIGURATION
    assert (
        problem(create, store, buckets, **no_oss, oss_key_prefix="audits")
        is Problem.INVALID_DELIVERY_CONFIGURATION
    )
    mns = {"mns_topic_arn": "acs:mns:cn-hangzhou:1:/topics/t"}
    assert problem(create, store, buckets, **mns) is Problem.UNSUPPORTED_DESTINATION
    odps = "acs:odps:cn-hangzhou:1234567890123456:project/actiontrail_audit"
    assert problem(create, store, buckets, max_compute_project_arn=odps) is Problem.UNSUPPORTED_DESTINATION
    not_prefixed = "acs:odps:cn-hangzhou:1234567890123456:project/audit"
    assert problem(create, store, buckets, max_compute_project_arn=not_prefixed) is Problem.INVALID_PARAMETER
    for arn in ("acs:log:cn-hangzhou:1:project/A", "acs:log::1:project/audit", "project/audit"):
        assert problem(create, store, buckets, **no_oss, sls_project_arn=arn) is Problem.INVALID_PARAMETER
    for arn in ("acs:ram:1:role/x", "acs:ram::abc:role/x", "role/x"):
        assert problem(create, store, buckets, oss_write_role_arn=arn) is Problem.INVALID_PARAMETER
    assert problem(create, store, buckets, oss_bucket_name="missing-bucket") is Problem.BUCKET_DOES_NOT_EXIST
    assert problem(create, store, None) is Problem.DESTINATION_UNAVAILABLE
    sls = create(
        store, buckets, name="sls-trail", **no_oss, sls_project_arn="acs:log:cn-hangzhou:1:project/audit"
    )
    assert sls.oss_bucket_location == "" and sls.sls_project_arn.endswith("/audit")
    assert store.list_trails(account_id=ACCOUNT) == [sls]


def test_a_bucket_that_cannot_be_probed_is_unavailable(store: SqliteStore) -> None:
    class Down:
        def bucket_status(self, bucket: str) -> str:
            raise ConnectionError("endpoint down")

    refused = type("Refused", (), {"bucket_status": lambda self, bucket: "refused"})()
    assert problem(create, store, Down()) is Problem.DESTINATION_UNAVAILABLE
    assert problem(create, store, refused) is Problem.INSUFFICIENT_BUCKET_POLICY


def test_create_is_fresh_and_logging_moves_the_status(store: SqliteStore, buckets: DirectoryStorage) -> None:
    trail = create(store, buckets, event_rw="All", trail_region="cn-hangzhou")
    assert trail.status is TrailStatus.FRESH and not trail.is_logging
    assert trail.oss_bucket_location == "cn-hangzhou" and trail.create_ms == trail.update_ms == NOW
    assert trail.start_logging_ms is None and trail.stop_logging_ms is None
    # Stopping a trail that never started changes nothing.
    assert (
        trails.set_logging(store, account_id=ACCOUNT, name="audit-trail", logging=False, now_ms=NOW + 1)
        == trail
    )
    started = trails.set_logging(store, account_id=ACCOUNT, name="audit-trail", logging=True, now_ms=NOW + 2)
    assert started.status is TrailStatus.ENABLE and started.start_logging_ms == NOW + 2
    again = trails.set_logging(store, account_id=ACCOUNT, name="audit-trail", logging=True, now_ms=NOW + 3)
    assert again.start_logging_ms == NOW + 2
    stopped = trails.set_logging(store, account_id=ACCOUNT, name="audit-trail", logging=False, now_ms=NOW + 4)
    assert stopped.status is TrailStatus.DISABLE and stopped.stop_logging_ms == NOW + 4
    assert stopped.start_logging_ms == NOW + 2
    assert trails.get_trail(store, account_id=ACCOUNT, name="audit-trail") == stopped
    assert (
        problem(trails.set_logging, store, account_id=ACCOUNT, name="nope-trail", logging=True, now_ms=NOW)
        is Problem.TRAIL_NOT_FOUND
    )


def test_update_changes_only_what_is_sent(store: SqliteStore, buckets: DirectoryStorage) -> None:
    create(store, buckets, oss_key_prefix="audits", trail_region="cn-hangzhou")
    trails.set_logging(store, account_id=ACCOUNT, name="audit-trail", logging=True, now_ms=NOW + 1)
    updated = trails.update_trail(
        store, buckets, TrailParams(name="audit-trail", event_rw="Read"), account_id=ACCOUNT, now_ms=NOW + 5
    )
    assert updated.event_rw is EventRW.READ and updated.oss_key_prefix == "audits"
    assert updated.trail_region == "cn-hangzhou" and updated.status is TrailStatus.ENABLE
    assert updated.update_ms == NOW + 5 and updated.create_ms == NOW and updated.start_logging_ms == NOW + 1
    moved = trails.update_trail(
        store,
        buckets,
        TrailParams(name="audit-trail", oss_bucket_name="other-bucket", oss_key_prefix=""),
        account_id=ACCOUNT,
        now_ms=NOW + 6,
    )
    assert moved.oss_bucket_name == "other-bucket" and moved.oss_key_prefix == ""
    cleared = TrailParams(name="audit-trail", oss_bucket_name="")
    assert problem(trails.update_trail, store, buckets, cleared, account_id=ACCOUNT, now_ms=NOW) is (
        Problem.INVALID_DELIVERY_CONFIGURATION
    )
    with_sls = TrailParams(
        name="audit-trail", oss_bucket_name="", sls_project_arn="acs:log:cn-hangzhou:1:project/audit-1"
    )
    sls_only = trails.update_trail(store, buckets, with_sls, account_id=ACCOUNT, now_ms=NOW + 7)
    assert sls_only.oss_bucket_name == "" and sls_only.oss_bucket_location == ""
    missing = TrailParams(name="missing-trail", event_rw="Read")
    assert problem(trails.update_trail, store, buckets, missing, account_id=ACCOUNT, now_ms=NOW) is (
        Problem.TRAIL_NOT_FOUND
    )


def test_limits_and_conflicts(store: SqliteStore, buckets: DirectoryStorage) -> None:
    create(store, buckets)
    assert problem(create, store, buckets, oss_bucket_name="other-bucket") is Problem.TRAIL_ALREADY_EXISTS
    assert problem(create, store, buckets, name="second-trail") is Problem.REPEAT_OSS_BUCKET
    sls = {"oss_bucket_name": None, "sls_project_arn": "acs:log:cn-hangzhou:1:project/audit"}
    for i in range(4):
        create(store, buckets, name=f"sls-trail-{i}", **sls)
    assert problem(create, store, buckets, name="sixth-trail", **sls) is Problem.MAXIMUM_TRAILS
    trails.delete_trail(store, account_id=ACCOUNT, name="sls-trail-0")
    create(store, buckets, name="sixth-trail", **sls)
    assert (
        problem(trails.delete_trail, store, account_id=ACCOUNT, name="sls-trail-0") is Problem.TRAIL_NOT_FOUND
    )


def test_organization_trails_need_a_management_account(store: SqliteStore, buckets: DirectoryStorage) -> None:
    assert problem(create, store, buckets, is_organization_trail=True) is Problem.NOT_ALLOW_ORGANIZATION_TRAIL
    store.add_organization_member(
        management_account_id=ACCOUNT, member_account_id="42", organization_id="rd-unit01", now_ms=NOW
    )
    trail = create(store, buckets, is_organization_trail=True)
    assert trail.is_organization_trail and trail.organization_id == "rd-unit01"
    second = {"name": "org-trail-2", "oss_bucket_name": "other-bucket", "is_organization_trail": True}
    assert problem(create, store, buckets, **second) is Problem.MAXIMUM_ORGANIZATION_TRAILS
    # The member sees it only when it asks for organization trails, and only the organization ones.
    create(store, buckets, name="plain-trail", oss_bucket_name="other-bucket")
    seen = trails.describe_trails(
        store, account_id="42", home_region="cn-hangzhou", names=None,
        include_shadow_trails=False, include_organization_trail=True,
    )  # fmt: skip
    assert [t.name for t in seen] == ["audit-trail"]
    hidden = trails.describe_trails(
        store, account_id="42", home_region="cn-hangzhou", names=None,
        include_shadow_trails=False, include_organization_trail=False,
    )  # fmt: skip
    assert hidden == []


def test_history_jobs_and_selectors(store: SqliteStore, buckets: DirectoryStorage) -> None:
    assert (
        problem(
            trail_extras.create_history_job,
            store,
            account_id=ACCOUNT,
            trail_name="audit-trail",
            client_token=None,
            now_ms=NOW,
        )
        is Problem.TRAIL_NOT_FOUND
    )
    create(store, buckets)
    for token in ("x" * 65, "tökén"):
        assert (
            problem(
                trail_extras.create_history_job,
                store,
                account_id=ACCOUNT,
                trail_name="audit-trail",
                client_token=token,
                now_ms=NOW,
            )
            is Problem.INVALID_PARAMETER
        )
    job = trail_extras.create_history_job(
        store, account_id=ACCOUNT, trail_name="audit-trail", client_token="t", now_ms=NOW
    )
    assert job.window_end_ms == NOW and job.window_start_ms == NOW - 90 * 86_400_000
    assert (
        problem(
            trail_extras.create_history_job,
            store,
            account_id=ACCOUNT,
            trail_name="audit-trail",
            client_token="u",
            now_ms=NOW,
        )
        is Problem.MAXIMUM_DELIVERY_HISTORY_JOBS
    )
    page = trail_extras.list_history_jobs(store, account_id=ACCOUNT, page_number=2, page_size=1)
    assert page.jobs == [] and page.total == 1

    put = trail_extras.put_data_event_selector(
        store, account_id=ACCOUNT, trail_name="audit-trail", event_selectors='[{"ServiceName":"oss"}]',
        is_trail_all_region=False, trail_region_ids="cn-shanghai", now_ms=NOW,
    )  # fmt: skip
    assert put.trail_region_ids == ("cn-shanghai",) and not put.is_trail_all_region
    assert trail_extras.selector_covers(put, service_name="Oss", acs_region="cn-shanghai")
    assert not trail_extras.selector_covers(put, service_name="Oss", acs_region="cn-hangzhou")
    assert not trail_extras.selector_covers(put, service_name="Ecs", acs_region="cn-shanghai")
    too_many = "[" + ",".join(['{"ServiceName":"OSS"}'] * 21) + "]"
    assert (
        problem(
            trail_extras.put_data_event_selector,
            store,
            account_id=ACCOUNT,
            trail_name="audit-trail",
            event_selectors=too_many,
            is_trail_all_region=None,
            trail_region_ids=None,
            now_ms=NOW,
        )  # fmt: skip
        is Problem.INVALID_PARAMETER
    )
    assert (
        problem(
            trail_extras.put_data_event_selector,
            store,
            account_id=ACCOUNT,
            trail_name="audit-trail",
            event_selectors="[]",
            is_trail_all_region=False,
            trail_region_ids=None,
            now_ms=NOW,
        )  # fmt: skip
        is Problem.INVALID_PARAMETER
    )
    assert trail_extras.get_global_events_storage_region(store, account_id=ACCOUNT) == "cn-hangzhou"
    assert (
        problem(
            trail_extras.update_global_events_storage_region, store, account_id=ACCOUNT, storage_region="All"
        )
        is Problem.INVALID_PARAMETER
    )
