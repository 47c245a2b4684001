"""``GET /api/v1/insights``: the account's insight records, newest first, with a cursor."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...model.insights import INSIGHT_TYPES, InsightAttr, InsightQuery
from ...model.times import DAY_MS, format_wire_time, now_ms
from ...service.insights.lookup import InsightRejected, lookup_insights
from ...service.pagetoken import query_digest
from ..context import Services
from .errors import InvalidParameter
from .search import _bounded, _reader, _time

__all__ = ["INSIGHT_FILTERS", "INSIGHTS_PARAMS", "list_insights"]

#: Query parameter → the column it filters (exact match).
INSIGHT_FILTERS: dict[str, InsightAttr] = {
    "type": InsightAttr.INSIGHT_TYPE,
    "id": InsightAttr.EVENT_ID,
    "object": InsightAttr.INSIGHT_OBJECT,
    "accessKeyId": InsightAttr.ACCESS_KEY_ID,
    "sourceIp": InsightAttr.SOURCE_IP,
    "eventName": InsightAttr.EVENT_NAME,
    "serviceName": InsightAttr.SERVICE_NAME,
}
INSIGHTS_PARAMS = frozenset({"account", "start", "end", "limit", "cursor", *INSIGHT_FILTERS})
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


async def list_insights(request: Request, svc: Services) -> Response:
    _, account_id = await _reader(request, svc, INSIGHTS_PARAMS)
    params = request.query_params
    now = now_ms()
    start = _time(params.get("start"), "start", now - svc.settings.retention_days * DAY_MS)
    end = _time(params.get("end"), "end", now + DAY_MS)
    if end < start:
        raise InvalidParameter("end must not be before start")
    equals = {attr: params[name] for name, attr in INSIGHT_FILTERS.items() if params.get(name)}
    if equals.get(InsightAttr.INSIGHT_TYPE, INSIGHT_TYPES[0]) not in INSIGHT_TYPES:
        raise InvalidParameter(f"type must be one of {', '.join(INSIGHT_TYPES)}")
    raw_limit = params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise InvalidParameter(f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
    # Bound to the parameters as given: defaults move with the clock, and a cursor keeps its first
    # page's window anyway.
    bound: dict[str, Any] = {
        "s": params.get("start", ""),
        "e": params.get("end", ""),
        "f": {str(k): v for k, v in equals.items()},
    }
    try:
        page = await _bounded(
            request,
            svc,
            lambda: lookup_insights(
                svc.store,
                svc.page_tokens,
                account_id=account_id,
                query=InsightQuery(start, end, equals),
                limit=limit,
                next_token=params.get("cursor"),
                digest=query_digest(bound),
            ),
        )
    except InsightRejected as exc:
        raise InvalidParameter(exc.message) from None
    head = orjson.dumps(
        {
            "account": account_id,
            "window": {"start": format_wire_time(page.start_ms), "end": format_wire_time(page.end_ms)},
            "count": len(page.insights),
            "nextCursor": page.next_token,
        }
    )
    # Records go out exactly as stored: splice them instead of parsing and re-writing each.
    body = head[:-1] + b',"insights":[' + b",".join(i.body for i in page.insights) + b"]}"
    return Response(body, media_type="application/json")
