"""Errors of the native API, rendered as ``{"error": {"code", "message"}, "requestId"}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["NativeError", "native_error_response"]


class NativeError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def native_error_response(err: NativeError, request_id: str) -> Response:
    body: dict[str, Any] = {"error": {"code": err.code, "message": err.message, **err.details}}
    body["requestId"] = request_id
    return Response(
        orjson.dumps(body),
        status_code=err.status,
        media_type="application/json",
        headers={"x-acs-request-id": request_id},
    )
