"""The event generator: determinism, realistic shape and skew, and the demo's leaked-key story."""

from __future__ import annotations

import calendar
import gzip
import re
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from trailhouse.demo.events import DAY_MS
from trailhouse.demo.generate import generate_events, write_ndjson
from trailhouse.demo.story import (
    DEMO_ACCOUNT,
    DEMO_ACCOUNT_IDS,
    MAIN_ACCOUNT_ID,
    DemoStory,
    demo_events,
    demo_story,
    demo_story_facts,
)
from trailhouse.model.event import event_from_mapping

END_MS = 1_767_225_600_000 + 13 * 3_600_000 + 1234  # 2026-01-01T13:00:01.234Z, deliberately not aligned
COUNT = 20_000
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EVENT_TYPES = {"ApiCall", "ConsoleOperation", "ConsoleSignin", "ConsoleSignout", "AliyunServiceEvent"}


def ms(event_time: str) -> int:
    return calendar.timegm(time.strptime(event_time, "%Y-%m-%dT%H:%M:%SZ")) * 1000


def key_id(event: dict[str, Any]) -> str:
    return str(event["userIdentity"].get("accessKeyId", ""))


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(generate_events(seed=42, count=COUNT, end_ms=END_MS, days=30))


@pytest.fixture(scope="module")
def story() -> list[dict[str, Any]]:
    return list(demo_story(end_ms=END_MS, seed=7))


@pytest.fixture(scope="module")
def facts() -> DemoStory:
    return demo_story_facts(end_ms=END_MS, seed=7)


# -- determinism -------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path: Any) -> None:
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.ndjson.gz"
        assert write_ndjson(path, generate_events(seed=5, count=3000, end_ms=END_MS), gzip=True) == 3000
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    lines = gzip.decompress(paths[0].read_bytes()).splitlines()
    assert len(lines) == 3000 and orjson.loads(lines[0])["eventId"]


def test_write_ndjson_plain(tmp_path: Any) -> None:
    path = tmp_path / "events.ndjson"
    events = list(generate_events(seed=9, count=300, end_ms=END_MS))
    assert write_ndjson(path, iter(events)) == 300
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == events


def test_different_seed_differs() -> None:
    a = [orjson.dumps(e) for e in generate_events(seed=1, count=500, end_ms=END_MS)]
    b = [orjson.dumps(e) for e in generate_events(seed=2, count=500, end_ms=END_MS)]
    assert a != b
    assert not {orjson.loads(x)["eventId"] for x in a} & {orjson.loads(x)["eventId"] for x in b}


def test_story_and_demo_are_deterministic(story: list[dict[str, Any]]) -> None:
    assert [orjson.dumps(e) for e in demo_story(end_ms=END_MS, seed=7)] == [orjson.dumps(e) for e in story]
    other = list(demo_story(end_ms=END_MS, seed=8))
    assert [e["eventId"] for e in other] != [e["eventId"] for e in story]
    first = b"".join(orjson.dumps(e) for e in demo_events(end_ms=END_MS, count=500))
    assert first == b"".join(orjson.dumps(e) for e in demo_events(end_ms=END_MS, count=500))


def test_event_ids_do_not_depend_on_end_time() -> None:
    # Reloading the demo later must find the same IDs (duplicates), not a second copy of the data.
    a = list(generate_events(seed=3, count=2000, end_ms=END_MS))
    b = list(generate_events(seed=3, count=2000, end_ms=END_MS + 3 * DAY_MS + 777))
    assert a[0]["eventTime"] != b[0]["eventTime"]
    # Only sign-in IDs embed their time (as ActionTrail's do).
    assert [x["eventId"] for x in a if x["eventType"] not in ("ConsoleSignin", "ConsoleSignout")] == [
        x["eventId"] for x in b if x["eventType"] not in ("ConsoleSignin", "ConsoleSignout")
    ]


