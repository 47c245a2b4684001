"""The OpenAPI 3.1 description of the native API, served at ``/api/v1/openapi.json``.

Every operation lists every status it can answer, each error with the one JSON error shape
(``Error``); tests/reliability/test_fuzz.py runs schemathesis against this document and asserts its
conformance checks. A 405 (another method on a known path) and a 404 (a path that does not exist)
cannot belong to an operation: they are ``components.responses`` and the description says so.
"""

from __future__ import annotations

from typing import Any

from ... import __version__
from .log import log_openapi_paths

__all__ = ["openapi_spec"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_REQUEST_ID = {
    "x-acs-request-id": {
        "description": "The request id, also in the body's requestId and the server's log.",
        "required": True,
        "schema": {"type": "string"},
    }
}

#: What each error status means, and the codes it carries (docs/api.md lists when each is answered).
_ERRORS: dict[int, str] = {
    400: "the request is not valid: BadRequest, MalformedBody, InvalidParameter, UnknownParameter "
    "(a query parameter this endpoint does not know; the error names it in `parameter` and lists "
    "`validParameters`), MissingAccount",
    401: "Unauthorized: no bearer token, or not a valid one",
    403: "Forbidden: the token lacks the scope, or may not read that account",
    404: "AccessKeyNotFound: the account holds no event of this AccessKey",
    413: "PayloadTooLarge or BatchTooLarge: the limit is named in the message",
    503: "QueryTimeout (the query ran longer than TRAILHOUSE_QUERY_TIMEOUT_S) or ServiceUnavailable "
    "(the store is unavailable); try again later or narrow the query",
}


def _error_responses(*codes: int) -> dict[str, Any]:
    return {
        str(c): {
            "description": _ERRORS[c],
            "headers": _REQUEST_ID,
            "content": {"application/json": {"schema": _ERROR}},
        }
        for c in codes
    }


NOTICE = (
    "Present when the answer may mislead on its own: the account has no events at all, none in the "
    "window (and its newest event), a window in the future, or one reaching past retention."
)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_spec() -> dict[str, Any]:
    from ...model.insights import INSIGHT_TYPES
    from ...render.events_csv import CSV_COLUMNS
    from ...service.search import FILTER_PARAMS, PREFIXABLE
    from .search import EXPORT_FORMATS, MAX_LIMIT

    filters = []
    for name, attr in FILTER_PARAMS.items():
        filters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "explode": True,
                "schema": {"type": "array", "items": {"type": "string"}},
                "description": f"Exact, case-sensitive match on {attr}; repeat for any-of."
                + (" A CIDR (10.0.0.0/8) matches a network." if name == "SourceIpAddress" else ""),
            }
        )
        if attr in PREFIXABLE:
            filters.append(
                {
                    "name": f"{name}.prefix",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": f"{name} starts with this text.",
                }
            )
    common = [
        {
            "name": "account",
            "in": "query",
            "schema": {"type": "string"},
            "description": "The account to read; required when the token covers several.",
        },
        {
            "name": "start",
            "in": "query",
            "schema": {"type": "string", "format": "date-time"},
            "description": "ISO 8601; default: the start of retention.",
        },
        {
            "name": "end",
            "in": "query",
            "schema": {"type": "string", "format": "date-time"},
            "description": "ISO 8601; default: now.",
        },
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Trailhouse native API",
            "version": __version__,
            "description": "Ingest and search ActionTrail events without the cloud API's limits. "
            "The ActionTrail OpenAPI itself is served at / (see docs/api.md). Every error is JSON: "
            '`{"error": {"code", "message", ...}, "requestId"}`. A path that does not exist answers '
            "404 NotFound, a method a path does not answer 405 MethodNotAllowed with `Allow`. "
            "Unknown query parameters are refused (400 UnknownParameter), never ignored.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `trailhouse tokens create`.",
                },
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "TRAILHOUSE_METRICS_TOKEN, when the operator set one.",
                },
            },
            "responses": {
                "NotFound": {
                    "description": "NotFound: no route at this path (any method)",
                    "headers": _REQUEST_ID,
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "MethodNotAllowed": {
                    "description": "MethodNotAllowed: the path exists but does not answer this method",
                    "headers": {
                        **_REQUEST_ID,
                        "Allow": {
                            "description": "The methods the path answers",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    },
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "requestId"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string", "examples": ["UnknownParameter", "QueryTimeout"]},
                                "message": {"type": "string"},
                                "parameter": {
                                    "type": "string",
                                    "description": "UnknownParameter: the name refused",
                                },
                                "validParameters": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "description": "UnknownParameter: the names this endpoint takes",
                                },
                                "accessKeyId": {"type": "string", "description": "AccessKeyNotFound"},
                                "account": {"type": "string", "description": "AccessKeyNotFound"},
                            },
                        },
                        "requestId": {"type": "string"},
                    },
                },
                "Window": {
                    "type": "object",
                    "required": ["start", "end"],
                    "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
                },
                "Readiness": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"enum": ["ready", "unavailable"]},
                        "reason": {"type": "string", "description": "why the service is not ready"},
                    },
                },
                "AccessKeyReport": {
                    "type": "object",
                    "required": ["accountId", "accessKeyId", "found", "notice", "totalCalls"],
                    "properties": {
                        "accountId": {"type": "string"},
                        "accessKeyId": {"type": "string"},
                        "found": {
                            "type": "boolean",
                            "description": "Always true here: a key the account holds no event of is a 404.",
                        },
                        "notice": {
                            "type": "string",
                            "description": "Why the report is empty (no calls since `since`, and the "
                            'last recorded use); "" when it is not.',
                        },
                        "since": {"type": "string"},
                        "until": {"type": "string"},
                        "totalCalls": {"type": "integer"},
                        "failedCalls": {"type": "integer"},
                        "firstUse": {"type": ["object", "null"]},
                        "lastUse": {"type": ["object", "null"]},
                        "leakTime": {
                            "type": ["object", "null"],
                            "description": "When the leak is suspected (time null: none found), whether it"
                            " was derived, and on what basis.",
                        },
                        "windowStart": {"type": "string"},
                        "windowCalls": {"type": "integer"},
                        "newIps": {"type": "array", "items": {"type": "string"}},
                        "created": {
                            "type": "array",
                            "items": {"type": "object"},
                            "description": "Users, AccessKeys, roles and policies the key created,"
                            " and their activity",
                        },
                        "bulkReads": {"type": "array", "items": {"type": "object"}},
                        "ips": {"type": "array", "items": {"type": "object"}},
                        "services": {"type": "array", "items": {"type": "object"}},
                        "resources": {"type": "array", "items": {"type": "object"}},
                        "dangerous": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Stored": {
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer"},
                        "earliest": {"type": ["string", "null"]},
                        "latest": {"type": ["string", "null"]},
                    },
                },
                "IngestReport": {
                    "type": "object",
                    "properties": {
                        "accepted": {"type": "integer"},
                        "duplicates": {"type": "integer"},
                        "rejected": {"type": "integer"},
                        "rejections": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "index": {"type": "integer"},
                                    "eventId": {"type": ["string", "null"]},
                                    "reason": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/events": {
                "post": {
                    "summary": "Ingest events (token scope: ingest)",
                    "description": 'A JSON array, {"events": [...]}, or NDJSON; gzip allowed '
                    "(Content-Encoding: gzip). Idempotent on (account, eventId).",
                    "parameters": [
                        {
                            "name": "atomic",
                            "in": "query",
                            "schema": {"type": "boolean"},
                            "description": "Store nothing if any event is invalid (422).",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {}},
                            "application/x-ndjson": {"schema": {}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "stored",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/IngestReport"}}
                            },
                        },
                        "422": {
                            "description": "atomic batch rejected",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/IngestReport"}}
                            },
                        },
                        **_error_responses(400, 401, 403, 413, 503),
                    },
                },
                "get": {
                    "summary": "Search events (token scope: read)",
                    "parameters": [
                        *common,
                        *filters,
                        {"name": "failed", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {"enum": list(EXPORT_FORMATS)},
                            "description": "json pages; ndjson and csv stream the whole result set. "
                            "CSV columns: " + ", ".join(CSV_COLUMNS),
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "a page, or a stream",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["account", "window", "stored", "count", "events"],
                                        "properties": {
                                            "account": {"type": "string"},
                                            "window": {"$ref": "#/components/schemas/Window"},
                                            "stored": {"$ref": "#/components/schemas/Stored"},
                                            "count": {"type": "integer"},
                                            "nextCursor": {"type": ["string", "null"]},
                                            "notice": {"type": "string", "description": NOTICE},
                                            "events": {"type": "array", "items": {"type": "object"}},
                                        },
                                    }
                                },
                                "application/x-ndjson": {"schema": {}},
                                "text/csv": {"schema": {}},
                            },
                        },
                        **_error_responses(400, 401, 403, 503),
                    },
                },
            },
            "/api/v1/summary": {
                "get": {
                    "summary": "What the store holds for the account in a window",
                    "parameters": common,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["account", "window", "stored"],
                                "properties": {
                                    "account": {"type": "string"},
                                    "window": {"$ref": "#/components/schemas/Window"},
                                    "stored": {"$ref": "#/components/schemas/Stored"},
                                    "notice": {"type": "string", "description": NOTICE},
                                },
                            },
                            "summary",
                        ),
                        **_error_responses(400, 401, 403, 503),
                    },
                }
            },
            "/api/v1/insights": {
                "get": {
                    "summary": "Insight records of the account, newest first (token scope: read)",
                    "parameters": [
                        *common,
                        *[
                            {"name": name, "in": "query", "schema": {"type": "string"}}
                            for name in (
                                "id",
                                "object",
                                "accessKeyId",
                                "sourceIp",
                                "eventName",
                                "serviceName",
                            )
                        ],
                        {"name": "type", "in": "query", "schema": {"enum": list(INSIGHT_TYPES)}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["account", "window", "count", "insights"],
                                "properties": {
                                    "account": {"type": "string"},
                                    "window": {"$ref": "#/components/schemas/Window"},
                                    "count": {"type": "integer"},
                                    "nextCursor": {"type": ["string", "null"]},
                                    "insights": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                            "a page of insight records (docs/insights.md describes the record)",
                        ),
                        **_error_responses(400, 401, 403, 503),
                    },
                }
            },
            "/api/v1/access-keys/{access_key_id}/report": {
                "get": {
                    "summary": "The leaked-key report of an AccessKey",
                    "parameters": [
                        {
                            "name": "access_key_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "account", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "since",
                            "in": "query",
                            "description": "The suspected leak time: YYYY-MM-DD (UTC midnight) or ISO 8601"
                            " with a zone. Absent: derived from the key's history (leakTime.basis says how).",
                            "schema": {"type": "string"},
                        },
                        {"name": "format", "in": "query", "schema": {"enum": ["json", "html"]}},
                    ],
                    "responses": {
                        "200": {
                            "description": "the report (format=json), or one self-contained HTML page",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/AccessKeyReport"}
                                },
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                        **_error_responses(400, 401, 403, 404, 503),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object"}, "the OpenAPI document"),
                        **_error_responses(400),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: the process answers (the store is not asked)",
                    "security": [],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"const": "ok"}},
                            },
                            "ok",
                        )
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the store answers a cheap indexed read within 2 s",
                    "security": [],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Readiness"}, '{"status": "ready"}'),
                        "503": _json(
                            {"$ref": "#/components/schemas/Readiness"},
                            '{"status": "unavailable", "reason": ...}: the store failed or was too slow',
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of this process (text exposition format)",
                    "description": "Open when TRAILHOUSE_METRICS_TOKEN is unset; otherwise it wants "
                    "`Authorization: Bearer <TRAILHOUSE_METRICS_TOKEN>`.",
                    "security": [{}, {"metricsToken": []}],
                    "responses": {
                        "200": {
                            "description": "the metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": {
                            "description": "Unauthorized: a metrics token is set and was not sent",
                            "headers": _REQUEST_ID,
                            "content": {"application/json": {"schema": _ERROR}},
                        },
                    },
                }
            },
            **log_openapi_paths(_error_responses),
        },
    }
