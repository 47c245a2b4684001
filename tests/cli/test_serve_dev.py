"""``trailhouse serve --dev``: a real process with a throwaway store, throttling off, and the
credentials it prints working with the official SDK; the store is gone once the server stops."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from alibabacloud_actiontrail20200706 import models as m20
from alibabacloud_actiontrail20200706.client import Client
from alibabacloud_tea_openapi.models import Config

from tests.cli._proc import clean_env, run
from tests.conftest import free_port


def _start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trailhouse",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *args,
        ],
        env=env,
        cwd=env["HOME"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 30
    for line in process.stdout:  # the banner is printed before the server starts listening
        match = re.match(r"(AccountId|AccessKeyId|AccessKeySecret|Token|Endpoint):\s+(\S+)", line)
        if match:
            printed[match[1]] = match[2]
        if "Add events" in line or time.monotonic() > deadline:
            break
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()  # type: ignore[union-attr]
        time.sleep(0.1)
    return process, printed


def test_dev_server_prints_working_credentials_and_forgets_everything(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    process, printed = _start(env, "--account", "1234567890123456")
    try:
        assert printed["AccountId"] == "1234567890123456"
        assert printed["Endpoint"].startswith("http://127.0.0.1:")
        endpoint = printed["Endpoint"].removeprefix("http://")
        answer = httpx.post(
            f"http://{endpoint}/api/v1/events",
            headers={"Authorization": f"Bearer {printed['Token']}"},
            json=[
                {
                    "eventId": "dev-1",
                    "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "eventName": "CreateUser",
                    "userIdentity": {"accountId": "1234567890123456", "userName": "alice"},
                }
            ],
        ).json()
        assert answer["accepted"] == 1
        client = Client(
            Config(
                access_key_id=printed["AccessKeyId"],
                access_key_secret=printed["AccessKeySecret"],
                endpoint=endpoint,
                protocol="http",
            )
        )
        for _ in range(8):  # the cloud's per-account rate would answer Throttling.User here
            events = client.lookup_events(m20.LookupEventsRequest()).body.events
            assert [e["eventId"] for e in events] == ["dev-1"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    store = re.search(r"store sqlite:///(\S+)\)", stderr)
    assert store, stderr
    folder = Path(store[1]).parent
    assert folder.name.startswith("trailhouse-dev-") and not folder.exists()
    assert not (tmp_path / "trailhouse.db").exists()  # nothing written where the command ran


def test_dev_is_one_process(tmp_path: Path) -> None:
    result = run("serve", "--dev", "--workers", "2", env=clean_env(tmp_path))
    assert result.returncode == 2 and "--dev runs one process" in result.stderr
    result = run("serve", "--account", "1", env=clean_env(tmp_path), timeout=30)
    assert result.returncode == 2 and "--account is for --dev" in result.stderr
