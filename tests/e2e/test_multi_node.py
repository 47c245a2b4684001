"""Two `trailhouse serve` processes sharing one PostgreSQL and one Redis behave as one service.

Each point of the multi-node promise is proven against real processes: an event ingested through
one node is visible through the other at once; a NextToken from one pages on the other; a nonce
used on one is rejected on the other; throttling is one limit across both.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import free_port, pg_schema_url
from tests.e2e.test_raw_requests import send, sign_v1, v1_params
from trailhouse.model.credentials import TokenScope
from trailhouse.service.credentials import create_access_key, create_token
from trailhouse.service.secrets import Sealer
from trailhouse.storage import open_store

pytestmark = pytest.mark.e2e
ACCOUNT = "5550001112223334"


@dataclass
class Node:
    url: str
    process: subprocess.Popen[bytes]


@dataclass
class Cluster:
    a: Node
    b: Node
    key_id: str
    secret: str
    token: str


def _start(db_url: str, redis_url: str, env: dict[str, str], *extra: str) -> Node:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trailhouse.cli",
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
            "--redis",
            redis_url,
            "--log-level",
            "warning",
            *extra,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Node(url, process)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("a node did not start")
        time.sleep(0.1)


@pytest.fixture
def cluster(pg_available: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    master = base64.b64encode(secrets.token_bytes(32)).decode()  # shared by both nodes, as deployed
    env = {**os.environ, "TRAILHOUSE_MASTER_KEY": master, "TRAILHOUSE_DATA_DIR": str(tmp_path)}
    prefix = f"mn{secrets.token_hex(4)}"
    with pg_schema_url(pg_available) as db_url:
        store = open_store(db_url)
        try:
            key = create_access_key(store, Sealer(base64.b64decode(master)), account_id=ACCOUNT)
            token = create_token(
                store, account_ids=(ACCOUNT,), all_accounts=False, scopes=(TokenScope.INGEST, TokenScope.READ)
            ).secret
        finally:
            store.close()
        # LookupEvents at its documented 2/s; the usage family switched off for the paging checks.
        extra = ("--throttle-lookup", "2", "--throttle-usage", "0")
        a = _start(db_url, redis_url, {**env, "TRAILHOUSE_REDIS_PREFIX": prefix}, *extra)
        try:
            b = _start(db_url, redis_url, {**env, "TRAILHOUSE_REDIS_PREFIX": prefix}, *extra)
            try:
                yield Cluster(a, b, key.key.access_key_id, key.secret, token)
            finally:
                b.process.terminate()
                b.process.wait(timeout=30)
        finally:
            a.process.terminate()
            a.process.wait(timeout=30)


def _ingest(node: Node, token: str, events: list[dict[str, object]]) -> None:
    r = httpx.post(
        f"{node.url}/api/v1/events",
        content=orjson.dumps(events),
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text


def _event(i: int) -> dict[str, object]:
    return {
        "eventId": f"mn-{i}",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60 - i)),
        "eventName": "DescribeInstances",
        "serviceName": "Ecs",
        "sourceIpAddress": f"10.9.0.{i % 200}",
        "userIdentity": {
            "accountId": ACCOUNT,
            "type": "ram-user",
            "userName": "ops",
            "accessKeyId": "LTAI5tMultiNodeKey000000",
        },
    }


def test_two_nodes_act_as_one(cluster: Cluster) -> None:
    c = cluster
    with httpx.Client(timeout=30) as http:
        # 1. Ingested through A, visible through B at once.
        _ingest(c.a, c.token, [_event(i) for i in range(7)])
        usage = send(
            http,
            c.b,
            sign_v1(
                "POST",
                v1_params(
                    c.key_id,
                    action="GetAccessKeyLastUsedIps",
                    AccessKey="LTAI5tMultiNodeKey000000",
                    ServiceName="Ecs",
                    PageSize="3",
                ),
                c.secret,
            ),
        )
        assert usage.status == 200 and len(usage.data["Ips"]) == 3

        # 2. A NextToken from B pages on A, and the walk is complete and in order.
        seen = [ip["Ip"] for ip in usage.data["Ips"]]
        token = usage.data["NextToken"]
        while token:
            page = send(
                http,
                c.a,
                sign_v1(
                    "POST",
                    v1_params(
                        c.key_id,
                        action="GetAccessKeyLastUsedIps",
                        AccessKey="LTAI5tMultiNodeKey000000",
                        ServiceName="Ecs",
                        PageSize="3",
                        NextToken=token,
                    ),
                    c.secret,
                ),
            )
            assert page.status == 200, page.data
            seen += [ip["Ip"] for ip in page.data["Ips"]]
            token = page.data.get("NextToken")
        assert seen == [f"10.9.0.{i}" for i in range(7)]  # most recent first: event i is i s older

        # 3. A nonce used on A is rejected on B.
        params = v1_params(c.key_id, MaxResults="50")
        first = send(http, c.a, sign_v1("POST", params, c.secret))
        assert first.status == 200 and len(first.data["Events"]) == 7
        replay = send(http, c.b, sign_v1("POST", params, c.secret))
        assert replay.code == "SignatureNonceUsed"

        # 4. One LookupEvents limit (2/s, burst 2) across both nodes.
        time.sleep(1.1)
        codes = [
            send(http, node, sign_v1("POST", v1_params(c.key_id), c.secret)).code
            for node in (c.a, c.b, c.a, c.b)
        ]
        assert codes.count(None) == 2 and codes.count("Throttling.User") == 2, codes
