"""How ``trailhouse serve`` runs uvicorn: timeouts, the connection cap, TLS.

uvicorn closes a keep-alive connection that stays idle after a response, but never one that was
opened and left silent, nor one whose request stops arriving half-way (a slow or stalled client
holding a connection open for ever). ``GuardedHttpToolsProtocol`` closes both.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .settings import Settings

__all__ = ["GuardedHttpToolsProtocol", "endpoint", "uvicorn_options"]

_TIMEOUT_BODY = b"the request did not arrive in time\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n"
    b"connection: close\r\n"
    b"\r\n" + _TIMEOUT_BODY
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with two more deadlines.

    * A new connection that sends nothing is closed after the keep-alive timeout, as uvicorn
      already does between requests.
    * A request must arrive whole (request line, headers, body) within ``request_timeout_s`` of
      its first byte, else it is answered 408 and the connection closed. Time during which the
      server itself stopped reading (the app has not consumed the body yet) does not count.
    """

    #: Set by ``uvicorn_options``; a worker process started by name reads it from the environment.
    request_timeout_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if GuardedHttpToolsProtocol.request_timeout_s is None:
            GuardedHttpToolsProtocol.request_timeout_s = Settings.from_env().request_timeout_s
        self._request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_request_deadline()
        self._unset_keepalive_if_required()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._cancel_request_deadline()
        self._request_deadline = self.loop.call_later(
            self.request_timeout_s or 30.0, self._request_deadline_passed
        )

    def on_message_complete(self) -> None:
        self._cancel_request_deadline()
        super().on_message_complete()

    def _cancel_request_deadline(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None

    def _request_deadline_passed(self) -> None:
        self._request_deadline = None
        if self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:
            # We stopped reading, not the client: wait again.
            self._request_deadline = self.loop.call_later(
                self.request_timeout_s or 30.0, self._request_deadline_passed
            )
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.logger.info(
            "closing a connection whose request did not arrive within %gs", self.request_timeout_s
        )
        self.transport.close()


def endpoint(settings: Settings) -> str:
    scheme = "https" if settings.tls_cert else "http"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{scheme}://{host}:{settings.port}"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for these settings (app aside)."""
    GuardedHttpToolsProtocol.request_timeout_s = settings.request_timeout_s
    return {
        "host": settings.host,
        "port": settings.port,
        # uvicorn's own access log prints query strings, where V1 signatures travel: ours does not.
        "access_log": False,
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": settings.idle_timeout_s,
        # Past the cap uvicorn answers 503 at once rather than queueing: a flood of connections
        # gets a fast refusal instead of exhausting file descriptors for everyone.
        "limit_concurrency": settings.max_connections or None,
        "backlog": 2048,
        "http": GuardedHttpToolsProtocol,
        "ssl_certfile": settings.tls_cert,
        "ssl_keyfile": settings.tls_key,
    }
