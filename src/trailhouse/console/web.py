"""What every console page shares: the templates, the signed-in principal, permission checks, errors.

Pages are mapped to the RAM actions of the API operations they mirror, so a console user sees
exactly what the same key may see through the API: searching and reading events is
``actiontrail:LookupEvents``, AccessKey usage is ``actiontrail:GetAccessKeyLastUsed*``, the trails
page ``actiontrail:DescribeTrails`` (its delivery status ``actiontrail:GetTrailStatus``), the
Insights pages ``actiontrail:LookupInsightEvents`` (which types are on ``GetInsightTypes``).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..api.bounded import run_bounded
from ..api.context import Services
from ..model.times import format_wire_time
from ..service.secrets import Sealer, load_master_key
from ..storage.base import QueryTimeout, StoreError, StoreUnavailable
from .session import SESSION_COOKIE, Principal, SessionCodec, SignInThrottle, principal_from

__all__ = ["Console", "PageError", "SignInNeeded"]

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
PREFIX = "/console"
#: Sent with every page: scripts only from the console itself, never framed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class PageError(Exception):
    """A request the page cannot answer; shown to the person with its HTTP status."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class SignInNeeded(Exception):
    """No valid session: the person is sent to the sign-in page, and back afterwards."""


def _local(ms: int | None) -> str:
    return format_wire_time(ms) if ms is not None else ""


class Console:
    """The console's long-lived parts: services, the session seal, the sign-in throttle, templates."""

    def __init__(self, svc: Services, *, sealer: Sealer | None = None) -> None:
        self.svc = svc
        settings = svc.settings
        self.sealer = sealer or Sealer(load_master_key(settings.master_key, settings.resolved_data_dir()))
        self.sessions = SessionCodec(self.sealer, settings.console_session_s)
        self.throttle = SignInThrottle()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # package data: no stat() of every template on every page
        )
        self.env.filters["time"] = _local
        self.env.filters["urlq"] = lambda v: urllib.parse.quote(str(v), safe="")
        self.env.globals["prefix"] = PREFIX

    # -- sessions ----------------------------------------------------------------------------------
    def principal(self, request: Request) -> Principal | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        payload = self.sessions.open(cookie, now_s=time.time())
        if payload is None:
            return None
        return principal_from(payload, self.svc.store)

    async def signed_in(self, request: Request, *actions: str) -> Principal:
        """The principal, who must be allowed at least one of ``actions`` (none: any signed-in user)."""
        return await self.bounded(request, self.check, request, *actions)

    def check(self, request: Request, *actions: str) -> Principal:
        """``signed_in`` for code already running off the event loop (one worker hop per page)."""
        who = self.principal(request)
        if who is None:
            raise SignInNeeded()
        if actions and not any(who.allows(a) for a in actions):
            names = " or ".join(f"actiontrail:{a}" for a in actions)
            raise PageError(403, "Not allowed", f"This AccessKey may not use {names}, which this page needs.")
        return who

    # -- running -----------------------------------------------------------------------------------
    async def bounded(self, request: Request, fn: Callable[..., T], *args: Any) -> T:
        return await run_bounded(
            fn, *args, timeout_s=self.svc.settings.query_timeout_s, receive=request.receive
        )

    # -- answers -----------------------------------------------------------------------------------
    def page(self, request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("who", None)
        context.setdefault("nav", "")
        html = self.env.get_template(template).render(request_path=request.url.path, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def error_page(self, request: Request, exc: Exception, who: Principal | None = None) -> Response:
        if isinstance(exc, SignInNeeded):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(
                f"{PREFIX}/sign-in?{urllib.parse.urlencode({'next': target})}", status_code=303
            )
        if isinstance(exc, PageError):
            status, title, message = exc.status, exc.title, exc.message
        elif isinstance(exc, QueryTimeout):
            status, title = 503, "Too slow"
            message = "The search ran past the time limit. Narrow the time range or add a filter."
        elif isinstance(exc, StoreUnavailable | StoreError):
            status, title, message = 503, "Unavailable", "The store cannot answer right now; try again."
        else:
            raise exc
        return self.page(request, "error.html", status=status, title=title, message=message, who=who)
