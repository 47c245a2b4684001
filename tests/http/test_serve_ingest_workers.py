"""``POST /api/v1/events`` with TRAILHOUSE_INGEST_WORKERS: decoding in worker processes changes
nothing a client or the store can see. Every kind of batch (valid, invalid, atomic, gzip, over a
limit, events of an account the token may not write) gets the same status and the same bytes as
in one process, on both backends, and the stored logs are the same; a decode process killed, busy
or idle, costs a new pool and a second decoding of the batches it held; killed twice under one
request, a 503 that stores nothing, and the next request gets a new pool; a
setting that cannot work stops ``serve`` before it starts; the server's processes leave none
behind, whether it is stopped or killed, with one uvicorn process or several."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests._worker_deaths import half_a_result
from tests.conftest import BACKENDS, LiveServer, free_port, pg_schema_url
from trailhouse import settings as settings_module
from trailhouse.cli import app as cli_app
from trailhouse.model.credentials import TokenScope
from trailhouse.model.times import now_ms
from trailhouse.service import ingest_pool
from trailhouse.service.credentials import create_token
from trailhouse.settings import Settings
from trailhouse.storage import open_store

LIMITS = {
    "max_batch_events": 50,
    "max_body_bytes": 64 * 1024,
    "max_event_bytes": 4096,
    "insights_detector": "off",
}


def _event(i: int, account: str = "1111", **changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "eventId": f"sw-{account}-{i:04d}",
        "eventTime": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        "eventName": "DescribeInstances",
        "serviceName": "Ecs",
        "sourceIpAddress": f"198.51.100.{i % 250}",
        "userIdentity": {
            "accountId": account,
            "type": "ram-user",
            "userName": "ops",
            "accessKeyId": "LTAI5tSw",
        },
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def _ndjson(events: list[dict[str, object]]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def _batches() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(name, query, headers, body): every path of the decode, the judgement and the limits."""
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms() / 1000 + 3.5 * 86400))
    mixed = [
        b"\xef\xbb\xbf" + orjson.dumps(_event(0)) + b"\n",
        b"\n",
        _ndjson([_event(1), _event(2), _event(1)]),  # a duplicate within the batch
        b"{oops\n",
        _ndjson([_event(3, eventTime=None), _event(4, eventTime=future), _event(5, serviceName=5)]),
        _ndjson([_event(6, requestParameters={"blob": "x" * 5000})]),  # over max_event_bytes
        _ndjson([_event(7, eventTime="2019-01-01T00:00:00Z")]),  # older than retention
        b'{"eventId": "sw-lone", "eventTime": "2026-11-02T00:00:00Z", "eventName": "X", '
        b'"userIdentity": {"accountId": "1111", "userName": "\\ud800"}}\n',
        b"not json at all\n",
    ]
    foreign = [
        _event(10),
        _event(11, account="2222"),  # not the token's account
        _event(12, account="2222", eventTime="2019-01-01T00:00:00Z"),  # both: the account is named
        _event(13, account="2222", eventTime=None),  # invalid: the shape is named
        _event(14, account="2222", eventTime=future),  # no warning for what is refused
        _event(15),
    ]
    ndjson_gz = gzip.compress(_ndjson([_event(i) for i in range(20, 30)]))
    bomb = gzip.compress(b"\n" * (200 * 1024))
    return [
        ("array", "", {}, orjson.dumps([_event(i) for i in range(30, 40)])),
        ("wrapper", "", {}, orjson.dumps({"events": [_event(i) for i in range(35, 45)]})),
        ("single object", "", {}, orjson.dumps(_event(46))),
        ("mixed ndjson", "", {"content-type": "application/x-ndjson"}, b"".join(mixed)),
        ("gzip by header", "", {"content-encoding": "gzip"}, ndjson_gz),
        ("gzip by magic", "", {}, gzip.compress(orjson.dumps([_event(i) for i in range(50, 55)]))),
        ("atomic, one bad", "?atomic=true", {}, orjson.dumps([_event(60), _event(61, eventTime=None)])),
        ("atomic, all good", "?atomic=true", {}, orjson.dumps([_event(62), _event(63)])),
        ("foreign account", "", {}, orjson.dumps(foreign)),
        ("foreign, atomic", "?atomic=true", {}, orjson.dumps(foreign[:2])),
        ("too many events", "", {}, _ndjson([_event(i) for i in range(100, 151)])),
        ("body over the limit", "", {}, b"[" + b" " * (65 * 1024) + b"]"),
        ("gzip over the limit", "", {"content-encoding": "gzip"}, bomb),
        ("corrupt gzip", "", {}, b"\x1f\x8b" + b"\x00" * 40),
        ("truncated gzip", "", {}, ndjson_gz[:-20]),
        ("malformed document", "", {}, b'[{"eventId": "x"'),
        ("not json", "", {}, b"hello"),
        ("events not an array", "", {}, b'{"events": 5}'),
        ("empty", "", {}, b""),
    ]


