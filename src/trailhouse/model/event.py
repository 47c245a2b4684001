"""The ActionTrail event: validation of the documented structure and the typed record the store keeps.

An event is kept verbatim: the compact JSON of exactly what was ingested (unknown fields included,
value types unchanged) travels as ``EventRecord.body``. Beside it sit the typed attributes that
lookups filter on, extracted once at ingest so that no query ever has to parse JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .times import TimeFormatError, parse_event_time

__all__ = [
    "EventInvalid",
    "EventRecord",
    "event_from_mapping",
    "event_from_json",
    "key_hash",
    "usage_source",
]


class EventInvalid(ValueError):
    """An event that does not follow the documented structure; the message says what is wrong."""


# Documented fields (spec §7) and the JSON types each may take when present. Unknown fields are
# allowed and kept verbatim; known ones must have the documented type so filters stay meaningful.
_STR = (str,)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "eventId": _STR,
    "eventVersion": (str, int),
    "eventTime": _STR,
    "eventName": _STR,
    "eventSource": _STR,
    "eventType": _STR,
    "eventRW": _STR,
    "eventCategory": _STR,
    "serviceName": _STR,
    "apiVersion": _STR,
    "acsRegion": _STR,
    "isGlobal": (bool,),
    "requestId": _STR,
    "requestParameters": (dict,),
    "requestParameterJson": _STR,
    "responseElements": (dict, list, str),
    "additionalEventData": (dict,),
    "referencedResources": (dict,),
    "resourceName": _STR,
    "resourceType": _STR,
    "errorCode": _STR,
    "errorMessage": _STR,
    "sourceIpAddress": _STR,
    "userAgent": _STR,
    "vpcId": _STR,
    "recipientAccountId": _STR,
    "eventAttributes": (dict,),
    "userIdentity": (dict,),
    "sensitiveAction": (bool, str),
}
_IDENTITY_TYPES: dict[str, tuple[type, ...]] = {
    "type": _STR,
    "accountId": (str, int),
    "principalId": (str, int),
    "userName": _STR,
    "accessKeyId": _STR,
    "sessionContext": (dict,),
}
_REQUIRED = ("eventId", "eventTime", "eventName")
_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}
MAX_ID_LENGTH = 256


def key_hash(value: str) -> int:
    """A signed 64-bit hash used to index long unique strings (eventId, requestId) compactly.

    Equality is always re-checked on the real value: the hash only narrows the search.
    """
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One validated event: the typed attributes lookups filter on, and the verbatim JSON body."""

    account_id: str
    event_id: str
    event_time_ms: int
    event_name: str
    body: bytes
    event_type: str | None = None
    event_rw: str | None = None
    event_category: str | None = None
    service_name: str | None = None
    request_id: str | None = None
    user_name: str | None = None
    access_key_id: str | None = None
    source_ip: str | None = None
    role_name: str | None = None
    sensitive_action: bool | None = None
    error_code: str | None = None
    resources: tuple[tuple[str, str], ...] = field(default=())
    event_key: int = 0  # key_hash(event_id), computed once at validation
    request_key: int | None = None  # key_hash(request_id)


def _type_error(path: str, expected: tuple[type, ...], value: Any) -> EventInvalid:
    want = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in expected)
    got = "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)
    return EventInvalid(f"field {path} must be {want}, got {got}")


def _check_types(obj: Mapping[str, Any], table: dict[str, tuple[type, ...]], prefix: str) -> None:
    for name, value in obj.items():
        expected = table.get(name)
        if expected is None:
            continue
        # bool is a subclass of int: an integer field must not silently accept true/false.
        if isinstance(value, bool) and bool not in expected:
            raise _type_error(prefix + name, expected, value)
        if not isinstance(value, expected):
            raise _type_error(prefix + name, expected, value)


def _nonempty(obj: Mapping[str, Any], name: str, path: str) -> str:
    value = obj.get(name)
    if value is None:
        raise EventInvalid(f"missing required field {path}")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise EventInvalid(f"field {path} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH and name in ("eventId", "accountId"):
        raise EventInvalid(f"field {path} is longer than {MAX_ID_LENGTH} characters")
    return value


def _resources(event: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    rtype, rname = event.get("resourceType"), event.get("resourceName")
    if rtype or rname:
        pairs.append((rtype or "", rname or ""))
    refs = event.get("referencedResources")
    if refs:
        for ref_type, names in refs.items():
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise EventInvalid(f"field referencedResources.{ref_type} must be an array of strings")
            pairs.extend((ref_type, n) for n in names)
            if not names:
                pairs.append((ref_type, ""))
    return tuple(dict.fromkeys(pairs))  # de-duplicated, order kept


def _sensitive(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise EventInvalid("field sensitiveAction must be true or false")


def event_from_mapping(event: Any, body: bytes | None = None) -> EventRecord:
    """Validate one decoded event and extract its typed attributes.

    ``body`` is the compact JSON of ``event`` when the caller already has it.
    """
    if not isinstance(event, dict):
        raise EventInvalid("an event must be a JSON object")
    _check_types(event, _FIELD_TYPES, "")
    for name in _REQUIRED:
        _nonempty(event, name, name)
    identity = event.get("userIdentity")
    if identity is None:
        raise EventInvalid("missing required field userIdentity.accountId")
    _check_types(identity, _IDENTITY_TYPES, "userIdentity.")
    account_id = _nonempty(identity, "accountId", "userIdentity.accountId")
    try:
        event_time_ms = parse_event_time(event["eventTime"])
    except TimeFormatError as exc:
        raise EventInvalid(f"field eventTime: {exc}") from None

    user_name = identity.get("userName")
    role_name = None
    if identity.get("type") == "assumed-role" and user_name:
        role_name = user_name.split(":", 1)[0]
    if body is None:
        try:
            body = orjson.dumps(event)
        except TypeError as exc:  # e.g. an integer beyond 64 bits
            raise EventInvalid(f"event cannot be stored as JSON: {exc}") from None
    error_code = event.get("errorCode") or None
    return EventRecord(
        account_id=account_id,
        event_id=event["eventId"],
        event_time_ms=event_time_ms,
        event_name=event["eventName"],
        body=body,
        event_type=event.get("eventType"),
        event_rw=event.get("eventRW"),
        event_category=event.get("eventCategory"),
        service_name=event.get("serviceName"),
        request_id=event.get("requestId"),
        user_name=user_name,
        access_key_id=identity.get("accessKeyId"),
        source_ip=event.get("sourceIpAddress"),
        role_name=role_name,
        sensitive_action=_sensitive(event.get("sensitiveAction")),
        error_code=error_code,
        resources=_resources(event),
        event_key=key_hash(event["eventId"]),
        request_key=key_hash(event["requestId"]) if event.get("requestId") is not None else None,
    )


def event_from_json(data: bytes | str) -> EventRecord:
    """Parse and validate one event given as JSON text."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventInvalid(f"malformed JSON: {exc}") from None
    return event_from_mapping(event)


def usage_source(event_category: str | None) -> str:
    """The ``Source`` of the GetAccessKeyLastUsed* family, from the event's category.

    Events without a category predate data events and are management events.
    """
    if event_category is None or event_category == "Management":
        return "ManagementEvent"
    if event_category == "Data":
        return "DataEvent"
    return "Internal"
