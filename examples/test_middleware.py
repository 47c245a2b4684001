"""Your own service's calls as ActionTrail events: assert that a request left its audit record."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from trailhouse.testing import Trail
from trailhouse.testing.middleware import AuditMiddleware, CallInfo, WsgiAuditMiddleware

from .shop import asgi_app, wsgi_app


def user_of(call: CallInfo) -> str | None:
    return call.headers.get("x-user")


def test_asgi_request_leaves_an_audit_record(trail: Trail) -> None:
    app = AuditMiddleware(
        asgi_app, trail, service="Shop", user=user_of, skip=lambda call: call.path == "/healthz"
    )

    async def calls() -> None:
        # httpx drives the ASGI app in this process; a served app (uvicorn) is recorded the same way.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.delete("/items/1", headers={"X-User": "intern"})).status_code == 403
            listed = await client.get("/items", headers={"X-User": "alice", "User-Agent": "shop-cli/1.0"})
            assert listed.status_code == 200

    asyncio.run(calls())

    denied = trail.events(EventName="DeleteItem")  # the handler's name, in ActionTrail's style
    assert len(denied) == 1
    assert denied[0]["userIdentity"]["userName"] == "intern"
    assert (denied[0]["errorCode"], denied[0]["serviceName"], denied[0]["eventRW"]) == (
        "Forbidden",
        "Shop",
        "Write",
    )
    listed = trail.events(EventName="ListItems")[0]
    assert (listed["userAgent"], listed.get("errorCode")) == ("shop-cli/1.0", None)
    assert not trail.events(EventName="Health")  # skipped


@pytest.fixture
def wsgi_server(trail: Trail) -> Iterator[str]:
    """The WSGI app behind the middleware, served on 127.0.0.1 by the standard library."""

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    audited = WsgiAuditMiddleware(
        wsgi_app,
        trail,
        service="Shop",
        user=user_of,
        event_name=lambda call: "DeleteItem" if call.method == "DELETE" else "ListItems",
    )
    server = make_server("127.0.0.1", 0, audited, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_wsgi_request_leaves_an_audit_record(trail: Trail, wsgi_server: str) -> None:
    assert httpx.delete(f"{wsgi_server}/items/1", headers={"X-User": "intern"}).status_code == 403

    (record,) = trail.events(EventName="DeleteItem", User="intern")
    assert record["sourceIpAddress"] == "127.0.0.1"
    assert record["errorCode"] == "Forbidden"
    assert record["requestParameters"] == {"HttpMethod": "DELETE", "Path": "/items/1"}
