"""The Insights webhook over real HTTP: signed bodies, retries with back-off, dead letters, and a
server that raises an insight and delivers it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import LiveServer, free_port
from trailhouse.api import insights_task
from trailhouse.api.insights_task import WEBHOOK_CURSOR, Webhook
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.insights.detector import DETECTOR_NAME
from trailhouse.service.insights.record import Statistics, insight_pair
from trailhouse.storage.base import DetectorCheckpoint, EventStore
from trailhouse.storage.sqlite import SqliteStore

SECRET = "s3cret"


class Receiver:
    """A webhook endpoint on 127.0.0.1 answering ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.delay = 0.0
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver_factory() -> Iterator[Callable[[list[int]], Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.server.shutdown()
        r.server.server_close()


def record() -> Any:
    return insight_pair(
        account_id="1000000000000001",
        insight_type="IpInsight",
        insight_object="203.0.113.1",
        anchor=str(uuid.uuid4()),
        time_ms=now_ms(),
        region="cn-hangzhou",
        statistics=Statistics(1, 0, 0, 0, 1),
        attributions=[],
        triggers=["e1"],
        explanation="x",
        trigger=None,
    )[0]


def store_records(store: EventStore, records: list[Any]) -> None:
    """Store records as the detector does (its lease, one transaction)."""
    assert store.take_detector_lease(detector="test", owner="t", now_ms=now_ms(), ttl_ms=60_000)
    cp = store.detector_checkpoint(detector="test")
    store.commit_insights(
        records, detector="test", owner="t", checkpoint=DetectorCheckpoint(cp.watermark + 1 if cp else 1, b"")
    )


def deliver(hook: Webhook, store: EventStore, records: list[Any], seconds: float, owner: str = "w") -> None:
    """Run the webhook's loop; once it has its cursor (the newest record then), store ``records``."""

    async def run() -> None:
        task = asyncio.create_task(hook.deliver_forever(store, owner=owner, idle_s=0.05))
        # Its cursor, for its URL (it keeps the URL's hash: a cursor of another URL is replaced).
        mine = hashlib.sha256(hook.url.encode()).hexdigest()[:16].encode()
        deadline = time.monotonic() + 10
        while (cursor := store.detector_checkpoint(detector=WEBHOOK_CURSOR)) is None or cursor.state != mine:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.02)
        await asyncio.to_thread(store_records, store, records)
        await asyncio.sleep(seconds)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    s = SqliteStore(tmp_path / "w.db")
    yield s
    s.close()


def test_a_signed_body_retried_until_accepted(
    receiver_factory: Callable[[list[int]], Receiver], monkeypatch: pytest.MonkeyPatch, store: EventStore
) -> None:
    monkeypatch.setattr(insights_task, "WEBHOOK_FIRST_BACKOFF_S", 0.05)
    receiver = receiver_factory([500, 503])
    hook = Webhook(receiver.url, SECRET)
    r = record()
    deliver(hook, store, [r], 1.5)
    assert len(receiver.received) == 3
    headers, body = receiver.received[-1]
    assert body == r.body
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-trailhouse-signature"] == expected
    assert headers["x-trailhouse-insight-id"] == r.insight_id
    assert headers["content-type"] == "application/json"
    assert (hook.stats.delivered, hook.stats.retried, hook.stats.dead_letters) == (1, 2, 0)
    # Each attempt is its own delivery.
    assert len({h["x-trailhouse-delivery"] for h, _ in receiver.received}) == 3


def test_a_record_that_always_fails_is_a_dead_letter(
    receiver_factory: Callable[[list[int]], Receiver], monkeypatch: pytest.MonkeyPatch, store: EventStore
) -> None:
    monkeypatch.setattr(insights_task, "WEBHOOK_FIRST_BACKOFF_S", 0.01)
    receiver = receiver_factory([500] * 10)
    hook = Webhook(receiver.url, SECRET)
    r = record()
    deliver(hook, store, [r], 2.0)
    assert len(receiver.received) == insights_task.WEBHOOK_ATTEMPTS
    assert hook.stats.dead_letters == 1 and list(hook.stats.dead_ids) == [r.insight_id]
    assert hook.stats.delivered == 0
    # Given up: the cursor is past it, a restarted loop does not send it again.
    deliver(Webhook(receiver.url, SECRET), store, [], 0.3)
    assert len(receiver.received) == insights_task.WEBHOOK_ATTEMPTS


def test_the_server_delivers_what_its_detector_raises(
    server_factory: Callable[..., LiveServer], receiver_factory: Callable[[list[int]], Receiver]
) -> None:
    receiver = receiver_factory([])
    server = server_factory(insight_webhook_url=receiver.url, insight_webhook_secret=SECRET)
    account = "1000000000000002"
    server.store.set_insight_type(
        account_id=account, insight_type="TrailConcealmentInsight", enabled=True, now_ms=now_ms()
    )
    # The detector (in serve's worker process) starts at the log's head: wait until it has.
    deadline = time.monotonic() + 60
    while server.store.detector_checkpoint(detector=DETECTOR_NAME) is None:
        assert time.monotonic() < deadline, "the server's detector did not start"
        time.sleep(0.1)
    event = {
        "eventId": "stop-1",
        "eventTime": format_wire_time(now_ms()),
        "eventName": "DeleteTrail",
        "eventRW": "Write",
        "serviceName": "Actiontrail",
        "sourceIpAddress": "203.0.113.9",
        "requestParameters": {"Name": "audit"},
        "userIdentity": {"accountId": account, "type": "ram-user", "userName": "m", "accessKeyId": "LTAIm"},
    }
    server.store.append([event_from_mapping(event)])
    deadline = time.monotonic() + 60
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    states = sorted(orjson.loads(body)["insightDetails"]["state"] for _, body in receiver.received)
    assert states == ["End", "Start"]
    for headers, body in receiver.received:
        assert orjson.loads(body)["triggeringEventIds"] == ["stop-1"]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-trailhouse-signature"] == expected


def test_a_stopped_webhook_loses_nothing_and_its_successor_goes_on(
    receiver_factory: Callable[[list[int]], Receiver], store: EventStore
) -> None:
    receiver = receiver_factory([])
    receiver.delay = 0.05  # 30 records take 1.5 s: the first loop stops about a third of the way
    records = [record() for _ in range(30)]

    async def run_first() -> Webhook:
        first = Webhook(receiver.url, SECRET)
        task = asyncio.create_task(first.deliver_forever(store, owner="w1", lease_ms=300, idle_s=0.05))
        while store.detector_checkpoint(detector=WEBHOOK_CURSOR) is None:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(store_records, store, records)
        await asyncio.sleep(0.5)
        task.cancel()  # as a worker stopped mid-delivery
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return first

    first = asyncio.run(run_first())
    assert 0 < first.stats.delivered < len(records)
    time.sleep(0.4)  # the first loop's lease runs out; another worker takes over from the cursor
    deliver(Webhook(receiver.url, SECRET), store, [], 3.0, owner="w2")
    sent = [h["x-trailhouse-insight-id"] for h, _ in receiver.received]
    expected = [r.insight_id for r in records]
    assert set(sent) == set(expected)  # nothing lost
    # In order, and at most the record in flight at the stop sent twice.
    assert len(sent) - len(expected) <= 1
    assert [i for n, i in enumerate(sent) if i not in sent[:n]] == expected


def test_a_new_url_starts_at_the_newest_record(
    receiver_factory: Callable[[list[int]], Receiver], store: EventStore
) -> None:
    old, new = receiver_factory([]), receiver_factory([])
    deliver(Webhook(old.url, SECRET), store, [record()], 0.5)
    assert len(old.received) == 1
    store_records(store, [record()])  # raised while no webhook ran
    # The same URL again would send it; a new URL does not send the history to a new receiver.
    deliver(Webhook(new.url, SECRET), store, [latest := record()], 0.5)
    assert [h["x-trailhouse-insight-id"] for h, _ in new.received] == [latest.insight_id]
