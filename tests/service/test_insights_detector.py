"""The detector over a real store: restarts, a crash mid-step, two nodes, rate insights' Start/End,
and the rules' edges (UpdateTrail narrowing, routine changes, dormant keys)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from trailhouse.model.event import event_from_mapping
from trailhouse.model.insights import INSIGHT_TYPES, InsightQuery, StoredInsight
from trailhouse.model.times import format_wire_time
from trailhouse.service.insights.config import Thresholds
from trailhouse.service.insights.detector import DETECTOR_NAME, Detector
from trailhouse.storage.base import EventStore
from trailhouse.storage.sqlite import SqliteStore

ACCOUNT = "1444529763028279"
T0 = 1_790_000_000_000 - 1_790_000_000_000 % 60_000  # a minute's start
MIN = 60_000
DAY = 86_400_000


def ev(
    n: int | str,
    t: int,
    *,
    name: str = "DescribeInstances",
    key: str = "LTAIbusy",
    ip: str = "192.0.2.10",
    rw: str = "Read",
    error: str | None = None,
    params: dict[str, Any] | None = None,
    service: str = "Ecs",
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "eventId": f"e-{n}",
        "eventTime": format_wire_time(t),
        "eventName": name,
        "eventRW": rw,
        "serviceName": service,
        "sourceIpAddress": ip,
        "acsRegion": "cn-hangzhou",
        "userIdentity": {"accountId": ACCOUNT, "type": "ram-user", "userName": "ops", "accessKeyId": key},
    }
    if error:
        e["errorCode"] = error
    if params is not None:
        e["requestParameters"] = params
    return e


def append(store: EventStore, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 2000):
        store.append([event_from_mapping(e) for e in events[i : i + 2000]])


def enable(store: EventStore) -> None:
    for kind in INSIGHT_TYPES:
        store.set_insight_type(account_id=ACCOUNT, insight_type=kind, enabled=True, now_ms=1)


def drain(detector: Detector) -> list[StoredInsight]:
    found: list[StoredInsight] = []
    while True:
        result = detector.step()
        found += result.insights
        if result.processed == 0:
            return found


def stored(store: EventStore) -> list[dict[str, Any]]:
    rows = store.find_insights(account_id=ACCOUNT, query=InsightQuery(0, 2**62), after=None, limit=10_000)
    return [orjson.loads(i.body) for _, i in rows]


def history(days: int = 10) -> list[dict[str, Any]]:
    """A busy key calling DescribeInstances every 10 minutes from two addresses, ``days`` days back."""
    return [
        ev(f"h{i}", T0 - days * DAY + i * 10 * MIN, ip=f"192.0.2.{10 + i % 2}") for i in range(days * 144)
    ]


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    s = SqliteStore(tmp_path / "d.db")
    append(s, history())
    enable(s)
    return s


def clocked(store: EventStore, owner: str, now: list[int]) -> Detector:
    return Detector(store, Thresholds(), owner=owner, clock=lambda: now[0])


def test_a_rate_insight_has_a_start_and_an_end_with_statistics(store: EventStore) -> None:
    now = [T0]
    detector = clocked(store, "a", now)
    detector.step()  # starts at the head: the history is baseline only
    burst = [ev(f"b{i}", T0 + i * 1000, name="DeleteSnapshot", rw="Write") for i in range(45)]
    burst += [ev(f"b2-{i}", T0 + MIN + i * 1000, name="DeleteSnapshot", rw="Write") for i in range(40)]
    calm = [ev(f"c{i}", T0 + 2 * MIN + i * 10_000, name="DeleteSnapshot", rw="Write") for i in range(3)]
    append(store, burst + calm + [ev("late", T0 + 5 * MIN)])
    drain(detector)
    records = [r for r in stored(store) if r["insightDetails"]["insightType"] == "ApiCallRateInsight"]
    by_state = {r["insightDetails"]["state"]: r for r in records}
    assert set(by_state) == {"Start", "End"}
    start, end = by_state["Start"], by_state["End"]
    assert start["sharedEventId"] == end["sharedEventId"]
    assert start["insightDetails"]["insightObject"] == "Ecs:DeleteSnapshot"
    assert start["triggeringEventIds"] == [f"e-b{i}" for i in range(30)]  # the 30th call crossed
    stats = end["insightDetails"]["insightContext"]["statistics"]
    assert stats["insightCount"] == 85 and stats["insightDuration"] == 2
    assert stats["insight"] == 42.5 and stats["baseline"] == 0
    assert end["eventTime"] == format_wire_time(T0 + 2 * MIN)
    assert "85 in 2 minute(s)" in end["explanation"]


def test_an_open_rate_insight_survives_a_restart(store: EventStore) -> None:
    now = [T0]
    first = clocked(store, "a", now)
    first.step()
    append(store, [ev(f"b{i}", T0 + i * 1000, name="DeleteSnapshot", rw="Write") for i in range(40)])
    drain(first)
    assert [r["insightDetails"]["state"] for r in stored(store)] == ["Start"]
    restarted = clocked(store, "a", now)  # same node, new process: state comes from the checkpoint
    append(store, [ev("after", T0 + 3 * MIN)])
    drain(restarted)
    states = sorted(r["insightDetails"]["state"] for r in stored(store))
    assert states == ["End", "Start"]


def test_a_crash_before_the_commit_loses_nothing_and_repeats_nothing(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [T0]
    detector = clocked(store, "a", now)
    detector.step()
    append(
        store,
        [
            ev("new-ip", T0, ip="203.0.113.50"),
            ev(
                "stop",
                T0 + 1000,
                name="StopLogging",
                service="Actiontrail",
                rw="Write",
                params={"Name": "audit"},
            ),
        ],
    )
    original = store.commit_insights

    def crash(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt  # the process dies between detecting and committing

    monkeypatch.setattr(store, "commit_insights", crash)
    with pytest.raises(KeyboardInterrupt):
        detector.step()
    monkeypatch.setattr(store, "commit_insights", original)
    assert stored(store) == []
    drain(clocked(store, "a", now))  # the restarted node
    kinds = sorted((r["insightDetails"]["insightType"], r["insightDetails"]["state"]) for r in stored(store))
    assert kinds == [
        ("IpInsight", "End"),
        ("IpInsight", "Start"),
        ("TrailConcealmentInsight", "End"),
        ("TrailConcealmentInsight", "Start"),
    ]


def test_two_nodes_raise_each_insight_once(store: EventStore) -> None:
    now = [T0]
    a, b = clocked(store, "node-a", now), clocked(store, "node-b", now)
    a.step()
    assert not b.step().leader
    append(store, [ev("ip1", T0, ip="203.0.113.1")])
    drain(a)
    assert not b.step().leader
    # node-a stops (its lease is not renewed); node-b takes over from the checkpoint.
    now[0] += 31_000
    append(store, [ev("ip2", T0 + MIN, ip="198.51.100.2")])  # another /24
    drain(b)
    # node-a comes back: its lease is gone, it stands by and stores nothing.
    assert not a.step().leader
    starts = [r for r in stored(store) if r["insightDetails"]["state"] == "Start"]
    assert sorted(r["triggeringEventIds"][0] for r in starts) == ["e-ip1", "e-ip2"]


def test_update_trail_counts_only_when_it_narrows(store: EventStore) -> None:
    detector = clocked(store, "a", [T0])
    detector.step()
    wide = ev(
        "wide",
        T0,
        name="UpdateTrail",
        service="Actiontrail",
        rw="Write",
        key="LTAIk1",
        params={"Name": "t", "EventRW": "All", "TrailRegion": "All"},
    )
    narrow = ev(
        "narrow",
        T0 + 1000,
        name="UpdateTrail",
        service="Actiontrail",
        rw="Write",
        key="LTAIk2",
        params={"Name": "t", "EventRW": "Read"},
    )
    emptied = ev(
        "emptied",
        T0 + 2000,
        name="UpdateTrail",
        service="Actiontrail",
        rw="Write",
        key="LTAIk3",
        params={"Name": "t", "OssBucketName": ""},
    )
    append(store, [wide, narrow, emptied])
    drain(detector)
    starts = [r for r in stored(store) if r["insightDetails"]["state"] == "Start"]
    assert sorted(
        r["triggeringEventIds"][0]
        for r in starts
        if r["insightDetails"]["insightType"] == "TrailConcealmentInsight"
    ) == ["e-emptied", "e-narrow"]


def test_routine_changes_are_not_insights_but_administrator_access_always_is(store: EventStore) -> None:
    before = [
        ev(
            "p-old",
            T0 - DAY,
            name="AttachPolicyToUser",
            service="Ram",
            rw="Write",
            key="LTAIadmin",
            params={"PolicyName": "AliyunOSSFullAccess", "UserName": "u"},
        ),
    ]
    append(store, before)
    detector = clocked(store, "a", [T0])
    detector.step()
    append(
        store,
        [
            ev(
                "p-routine",
                T0,
                name="AttachPolicyToUser",
                service="Ram",
                rw="Write",
                key="LTAIadmin",
                params={"PolicyName": "AliyunECSFullAccess", "UserName": "u"},
            ),
            ev(
                "p-admin",
                T0 + 1000,
                name="AttachPolicyToUser",
                service="Ram",
                rw="Write",
                key="LTAIadmin",
                params={"PolicyName": "AdministratorAccess", "UserName": "u"},
            ),
            ev(
                "p-failed",
                T0 + 2000,
                name="AttachPolicyToUser",
                service="Ram",
                rw="Write",
                key="LTAInew",
                params={"PolicyName": "AliyunECSFullAccess"},
                error="NoPermission",
            ),
        ],
    )
    drain(detector)
    starts = [
        r
        for r in stored(store)
        if r["insightDetails"]["state"] == "Start"
        and r["insightDetails"]["insightType"] == "PolicyChangeInsight"
    ]
    assert [r["triggeringEventIds"] for r in starts] == [["e-p-admin"]]
    assert "always reported" in starts[0]["explanation"]


def test_a_dormant_key_and_a_key_jump(store: EventStore) -> None:
    append(store, [ev("sleepy-old", T0 - 40 * DAY, key="LTAIsleepy")])
    detector = clocked(store, "a", [T0])
    detector.step()
    jump = [ev(f"j{i}", T0 + i * 400, key="LTAIbusy", name=f"Describe{i % 7}") for i in range(130)]
    append(store, [ev("sleepy-now", T0, key="LTAIsleepy"), *jump])
    drain(detector)
    starts = [r for r in stored(store) if r["insightDetails"]["state"] == "Start"]
    ak = {
        r["insightDetails"]["insightObject"]: r
        for r in starts
        if r["insightDetails"]["insightType"] == "AkInsight"
    }
    assert set(ak) == {"LTAIsleepy", "LTAIbusy"}
    assert ak["LTAIsleepy"]["triggeringEventIds"] == ["e-sleepy-now"]
    assert "after 40 days without a call" in ak["LTAIsleepy"]["explanation"]
    assert len(ak["LTAIbusy"]["triggeringEventIds"]) == 120


def test_kill_9_mid_run_then_restart_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    """A real process killed with SIGKILL while detecting; the next run finishes the job exactly."""
    reference = SqliteStore(tmp_path / "ref.db")
    append(reference, history(3))
    enable(reference)
    # The CLI's owner name on this host, so that the copy's lease is the CLI's to take over.
    cli_owner = f"cli@{socket.gethostname()}"
    drain(Detector(reference, Thresholds(), owner=cli_owner))  # the start at the head
    stream = [
        ev(f"s{i}", T0 + i * 200, ip=f"198.51.{i % 200}.{i % 250}", key=f"LTAIk{i % 3}")
        for i in range(20_000)
    ]
    stream += [
        ev("stop", T0 + 3000, name="StopLogging", service="Actiontrail", rw="Write", params={"Name": "x"})
    ]
    reference.close()
    shutil.copy(tmp_path / "ref.db", tmp_path / "killed.db")
    for name in ("ref.db", "killed.db"):
        s = SqliteStore(tmp_path / name)
        append(s, stream)
        s.close()
    ref = SqliteStore(tmp_path / "ref.db")
    drain(Detector(ref, Thresholds(), owner=cli_owner))
    expected = sorted(r["eventId"] for r in stored(ref))
    ref.close()
    assert expected
    # Its place committed at every step, so that the kill falls between two commits; with the
    # default (every 5 s while busy) the restart replays more, and must end the same.
    env = {
        **os.environ,
        "TRAILHOUSE_DATA_DIR": str(tmp_path / "data"),
        "TRAILHOUSE_INSIGHTS_CHECKPOINT_S": "0",
    }
    cmd = [
        sys.executable,
        "-m",
        "trailhouse",
        "insights",
        "detect",
        "--db",
        f"sqlite:///{tmp_path / 'killed.db'}",
    ]
    watcher = SqliteStore(tmp_path / "killed.db")
    start = watcher.detector_checkpoint(detector=DETECTOR_NAME)
    assert start is not None
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill it once it has committed a first batch (5,000 events) of the 20,000: mid-run (three more
    # batches to go, so a poll delayed by a loaded machine still catches it before the end).
    deadline = time.monotonic() + 120
    while (
        cp := watcher.detector_checkpoint(detector=DETECTOR_NAME)
    ) is None or cp.watermark == start.watermark:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert start.watermark < cp.watermark < watcher.newest_seq()
    watcher.close()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    killed = SqliteStore(tmp_path / "killed.db")
    assert sorted(r["eventId"] for r in stored(killed)) == expected
    killed.close()


def test_a_busy_log_commits_the_place_every_checkpoint_interval_not_every_step(store: EventStore) -> None:
    """Steps that raise nothing do not write (each write by another connection costs a SQLite
    writer its page cache); the place is committed every 5 s while busy, and at once when the log
    goes quiet or an insight is raised."""
    now = [T0]
    detector = Detector(store, Thresholds(), owner="a", clock=lambda: now[0], batch=100)
    detector.step()
    start = store.detector_checkpoint(detector=DETECTOR_NAME)
    assert start is not None
    append(store, [ev(f"n{i}", T0 + i * 1000, ip=f"192.0.2.{10 + i % 2}") for i in range(500)])
    for _ in range(3):
        now[0] += 1000
        assert detector.step().processed == 100
    assert store.detector_checkpoint(detector=DETECTOR_NAME) == start  # busy, under 5 s: no write
    now[0] += 2000
    assert detector.step().processed == 100  # 5 s since the last commit
    busy = store.detector_checkpoint(detector=DETECTOR_NAME)
    assert busy is not None and busy.watermark == start.watermark + 400
    now[0] += 100
    assert detector.step().processed == 100
    assert store.detector_checkpoint(detector=DETECTOR_NAME) == busy
    now[0] += 100
    assert detector.step().processed == 0  # quiet: the place is committed at once
    quiet = store.detector_checkpoint(detector=DETECTOR_NAME)
    assert quiet is not None and quiet.watermark == store.newest_seq()
    append(store, [ev("new-ip", T0 + 600_000, ip="203.0.113.9")])
    now[0] += 100
    found = detector.step()
    assert found.processed == 1 and found.stored  # an insight: committed with its place, at once
    cp = store.detector_checkpoint(detector=DETECTOR_NAME)
    assert cp is not None and cp.watermark == store.newest_seq()


def test_a_restart_between_commits_replays_the_tail_and_raises_each_insight_once(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "r.db")
    append(s, history())
    enable(s)
    now = [T0]
    first = Detector(s, Thresholds(), owner="a", clock=lambda: now[0], batch=50)
    first.step()
    append(s, [ev(f"m{i}", T0 + i * 1000) for i in range(120)])
    append(s, [ev("stop", T0 + 200_000, name="StopLogging", service="Actiontrail", rw="Write")])
    append(s, [ev(f"k{i}", T0 + 300_000 + i * 1000) for i in range(120)])
    for _ in range(5):  # 241 events in steps of 50: up to the insight and past it, never quiet
        now[0] += 100
        assert first.step().processed
    # Not quiet yet: the place after the insight is not committed, the insight is.
    cp = s.detector_checkpoint(detector=DETECTOR_NAME)
    assert cp is not None and cp.watermark < s.newest_seq()
    before = stored(s)
    assert "TrailConcealmentInsight" in {r["insightDetails"]["insightType"] for r in before}
    # "Crash": a second detector under the same owner resumes from the committed place.
    second = Detector(s, Thresholds(), owner="a", clock=lambda: now[0], batch=50)
    assert drain(second) == []  # the replayed insight is not raised again
    assert stored(s) == before
    cp = s.detector_checkpoint(detector=DETECTOR_NAME)
    assert cp is not None and cp.watermark == s.newest_seq()


def test_a_deferring_detector_waits_for_a_gap_in_a_busy_ingest_at_most_its_budget(store: EventStore) -> None:
    now = [T0]
    detector = Detector(store, Thresholds(), owner="a", clock=lambda: now[0], batch=1000, defer_ms=20_000)
    detector.step()
    n = iter(range(10**9))

    def ingest(count: int) -> None:
        append(store, [ev(f"d{next(n)}", T0 + i) for i in range(count)])

    def tick(count: int = 0) -> Any:
        if count:
            ingest(count)
        now[0] += 1000
        return detector.step()

    assert not tick().deferred  # caught up: nothing to wait for
    # A trickle (500 events/s) is not busy: detected at once.
    first = tick(500)
    assert not first.deferred and first.processed == 500
    # A burst (3,000 events/s): the detector leaves the log alone while it lasts …
    assert all(tick(3000).deferred for _ in range(5))
    # … and catches up in the gap: once the log has been quiet long enough that its growth over
    # the last 2 s is under the busy rate (a moment's stall in a busy ingest is not a gap).
    assert tick().deferred  # 1 s quiet: 3,000 events in the last 2 s
    gap = tick()
    assert not gap.deferred and gap.processed == 1000
    while (result := tick()).processed:
        assert not result.deferred  # behind and in a gap: no more waiting until caught up
    assert store.detector_checkpoint(detector=DETECTOR_NAME).watermark == store.newest_seq()  # type: ignore[union-attr]
    # Busy for longer than the budget: it waits 20 s after it fell behind, then reads while busy.
    waited = 0
    while (result := tick(2000)).deferred:
        waited += 1
    assert waited == 20 and result.processed == 1000


def test_without_defer_the_detector_reads_a_busy_log_at_once(store: EventStore) -> None:
    now = [T0]
    detector = Detector(store, Thresholds(), owner="a", clock=lambda: now[0], batch=1000)
    detector.step()
    for i in range(3):
        append(store, [ev(f"x{i}-{j}", T0 + j) for j in range(3000)])
        now[0] += 1000
        result = detector.step()
        assert not result.deferred and result.processed == 1000


def test_a_moments_stall_in_a_busy_ingest_is_not_a_gap(store: EventStore) -> None:
    now = [T0]
    detector = Detector(store, Thresholds(), owner="a", clock=lambda: now[0], batch=1000, defer_ms=20_000)
    detector.step()
    n = iter(range(10**9))

    def tick(count: int) -> Any:
        if count:
            append(store, [ev(f"s{next(n)}", T0 + i) for i in range(count)])
        now[0] += 250
        return detector.step()

    assert not tick(0).deferred
    # 2,000 events/s in steps of a quarter second, with a half-second stall (a WAL checkpoint,
    # a slow commit) in the middle: the detector keeps out of the way throughout.
    steps = [500] * 6 + [0, 0] + [500] * 6
    assert all(tick(count).deferred for count in steps)
