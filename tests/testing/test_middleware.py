"""The audit middleware: a request to the user's own service becomes an ActionTrail event, with the
user, source IP, user agent, event name and errorCode the request had. ASGI under a real uvicorn
on 127.0.0.1, WSGI under the standard library's server; recorded into the emulator or a local store."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from tests.conftest import free_port
from trailhouse.testing import Emulator
from trailhouse.testing.local import LocalTrail
from trailhouse.testing.middleware import AuditMiddleware, CallInfo, WsgiAuditMiddleware


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A plain ASGI app: /boom raises, /missing is a 404, anything else 200."""
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def test_asgi_calls_become_events_in_the_emulator(server: Emulator) -> None:
    trail = server.trail()
    app = AuditMiddleware(
        _asgi_app,
        trail,
        service="Shop",
        user=lambda call: call.headers.get("x-user"),
        event_name=lambda call: {"/orders": "CreateOrder"}.get(call.path, f"{call.method} {call.path}"),
        trust_forwarded=True,
    )
    with _uvicorn(app) as url:
        ok = httpx.post(
            f"{url}/orders",
            headers={"X-User": "alice", "User-Agent": "ua/1", "X-Forwarded-For": "203.0.113.7, 10.0.0.1"},
        )
        assert ok.status_code == 200
        assert httpx.get(f"{url}/missing").status_code == 404
        assert httpx.get(f"{url}/boom").status_code == 500

    (order,) = trail.events(EventName="CreateOrder")
    assert order["userIdentity"]["userName"] == "alice"
    assert order["userIdentity"]["accountId"] == trail.account_id
    assert (order["sourceIpAddress"], order["userAgent"], order["eventRW"]) == (
        "203.0.113.7",
        "ua/1",
        "Write",
    )
    assert (order["serviceName"], order.get("errorCode")) == ("Shop", None)
    (missing,) = trail.events(EventName="GET /missing")
    assert (missing["errorCode"], missing["userIdentity"]["type"]) == ("NotFound", "anonymous")
    assert missing["sourceIpAddress"] == "127.0.0.1"
    (boom,) = trail.events(EventName="GET /boom")
    assert (boom["errorCode"], boom["errorMessage"]) == (
        "InternalServerError",
        "HTTP 500 Internal Server Error",
    )


def test_starlette_handler_name_is_the_default_event_name() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def create_invoice(request: Any) -> PlainTextResponse:
        return PlainTextResponse("made", status_code=201)

    with LocalTrail() as trail:
        app = AuditMiddleware(Starlette(routes=[Route("/invoices", create_invoice, methods=["POST"])]), trail)
        with _uvicorn(app) as url:
            assert httpx.post(f"{url}/invoices").status_code == 201
        (event,) = trail.events()
        assert (event["eventName"], event["serviceName"]) == ("CreateInvoice", "App")


def test_wsgi_calls_become_events_in_a_local_store() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        start_response("401 Unauthorized" if environ["PATH_INFO"] == "/private" else "200 OK", [])
        return [b"x"]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    with LocalTrail(account_id="1111222233334444") as trail:
        users = {"t-1": {"type": "ram-user", "userName": "carol", "accessKeyId": "LTAI5tWsgiKey00000000001"}}

        def user(call: CallInfo) -> dict[str, str] | None:
            return users.get(call.headers.get("authorization", ""))

        audited = WsgiAuditMiddleware(
            app, trail, service="Billing", user=user, skip=lambda c: c.path == "/healthz"
        )
        httpd = make_server("127.0.0.1", 0, audited, handler_class=Quiet)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{httpd.server_port}"
        try:
            assert httpx.get(f"{base}/private", headers={"Authorization": "t-1"}).status_code == 401
            assert httpx.get(f"{base}/healthz").status_code == 200
            assert httpx.get(f"{base}/boom").status_code == 500
        finally:
            httpd.shutdown()
            httpd.server_close()
        events = trail.events()
        assert [e["eventName"] for e in events] == ["GET /boom", "GET /private"] or {
            e["eventName"] for e in events
        } == {"GET /boom", "GET /private"}
        (private,) = trail.events(EventName="GET /private")
        assert private["userIdentity"]["accessKeyId"] == "LTAI5tWsgiKey00000000001"
        assert private["userIdentity"]["accountId"] == "1111222233334444"
        assert (private["errorCode"], private["serviceName"]) == ("Unauthorized", "Billing")
        assert trail.events(EventAccessKeyId="LTAI5tWsgiKey00000000001") == [private]