@pytest.fixture(params=BACKENDS)
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'in-process.db'}", f"sqlite:///{tmp_path / 'workers.db'}"
        return
    base = request.getfixturevalue("pg_available")
    with pg_schema_url(base) as one, pg_schema_url(base) as many:
        yield one, many


def _post(
    server: LiveServer, secret: str, query: str, headers: dict[str, str], body: bytes
) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}", **headers}
    return httpx.post(f"{server.url}/api/v1/events{query}", content=body, headers=headers, timeout=60)


def _answer(response: httpx.Response) -> tuple[int, bytes]:
    """The status and the body, the request id (new for every request) taken out of errors."""
    data = response.json()
    if "requestId" in data:
        data.pop("requestId")
        return response.status_code, orjson.dumps(data)
    return response.status_code, response.content


def _log(url: str) -> list[tuple[int, str, str, bytes]]:
    store = open_store(url)
    try:
        return [
            (e.seq, e.account_id, e.event.event_id, e.event.body)
            for e in store.read_log(after_seq=0, limit=10_000)
        ]
    finally:
        store.close()


def test_workers_answer_and_store_exactly_as_one_process(
    server_factory: Callable[..., LiveServer], two_urls: tuple[str, str]
) -> None:
    one_url, many_url = two_urls
    one = server_factory(db_url=one_url, ingest_workers=0, **LIMITS)
    many = server_factory(db_url=many_url, ingest_workers=2, **LIMITS)
    assert one.services.decoder is None and many.services.decoder.workers == 2
    answers = []
    batches = _batches()
    for server in (one, many):
        everyone = create_token(server.store, account_ids=(), all_accounts=True, scopes=(TokenScope.INGEST,))
        only_1111 = create_token(
            server.store, account_ids=("1111",), all_accounts=False, scopes=(TokenScope.INGEST,)
        )
        got = {}
        for name, query, headers, body in batches:
            secret = only_1111.secret if name.startswith("foreign") else everyone.secret
            got[name] = _answer(_post(server, secret, query, headers, body))
        answers.append(got)
    in_process, in_workers = answers
    for name in in_process:
        assert in_workers[name] == in_process[name], name
    # What the answers say, so that "the same" is not the same emptiness.
    statuses = {name: status for name, (status, _) in in_process.items()}
    assert statuses["mixed ndjson"] == 200 and statuses["atomic, one bad"] == 422
    assert (
        statuses["too many events"]
        == statuses["body over the limit"]
        == statuses["gzip over the limit"]
        == 413
    )
    assert statuses["corrupt gzip"] == statuses["malformed document"] == statuses["not json"] == 400
    mixed = json.loads(in_process["mixed ndjson"][1])
    assert mixed["accepted"] == 6 and mixed["duplicates"] == 1
    reasons = " ".join(r["reason"] for r in mixed["rejections"])
    assert "line 6: " in reasons and "line 13: " in reasons and "TRAILHOUSE_MAX_EVENT_BYTES" in reasons
    assert "retention window" in reasons and "missing required field eventTime" in reasons
    warnings = " ".join(w["warning"] for w in mixed["warnings"])
    assert "3 days ahead of this server's clock" in warnings
    foreign = json.loads(in_process["foreign account"][1])
    assert foreign["accepted"] == 2
    assert [(r["index"], r["eventId"]) for r in foreign["rejections"]] == [
        (1, "sw-2222-0011"),
        (2, "sw-2222-0012"),
        (3, "sw-2222-0013"),
        (4, "sw-2222-0014"),
    ]
    assert foreign["rejections"][1]["reason"] == "not allowed to write events of account 2222"
    assert foreign["warnings"] == []
    assert json.loads(in_process["gzip over the limit"][1])["error"]["code"] == "PayloadTooLarge"
    assert json.loads(in_process["too many events"][1])["error"]["code"] == "BatchTooLarge"
    log_one, log_many = _log(one_url), _log(many_url)
    assert log_many == log_one and len(log_one) == 41


