"""The Insights worker as real processes: ``trailhouse serve`` starts it, restarts it when it dies and
leaves none behind; ``trailhouse insights worker`` detects on its own beside a server whose detector
is off. Events go in over HTTP, insights come out of ``GET /api/v1/insights``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import free_port
from tests.http.test_insights_webhook import Receiver, receiver_factory  # noqa: F401 (a fixture)
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.insights.detector import DETECTOR_NAME
from trailhouse.storage import open_store

ACCOUNT = "1000000000000042"


def run_cli(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "trailhouse", *args], capture_output=True, env=env, timeout=60, check=True
    )
    return proc.stdout.decode()


def _is_decode_pool(pid: int) -> bool:
    """A process of serve's decode pool (its forkserver, its resource tracker), not a worker."""
    try:
        return b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def workers_of(pid: int) -> list[int]:
    """``pid``'s live children but its decode pool's processes (``serve`` on 2 cores or more
    decodes ingest in them): the Insights workers it runs."""
    return [child for child in children_of(pid) if not _is_decode_pool(child)]


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (zombies are dead: they only wait to be reaped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def niceness(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


def wait_for(what: str, check: Callable[[], Any], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(0.2)


class Node:
    """A store, a data directory, a token, and ``trailhouse`` processes over them."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.db = f"sqlite:///{tmp_path / 'trail.db'}"
        self.data = tmp_path / "data"
        self.env = {**os.environ, "TRAILHOUSE_DB": self.db, "TRAILHOUSE_DATA_DIR": str(self.data), **env}
        made = run_cli(
            "tokens",
            "create",
            "--account",
            ACCOUNT,
            "--scope",
            "ingest",
            "--scope",
            "read",
            "--json",
            env=self.env,
        )
        self.headers = {"authorization": f"Bearer {json.loads(made)['token']}"}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.url = ""

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trailhouse", *args],
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(proc)
        return proc

    def serve(self, **env: str) -> subprocess.Popen[bytes]:
        port = free_port()
        proc = self.start("serve", "--port", str(port), **env)
        self.url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the server answers", up, 30)
        return proc

    def status(self) -> dict[str, Any] | None:
        try:
            status: dict[str, Any] = orjson.loads((self.data / "insights-worker.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return status

    def enable(self) -> None:
        """Turn TrailConcealmentInsight on and wait until a detector has taken its start in the log."""
        run_cli("insights", "enable", "TrailConcealmentInsight", "--account", ACCOUNT, env=self.env)
        store = open_store(self.db)
        try:
            wait_for(
                "the detector's first checkpoint", lambda: store.detector_checkpoint(detector=DETECTOR_NAME)
            )
        finally:
            store.close()

    def stop_logging(self, actor: str) -> str:
        """A StopLogging by an identity that never did one: a TrailConcealmentInsight, sent over HTTP."""
        event_id = f"stop-{uuid.uuid4()}"
        event = {
            "eventId": event_id,
            "eventVersion": "1",
            "eventTime": format_wire_time(now_ms()),
            "eventName": "StopLogging",
            "eventType": "ApiCall",
            "eventRW": "Write",
            "serviceName": "Actiontrail",
            "sourceIpAddress": "203.0.113.9",
            "acsRegion": "cn-hangzhou",
            "requestParameters": {"Name": "audit"},
            "userIdentity": {"type": "ram-user", "accountId": ACCOUNT, "userName": actor},
        }
        reply = httpx.post(f"{self.url}/api/v1/events", content=orjson.dumps([event]), headers=self.headers)
        assert reply.status_code == 200 and reply.json()["accepted"] == 1, reply.text
        return event_id

    def insight_for(self, event_id: str) -> list[dict[str, Any]]:
        reply = httpx.get(
            f"{self.url}/api/v1/insights",
            params={"type": "TrailConcealmentInsight"},
            headers=self.headers,
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        return [r for r in reply.json()["insights"] if r["triggeringEventIds"] == [event_id]]

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    made: list[Node] = []

    def make(**env: str) -> Node:
        made.append(Node(tmp_path, **env))
        return made[-1]

    yield make
    for n in made:
        n.close()


def worker_of(node: Node, serve: subprocess.Popen[bytes], not_pid: int | None = None) -> int:
    """The pid of serve's running worker (its child, the one writing the status file)."""

    def found() -> int | None:
        status = node.status()
        pid = status and status.get("pid")
        if (
            isinstance(pid, int)
            and pid != not_pid
            and pid in workers_of(serve.pid)
            and not status.get("stopped")
        ):
            return pid
        return None

    pid: int = wait_for("serve's worker process", found, 60)
    return pid


def test_serve_runs_the_worker_restarts_it_and_leaves_none(node: Callable[..., Node]) -> None:
    n = node()
    serve = n.serve()
    worker = worker_of(n, serve)
    assert workers_of(serve.pid) == [worker]  # one worker, a child of the server
    pool = [p for p in children_of(serve.pid) if p != worker]  # the decode pool, if any
    assert niceness(worker) == min(19, niceness(serve.pid) + 10)  # ingest first when the CPU is short
    n.enable()
    first = n.stop_logging("mallory")
    records = wait_for("the insight", lambda: n.insight_for(first))
    assert {r["insightDetails"]["state"] for r in records} <= {"Start", "End"}

    # The worker dies: the server starts another, which carries on from the checkpoint.
    os.kill(worker, signal.SIGKILL)
    second_worker = worker_of(n, serve, not_pid=worker)
    second = n.stop_logging("trudy")
    wait_for("an insight after the restart", lambda: n.insight_for(second))
    # The status file is rewritten every second: the step that raised it may not be in it yet.

    def detecting() -> str | None:
        text = httpx.get(f"{n.url}/metrics").text
        return text if "trailhouse_insights_detector_leader 1.0" in text else None

    metrics = wait_for("/metrics to show the worker detecting", detecting, 10)
    assert "trailhouse_insights_worker_restarts_total 1.0" in metrics
    assert "trailhouse_insights_worker_up 1.0" in metrics
    # Raised once each, though two workers ran.
    assert len(n.insight_for(first)) == len(n.insight_for(second)) == 2

    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) in (0, -signal.SIGTERM)
    assert not alive(second_worker), "the worker outlived the server"
    # The pool's processes end when the server's end of their pipes closes, a moment after it.
    wait_for("the decode pool to stop with the server", lambda: not [p for p in pool if alive(p)], 10)
    assert n.status() is not None and n.status()["stopped"] == "stopped by SIGTERM"  # type: ignore[index]


def test_a_killed_server_leaves_no_worker(node: Callable[..., Node]) -> None:
    n = node()
    serve = n.serve()
    worker = worker_of(n, serve)
    serve.kill()  # SIGKILL: no shutdown runs; the worker notices its parent is gone
    serve.wait()
    wait_for("the orphaned worker to stop", lambda: not alive(worker), 15)
    status = n.status()
    assert status is not None and "parent process" in str(status["stopped"])


def test_the_standalone_worker_detects_beside_a_server_without_one(
    node: Callable[..., Node],
    receiver_factory: Callable[[list[int]], Receiver],  # noqa: F811
) -> None:
    receiver = receiver_factory([503])  # the first attempt fails: retried, then delivered
    n = node(TRAILHOUSE_INSIGHT_WEBHOOK_URL=receiver.url, TRAILHOUSE_INSIGHT_WEBHOOK_SECRET="s")
    serve = n.serve(TRAILHOUSE_INSIGHTS_DETECTOR="off")
    worker = n.start("insights", "worker")
    n.enable()
    assert workers_of(serve.pid) == []  # the server runs none
    event_id = n.stop_logging("mallory")
    wait_for("the insight", lambda: n.insight_for(event_id))
    wait_for("both records delivered", lambda: len(receiver.received) >= 3)

    def delivered() -> dict[str, Any] | None:
        status = n.status()
        return status if status and (status["webhook"] or {}).get("delivered") == 2 else None

    status = wait_for("the webhook's counts in the status file", delivered, 30)
    assert status["pid"] == worker.pid and status["detector"]["leader"] is True
    assert (status["webhook"]["retried"], status["webhook"]["dead_letters"]) == (1, 0)
    shown = run_cli("insights", "status", env=n.env)
    assert "running" in shown and "delivered 2, retried 1, dead letters 0" in shown, shown
    metrics = httpx.get(f"{n.url}/metrics").text  # the server's /metrics reads the same file
    assert "trailhouse_insights_webhook_delivered_total 2.0" in metrics
    assert "trailhouse_insights_worker_restarts" not in metrics  # it supervises none

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert (n.status() or {}).get("stopped") == "stopped by SIGTERM"
    assert "stopped by SIGTERM" in run_cli("insights", "status", env=n.env)
