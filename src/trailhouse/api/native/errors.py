"""Errors of the native API, one class per code, rendered as ``{"error": {"code", "message"}, "requestId"}``.

Each class carries its HTTP status, code and default message; an instance may give its own message
and extra fields of the ``error`` object (``details``). Routes raise them; the endpoint wrapper
(``native.routes.endpoint``) renders every one with ``error_response``, the only place a native error
body is written.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ..wire import REQUEST_ID_HEADER

__all__ = [
    "AccessKeyNotFound",
    "BadRequest",
    "BatchTooLarge",
    "Forbidden",
    "InternalError",
    "InvalidParameter",
    "MalformedBody",
    "MethodNotAllowed",
    "MissingAccount",
    "NativeError",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "QueryTimeout",
    "ServiceUnavailable",
    "Unauthorized",
    "UnknownParameter",
    "error_response",
]


class NativeError(Exception):
    """Base of the native errors; ``status`` may be given for an HTTP error Starlette raised."""

    status: int = 500
    code: str = "InternalError"
    message: str = "internal error"

    def __init__(self, message: str | None = None, *, status: int | None = None, **details: Any) -> None:
        super().__init__(message or type(self).message)
        self.status = type(self).status if status is None else status
        self.message = message or type(self).message
        self.details = details

    def body(self, request_id: str) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message, **self.details}
        return {"error": error, "requestId": request_id}


class BadRequest(NativeError):
    status, code, message = 400, "BadRequest", "the request cannot be read"


class MalformedBody(NativeError):
    status, code, message = 400, "MalformedBody", "the body is not JSON, NDJSON or gzip of them"


class InvalidParameter(NativeError):
    status, code, message = 400, "InvalidParameter", "a parameter is not valid"


class UnknownParameter(NativeError):
    """A query parameter the endpoint does not know: never silently ignored, it would widen a search."""

    status, code, message = 400, "UnknownParameter", "the request has a parameter this endpoint does not know"


class MissingAccount(NativeError):
    status, code, message = 400, "MissingAccount", "this token covers several accounts: give ?account=ID"


class Unauthorized(NativeError):
    status, code, message = 401, "Unauthorized", "the token is not valid"


class Forbidden(NativeError):
    status, code, message = 403, "Forbidden", "the token may not do this"


class NotFound(NativeError):
    status, code, message = 404, "NotFound", "there is nothing at this path"


class AccessKeyNotFound(NativeError):
    status, code, message = 404, "AccessKeyNotFound", "the account has no events of this AccessKey"


class MethodNotAllowed(NativeError):
    status, code, message = 405, "MethodNotAllowed", "this path does not answer this method"


class PayloadTooLarge(NativeError):
    status, code, message = 413, "PayloadTooLarge", "the body is larger than the limit"


class BatchTooLarge(NativeError):
    status, code, message = 413, "BatchTooLarge", "the batch has more events than the limit per request"


class InternalError(NativeError):
    status, code, message = 500, "InternalError", "internal error"


class ServiceUnavailable(NativeError):
    status, code, message = 503, "ServiceUnavailable", "the store is unavailable; try again later"


class QueryTimeout(NativeError):
    status, code, message = 503, "QueryTimeout", "the query ran longer than the time limit"

    @classmethod
    def after(cls, limit_s: float, tail: str = "") -> QueryTimeout:
        """The message names the limit and what to do about it (``tail`` adds what it interrupted)."""
        return cls(
            f"the query ran longer than the limit of {limit_s:g} s (TRAILHOUSE_QUERY_TIMEOUT_S);"
            " narrow the time range or add filters, or ask the operator to raise the limit." + tail
        )


class NotReady(ServiceUnavailable):
    """The readiness probe's 503: its body is the probe's own shape, which orchestrators read."""

    message = "the store is unavailable"

    def body(self, request_id: str) -> dict[str, Any]:
        return {"status": "unavailable", "reason": self.message}


def error_response(err: NativeError, request_id: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(err.body(request_id)),
        status_code=err.status,
        media_type="application/json",
        headers={REQUEST_ID_HEADER: request_id, **(headers or {})},
    )