def _worker_busy(pid: int, since: float) -> bool:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") > since


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_when_busy(decoder: Any, spared: set[int], deadline: float, poster: threading.Thread) -> int:
    """Kill -9 the worker of ``decoder``'s (one-worker) pool that is not in ``spared`` once it is
    decoding (its CPU rises), and answer its pid."""
    while not (fresh := [p for p in decoder.pids() if p not in spared]):
        assert time.monotonic() < deadline and poster.is_alive()
        time.sleep(0.002)
    (worker,) = fresh
    idle_cpu = _cpu(worker)
    while _cpu(worker) <= idle_cpu + 0.02:  # it has the batch and is working on it
        assert time.monotonic() < deadline and poster.is_alive()
        time.sleep(0.002)
    os.kill(worker, signal.SIGKILL)
    return worker


@pytest.mark.parametrize("kills", [1, 2])
def test_a_worker_killed_mid_request_costs_a_retry_and_twice_a_503(
    server_factory: Callable[..., LiveServer], kills: int
) -> None:
    """Decoding is pure, so a batch whose worker is lost is decoded again in a new pool: one loss
    is a 200, stored once. Losing the second pool's worker too is a 503 that stores nothing (a
    body that killed every worker would be; a test kills them by hand)."""
    server = server_factory(ingest_workers=1, max_batch_events=10_000, max_body_bytes=32 * 2**20)
    decoder = server.services.decoder
    secret = create_token(server.store, account_ids=(), all_accounts=True, scopes=(TokenScope.INGEST,)).secret
    body = _ndjson([_event(i, eventName=f"Op{i}") for i in range(6000)])  # ~0.2-0.5 s of a worker's CPU
    deadline = time.monotonic() + 30
    while not decoder.pids():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    answer: list[httpx.Response] = []
    poster = threading.Thread(target=lambda: answer.append(_post(server, secret, "", {}, body)))
    poster.start()
    killed: set[int] = set()
    for _ in range(kills):  # the first pool's worker, then the retry's in the next pool
        killed.add(_kill_when_busy(decoder, killed, deadline, poster))
    poster.join(timeout=30)
    (response,) = answer
    if kills == 1:
        assert response.status_code == 200, response.text
        assert (response.json()["accepted"], response.json()["duplicates"]) == (6000, 0)
        assert server.store.count_events() == 6000 and decoder.pools_started == 2
    else:
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "ServiceUnavailable"
        assert "nothing of it was stored" in error["message"] and "send it again" in error["message"]
        assert server.store.count_events() == 0
        # The next request gets a new pool, and the same batch is stored whole, once.
        again = _post(server, secret, "", {}, body)
        assert again.status_code == 200, again.text
        assert (again.json()["accepted"], again.json()["duplicates"]) == (6000, 0)
        assert decoder.pools_started == 3
    assert not killed & set(decoder.pids()) and not any(_alive(pid) for pid in killed)


