"""The OpenAPI 3.1 description of the native API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from .. import __version__

__all__ = ["openapi_spec"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_responses(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": "error", "content": {"application/json": {"schema": _ERROR}}} for c in codes
    }


def openapi_spec() -> dict[str, Any]:
    from ..service.search import CSV_COLUMNS, FILTER_PARAMS, PREFIXABLE
    from .native_search import EXPORT_FORMATS, MAX_LIMIT

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
            "The ActionTrail OpenAPI itself is served at / (see docs/api.md).",
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `trailhouse tokens create`.",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "requestId"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        },
                        "requestId": {"type": "string"},
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
                                        "properties": {
                                            "account": {"type": "string"},
                                            "window": {"type": "object"},
                                            "stored": {"$ref": "#/components/schemas/Stored"},
                                            "count": {"type": "integer"},
                                            "nextCursor": {"type": ["string", "null"]},
                                            "events": {"type": "array", "items": {"type": "object"}},
                                        },
                                    }
                                },
                                "application/x-ndjson": {"schema": {}},
                                "text/csv": {"schema": {}},
                            },
                        },
                        **_error_responses(400, 401, 403),
                    },
                },
            },
            "/api/v1/summary": {
                "get": {
                    "summary": "What the store holds for the account in a window",
                    "parameters": common,
                    "responses": {"200": {"description": "summary"}, **_error_responses(400, 401, 403)},
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
                        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                        {"name": "format", "in": "query", "schema": {"enum": ["json", "html"]}},
                    ],
                    "responses": {"200": {"description": "report"}, **_error_responses(400, 401, 403)},
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}
            },
        },
    }
