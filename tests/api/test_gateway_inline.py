"""Where the gateway runs an operation: read-only ones on the event loop first when nothing waits
on the network (SQLite, limits in process), stopped at TRAILHOUSE_INLINE_READ_MS and run again in
a worker thread when they need longer; everything else in a worker thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from trailhouse.api.app import create_app
from trailhouse.api.context import Services
from trailhouse.api.rpc.call import Call
from trailhouse.model.event_text import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.credentials import NewAccessKey, create_access_key
from trailhouse.service.secrets import Sealer, load_master_key
from trailhouse.settings import Settings

from ._signed import signed_query
from .test_app_rpc_route import Asgi

ACCOUNT = "1234567890123456"
LOOKUP = ("LookupEvents", "2020-07-06")
CREATE_TRAIL = ("CreateTrail", "2020-07-06")
#: A statement that runs for about a second on SQLite, and is interrupted at any budget.
SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000000) SELECT count(*) FROM c"
)


def _app(url: str, tmp_path: Path, **settings: Any) -> tuple[Any, NewAccessKey]:
    cfg = Settings(
        **{
            "db_url": url,
            "data_dir": str(tmp_path),
            "throttle_lookup_events": 0,
            "throttle_access_key_usage": 0,
            "throttle_trails": 0,
            **settings,
        }
    )
    app = create_app(cfg)
    store = app.state.services.store
    sealer = Sealer(load_master_key(None, tmp_path))
    new = create_access_key(store, sealer, account_id=ACCOUNT, user_name="root")
    now = now_ms()
    store.append(
        [
            event_from_mapping(
                {
                    "eventId": f"inline-{n}",
                    "eventName": "DescribeInstances",
                    "eventTime": format_wire_time(now - 60_000 - n),
                    "eventSource": "ecs.aliyuncs.com",
                    "serviceName": "Ecs",
                    "sourceIpAddress": "10.0.0.1",
                    "eventRW": "Read",
                    "acsRegion": "cn-hangzhou",
                    "userIdentity": {"type": "root-account", "accountId": ACCOUNT, "principalId": ACCOUNT},
                }
            )
            for n in range(30)
        ]
    )
    return app, new


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    apps: list[Any] = []
    yield apps
    for app in apps:
        app.state.services.store.close()


def _lookup(app: Any, key: NewAccessKey, **params: str) -> dict[str, Any]:
    status, _, body = Asgi(app)("GET", signed_query(key, **{"MaxResults": "20", **params}))
    answer = orjson.loads(body)
    assert status == 200, answer
    return answer


def test_a_read_runs_on_the_event_loop_on_sqlite_and_in_a_thread_on_postgresql(
    backend_url: str, tmp_path: Path, record: Any, closing: list[Any]
) -> None:
    app, key = _app(backend_url, tmp_path)
    closing.append(app)
    seen = record(LOOKUP)
    answer = _lookup(app, key)
    assert len(answer["Events"]) == 20
    assert len(seen) == 1
    if backend_url.startswith("sqlite"):
        # On the loop (asyncio.run's thread here), under the inline budget, not the query limit.
        assert seen[0].thread == threading.main_thread().name
        assert seen[0].budget_s == pytest.approx(0.005)
    else:
        assert seen[0].thread != threading.main_thread().name
        assert seen[0].budget_s == 10.0


def test_inline_read_ms_zero_sends_reads_to_a_thread(tmp_path: Path, record: Any, closing: list[Any]) -> None:
    app, key = _app(f"sqlite:///{tmp_path / 't.db'}", tmp_path, inline_read_ms=0)
    closing.append(app)
    seen = record(LOOKUP)
    _lookup(app, key)
    assert [s.thread != threading.main_thread().name for s in seen] == [True]
    assert seen[0].budget_s == 10.0


def test_a_write_never_runs_on_the_event_loop(tmp_path: Path, record: Any, closing: list[Any]) -> None:
    app, key = _app(f"sqlite:///{tmp_path / 't.db'}", tmp_path)
    closing.append(app)
    seen = record(CREATE_TRAIL)
    # Answered by the handler either way (here: no destination given): the thread is what counts.
    status, _, _ = Asgi(app)("GET", signed_query(key, Action="CreateTrail", Name="inline-trail"))
    assert status == 400
    assert [s.thread != threading.main_thread().name for s in seen] == [True]


def test_a_read_too_long_for_the_loop_is_stopped_and_answered_from_a_thread(
    tmp_path: Path, record: Any, closing: list[Any]
) -> None:
    """The first attempt is interrupted at the inline budget; the same admitted request (its nonce
    taken once) is answered in full from a worker thread under the query limit."""
    app, key = _app(f"sqlite:///{tmp_path / 't.db'}", tmp_path)
    closing.append(app)
    expected = _lookup(app, key)
    calls: list[str] = []

    def slow(call: Call, svc: Services) -> None:
        # Only the loop's attempt meets the slow statement: the thread's would only make the
        # test's time depend on the machine's load (a second on a quiet one, ten on a busy one).
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            store: Any = svc.store
            with store._guard():
                store._read(SLOW_SQL)

    seen = record(LOOKUP, slow)
    answer = _lookup(app, key)
    assert [e["eventId"] for e in answer["Events"]] == [e["eventId"] for e in expected["Events"]]
    first, second = seen
    assert first.thread == threading.main_thread().name and first.interrupted
    assert first.seconds < 0.2, f"the loop was held {first.seconds * 1000:.0f} ms past a 5 ms budget"
    assert second.thread != threading.main_thread().name and not second.interrupted
    assert second.budget_s is not None and 9.0 < second.budget_s <= 10.0


def test_the_query_limit_counts_the_time_on_the_loop(tmp_path: Path, record: Any, closing: list[Any]) -> None:
    """A query limit below the inline budget: the loop's attempt uses all of it, and the request is
    answered 503 without a second attempt."""
    app, key = _app(f"sqlite:///{tmp_path / 't.db'}", tmp_path, inline_read_ms=50, query_timeout_s=0.02)
    closing.append(app)

    def slow(call: Call, svc: Services) -> None:
        store: Any = svc.store
        with store._guard():
            store._read(SLOW_SQL)

    seen = record(LOOKUP, slow)
    status, _, body = Asgi(app)("GET", signed_query(key, MaxResults="20"))
    assert status == 503, body
    assert b"TRAILHOUSE_QUERY_TIMEOUT_S" in body
    assert len(seen) == 1 and seen[0].interrupted and seen[0].budget_s == pytest.approx(0.02)
