"""The TrailStore contract on both backends: trails, selectors, history jobs, organizations, settings."""

from __future__ import annotations

import threading
from dataclasses import replace

from trailhouse.model.trail import (
    DataEventSelector,
    EventRW,
    HistoryJob,
    HistoryJobStatus,
    Trail,
    TrailStatus,
)
from trailhouse.storage.base import EventStore, TrailConflict

from .conftest import ACCOUNT, OTHER_ACCOUNT, Backend

LIMITS = {"max_per_region": 5, "max_organization": 1}


def trail(name: str = "audit-trail", account: str = ACCOUNT, **fields: object) -> Trail:
    base = Trail(
        account_id=account,
        name=name,
        home_region="cn-hangzhou",
        trail_region="All",
        event_rw=EventRW.WRITE,
        status=TrailStatus.FRESH,
        oss_bucket_name=f"bucket-{account[:4]}-{name}",
        oss_key_prefix="audit/logs",
        create_ms=1000,
        update_ms=1000,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def job(account: str = ACCOUNT, token: str = "", trail_name: str = "audit-trail") -> HistoryJob:
    return HistoryJob(
        job_id=0,
        account_id=account,
        trail_name=trail_name,
        home_region="cn-hangzhou",
        status=HistoryJobStatus.INITIALIZING,
        window_start_ms=0,
        window_end_ms=90_000,
        client_token=token,
        created_ms=5,
        updated_ms=5,
    )


def test_a_trail_round_trips_every_field(store: EventStore) -> None:
    full = trail(
        trail_region="cn-hangzhou,cn-shanghai",
        event_rw=EventRW.ALL,
        oss_bucket_location="cn-hangzhou",
        oss_write_role_arn="acs:ram::1234567890123456:role/aliyunserviceroleforactiontrail",
        sls_project_arn="acs:log:cn-hangzhou:1234567890123456:project/audit",
        sls_write_role_arn="acs:ram::1234567890123456:role/sls",
        max_compute_project_arn="acs:odps:cn-hangzhou:1234567890123456:project/actiontrail_x",
        max_compute_write_role_arn="acs:ram::1234567890123456:role/odps",
        role_name="AliyunActionTrailDefaultRole",
        mns_topic_arn="acs:mns:cn-hangzhou:1234567890123456:/topics/t",
        is_organization_trail=True,
        organization_id="rd-abc123",
        start_logging_ms=2000,
        stop_logging_ms=None,
    )
    assert store.create_trail(full, **LIMITS) is None
    assert store.get_trail(account_id=ACCOUNT, name=full.name) == full
    assert store.list_trails(account_id=ACCOUNT) == [full]
    assert store.list_all_trails() == [full]
    assert full.regions == ("cn-hangzhou", "cn-shanghai")
    assert full.trail_arn == "acs:actiontrail:cn-hangzhou:1234567890123456:trail/audit-trail"


def test_trails_are_scoped_to_their_account(store: EventStore) -> None:
    assert store.create_trail(trail("mine-trail"), **LIMITS) is None
    assert store.create_trail(trail("theirs-trail", OTHER_ACCOUNT), **LIMITS) is None
    # The same name in another account is another trail.
    assert store.create_trail(trail("mine-trail", OTHER_ACCOUNT, oss_bucket_name="other-b"), **LIMITS) is None
    assert [t.name for t in store.list_trails(account_id=ACCOUNT)] == ["mine-trail"]
    assert store.get_trail(account_id=ACCOUNT, name="theirs-trail") is None
    assert not store.delete_trail(account_id=ACCOUNT, name="theirs-trail")
    assert [(t.account_id, t.name) for t in store.list_all_trails()] == sorted(
        [(ACCOUNT, "mine-trail"), (OTHER_ACCOUNT, "theirs-trail"), (OTHER_ACCOUNT, "mine-trail")]
    )
    assert store.get_trail(account_id=ACCOUNT + "\x00", name="mine-trail") is None


def test_create_refuses_a_taken_name_a_full_region_and_a_second_organization_trail(store: EventStore) -> None:
    assert store.create_trail(trail("trail-one"), **LIMITS) is None
    assert store.create_trail(trail("trail-one", oss_bucket_name="x-b"), **LIMITS) is TrailConflict.NAME_TAKEN
    for i in range(2, 6):
        assert store.create_trail(trail(f"trail-{i}"), **LIMITS) is None
    assert store.create_trail(trail("trail-six"), **LIMITS) is TrailConflict.REGION_FULL
    # Another home region has its own five.
    assert store.create_trail(trail("trail-six", home_region="cn-beijing"), **LIMITS) is None
    org = {"is_organization_trail": True, "home_region": "ap-southeast-1"}
    assert store.create_trail(trail("org-one", **org), **LIMITS) is None  # type: ignore[arg-type]
    assert store.create_trail(trail("org-two", **org), **LIMITS) is TrailConflict.ORGANIZATION_FULL  # type: ignore[arg-type]
    assert len(store.list_trails(account_id=ACCOUNT)) == 7


def test_a_bucket_holds_one_trails_files_whatever_the_account(store: EventStore) -> None:
    assert store.create_trail(trail("first-trail", oss_bucket_name="shared-bucket"), **LIMITS) is None
    again = trail("second-trail", oss_bucket_name="shared-bucket")
    assert store.create_trail(again, **LIMITS) is TrailConflict.BUCKET_TAKEN
    theirs = trail("their-trail", OTHER_ACCOUNT, oss_bucket_name="shared-bucket")
    assert store.create_trail(theirs, **LIMITS) is TrailConflict.BUCKET_TAKEN
    # SLS-only trails name no bucket and never conflict.
    assert store.create_trail(trail("sls-one", oss_bucket_name=""), **LIMITS) is None
    assert store.create_trail(trail("sls-two", oss_bucket_name=""), **LIMITS) is None


def test_update_replaces_the_trail_and_keeps_the_bucket_rule(store: EventStore) -> None:
    original = trail("audit-trail")
    assert store.create_trail(original, **LIMITS) is None
    assert store.create_trail(trail("other-trail", oss_bucket_name="taken-bucket"), **LIMITS) is None
    started = original.with_status(TrailStatus.ENABLE, 3000)
    changed = replace(started, event_rw=EventRW.READ, oss_key_prefix="new/prefix", update_ms=3000)
    assert store.update_trail(changed) is None
    assert store.get_trail(account_id=ACCOUNT, name="audit-trail") == changed
    assert changed.is_logging and changed.start_logging_ms == 3000
    # Its own bucket is not "another trail's".
    assert store.update_trail(replace(changed, update_ms=4000)) is None
    assert store.update_trail(replace(changed, oss_bucket_name="taken-bucket")) is TrailConflict.BUCKET_TAKEN
    assert store.update_trail(trail("missing-trail")) is TrailConflict.NOT_FOUND
    assert store.update_trail(replace(changed, account_id=OTHER_ACCOUNT)) is TrailConflict.NOT_FOUND


def test_delete_removes_the_trail_and_its_selector(store: EventStore) -> None:
    assert store.create_trail(trail(), **LIMITS) is None
    selector = DataEventSelector(ACCOUNT, "audit-trail", '[{"ServiceName":"Oss"}]', True, (), 10, 10)
    assert store.put_data_event_selector(selector)
    assert store.delete_trail(account_id=ACCOUNT, name="audit-trail")
    assert not store.delete_trail(account_id=ACCOUNT, name="audit-trail")
    assert store.get_trail(account_id=ACCOUNT, name="audit-trail") is None
    assert store.get_data_event_selector(account_id=ACCOUNT, trail_name="audit-trail") is None
    # A new trail of the same name starts without the old selector; the bucket is free again.
    assert store.create_trail(trail(), **LIMITS) is None
    assert store.list_data_event_selectors(account_id=ACCOUNT) == []


def test_data_event_selectors_need_their_trail_and_keep_their_creation_time(store: EventStore) -> None:
    first = DataEventSelector(
        ACCOUNT, "audit-trail", '[{"ServiceName":"Oss"}]', False, ("cn-hangzhou",), 10, 10
    )
    assert not store.put_data_event_selector(first)
    assert store.create_trail(trail(), **LIMITS) is None
    assert store.put_data_event_selector(first)
    assert store.get_data_event_selector(account_id=ACCOUNT, trail_name="audit-trail") == first
    second = replace(
        first, event_selectors="[]", is_trail_all_region=True, trail_region_ids=(), create_ms=99, update_ms=20
    )
    assert store.put_data_event_selector(second)
    assert store.get_data_event_selector(account_id=ACCOUNT, trail_name="audit-trail") == replace(
        second, create_ms=10
    )
    assert store.list_data_event_selectors(account_id=ACCOUNT) == [replace(second, create_ms=10)]
    assert store.list_data_event_selectors(account_id=OTHER_ACCOUNT) == []
    assert store.get_data_event_selector(account_id=OTHER_ACCOUNT, trail_name="audit-trail") is None
    assert not store.delete_data_event_selector(account_id=OTHER_ACCOUNT, trail_name="audit-trail")
    assert store.delete_data_event_selector(account_id=ACCOUNT, trail_name="audit-trail")
    assert store.get_data_event_selector(account_id=ACCOUNT, trail_name="audit-trail") is None


def test_history_jobs_get_ids_respect_the_open_limit_and_client_tokens(store: EventStore) -> None:
    first = store.create_history_job(job(token="tok-1"), max_open_per_account=1)
    assert first is not None and first.job_id > 0
    assert first == replace(job(token="tok-1"), job_id=first.job_id)
    # The same client token returns the same job, even past the limit.
    assert store.create_history_job(job(token="tok-1"), max_open_per_account=1) == first
    assert store.create_history_job(job(token="tok-2"), max_open_per_account=1) is None
    # Another account has its own limit.
    theirs = store.create_history_job(job(OTHER_ACCOUNT), max_open_per_account=1)
    assert theirs is not None and theirs.job_id != first.job_id
    assert store.list_open_history_jobs() == [first, theirs]
    done = replace(
        first,
        status=HistoryJobStatus.COMPLETE,
        started_ms=7,
        finished_ms=9,
        updated_ms=9,
        checkpoint="seq:42",
    )
    assert store.update_history_job(done)
    assert store.get_history_job(account_id=ACCOUNT, job_id=first.job_id) == done
    assert store.get_history_job(account_id=OTHER_ACCOUNT, job_id=first.job_id) is None
    assert store.list_open_history_jobs() == [theirs]
    second = store.create_history_job(job(token="tok-2"), max_open_per_account=1)
    assert second is not None and second.job_id > first.job_id
    page, total = store.list_history_jobs(account_id=ACCOUNT, offset=0, limit=1)
    assert page == [second] and total == 2
    page, total = store.list_history_jobs(account_id=ACCOUNT, offset=1, limit=10)
    assert page == [done] and total == 2
    assert not store.delete_history_job(account_id=OTHER_ACCOUNT, job_id=first.job_id)
    assert store.delete_history_job(account_id=ACCOUNT, job_id=first.job_id)
    assert not store.update_history_job(done)
    assert store.list_history_jobs(account_id=ACCOUNT, offset=0, limit=10) == ([second], 1)


def test_organizations_hold_a_management_account_and_members(store: EventStore) -> None:
    assert store.organization_of(ACCOUNT) is None
    org = store.add_organization_member(
        management_account_id=ACCOUNT, member_account_id=OTHER_ACCOUNT, organization_id="rd-first1", now_ms=5
    )
    assert org.organization_id == "rd-first1" and org.member_account_ids == (OTHER_ACCOUNT,)
    # The organization exists once: a later id is ignored.
    org = store.add_organization_member(
        management_account_id=ACCOUNT,
        member_account_id="1111222233334444",
        organization_id="rd-other",
        now_ms=6,
    )
    assert org.organization_id == "rd-first1"
    assert org.account_ids == (ACCOUNT, "1111222233334444", OTHER_ACCOUNT)
    assert store.organization_of(OTHER_ACCOUNT) == org
    assert store.organization_of(ACCOUNT) == org
    assert store.list_organizations() == [org]
    assert store.remove_organization_member(management_account_id=ACCOUNT, member_account_id=OTHER_ACCOUNT)
    assert not store.remove_organization_member(
        management_account_id=ACCOUNT, member_account_id=OTHER_ACCOUNT
    )
    assert store.organization_of(OTHER_ACCOUNT) is None
    assert store.delete_organization(management_account_id=ACCOUNT)
    assert store.organization_of("1111222233334444") is None and store.list_organizations() == []


def test_account_settings_are_per_account(store: EventStore) -> None:
    assert store.get_account_setting(account_id=ACCOUNT, name="GlobalEventsStorageRegion") is None
    store.set_account_setting(account_id=ACCOUNT, name="GlobalEventsStorageRegion", value="ap-southeast-1")
    store.set_account_setting(account_id=ACCOUNT, name="GlobalEventsStorageRegion", value="cn-hangzhou")
    assert store.get_account_setting(account_id=ACCOUNT, name="GlobalEventsStorageRegion") == "cn-hangzhou"
    assert store.get_account_setting(account_id=OTHER_ACCOUNT, name="GlobalEventsStorageRegion") is None


def test_the_region_limit_holds_across_stores_creating_at_once(backend: Backend) -> None:
    """Two nodes (two stores on one database) racing: never more than five trails in a region."""
    stores = [backend.open(), backend.open()]
    outcomes: list[TrailConflict | None] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        result = stores[i % 2].create_trail(trail(f"race-trail-{i}"), **LIMITS)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(None) == 5
    assert outcomes.count(TrailConflict.REGION_FULL) == 7
    assert len(stores[0].list_trails(account_id=ACCOUNT)) == 5