def test_a_body_whose_every_worker_dies_is_a_503_even_halfway_through_a_result(
    server_factory: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker that takes the batch dies while it sends the result back (a worker runs the
    function it is sent by reference: this one sends half a message, then SIGKILLs itself). The
    pool's thread, left reading the rest, would never see the loss; the decoder breaks the pool
    itself, decodes again in a new one, and after the second loss answers 503, nothing stored."""
    monkeypatch.setattr(ingest_pool, "WEDGE_CHECK_S", 0.2)
    server = server_factory(ingest_workers=1)
    decoder = server.services.decoder
    secret = create_token(server.store, account_ids=(), all_accounts=True, scopes=(TokenScope.INGEST,)).secret
    monkeypatch.setattr(ingest_pool, "_body_in_worker", half_a_result)
    started = time.monotonic()
    response = _post(server, secret, "", {}, _ndjson([_event(i) for i in range(20)]))
    assert response.status_code == 503, response.text
    assert "nothing of it was stored" in response.json()["error"]["message"]
    assert time.monotonic() - started < 20 and server.store.count_events() == 0
    assert decoder.pools_started == 2
    monkeypatch.undo()  # workers decode again: the next request is served by a new pool
    again = _post(server, secret, "", {}, _ndjson([_event(i) for i in range(20)]))
    assert again.status_code == 200 and again.json()["accepted"] == 20, again.text
    assert decoder.pools_started == 3


def test_an_idle_worker_killed_costs_the_next_request_nothing(
    server_factory: Callable[..., LiveServer],
) -> None:
    """A lost worker breaks its whole pool, even one that held nothing; the next batch finds the
    pool broken, and is decoded in a new one."""
    server = server_factory(ingest_workers=1)
    decoder = server.services.decoder
    secret = create_token(server.store, account_ids=(), all_accounts=True, scopes=(TokenScope.INGEST,)).secret
    deadline = time.monotonic() + 30
    while not decoder.pids():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    (worker,) = decoder.pids()
    broken = decoder._pool
    os.kill(worker, signal.SIGKILL)
    # The pool's own thread marks it broken (its private flag): the request meets a broken pool.
    while not getattr(broken, "_broken", False):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    response = _post(server, secret, "", {}, _ndjson([_event(i) for i in range(20)]))
    assert response.status_code == 200, response.text
    assert (response.json()["accepted"], response.json()["duplicates"]) == (20, 0)
    assert server.store.count_events() == 20
    assert decoder.pools_started == 2 and worker not in decoder.pids() and not _alive(worker)


def test_acknowledged_events_survive_a_worker_lost_under_load(
    server_factory: Callable[..., LiveServer],
) -> None:
    """Four producers, a worker killed among them: every batch answered 200 is stored once, every
    503 stored nothing, so resending the 503s stores each event exactly once."""
    server = server_factory(ingest_workers=2, max_batch_events=1000, max_body_bytes=4 * 2**20)
    decoder = server.services.decoder
    secret = create_token(server.store, account_ids=(), all_accounts=True, scopes=(TokenScope.INGEST,)).secret
    batches = [_ndjson([_event(b * 400 + i) for i in range(400)]) for b in range(24)]
    accepted = duplicates = 0
    statuses: list[int] = []
    lock = threading.Lock()
    todo = list(range(len(batches)))

    def produce() -> None:
        nonlocal accepted, duplicates
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    b = todo.pop()
                r = client.post(
                    f"{server.url}/api/v1/events",
                    content=batches[b],
                    headers={"authorization": f"Bearer {secret}"},
                )
                with lock:
                    statuses.append(r.status_code)
                    if r.status_code == 503:
                        todo.append(b)  # what a client does with a 503: send it again
                    else:
                        assert r.status_code == 200, r.text
                        accepted += r.json()["accepted"]
                        duplicates += r.json()["duplicates"]

    producers = [threading.Thread(target=produce) for _ in range(4)]
    for p in producers:
        p.start()
    deadline = time.monotonic() + 20
    while len(statuses) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    for pid in decoder.pids()[:1]:
        os.kill(pid, signal.SIGKILL)
    for p in producers:
        p.join(timeout=120)
    assert (accepted, duplicates) == (24 * 400, 0)
    assert server.store.count_events() == 24 * 400
    assert set(statuses) <= {200, 503}


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--ingest-workers", "-1"],
            {},
            "TRAILHOUSE_INGEST_WORKERS (or --ingest-workers) is -1: expected a count from 0",
        ),
        (
            ["--ingest-workers", "1000"],
            {},
            "is 1000: expected a count from 0 (decode in the server's process) to 128",
        ),
        (
            [],
            {"TRAILHOUSE_INGEST_WORKERS": "two"},
            "TRAILHOUSE_INGEST_WORKERS is 'two': expected a whole number",
        ),
    ],
)
def test_an_ingest_worker_count_that_cannot_work_stops_serve_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    db = tmp_path / "never.db"
    result = CliRunner().invoke(
        cli_app, ["serve", "--db", f"sqlite:///{db}", "--port", str(free_port()), *args]
    )
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())
    assert not db.exists()


@pytest.mark.parametrize(
    ("cores", "processes", "expected"),
    [
        (1, 1, 0),
        (2, 1, 1),
        (2, 2, 0),
        (3, 1, 2),
        (4, 1, 2),
        (16, 1, 2),
        (16, 4, 2),
        (16, 8, 1),
        (16, 16, 0),
        (4, 2, 1),
    ],
)
def test_the_default_is_the_spare_cores_of_each_server_process(
    monkeypatch: pytest.MonkeyPatch, cores: int, processes: int, expected: int
) -> None:
    """The cores but the server's (on 2 cores one: 37-65 % faster there since the write units,
    docs/benchmarks.md), at most 2 per server process (one writer keeps ~0.4 of a worker busy)."""
    monkeypatch.setattr(settings_module, "_cores", lambda: cores)
    assert Settings().resolved_ingest_workers(processes) == expected
    assert Settings(ingest_workers=3).resolved_ingest_workers(processes) == 3  # a setting is taken as it is


def _descendants(root: int) -> dict[int, str]:
    """Every process under ``root``, by pid, with its command line."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(
                    Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except OSError:
                continue
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    found.discard(root)
    out = {}
    for pid in found:
        try:
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return out


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _pool_processes(root: int) -> tuple[list[int], list[int]]:
    """The forkservers under ``root``, and their children (the decode workers, whose command
    line is the forkserver's: they are its forks)."""
    tree = {pid: command for pid, command in _descendants(root).items() if _alive(pid)}
    forked = {pid for pid, command in tree.items() if "forkserver" in command}
    servers = [pid for pid in forked if _parent(pid) not in forked]
    return servers, [pid for pid in forked if pid not in servers]


