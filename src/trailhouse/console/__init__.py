"""The web console under ``/console``: server-rendered pages over the same services as the API.

``console_mount(svc)`` gives the Starlette mount ``api/app.py`` adds to the app. Pages, their
permissions and their URLs are described in docs/console.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..api.context import Services
from ..storage.base import StoreError
from .insights import insight_page, insights_page
from .integrity import event_proof
from .keys import access_key_page
from .pages import event_page, export, histogram_svg, search_page
from .signin import sign_in_form, sign_in_submit, sign_out
from .trails import trails_page
from .web import HERE, PREFIX, Console, PageError, SignInNeeded

__all__ = ["console_mount"]

Handler = Callable[[Console, Request], Awaitable[Response]]


def _page(console: Console, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = request.scope.setdefault("state", {})
        state["action"], state["route"] = "Console", PREFIX
        try:
            return await handler(console, request)
        except (PageError, SignInNeeded) as exc:
            try:
                who = console.principal(request)  # the page frame shows who is signed in
            except StoreError:
                who = None
            return console.error_page(request, exc, who)
        except Exception as exc:  # store trouble becomes a page; anything else stays a 500
            return console.error_page(request, exc)

    return endpoint


async def _home(console: Console, request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/search", status_code=303)


async def _not_found(console: Console, request: Request) -> Response:
    raise PageError(404, "Not found", "The console has no page at this address.")


def console_mount(svc: Services, console: Console | None = None) -> Mount:
    console = console or Console(svc)
    routes = [
        Route("/", _page(console, _home), methods=["GET"]),
        Route("/sign-in", _page(console, sign_in_form), methods=["GET"]),
        Route("/sign-in", _page(console, sign_in_submit), methods=["POST"]),
        Route("/sign-out", _page(console, sign_out), methods=["POST"]),
        Route("/search", _page(console, search_page), methods=["GET"]),
        Route("/histogram", _page(console, histogram_svg), methods=["GET"]),
        Route("/export", _page(console, export), methods=["GET"]),
        Route("/proof/{event_id:path}", _page(console, event_proof), methods=["GET"]),
        Route("/trails", _page(console, trails_page), methods=["GET"]),
        Route("/event/{event_id:path}", _page(console, event_page), methods=["GET"]),
        Route("/insights", _page(console, insights_page), methods=["GET"]),
        Route("/insights/{insight_id:path}", _page(console, insight_page), methods=["GET"]),
        Route("/access-key", _page(console, access_key_page), methods=["GET"]),
        Route("/access-key/{access_key_id:path}", _page(console, access_key_page), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="console-static"),
        Route("/{rest:path}", _page(console, _not_found), methods=["GET", "HEAD"]),
    ]
    return Mount(PREFIX, routes=routes)
