"""Record the calls of your own service as ActionTrail events: an ASGI and a WSGI middleware.

Wrap the application under test, point the middleware at a trail (the emulator's ``Trail``, a
``LocalTrail`` over a store, or anything with ``record(event)``), and every request becomes an
event: who (``user``), what (``event_name``), from where (the client address, or the first
``X-Forwarded-For`` hop with ``trust_forwarded``), with which user agent, and whether it failed
(``errorCode`` from an HTTP status of 400 or more). A test then asserts on ``trail.events(...)``.

The event is recorded when the response starts, before its first byte reaches the client: once
the client has its answer, the record is there, with no race for the test to wait out.
"""

from __future__ import annotations

import http
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model.times import format_wire_time

__all__ = ["AuditMiddleware", "CallInfo", "Recorder", "WsgiAuditMiddleware", "audit_event"]


class Recorder(Protocol):
    def record(self, *events: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One request as the ``user`` and ``event_name`` callables see it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names
    client_ip: str
    status: int
    #: The handler's name where the framework says (Starlette's ``scope["endpoint"]``), else None.
    endpoint: str | None = None
    #: The ASGI scope or the WSGI environ, for what the fields above do not carry.
    raw: Mapping[str, Any] = field(default_factory=dict)


UserFn = Callable[[CallInfo], "str | Mapping[str, Any] | None"]
NameFn = Callable[[CallInfo], str]

_READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def default_event_name(call: CallInfo) -> str:
    """``create_item`` → ``CreateItem`` when the framework names the handler, else ``POST /items``."""
    if call.endpoint:
        return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", call.endpoint) if part)
    return f"{call.method} {call.path}"


def _error_of(status: int) -> tuple[str, str] | None:
    if status < 400:
        return None
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return phrase.replace(" ", "").replace("-", ""), f"HTTP {status} {phrase}"


def audit_event(
    call: CallInfo,
    *,
    account_id: str | None,
    service: str,
    region: str,
    user: UserFn | None,
    event_name: NameFn | None,
) -> dict[str, Any]:
    """The ActionTrail event of one call (the middleware's work, exposed for custom recorders)."""
    who = user(call) if user is not None else None
    identity: dict[str, Any] = (
        dict(who) if isinstance(who, Mapping) else {"type": "ram-user", "userName": who} if who else {}
    )
    if not identity:
        identity = {"type": "anonymous", "userName": "anonymous", "principalId": "anonymous"}
    if account_id is not None:
        identity.setdefault("accountId", account_id)
    request_id = call.headers.get("x-request-id") or str(uuid.uuid4()).upper()
    event: dict[str, Any] = {
        "eventId": str(uuid.uuid4()).upper(),
        "eventVersion": 1,
        "eventTime": format_wire_time(int(time.time() * 1000)),
        "eventName": (event_name or default_event_name)(call),
        "eventType": "ApiCall",
        "eventRW": "Read" if call.method in _READ_METHODS else "Write",
        "eventCategory": "Management",
        "eventSource": call.headers.get("host", ""),
        "serviceName": service,
        "acsRegion": region,
        "requestId": request_id,
        "requestParameters": {"HttpMethod": call.method, "Path": call.path},
        "sourceIpAddress": call.client_ip,
        "userAgent": call.headers.get("user-agent", ""),
        "userIdentity": identity,
    }
    error = _error_of(call.status)
    if error is not None:
        event["errorCode"], event["errorMessage"] = error
    if account_id is not None:
        event["recipientAccountId"] = account_id
    return event


def _client_ip(peer: str, headers: Mapping[str, str], trust_forwarded: bool) -> str:
    if trust_forwarded and headers.get("x-forwarded-for"):
        return headers["x-forwarded-for"].split(",")[0].strip()
    return peer


class _Audit:
    def __init__(
        self,
        trail: Recorder,
        *,
        service: str,
        region: str,
        user: UserFn | None,
        event_name: NameFn | None,
        trust_forwarded: bool,
        skip: Callable[[CallInfo], bool] | None,
    ) -> None:
        self.trail = trail
        self.service = service
        self.region = region
        self.user = user
        self.event_name = event_name
        self.trust_forwarded = trust_forwarded
        self.skip = skip
        self.account_id: str | None = getattr(trail, "account_id", None)

    def record(self, call: CallInfo) -> None:
        if self.skip is not None and self.skip(call):
            return
        event = audit_event(
            call,
            account_id=self.account_id,
            service=self.service,
            region=self.region,
            user=self.user,
            event_name=self.event_name,
        )
        self.trail.record(event)


class AuditMiddleware(_Audit):
    """ASGI: ``app = AuditMiddleware(app, trail, service="Shop", user=lambda call: ...)``.

    ``user`` returns a user name, a ``userIdentity`` dict, or None (anonymous); ``event_name``
    returns the eventName (default: the handler's name in PascalCase, else ``METHOD /path``);
    ``skip`` says which calls leave no record (health checks). Requests other than HTTP pass through.
    """

    def __init__(
        self,
        app: Any,
        trail: Recorder,
        *,
        service: str = "App",
        region: str = "cn-hangzhou",
        user: UserFn | None = None,
        event_name: NameFn | None = None,
        trust_forwarded: bool = False,
        skip: Callable[[CallInfo], bool] | None = None,
    ) -> None:
        super().__init__(
            trail,
            service=service,
            region=region,
            user=user,
            event_name=event_name,
            trust_forwarded=trust_forwarded,
            skip=skip,
        )
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        import anyio.to_thread

        started = False

        async def record(status: int) -> None:
            call = self._call(scope, status)
            # The recorder may block (the emulator is called over HTTP): off the event loop.
            await anyio.to_thread.run_sync(self.record, call)

        async def send_and_record(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                await record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except Exception:
            if not started:  # the app failed before answering: the server will answer 500
                await record(500)
            raise

    def _call(self, scope: Mapping[str, Any], status: int) -> CallInfo:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        client = scope.get("client") or ("", 0)
        endpoint = scope.get("endpoint")
        return CallInfo(
            method=scope.get("method", "GET"),
            path=scope.get("path", "/"),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            client_ip=_client_ip(str(client[0]), headers, self.trust_forwarded),
            status=status,
            endpoint=getattr(endpoint, "__name__", None),
            raw=scope,
        )


class WsgiAuditMiddleware(_Audit):
    """WSGI: ``app.wsgi_app = WsgiAuditMiddleware(app.wsgi_app, trail, ...)``; the same options as
    ``AuditMiddleware``. WSGI does not name the handler, so the default eventName is ``METHOD /path``."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        trail: Recorder,
        *,
        service: str = "App",
        region: str = "cn-hangzhou",
        user: UserFn | None = None,
        event_name: NameFn | None = None,
        trust_forwarded: bool = False,
        skip: Callable[[CallInfo], bool] | None = None,
    ) -> None:
        super().__init__(
            trail,
            service=service,
            region=region,
            user=user,
            event_name=event_name,
            trust_forwarded=trust_forwarded,
            skip=skip,
        )
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = False

        def start_and_record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal started
            if not started:
                started = True
                self.record(self._call(environ, int(status.split(" ", 1)[0])))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            return self.app(environ, start_and_record)
        except Exception:
            if not started:
                self.record(self._call(environ, 500))
            raise

    def _call(self, environ: Mapping[str, Any], status: int) -> CallInfo:
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "/"))
        return CallInfo(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            path=path or "/",
            query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            client_ip=_client_ip(str(environ.get("REMOTE_ADDR", "")), headers, self.trust_forwarded),
            status=status,
            raw=environ,
        )