def test_story_attack_does_not_depend_on_end_time(facts: DemoStory, story: list[dict[str, Any]]) -> None:
    later_end = END_MS + 5 * DAY_MS + 4321
    later = demo_story_facts(end_ms=later_end, seed=7)
    assert later.created_access_key_id == facts.created_access_key_id
    assert later.launched_instance_ids == facts.launched_instance_ids
    assert later.first_malicious_ms - facts.first_malicious_ms == 5 * DAY_MS  # same time of day

    def attack_ids(events: list[dict[str, Any]], attacker_ips: tuple[str, ...]) -> list[str]:
        return [e["eventId"] for e in events if e["sourceIpAddress"] in attacker_ips]

    assert attack_ids(list(demo_story(end_ms=later_end, seed=7)), later.attacker_ips) == attack_ids(
        story, facts.attacker_ips
    )


# -- structure ---------------------------------------------------------------------------------------


def test_required_fields_and_types(events: list[dict[str, Any]]) -> None:
    assert len(events) == COUNT
    for e in events:
        assert isinstance(e["eventId"], str) and e["eventId"]
        assert e["eventVersion"] == 1
        assert TIME_RE.match(e["eventTime"])
        assert isinstance(e["eventName"], str) and e["eventName"]
        assert e["eventType"] in EVENT_TYPES
        assert e["eventRW"] in ("Read", "Write")
        assert e["eventCategory"] in ("Management", "Data")
        assert isinstance(e["isGlobal"], bool)
        assert e["requestId"] == e["eventId"]
        identity = e["userIdentity"]
        assert re.fullmatch(r"[1-9]\d{15}", identity["accountId"])
        assert identity["type"] in ("root-account", "ram-user", "assumed-role", "system")
        assert isinstance(identity["principalId"], str) and isinstance(identity["userName"], str)
    for e in events[:3000]:  # the project's own validator accepts them
        event_from_mapping(e)


def test_event_ids_are_unique(events: list[dict[str, Any]]) -> None:
    assert len({e["eventId"] for e in events}) == len(events)


def test_times_are_in_the_window_ascending_and_not_in_the_future(events: list[dict[str, Any]]) -> None:
    times = [e["eventTime"] for e in events]  # this format sorts chronologically
    assert times == sorted(times)
    first, last = ms(times[0]), ms(times[-1])
    assert first >= END_MS - 30 * DAY_MS - 1000 and last <= END_MS
    assert last - first > 29 * DAY_MS  # spread over the whole window


def test_daily_rhythm(events: list[dict[str, Any]]) -> None:
    by_hour = Counter(int(e["eventTime"][11:13]) for e in events)
    office = sum(by_hour[h] for h in range(1, 11))  # 09:00-19:00 Beijing
    night = sum(by_hour[h] for h in range(16, 22))  # 00:00-06:00 Beijing
    assert office > 3 * night


def test_identity_shapes(events: list[dict[str, Any]]) -> None:
    kinds: Counter[str] = Counter()
    for e in events:
        identity = e["userIdentity"]
        key = key_id(e)
        if identity["type"] == "assumed-role":
            kinds["sts"] += 1
            assert key.startswith("STS.") and ":" in identity["userName"]
            assert identity["principalId"].split(":", 1)[1] == identity["userName"].split(":", 1)[1]
            assert "sessionContext" in identity
        elif e["eventType"].startswith("Console") or "sessionContext" in identity:
            kinds["console"] += 1
            assert not key
        elif key:
            kinds["ak"] += 1
            assert key.startswith("LTAI") and len(key) == 24
        if identity["type"] == "root-account":
            assert identity["principalId"] == identity["accountId"] and identity["userName"] == "root"
    assert kinds["ak"] > COUNT // 2 and kinds["sts"] > COUNT // 20 and kinds["console"] > COUNT // 50


def test_read_write_and_resources(events: list[dict[str, Any]]) -> None:
    for e in events:
        if e["eventType"] in ("ApiCall", "ConsoleOperation") and e["eventName"].startswith(
            ("Describe", "List", "Get")
        ):
            assert e["eventRW"] == "Read", e["eventName"]
        refs = e.get("referencedResources")
        if "resourceName" in e:
            assert refs == {e["resourceType"]: [e["resourceName"]]}
        if e.get("eventCategory") == "Data":
            assert e["serviceName"] == "Oss"
        if e["eventType"] == "ApiCall":
            params = e["requestParameters"]
            assert params["AcsProduct"] == e["serviceName"] and params["RequestId"] == e["requestId"]
            assert "AcsHost" in params and "RegionId" in params
    services = Counter(e["serviceName"] for e in events)
    assert len(services) >= 12
    with_resources = sum(1 for e in events if "referencedResources" in e)
    assert with_resources > COUNT // 5


