"""The ActionTrail RPC gateway at ``/``: parse, authenticate, route, authorise, throttle, run, render.

Each request is handled by one synchronous pipeline (the store and Redis clients are synchronous)
in two parts: ``admit`` (steps 1–11, which record the request's nonce) and ``answer`` (the
operation and its rendering). Where they run:

* In a worker thread under the request's query budget (``bounded.run_bounded``): the time limit
  (TRAILHOUSE_QUERY_TIMEOUT_S) applies and a client that leaves cancels its store work. For every
  operation that writes, for everything when TRAILHOUSE_INLINE_READ_MS is 0, and for what the
  event loop cannot do (below).
* On the event loop otherwise. Handing a request to a thread and back cost the server about half
  its CPU per lookup (docs/benchmarks.md, "Lookups on the event loop"):

  - ``admit``: as it is where nothing waits on the network (SQLite, limits in process); replayed
    where something does (``bounded.run_replayed``, storage.replay): each call it makes to
    PostgreSQL (the key, when not cached) or Redis (the nonce, the throttle) stops the run, is
    made on an asynchronous connection while the loop serves others, and the run starts again
    with its result. Each call is made once, however many runs see it.
  - a read-only ``answer`` on SQLite: under a budget of TRAILHOUSE_INLINE_READ_MS, which SQLite
    enforces by interrupting the statement; one that needs longer is stopped and run again in a
    worker thread (a read can be), so one slow lookup holds up the others for at most the budget.
  - a read-only ``answer`` on PostgreSQL: replayed as ``admit`` is; one that needs a connection
    of its own or more than ``MAX_REPLAYED_READS`` statements goes to a worker thread.

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
from ...storage.base import QueryCancelled, QueryTimeout, StoreUnavailable
from ...storage.replay import ReplayReads, Statement
from ..bounded import run_bounded, run_replayed, try_inline
from ..context import Services
from ..limits import LimitCall, Limits, open_limits
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
#: Calls a replayed answer may make before it goes to a thread: each one costs a run of the
#: answer. A LookupEvents or GetAccessKeyLastUsed* page needs one statement.
MAX_REPLAYED_READS = 4
#: Calls admitting a request may make: the key when not cached, the nonce, the throttle, the nonce
#: given back after a refusal.
MAX_ADMIT_CALLS = 8
KNOWN_ACTIONS = frozenset(action for action, _ in OPERATIONS)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request past steps 1–11: what ``answer`` needs to run and render it."""

    op: Operation
    call: Call
    fmt: Fmt
    host_id: str


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
        on_loop = svc.settings.inline_read_ms > 0
        #: Seconds a read-only SQLite answer may run on the event loop (0: never there).
        self.inline_s = svc.settings.inline_read_ms / 1000 if on_loop and svc.store.in_process else 0.0
        #: Whether requests are admitted and read-only answers given on the event loop: at once where
        #: nothing waits on the network (SQLite, limits in process), once ``aopen`` has opened the
        #: asynchronous connections of what does (PostgreSQL, Redis) in the serving loop.
        self.on_loop = on_loop and svc.store.in_process and limits.in_process
        self._wants_sources = on_loop and not self.on_loop
        #: The sources of replayed calls by the type of call they make (storage.replay).
        self._sources: dict[type, ReplayReads] = {}
        self._closed = False
        self._rates = {
            THROTTLE_LOOKUP_EVENTS: svc.settings.throttle_lookup_events,
            THROTTLE_ACCESS_KEY_USAGE: svc.settings.throttle_access_key_usage,
            THROTTLE_TRAILS: svc.settings.throttle_trails,
            THROTTLE_INSIGHTS: svc.settings.throttle_access_key_usage,
        }

    def close(self) -> None:
        self.limits.close()

    async def aopen(self) -> None:
        """Open the replay connections in the serving event loop (the app's lifespan). Until then,
        and without a lifespan, requests on a store or limits that wait on the network go to threads."""
        if not self._wants_sources or self._sources or self._closed:
            return
        sources: dict[type, ReplayReads | None] = {
            Statement: None if self.svc.store.in_process else self.svc.store.replay_reads(),
            LimitCall: None if self.limits.in_process else self.limits.replay_calls(),
        }
        opened = {kind: source for kind, source in sources.items() if source is not None}
        for source in opened.values():
            await source.open()
        self._sources = opened
        self.on_loop = True

    async def aclose(self) -> None:
        """Close the replay connections, in the event loop that opened them. New requests go to
        threads; one still replaying meets a closed pool and is answered 503."""
        if self._wants_sources:
            self.on_loop = False
        self._closed = True
        for source in self._sources.values():
            await source.aclose()

    async def _fetch(self, call: Any, timeout_s: float | None) -> Any:
        source = self._sources.get(type(call))
        if source is None and isinstance(call, LimitCall) and not self._closed:
            # Limits that wait on the network put in after start (tests give Redis limits small caps).
            calls = self.limits.replay_calls()
            if calls is not None:
                await calls.open()
                source = self._sources[LimitCall] = calls
        if source is None:  # raised inside the run, where it answers 503
            return StoreUnavailable("the server is shutting down")
        return await source.fetch(call, timeout_s=timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app of ``/``: read the request, run ``process``, answer.

        Where each part runs: the module's docstring. Once the body is read, a client that
        disconnects cancels store work in a thread (nothing is answered: nobody is listening).

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
            outcome = await self._run(args, receive)
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

    async def _run(
        self, args: tuple[str, bytes, dict[str, str], bytes, str, str], receive: Receive
    ) -> Outcome:
        timeout_s = self.svc.settings.query_timeout_s
        if not self.on_loop:
            return await run_bounded(self.process, *args, timeout_s=timeout_s, receive=receive)
        started = time.monotonic()
        admitted: Admitted | Outcome | None
        if self._sources:
            # Its calls (a key missing from the cache, the nonce, the throttle) are made once each,
            # by the fetches, whatever the number of runs: admitting is replayed as safely as a read.
            # Limits in process take the nonce without a call: safe because the one store read
            # (the key) comes before it, so no run that took it is stopped and run again.
            admitted = await run_replayed(
                self.admit,
                *args,
                now_ms(),  # one clock for every run: a later one must not refuse what an earlier took
                fetch=self._fetch,
                max_reads=MAX_ADMIT_CALLS,
                timeout_s=timeout_s,
                receive=receive,
                restartable=False,
            )
            if admitted is None:  # nothing was fetched (run_replayed): it may start again in a thread
                return await run_bounded(self.process, *args, timeout_s=timeout_s, receive=receive)
        else:
            # Nothing here waits on the network: parsing, the signature, limits in process, the key
            # from its cache or a primary-key read of SQLite.
            admitted = self.admit(*args)
        if isinstance(admitted, Outcome):
            return admitted
        if not admitted.op.read_only:
            return await run_bounded(self.answer, admitted, timeout_s=timeout_s, receive=receive)
        if self.inline_s:
            budget_s = min(self.inline_s, timeout_s) if timeout_s else self.inline_s
            outcome = try_inline(self.answer, admitted, True, budget_s=budget_s)
        else:
            left = timeout_s - (time.monotonic() - started) if timeout_s else None
            if left is not None and left <= 0:
                return self._timed_out(admitted)
            try:
                outcome = await run_replayed(
                    self.answer,
                    admitted,
                    fetch=self._fetch,
                    max_reads=MAX_REPLAYED_READS,
                    timeout_s=left,
                    receive=receive,
                )
            except QueryTimeout:  # the limit passed between two statements: answered by its operation
                return self._timed_out(admitted)
        if outcome is not None:
            return outcome
        # It needs longer than the loop may give, or more than a replay can: run again in a
        # thread, in the time left.
        return await self._answer_in_thread(admitted, receive, timeout_s, started)

    async def _answer_in_thread(
        self, admitted: Admitted, receive: Receive, timeout_s: float, started: float
    ) -> Outcome:
        """``answer`` in a worker thread, after a try on the loop: in what is left of the time limit."""
        if timeout_s:
            timeout_s -= time.monotonic() - started
            if timeout_s <= 0:
                return self._timed_out(admitted)
        return await run_bounded(self.answer, admitted, timeout_s=timeout_s, receive=receive)

    def _timed_out(self, admitted: Admitted) -> Outcome:
        failure = self._failure_timeout(admitted.call.request_id)
        return self._error(
            failure, admitted.call.request_id, admitted.host_id, admitted.fmt, admitted.op.action
        )

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
        # The error's traceback holds the frame that caught it, which holds the error: a cycle
        # that kept each refused request (an 8,000-character nonce and all) until the collector
        # ran (tests/reliability/test_memory.py measured 1.3-1.8 KB per request kept).
        err.__traceback__ = None
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
        """The whole pipeline, in one thread: ``admit`` then ``answer``."""
        admitted = self.admit(method, raw_query, headers, body, request_id, path)
        return admitted if isinstance(admitted, Outcome) else self.answer(admitted)

    def admit(
        self,
        method: str,
        raw_query: bytes,
        headers: dict[str, str],
        body: bytes,
        request_id: str,
        path: str,
        now: int | None = None,
    ) -> Admitted | Outcome:
        """Steps 1–11: parse, authenticate, route, authorise, throttle; an Outcome if refused.

        Authenticating records the request's nonce, so a request is admitted once; what follows
        (``answer``) may be run again.
        """
        # The reply format is the parsed request's; only a request that could not be parsed needs
        # the best-effort guess, so the query string is parsed once on the way to a success.
        fmt: Fmt | None = None
        action: str | None = None
        try:
            req = parse_request(method, raw_query, headers, body, path=path)  # step 1
            fmt = req.fmt
            action = req.action
            if now is None:
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
            return Admitted(op, call, fmt, headers.get("host", ""))
        except Exception as exc:
            failure = self._failure(exc, request_id)
        if fmt is None:
            fmt = guess_format(raw_query, headers)
        return self._error(failure, request_id, headers.get("host", ""), fmt, action)

    def answer(self, admitted: Admitted, inline: bool = False) -> Outcome:
        """Step 12: run the operation and render its answer (or its error).

        ``inline``: a ``QueryTimeout`` is raised rather than answered, for the caller to run the
        operation again off the event loop.
        """
        op, call = admitted.op, admitted.call
        try:
            data: dict[str, Any] = {"RequestId": call.request_id, **op.handler(call, self.svc)}  # step 12
            payload, content_type = render(op.action, data, admitted.fmt)
            return Outcome(200, payload, content_type, op.action)
        except QueryTimeout:
            if inline:
                raise
            failure = self._failure_timeout(call.request_id)
        except Exception as exc:
            failure = self._failure(exc, call.request_id)
        return self._error(failure, call.request_id, admitted.host_id, admitted.fmt, op.action)

    def _failure_timeout(self, request_id: str) -> errors.ApiError:
        log.warning("request %s: query time limit reached", request_id)
        return self._timeout_error()

    def _failure(self, exc: Exception, request_id: str) -> errors.ApiError:
        """The ApiError a failure is answered with; a cancelled query is raised again (nobody listens)."""
        if isinstance(exc, errors.ApiError):
            return exc
        if isinstance(exc, QueryCancelled):  # the client left: run_bounded's caller answers nothing
            raise exc
        if isinstance(exc, QueryTimeout):
            return self._failure_timeout(request_id)
        if isinstance(exc, StoreUnavailable):
            log.warning("request %s: store unavailable: %s", request_id, exc)
            return errors.ServiceUnavailable()
        if isinstance(
            exc, MasterKeyError
        ):  # this node's master key is not the one the secret was sealed with
            log.error("request %s: %s; give every node the same TRAILHOUSE_MASTER_KEY", request_id, exc)
            return errors.ServiceUnavailable(
                message="The server cannot open this AccessKey's secret: its master key is misconfigured."
            )
        log.exception("request %s failed", request_id, exc_info=exc)
        return errors.InternalError()

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
