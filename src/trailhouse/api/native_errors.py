"""Errors of the native API, one class per code, rendered as ``{"error": {"code", "message"}, "requestId"}``.

Each class carries its HTTP status, code and default message; an instance may give its own message
and extra fields of the ``error`` object (``details``). ``NativeError(status, code, message)`` still
builds an ad-hoc error, for codes only one endpoint uses.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = [
    "AccessKeyNotFound",
    "BadRequest",
    "Forbidden",
    "InternalError",
    "InvalidParameter",
    "MethodNotAllowed",
    "MissingAccount",
    "NativeError",
    "NotFound",
    "QueryTimeout",
    "ServiceUnavailable",
    "Unauthorized",
    "UnknownParameter",
    "error_body",
    "native_error_response",
]


class NativeError(Exception):
    status: int = 500
    code: str = "InternalError"
    message: str = "internal error"

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class _Coded(NativeError):
    """A native error whose status and code are fixed by its class."""

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(type(self).status, type(self).code, message or type(self).message, **details)


class BadRequest(_Coded):
    status, code, message = 400, "BadRequest", "the request cannot be read"


class InvalidParameter(_Coded):
    status, code, message = 400, "InvalidParameter", "a parameter is not valid"


class UnknownParameter(_Coded):
    """A query parameter the endpoint does not know: never silently ignored, it would widen a search."""

    status, code, message = 400, "UnknownParameter", "the request has a parameter this endpoint does not know"


class MissingAccount(_Coded):
    status, code, message = 400, "MissingAccount", "this token covers several accounts: give ?account=ID"


class Unauthorized(_Coded):
    status, code, message = 401, "Unauthorized", "the token is not valid"


class Forbidden(_Coded):
    status, code, message = 403, "Forbidden", "the token may not do this"


class NotFound(_Coded):
    status, code, message = 404, "NotFound", "there is nothing at this path"


class AccessKeyNotFound(_Coded):
    status, code, message = 404, "AccessKeyNotFound", "the account has no events of this AccessKey"


class MethodNotAllowed(_Coded):
    status, code, message = 405, "MethodNotAllowed", "this path does not answer this method"


class InternalError(_Coded):
    status, code, message = 500, "InternalError", "internal error"


class ServiceUnavailable(_Coded):
    status, code, message = 503, "ServiceUnavailable", "the store is unavailable; try again later"


class QueryTimeout(_Coded):
    status, code, message = 503, "QueryTimeout", "the query ran longer than the time limit"


def error_body(err: NativeError, request_id: str) -> dict[str, Any]:
    return {"error": {"code": err.code, "message": err.message, **err.details}, "requestId": request_id}


def native_error_response(
    err: NativeError, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(error_body(err, request_id)),
        status_code=err.status,
        media_type="application/json",
        headers={"x-acs-request-id": request_id, **(headers or {})},
    )