def test_errors_are_a_few_percent(events: list[dict[str, Any]]) -> None:
    failed = [e for e in events if e.get("errorCode")]
    assert 0.01 * COUNT < len(failed) < 0.08 * COUNT
    codes = Counter(e["errorCode"] for e in failed)
    assert codes.most_common(1)[0][0] == "NoPermission"
    assert all(e["errorMessage"] for e in failed)


def test_mean_size_is_about_one_kilobyte(events: list[dict[str, Any]]) -> None:
    mean = sum(len(orjson.dumps(e)) for e in events) / len(events)
    assert 800 < mean < 1400


# -- skew --------------------------------------------------------------------------------------------


def test_few_keys_carry_most_calls_and_many_are_cold(events: list[dict[str, Any]]) -> None:
    calls = Counter(key_id(e) for e in events if key_id(e).startswith("LTAI"))
    total = sum(calls.values())
    assert sum(n for _, n in calls.most_common(3)) > 0.4 * total
    assert len(calls) >= 100
    cold = [k for k, n in calls.items() if n < total / 1000]
    assert len(cold) > len(calls) // 3


def test_many_ips_and_users(events: list[dict[str, Any]]) -> None:
    ips = {e["sourceIpAddress"] for e in events}
    assert len(ips) > 500  # the pool is count / 20
    users: dict[str, set[str]] = {}
    for e in events:
        identity = e["userIdentity"]
        if identity["type"] == "ram-user":
            users.setdefault(identity["accountId"], set()).add(identity["userName"])
    assert len(users) == 3
    assert all(len(names) >= 5 for names in users.values())


def test_account_ids_can_be_fixed() -> None:
    fixed = ("1111111111111111", "2222222222222222")
    seen = {
        e["userIdentity"]["accountId"]
        for e in generate_events(seed=1, count=2000, end_ms=END_MS, account_ids=fixed)
    }
    assert seen == set(fixed)


# -- the story ---------------------------------------------------------------------------------------


def test_story_facts(facts: DemoStory) -> None:
    assert facts.account_id == MAIN_ACCOUNT_ID == DEMO_ACCOUNT_IDS[0]
    assert facts.owner_user_name == "ci-deploy"
    assert facts.leaked_key_id == "LTAI5tLeakedDemoKey0001A" and len(facts.leaked_key_id) == 24
    assert facts.created_user_name == "backup-admin" and facts.attached_policy == "AdministratorAccess"
    assert len(facts.created_access_key_id) == 24 and facts.created_access_key_id.startswith("LTAI")
    assert END_MS - 4 * DAY_MS < facts.first_malicious_ms < END_MS - 2 * DAY_MS
    assert facts.first_malicious_time == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(facts.first_malicious_ms // 1000)
    )
    assert facts.first_malicious_ms < facts.last_malicious_ms < END_MS
    assert not set(facts.attacker_ips) & set(facts.ci_ips)


def test_story_events_are_valid_sorted_and_in_the_past(story: list[dict[str, Any]]) -> None:
    times = [ms(e["eventTime"]) for e in story]
    assert times == sorted(times)
    assert times[0] >= END_MS - 30 * DAY_MS and times[-1] < END_MS
    assert len({e["eventId"] for e in story}) == len(story)
    for e in story:
        event_from_mapping(e)


def test_leaked_key_history(story: list[dict[str, Any]], facts: DemoStory) -> None:
    used = [e for e in story if key_id(e) == facts.leaked_key_id]
    attacker = [e for e in used if e["sourceIpAddress"] in facts.attacker_ips]
    assert attacker and all(ms(e["eventTime"]) >= facts.first_malicious_ms for e in attacker)
    assert min(ms(e["eventTime"]) for e in attacker) == facts.first_malicious_ms
    assert attacker[0]["eventName"] == "GetCallerIdentity"
    assert {e["userAgent"] for e in attacker} == {facts.attacker_user_agent}
    before = [e for e in used if ms(e["eventTime"]) < facts.first_malicious_ms]
    assert {e["sourceIpAddress"] for e in before} <= set(facts.ci_ips)
    assert {e["serviceName"] for e in before} == {"Ecs", "Oss"}
    assert facts.first_malicious_ms - ms(before[0]["eventTime"]) > 14 * DAY_MS  # used normally for weeks
    assert {e["userIdentity"]["userName"] for e in used} == {facts.owner_user_name}
    # Recon across regions from the attacker addresses.
    recon_regions = {e["acsRegion"] for e in attacker if e["eventName"] == "DescribeInstances"}
    assert len(recon_regions) >= 5
    assert {"ListBuckets", "ListUsers", "GetCallerIdentity"} <= {e["eventName"] for e in attacker}


