"""``/`` goes straight to the gateway (``App.__call__``), bypassing Starlette's routing and
middleware: the answer must be the one the routed path gives, byte for byte, header for header."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from trailhouse.api.app import RPC_METHODS, create_app
from trailhouse.api.rpc.gateway import MAX_RPC_BODY
from trailhouse.service.credentials import NewAccessKey, create_access_key
from trailhouse.service.secrets import Sealer, load_master_key
from trailhouse.settings import Settings

from ._signed import signed_query

ACCOUNT = "1234567890123456"


def rpc_scope(method: str, query: bytes, **scope: Any) -> dict[str, Any]:
    """The ASGI scope of a request to ``/`` as uvicorn builds it (two Host headers: the first counts)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"rpc.test"), (b"host", b"second.test")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        **scope,
    }


class Asgi:
    """Call an ASGI app with a raw scope and collect what it sends."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.messages: list[dict[str, Any]] = []

    def __call__(
        self, method: str, query: bytes = b"", body: bytes = b"", **scope: Any
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        messages: list[dict[str, Any]] = []
        self.messages = messages
        chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

        async def receive() -> dict[str, Any]:
            if not chunks:  # the body was read: as a server does, wait for a disconnect that never comes
                await asyncio.Event().wait()
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        asyncio.run(self.app(rpc_scope(method, query, **scope), receive, send))
        start, *rest = messages
        assert start["type"] == "http.response.start"
        return start["status"], start["headers"], b"".join(m.get("body", b"") for m in rest)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Any, NewAccessKey]]:
    cfg = Settings(
        db_url=f"sqlite:///{tmp_path / 't.db'}",
        data_dir=str(tmp_path),
        throttle_lookup_events=0,
        throttle_access_key_usage=0,
    )
    app = create_app(cfg)
    store = app.state.services.store
    key = create_access_key(store, Sealer(load_master_key(None, tmp_path)), account_id=ACCOUNT)
    yield app, key
    store.close()


_WIRE_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def normalised(answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> tuple[Any, ...]:
    """The answer with its RequestId (new on every request) and the default window's times (now,
    which may be the next second by the second call) replaced."""
    status, headers, body = answer
    rid = dict(headers)[b"x-acs-request-id"]
    body = _WIRE_TIME.sub(b"TIME", body.replace(rid, b"RID"))
    return status, [(k, b"RID" if v == rid else v) for k, v in headers], body


def test_direct_and_routed_answers_are_identical(setup: tuple[Any, NewAccessKey]) -> None:
    app, key = setup
    call = Asgi(app)
    routed = {"root_path": "/mount", "path": "/mount/"}  # a root_path sends it through Starlette
    cases: list[tuple[str, Callable[[], bytes], bytes]] = [
        ("GET", lambda: signed_query(key), b""),
        ("GET", lambda: signed_query(key, Format="XML"), b""),
        ("GET", lambda: signed_query(key, StartTime="2000-01-01T00:00:00Z"), b""),  # a business error
        ("GET", lambda: b"Action=LookupEvents&Format=JSON", b""),  # unsigned
        ("PUT", lambda: b"", b""),  # UnsupportedHTTPMethod
        ("POST", lambda: b"", b"x" * (MAX_RPC_BODY + 1)),  # too large, rejected while reading
    ]
    statuses = []
    for method, query, body in cases:
        answer = call(method, query(), body)
        assert normalised(answer) == normalised(call(method, query(), body, **routed))
        status, headers, payload = answer
        statuses.append(status)
        assert [k for k, _ in headers] == [b"x-acs-request-id", b"content-type", b"content-length"]
        assert dict(headers)[b"content-length"] == str(len(payload)).encode()
    assert statuses == [200, 200, 400, 400, 400, 400]
    # HostId as before: the gateway's joined Host headers, or, when the body could not be read, the
    # first one (what Starlette's Headers.get gave).
    _, _, payload = call("GET", b"Action=LookupEvents&Format=JSON")
    assert orjson.loads(payload)["HostId"] == "rpc.test,second.test"
    _, _, payload = call("POST", b"Format=JSON", b"x" * (MAX_RPC_BODY + 1))
    assert orjson.loads(payload)["HostId"] == "rpc.test"


def test_other_methods_and_paths_still_go_through_starlette(setup: tuple[Any, NewAccessKey]) -> None:
    app, _ = setup
    call = Asgi(app)
    assert "TRACE" not in RPC_METHODS
    status, headers, _ = call("TRACE")
    # Starlette's routing answers (the native API's JSON 405 with Allow), not the RPC gateway,
    # which would answer UnsupportedHTTPMethod with status 400.
    assert status == 405 and b"allow" in dict(headers)
    status, _, body = call("GET", path="/healthz", raw_path=b"/healthz")
    assert (status, orjson.loads(body)) == (200, {"status": "ok"})


def test_access_log_line_for_direct_requests(
    setup: tuple[Any, NewAccessKey], caplog: pytest.LogCaptureFixture
) -> None:
    app, key = setup
    with caplog.at_level(logging.INFO, logger="trailhouse.access"):
        _, headers, _ = Asgi(app)("GET", signed_query(key))
    rid = dict(headers)[b"x-acs-request-id"].decode()
    lines = [r.getMessage() for r in caplog.records if r.name == "trailhouse.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET / LookupEvents 200 ") and lines[0].endswith(rid)


def test_a_failing_gateway_is_a_plain_500_on_both_paths(
    setup: tuple[Any, NewAccessKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = setup
    gateway = app.state.gateway

    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(gateway, "admit", broken)  # the first step on every path
    for scope in ({}, {"root_path": "/mount", "path": "/mount/"}):
        call = Asgi(app)
        with pytest.raises(RuntimeError, match="boom"):
            call("GET", b"", **scope)
        start, body = call.messages
        assert start["status"] == 500 and body["body"] == b"Internal Server Error"
