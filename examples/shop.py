"""A tiny service to audit: the same three routes as an ASGI app (Starlette) and a WSGI app.

Who calls is the ``X-User`` header here; a real service would take it from its session or token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ITEMS: dict[str, dict[str, Any]] = {"1": {"id": "1", "name": "kettle"}}


async def list_items(request: Request) -> JSONResponse:
    return JSONResponse(list(ITEMS.values()))


async def delete_item(request: Request) -> JSONResponse:
    if request.headers.get("x-user") != "admin":
        return JSONResponse({"error": "only admin may delete"}, status_code=403)
    ITEMS.pop(request.path_params["item_id"], None)
    return JSONResponse({"deleted": request.path_params["item_id"]})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


asgi_app = Starlette(
    routes=[
        Route("/items", list_items, methods=["GET"]),
        Route("/items/{item_id}", delete_item, methods=["DELETE"]),
        Route("/healthz", health),
    ]
)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The same service without a framework."""
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
    if method == "GET" and path == "/items":
        status, body = "200 OK", list(ITEMS.values())
    elif method == "DELETE" and path.startswith("/items/"):
        if environ.get("HTTP_X_USER") != "admin":
            status, body = "403 Forbidden", {"error": "only admin may delete"}
        else:
            ITEMS.pop(path.removeprefix("/items/"), None)
            status, body = "200 OK", {}
    else:
        status, body = "404 Not Found", {"error": "no such route"}
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