def test_story_dangerous_actions(story: list[dict[str, Any]], facts: DemoStory) -> None:
    attacker = [e for e in story if e["sourceIpAddress"] in facts.attacker_ips]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for e in attacker:
        by_name.setdefault(e["eventName"], []).append(e)
    assert set(facts.dangerous_actions) <= set(by_name)

    (create_user,) = by_name["CreateUser"]
    assert create_user["requestParameters"]["UserName"] == facts.created_user_name
    assert create_user["referencedResources"] == {"ACS::RAM::User": [facts.created_user_name]}
    (create_key,) = by_name["CreateAccessKey"]
    assert create_key["responseElements"]["AccessKey"]["AccessKeyId"] == facts.created_access_key_id
    (attach,) = by_name["AttachPolicyToUser"]
    assert attach["requestParameters"]["PolicyName"] == facts.attached_policy
    assert attach["referencedResources"]["ACS::RAM::User"] == [facts.created_user_name]
    assert ms(create_user["eventTime"]) <= ms(create_key["eventTime"]) <= ms(attach["eventTime"])

    launched = [
        i
        for e in by_name["RunInstances"] + by_name["CreateInstance"]
        for i in e["referencedResources"]["ACS::ECS::Instance"]
    ]
    assert tuple(launched) == facts.launched_instance_ids
    assert {e["acsRegion"] for e in by_name["RunInstances"]} == {facts.unusual_region}

    downloads = by_name["GetObject"]
    assert len(downloads) == facts.exfiltrated_object_count >= 30
    for e in downloads:
        assert e["eventCategory"] == "Data" and e["resourceType"] == "ACS::OSS::Object"
        assert e["resourceName"].startswith(facts.exfiltrated_bucket + "/")

    for name in facts.denied_actions:
        assert all(e["errorCode"] == "NoPermission" for e in by_name[name])
    assert all(not e.get("errorCode") for name in facts.dangerous_actions for e in by_name[name])

    # The backdoor key is used too, from the attacker, after it was created.
    backdoor = [e for e in story if key_id(e) == facts.created_access_key_id]
    assert backdoor and all(ms(e["eventTime"]) >= ms(create_key["eventTime"]) for e in backdoor)


def test_story_contrast_sign_in(story: list[dict[str, Any]], facts: DemoStory) -> None:
    signins = [e for e in story if e["eventName"] == "ConsoleSignin"]
    assert signins
    for e in signins:
        assert e["userIdentity"]["userName"] == facts.contrast_user_name != facts.owner_user_name
        assert e["sourceIpAddress"] == facts.contrast_ip
        assert "accessKeyId" not in e["userIdentity"]


def test_demo_events(facts: DemoStory) -> None:
    merged = list(demo_events(end_ms=END_MS, seed=7, count=2000))
    story = list(demo_story(end_ms=END_MS, seed=7))
    assert len(merged) == 2000 + len(story)
    assert [e["eventTime"] for e in merged] == sorted(e["eventTime"] for e in merged)
    assert {e["userIdentity"]["accountId"] for e in merged} == set(DEMO_ACCOUNT_IDS)
    assert len({e["eventId"] for e in merged}) == len(merged)
    story_ids = {e["eventId"] for e in story}
    background = [e for e in merged if e["eventId"] not in story_ids]
    # Only the story uses the leaked key or comes from the attacker's addresses.
    assert not [e for e in background if key_id(e) == facts.leaked_key_id]
    assert not [e for e in background if e["sourceIpAddress"] in facts.attacker_ips]
    assert not [e for e in background if e["userIdentity"].get("userName") in ("ci-deploy", "backup-admin")]


def test_the_demo_credentials_belong_to_the_main_account() -> None:
    assert DEMO_ACCOUNT == MAIN_ACCOUNT_ID
