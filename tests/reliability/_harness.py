"""What every reliability test needs: `trailhouse serve` as a real process, credentials, signed
requests, process figures from /proc; the TCP proxy that can refuse or stall a database is in _proxy.

Everything here talks to 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from trailhouse.api.rpc.signature import percent_encode, v1_signature, v1_string_to_sign
from trailhouse.model.credentials import TokenScope
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.credentials import create_access_key, create_token
from trailhouse.service.secrets import Sealer
from trailhouse.storage import open_store

CLI = [sys.executable, "-m", "trailhouse.cli"]
V2017 = "2017-12-04"
V2020 = "2020-07-06"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ process figures


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS, in KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM (peak RSS) of a process, in KiB, from /proc/<pid>/status.

    RssAnon is the heap: what a leak grows. RssFile counts pages of mapped files, which for a SQLite
    store opened with mmap_size is the database file itself, read, not allocated.
    """
    wanted = ("VmRSS", "RssAnon", "RssFile", "VmHWM")
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in wanted:
            out[name] = int(rest.split()[0])
    missing = [name for name in wanted if name not in out]
    if missing:
        raise RuntimeError(f"no {', '.join(missing)} for {pid}")
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc/<pid>/stat (utime + stime)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ------------------------------------------------------------------------------------ the server


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class ServeProcess:
    """`trailhouse serve` in a child process; ``start``/``kill9``/``stop`` may be repeated."""

    db_url: str
    data_dir: Path
    master_key: str
    env_extra: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TRAILHOUSE_MASTER_KEY": self.master_key,
            "TRAILHOUSE_DATA_DIR": str(self.data_dir),
            **self.env_extra,
        }

    def start(self, timeout: float = 30.0) -> ServeProcess:
        self.starts += 1
        self.log_path = self.data_dir / f"serve-{self.port}-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--db", self.db_url, "--port", str(self.port), "--log-level", "warning"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"trailhouse serve did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def healthz_seconds(self, timeout: float = 10.0) -> float:
        """How long /healthz takes to answer 200 (``timeout`` + 1 when it does not)."""
        started = time.monotonic()
        try:
            ok = httpx.get(f"{self.url}/healthz", timeout=timeout).status_code == 200
        except httpx.TransportError:
            ok = False
        took = time.monotonic() - started
        return took if ok else timeout + 1


@contextlib.contextmanager
def serving(db_url: str, data_dir: Path, master_key: str, **env: str | float | int) -> Iterator[ServeProcess]:
    server = ServeProcess(db_url, data_dir, master_key, {k: str(v) for k, v in env.items()})
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------ credentials


@dataclass(frozen=True)
class Creds:
    account_id: str
    key_id: str
    secret: str
    token: str  # ingest + read, this account only

    @property
    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


def new_account() -> str:
    return str(1_000_000_000_000_000 + uuid.uuid4().int % 10**15)


def make_creds(db_url: str, master_key: str, account_id: str | None = None) -> Creds:
    account = account_id or new_account()
    store = open_store(db_url)
    try:
        key = create_access_key(store, Sealer(base64.b64decode(master_key)), account_id=account)
        token = create_token(
            store, account_ids=(account,), all_accounts=False, scopes=(TokenScope.INGEST, TokenScope.READ)
        ).secret
    finally:
        store.close()
    return Creds(account, key.key.access_key_id, key.secret, token)


# ------------------------------------------------------------------------------- signed requests


def v1_params(
    creds: Creds,
    action: str = "LookupEvents",
    version: str = V2020,
    nonce: str | None = None,
    **business: str,
) -> dict[str, str]:
    return {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": creds.key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": format_wire_time(now_ms()),
        **business,
    }


def sign_query(params: Mapping[str, str], secret: str, method: str = "GET") -> str:
    """The query string of a V1-signed request, as aliyunsdkcore sends it."""
    signed = {**params, "Signature": v1_signature(secret, v1_string_to_sign(method, params))}
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in signed.items())


def signed_get(creds: Creds, action: str = "LookupEvents", version: str = V2020, **business: str) -> str:
    """The path and query of a fresh V1-signed GET."""
    return "/?" + sign_query(v1_params(creds, action, version, **business), creds.secret)


def lookup_2020(creds: Creds, **attributes: str) -> dict[str, str]:
    """LookupEvents 2020-07-06 business parameters for ``{Key: Value}`` LookupAttribute pairs."""
    out: dict[str, str] = {}
    for n, (key, value) in enumerate(attributes.items(), start=1):
        out[f"LookupAttribute.{n}.Key"] = key
        out[f"LookupAttribute.{n}.Value"] = value
    return out


# ------------------------------------------------------------------------------------------ events


def event(account_id: str, event_id: str, time_ms: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": event_id,
        "eventVersion": "1",
        "eventTime": format_wire_time(time_ms),
        "eventName": "DescribeInstances",
        "eventType": "ApiCall",
        "eventRW": "Read",
        "serviceName": "Ecs",
        "sourceIpAddress": "192.0.2.10",
        "requestId": str(uuid.uuid4()).upper(),
        "acsRegion": "cn-hangzhou",
        "userIdentity": {
            "type": "ram-user",
            "accountId": account_id,
            "principalId": "2000000000000001",
            "userName": "alice",
            "accessKeyId": "LTAI5tReliabilityKey0000",
        },
    }
    body.update(extra)
    return body


def export_event_ids(server: ServeProcess, creds: Creds, timeout: float = 120) -> list[str]:
    """Every stored eventId of the account, through the native NDJSON export (repeats kept)."""
    import orjson

    ids: list[str] = []
    with httpx.stream(
        "GET",
        f"{server.url}/api/v1/events",
        params={"format": "ndjson", "start": "2000-01-01T00:00:00Z"},
        headers=creds.bearer,
        timeout=timeout,
    ) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.strip():
                ids.append(orjson.loads(line)["eventId"])
    return ids


def pg_url_via(url: str, port: int) -> str:
    """The same PostgreSQL URL, pointed at another port of 127.0.0.1."""
    return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{port}/")


def holds_socket_closed(sock: socket.socket, within: float) -> bool:
    """Whether the peer closes ``sock`` within ``within`` seconds (any bytes it sends first are read)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return True
        if not data:
            return True
    return False
