"""The ActionTrail RPC gateway at ``/``: parse, authenticate, route, authorise, throttle, run, render.

Each request is handled by one synchronous pipeline (the store and Redis clients are synchronous),
run in a worker thread under the request's query budget (``bounded.run_bounded``): never on the
event loop, whatever the backend, so one slow lookup cannot hold up /healthz or anyone else; the
time limit (TRAILHOUSE_QUERY_TIMEOUT_S) applies and a client that leaves cancels its store work.
Every failure leaves it as an ApiError rendered in the client's format.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from ...model.credentials import AccessKey
from ...model.times import now_ms
from ...service.secrets import MasterKeyError, Sealer, load_master_key
from ...storage.base import QueryCancelled, QueryTimeout, StoreError, StoreUnavailable
from ..bounded import run_bounded
from ..context import Services
from ..limits import Limits, open_limits
from ..wire import CLIENT_GONE, REQUEST_ID_HEADER, new_request_id
from . import errors
from .auth import KEY_CACHE_TTL_S, AccessKeyCache, authenticate
from .call import Call
from .dispatch import (
    KNOWN_VERSIONS,
    OPERATIONS,
    THROTTLE_ACCESS_KEY_USAGE,
    THROTTLE_INSIGHTS,
    THROTTLE_LOOKUP_EVENTS,
    THROTTLE_TRAILS,
    Operation,
)
from .protocol import RpcRequest, guess_format, normalize_headers, parse_request, request_nonce
from .render import Fmt, error_body, render

__all__ = ["Gateway", "build_gateway"]

log = logging.getLogger("trailhouse.gateway")

#: RPC requests are small; anything bigger than this is not an SDK call.
MAX_RPC_BODY = 1024 * 1024
KNOWN_ACTIONS = frozenset(action for action, _ in OPERATIONS)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: bytes
    content_type: str
    action: str | None
    code: str | None = None  # the error code answered, None for a success


class Gateway:
    def __init__(
        self,
        svc: Services,
        sealer: Sealer,
        limits: Limits,
        *,
        key_cache_ttl_s: float = KEY_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.svc = svc
        self.sealer = sealer
        self.limits = limits
        self.keys = AccessKeyCache(svc.store, sealer, ttl_s=key_cache_ttl_s, clock=clock)
        self._rates = {
            THROTTLE_LOOKUP_EVENTS: svc.settings.throttle_lookup_events,
            THROTTLE_ACCESS_KEY_USAGE: svc.settings.throttle_access_key_usage,
            THROTTLE_TRAILS: svc.settings.throttle_trails,
            THROTTLE_INSIGHTS: svc.settings.throttle_access_key_usage,
        }

    def close(self) -> None:
        self.limits.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app of ``/``: read the request, run ``process``, answer.

        ``process`` runs in a worker thread under a query budget (``run_bounded``), on every
        backend: SQLite's queries are as unbounded as PostgreSQL's, and one of them run on the
        event loop stalled every other request for its whole duration. Once the body is read, a
        client that disconnects cancels the store work (nothing is answered: nobody is listening).

        A plain ASGI callable rather than a Starlette endpoint, so the app can hand ``/`` straight
        to it (``app.create_app``); the response is the one a Starlette ``Response`` would send.
        """
        request_id = new_request_id()
        raw_headers = scope["headers"]
        host_id = next((v.decode("latin-1") for k, v in raw_headers if k == b"host"), "")
        raw_query: bytes = scope.get("query_string", b"")
        headers = normalize_headers(raw_headers)
        # The raw path is what clients sign (V3 CanonicalURI); RPC clients always send "/".
        raw_path = scope.get("raw_path") or Request(scope).url.path.encode()
        path = raw_path.decode("latin-1").split("?", 1)[0] or "/"
        state = scope.setdefault("state", {})
        try:
            body = await self._read_body(receive)
            args = (scope["method"], raw_query, headers, body, request_id, path)
            outcome = await run_bounded(
                self.process, *args, timeout_s=self.svc.settings.query_timeout_s, receive=receive
            )
        except errors.ApiError as err:  # the body could not be read: process() never ran
            outcome = self._error(err, request_id, host_id, guess_format(raw_query, headers), None)
        except QueryTimeout:  # the store did not stop by itself at the deadline: its thread was abandoned
            log.warning("request %s: the store did not answer within the query time limit", request_id)
            failure = self._timeout_error()
            outcome = self._error(failure, request_id, host_id, guess_format(raw_query, headers), None)
        except (QueryCancelled, ClientDisconnect):  # the client left: nobody reads an answer, nothing to log
            state.setdefault("action", "-")
            state["error_code"] = "ClientGone"
            await send({"type": "http.response.start", "status": CLIENT_GONE, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        state["action"] = outcome.action or "-"
        if outcome.code is not None:
            state["error_code"] = outcome.code
        await send(
            {
                "type": "http.response.start",
                "status": outcome.status,
                "headers": [
                    (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1")),
                    (b"content-type", outcome.content_type.encode("latin-1")),
                    (b"content-length", str(len(outcome.body)).encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": outcome.body})

    @staticmethod
    async def _read_body(receive: Receive) -> bytes:
        chunks = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.request":
                more = message.get("more_body", False)
                chunks += message.get("body", b"")
                if len(chunks) > MAX_RPC_BODY:
                    raise errors.InvalidParameter(message="The request body is too large.")
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
        return bytes(chunks)

    def _error(
        self, err: errors.ApiError, request_id: str, host_id: str, fmt: Fmt, action: str | None
    ) -> Outcome:
        body, content_type = error_body(err, request_id, host_id, fmt)
        return Outcome(err.http_status, body, content_type, action, err.code)

    def _timeout_error(self) -> errors.ApiError:
        limit = self.svc.settings.query_timeout_s
        return errors.ServiceUnavailable(
            message=f"The query ran longer than the limit of {limit:g} s (TRAILHOUSE_QUERY_TIMEOUT_S)"
            " and was stopped; narrow the time range or the filters."
        )

    def process(
        self, method: str, raw_query: bytes, headers: dict[str, str], body: bytes, request_id: str, path: str
    ) -> Outcome:
        # The reply format is the parsed request's; only a request that could not be parsed needs
        # the best-effort guess, so the query string is parsed once on the way to a success.
        fmt: Fmt | None = None
        action: str | None = None
        try:
            req = parse_request(method, raw_query, headers, body, path=path)  # step 1
            fmt = req.fmt
            action = req.action
            now = now_ms()
            key = authenticate(  # steps 2–8
                req,
                keys=self.keys,
                limits=self.limits,
                skew_s=self.svc.settings.timestamp_skew_s,
                now_ms=now,
            )
            try:
                op = self._route(req)  # step 9
                self._authorise(op, key)  # step 10
                if not self.limits.allow(
                    f"{key.account_id}:{op.action}", self._rates[op.throttle_group]
                ):  # step 11
                    raise errors.ThrottlingUser()
            except errors.ApiError:
                # Refused before any work: the nonce is given back, so a flood of refused requests
                # keeps nothing and the same signed request may be retried once the throttle allows.
                nonce = request_nonce(req)
                if nonce is not None:
                    self.limits.forget_nonce(key.access_key_id, nonce)
                raise
            call = Call(
                action=op.action,
                version=op.version,
                params=req.business_params,
                account_id=key.account_id,
                access_key=key,
                request_id=request_id,
                now_ms=now,
            )
            data: dict[str, Any] = {"RequestId": request_id, **op.handler(call, self.svc)}  # step 12
            payload, content_type = render(op.action, data, fmt)
            return Outcome(200, payload, content_type, op.action)
        except errors.ApiError as err:
            failure: errors.ApiError = err
        except QueryCancelled:  # the client left: run_bounded's caller answers nothing
            raise
        except QueryTimeout:
            log.warning("request %s: query time limit reached", request_id)
            failure = self._timeout_error()
        except StoreUnavailable as exc:
            log.warning("request %s: store unavailable: %s", request_id, exc)
            failure = errors.ServiceUnavailable()
        except MasterKeyError as exc:  # this node's master key is not the one the secret was sealed with
            log.error("request %s: %s; give every node the same TRAILHOUSE_MASTER_KEY", request_id, exc)
            failure = errors.ServiceUnavailable(
                message="The server cannot open this AccessKey's secret: its master key is misconfigured."
            )
        except (StoreError, Exception):
            log.exception("request %s failed", request_id)
            failure = errors.InternalError()
        if fmt is None:
            fmt = guess_format(raw_query, headers)
        return self._error(failure, request_id, headers.get("host", ""), fmt, action)

    @staticmethod
    def _route(req: RpcRequest) -> Operation:
        action, version = req.action or "", req.version or ""
        op = OPERATIONS.get((action, version))
        if op is not None:
            return op
        if version not in KNOWN_VERSIONS:
            raise errors.InvalidVersion()
        raise errors.InvalidActionNotFound.unserved(action, version, OPERATIONS)

    @staticmethod
    def _authorise(op: Operation, key: AccessKey) -> None:
        if key.allows(op.action):
            return
        principal = "Account" if key.user_name == "root" else "SubUser"
        raise errors.NoPermission(
            access_denied_detail={
                "AuthAction": op.ram_action,
                "AuthPrincipalType": principal,
                "AuthPrincipalOwnerId": key.account_id,
                "AuthPrincipalDisplayName": key.user_name,
                "NoPermissionType": "ImplicitDeny",
                "PolicyType": "AccountLevelIdentityBasedPolicy",
                "EncodedDiagnosticMessage": "",
            }
        )


def build_gateway(svc: Services) -> Gateway:
    settings = svc.settings
    # `serve` has found the key, or made it with a new store, before building the app (cli/common.py,
    # open_or_fail); an app built in code (the test emulator, tests) may make one in its data directory.
    sealer = Sealer(load_master_key(settings.master_key, settings.resolved_data_dir()))
    limits = open_limits(settings.redis_url, settings.redis_prefix)
    return Gateway(svc, sealer, limits)
