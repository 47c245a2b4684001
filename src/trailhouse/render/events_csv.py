"""Events as CSV rows, shared by ``GET /api/v1/events?format=csv`` and ``trailhouse lookup --format csv``."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["CSV_COLUMNS", "csv_row"]

#: The columns of a CSV export: the fields an investigator reads first, dotted paths into the event.
CSV_COLUMNS = (
    "eventTime",
    "eventId",
    "eventName",
    "serviceName",
    "eventType",
    "eventRW",
    "acsRegion",
    "sourceIpAddress",
    "userIdentity.type",
    "userIdentity.userName",
    "userIdentity.accessKeyId",
    "resourceType",
    "resourceName",
    "errorCode",
    "errorMessage",
    "requestId",
)


def csv_row(event: dict[str, Any]) -> list[str]:
    row = []
    for column in CSV_COLUMNS:
        value: Any = event
        for part in column.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        row.append("" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode())
    return row
