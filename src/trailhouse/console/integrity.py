"""The integrity mark of an event, and its proof as JSON under the console's session.

The mark is ``service.integrity.event_mark.check_event``: the server proves the stored event is in
the account's latest signed checkpoint and checks that proof and the checkpoint's signature
itself. ``/api/v1/events/<id>/proof`` needs a bearer token, so the console serves the same JSON at
``/console/proof/<id>`` to a signed-in person (``actiontrail:LookupEvents``, as reading the event).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..model.query import Attr, EventFilter, StoredEvent
from ..model.times import DAY_MS, now_ms
from ..service.integrity.event_mark import EventMark, MarkState, check_event
from .web import SECURITY_HEADERS, Console

__all__ = ["MarkView", "event_proof", "find_event", "mark_of"]

SEARCH = "LookupEvents"


@dataclass(frozen=True, slots=True)
class MarkView:
    """What the event page shows: a state for styling and tests, a sentence, the proof's size."""

    state: str
    message: str
    tree_size: int
    has_proof: bool


def find_event(console: Console, account_id: str, event_id: str) -> StoredEvent | None:
    """The account's stored event with this id (any time the store may hold), or None."""
    if "\x00" in event_id:
        return None
    now = now_ms()
    retention = console.svc.settings.retention_days * DAY_MS
    # Any time the store may hold: events stamped ahead of now (a producer's clock) too.
    flt = EventFilter(now - retention, now + retention, equals={Attr.EVENT_ID: (event_id,)})
    found = console.svc.store.find_events(
        account_id=account_id, flt=flt, after=None, descending=True, limit=1
    )
    return found[0] if found else None


def _check(console: Console, account_id: str, stored: StoredEvent) -> EventMark:
    svc = console.svc
    return check_event(svc.store, svc.log_signer, account_id=account_id, seq=stored.seq, body=stored.body)


def mark_of(console: Console, account_id: str, stored: StoredEvent) -> MarkView:
    mark = _check(console, account_id, stored)
    return MarkView(mark.state.value, mark.message, mark.tree_size, mark.proof is not None)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=SECURITY_HEADERS
    )


def _proof(console: Console, request: Request, event_id: str) -> tuple[int, dict[str, Any]]:
    who = console.check(request, SEARCH)
    stored = find_event(console, who.account_id, event_id)
    if stored is None:  # as the API: the same answer whether or not another account holds it
        return 404, {"error": {"code": "NotFound", "message": f"the account has no event {event_id!r}"}}
    mark = _check(console, who.account_id, stored)
    if mark.proof is None:
        code = "ServiceUnavailable" if mark.state is MarkState.NO_LOG else "NotFound"
        return (503 if code == "ServiceUnavailable" else 404), {
            "error": {"code": code, "message": mark.message}
        }
    proof = mark.proof
    # Exactly the body of GET /api/v1/events/<id>/proof, so that the same verifier reads both.
    return 200, {
        "eventId": stored.event_id,
        "leafIndex": proof.leaf_index,
        "treeSize": proof.tree_size,
        "inclusionPath": [base64.b64encode(h).decode() for h in proof.path],
        "checkpoint": proof.checkpoint,
    }


async def event_proof(console: Console, request: Request) -> Response:
    status, body = await console.bounded(request, _proof, console, request, request.path_params["event_id"])
    return _json(body, status)
