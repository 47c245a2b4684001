"""`trailhouse serve` as a real process: it starts, serves, logs no secret, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from tests.conftest import free_port
from trailhouse.model.query import EventFilter
from trailhouse.storage import open_store


def run_cli(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", *args], capture_output=True, env=env, timeout=60, check=True
    )
    return proc.stdout.decode()


def test_serve_then_sigterm(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "TRAILHOUSE_DB": db, "TRAILHOUSE_DATA_DIR": str(tmp_path / "data")}
    token = json.loads(run_cli("tokens", "create", "--account", "42", "--json", env=env))["token"]
    key = json.loads(run_cli("keys", "create", "--account", "42", "--json", env=env))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trailhouse.cli", "serve", "--port", str(port), "--log-level", "debug"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        events = [
            {
                "eventId": f"s{i}",
                "eventTime": "2026-11-20T00:00:00Z",
                "eventName": "X",
                "userIdentity": {"accountId": "42"},
            }
            for i in range(20)
        ]
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/events",
            content=orjson.dumps(events),
            headers={"authorization": f"Bearer {token}"},
        )
        assert r.json()["accepted"] == 20
        # A V1 request puts its signature in the query string: the access log must not show it.
        httpx.get(
            f"http://127.0.0.1:{port}/?Action=LookupEvents&Signature=SeCrEtSiG&AccessKeyId={key['accessKeyId']}"
        )
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down gracefully, so -SIGTERM is a clean stop.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stdout is not None
    with proc.stdout:
        log = proc.stdout.read().decode()
    assert "/api/v1/events" in log  # the access log is on
    assert "Application shutdown complete" in log  # the lifespan ran: the store was closed
    for secret in (token, key["accessKeySecret"], "SeCrEtSiG"):
        assert secret not in log
    store = open_store(db)
    try:
        found = store.find_events(
            account_id="42", flt=EventFilter(0, 2**62), after=None, descending=True, limit=50
        )
        assert len(found) == 20
    finally:
        store.close()


def test_serve_with_workers_shares_nonces_through_redis(tmp_path: Path, redis_url: str) -> None:
    db = f"sqlite:///{tmp_path / 'workers.db'}"
    env = {**os.environ, "TRAILHOUSE_DB": db, "TRAILHOUSE_DATA_DIR": str(tmp_path / "data")}
    refused = subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and b"--redis" in refused.stderr
    token = json.loads(run_cli("tokens", "create", "--account", "42", "--json", env=env))["token"]
    port = free_port()
    env["TRAILHOUSE_REDIS_PREFIX"] = f"workers-{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trailhouse.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--redis",
            redis_url,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "workers did not start"
            time.sleep(0.2)
        event = {
            "eventId": "w1",
            "eventTime": "2026-11-20T00:00:00Z",
            "eventName": "X",
            "userIdentity": {"accountId": "42"},
        }
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/events",
            content=orjson.dumps([event]),
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.json()["accepted"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
