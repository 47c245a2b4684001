"""The Merkle log over the native API: checkpoint, C2SP tlog-tiles, inclusion and consistency proofs.

Read token, one account: the token's only account, else ``?account=ID`` (as every native read),
or the account as a path segment under ``/api/v1/log/accounts/<account>/`` so that a generic
tlog-tiles client, which appends ``checkpoint`` and ``tile/…`` to a prefix, can mirror one log.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...model.credentials import TokenScope
from ...service.integrity.log import (
    LogNotFound,
    checkpoint_note,
    consistency,
    find_event_seq,
    inclusion,
    read_tile,
)
from ...service.integrity.note import Signer
from ...service.integrity.tiles import EntryTooLarge, parse_tile_path
from ..bounded import run_bounded
from ..context import Services
from ..wire import has_nul
from .auth import authenticate_token, choose_account
from .errors import BadRequest, InvalidParameter, NotFound, ServiceUnavailable
from .params import check_params

__all__ = ["LOG_OPERATIONS", "log_routes"]

LOG_OPERATIONS = ("LogCheckpoint", "LogTile", "EventProof", "LogConsistency")

#: Tiles never change once full; a partial tile is named by its width, so it never changes either.
_IMMUTABLE = "public, max-age=31536000, immutable"


async def _account(request: Request, svc: Services, allowed: frozenset[str]) -> str:
    token = await run_bounded(
        authenticate_token,
        request,
        svc.store,
        TokenScope.READ,
        timeout_s=svc.settings.query_timeout_s,
        receive=request.receive,
    )
    check_params(request.query_params.multi_items(), allowed)
    path_account = request.path_params.get("account")
    return choose_account(token, path_account or request.query_params.get("account"))


def _signer(svc: Services) -> Signer:
    if svc.log_signer is None:
        raise ServiceUnavailable("this server keeps no Merkle log")
    return svc.log_signer


async def _run(request: Request, svc: Services, fn: Any, *args: Any) -> Any:
    try:
        return await run_bounded(fn, *args, timeout_s=svc.settings.query_timeout_s, receive=request.receive)
    except LogNotFound as exc:
        raise NotFound(str(exc)) from None


async def log_checkpoint(request: Request, svc: Services) -> Response:
    account = await _account(request, svc, frozenset({"account"}))
    note = await _run(request, svc, checkpoint_note, svc.store, _signer(svc), account)
    return Response(note, media_type="text/plain; charset=utf-8", headers={"cache-control": "no-cache"})


async def log_tile(request: Request, svc: Services) -> Response:
    account = await _account(request, svc, frozenset({"account"}))
    try:
        ref = parse_tile_path(request.path_params["tile"])
    except ValueError as exc:
        raise NotFound(f"not a tile path: {exc}") from None
    try:
        data = await _run(request, svc, read_tile, svc.store, svc.store, account, ref)
    except EntryTooLarge as exc:
        raise BadRequest(
            f"{exc}; prove such an event with /api/v1/events/<eventId>/proof", status=422
        ) from None
    return Response(data, media_type="application/octet-stream", headers={"cache-control": _IMMUTABLE})


async def event_proof(request: Request, svc: Services) -> Response:
    account = await _account(request, svc, frozenset({"account"}))
    event_id = request.path_params["event_id"]
    if has_nul(event_id):
        raise InvalidParameter("eventId must not contain NUL")
    seq = await _run(request, svc, find_event_seq, svc.store, account, event_id)
    if seq is None:
        raise NotFound(f"the account has no event {event_id!r}")
    proof = await _run(request, svc, inclusion, svc.store, account, seq)
    body = {
        "eventId": event_id,
        "leafIndex": proof.leaf_index,
        "treeSize": proof.tree_size,
        "inclusionPath": [base64.b64encode(h).decode() for h in proof.path],
        "checkpoint": proof.checkpoint,
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _size(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None or not raw.isdigit() or len(raw) > 19:
        raise InvalidParameter(f"{name} must be a tree size (a whole number, 0 or more)")
    return int(raw)


async def log_consistency(request: Request, svc: Services) -> Response:
    account = await _account(request, svc, frozenset({"account", "from", "to"}))
    old, new = _size(request, "from"), _size(request, "to")
    if old > new:
        raise InvalidParameter("from must not be larger than to")
    proof = await _run(request, svc, consistency, svc.store, account, old, new)
    body = {"from": old, "to": new, "proof": [base64.b64encode(h).decode() for h in proof]}
    return Response(orjson.dumps(body), media_type="application/json")


def log_routes() -> list[tuple[str, Any, str, list[str]]]:
    """(path, endpoint, action, methods) for native_routes' table."""
    table = []
    for prefix in ("/api/v1/log", "/api/v1/log/accounts/{account}"):
        table += [
            (f"{prefix}/checkpoint", log_checkpoint, "LogCheckpoint", ["GET"]),
            (prefix + "/tile/{tile:path}", log_tile, "LogTile", ["GET"]),
        ]
    table += [
        ("/api/v1/log/consistency", log_consistency, "LogConsistency", ["GET"]),
        ("/api/v1/events/{event_id}/proof", event_proof, "EventProof", ["GET"]),
    ]
    return table


def log_openapi_paths(errors: Any) -> dict[str, Any]:
    """The log's paths for openapi.json; ``errors(*codes)`` gives the shared error responses."""
    account = {
        "name": "account",
        "in": "query",
        "schema": {"type": "string"},
        "description": "when the token has several",
    }
    text = {"text/plain": {"schema": {"type": "string"}}}
    octets = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    paths: dict[str, Any] = {}
    for prefix, params in (
        ("/api/v1/log", [account]),
        (
            "/api/v1/log/accounts/{account}",
            [{"name": "account", "in": "path", "required": True, "schema": {"type": "string"}}],
        ),
    ):
        paths[f"{prefix}/checkpoint"] = {
            "get": {
                "summary": "The account's latest signed checkpoint (C2SP tlog-checkpoint in a signed note)",
                "parameters": params,
                "responses": {
                    "200": {"description": "the signed note", "content": text},
                    **errors(400, 401, 403, 503),
                },
            }
        }
        paths[prefix + "/tile/{tile}"] = {
            "get": {
                "summary": "C2SP tlog-tiles: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]",
                "parameters": [
                    *params,
                    {"name": "tile", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "the tile", "content": octets},
                    **errors(400, 401, 403, 404, 503),
                    "422": {
                        **errors(400)["400"],
                        "description": "EntryTooLarge: an event over 65,535 bytes cannot be bundled",
                    },
                },
            }
        }
    paths["/api/v1/log/consistency"] = {
        "get": {
            "summary": "RFC 6962 consistency proof between two tree sizes of the account's log",
            "parameters": [
                account,
                *(
                    {"name": n, "in": "query", "required": True, "schema": {"type": "integer"}}
                    for n in ("from", "to")
                ),
            ],
            "responses": {
                "200": {
                    "description": '{"from", "to", "proof": [base64 hashes]}',
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **errors(400, 401, 403, 404, 503),
            },
        }
    }
    paths["/api/v1/events/{event_id}/proof"] = {
        "get": {
            "summary": "RFC 6962 inclusion proof of an event in the account's latest checkpoint",
            "parameters": [
                account,
                {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": '{"eventId", "leafIndex", "treeSize", "inclusionPath", "checkpoint"}',
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **errors(400, 401, 403, 404, 503),
            },
        }
    }
    return paths