def _start_serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], int, str]:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "TRAILHOUSE_DB": db, "TRAILHOUSE_DATA_DIR": str(tmp_path / "data")}
    env["TRAILHOUSE_INSIGHTS_DETECTOR"] = "off"
    created = subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", "tokens", "create", "--all-accounts", "--json"],
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    token = json.loads(created.stdout)["token"]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trailhouse.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a group of its own, for a Ctrl-C sent to it alone
    )
    deadline = time.monotonic() + 40
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
        time.sleep(0.1)
    return proc, port, token


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Whatever a failed test left: ``serve``'s group, all of it (killing only uvicorn's supervisor
    would leave its worker processes, and their pools, running)."""
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # the group is gone
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 15
    while [p for p in pids if _alive(p)]:
        assert time.monotonic() < deadline, f"left behind: {[p for p in pids if _alive(p)]}"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c", "kill-9"])
def test_serve_leaves_no_decode_process_behind(tmp_path: Path, how: str) -> None:
    proc, port, token = _start_serve(tmp_path, "--ingest-workers", "2")
    try:
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/events",
            content=orjson.dumps([_event(i) for i in range(20)]),
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["accepted"] == 20
        servers, workers = _pool_processes(proc.pid)
        assert (len(servers), len(workers)) == (1, 2)
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        elif how == "ctrl-c":  # as a terminal sends it: to the whole group, workers included
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
        else:  # nothing of the server runs after this: its workers must notice alone
            proc.kill()
            proc.wait(timeout=30)
        _wait_gone(servers + workers)
    finally:
        _stop_group(proc)


def test_each_uvicorn_worker_decodes_with_its_own_pool(tmp_path: Path, redis_url: str) -> None:
    proc, port, token = _start_serve(
        tmp_path, "--workers", "2", "--redis", redis_url, "--ingest-workers", "1"
    )
    try:
        batches = [orjson.dumps([_event(b * 10 + i) for i in range(10)]) for b in range(12)]

        def post(body: bytes) -> int:
            with httpx.Client(timeout=30) as client:  # a connection each: both processes take some
                r = client.post(
                    f"http://127.0.0.1:{port}/api/v1/events",
                    content=body,
                    headers={"authorization": f"Bearer {token}"},
                )
                assert r.status_code == 200, r.text
                return int(r.json()["accepted"])

        threads_out: list[int] = []
        threads = [threading.Thread(target=lambda b=b: threads_out.append(post(b))) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sum(threads_out) == 120
        # One forkserver and its worker per uvicorn process, each started by its own server (the
        # second process may still be starting when the first answers).
        deadline = time.monotonic() + 30
        while (len((pool := _pool_processes(proc.pid))[0]), len(pool[1])) != (2, 2):
            assert time.monotonic() < deadline, pool
            time.sleep(0.1)
        servers, workers = pool
        assert len({_parent(s) for s in servers}) == 2 and proc.pid not in {_parent(s) for s in servers}
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
        _wait_gone(servers + workers)
    finally:
        _stop_group(proc)


def test_only_serve_forks_the_default_pool(
    monkeypatch: pytest.MonkeyPatch, server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """The host's default is the ``serve`` command's choice; an app built elsewhere (a test, the
    ``trailhouse.testing`` emulator) with the setting unset forks no decode process."""
    monkeypatch.setattr(settings_module, "_cores", lambda: 4)
    monkeypatch.delenv("TRAILHOUSE_INGEST_WORKERS", raising=False)
    embedded = server_factory(db_url=f"sqlite:///{tmp_path / 'embedded.db'}")
    assert embedded.services.settings.ingest_workers is None and embedded.services.decoder is None
    assert Settings().resolved_ingest_workers() == 2  # what `serve` would start here
