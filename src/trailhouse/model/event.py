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

import msgspec
import orjson

from .times import TimeFormatError, parse_event_time

__all__ = [
    "EventInvalid",
    "EventRecord",
    "compact_json",
    "event_from_mapping",
    "event_from_json",
    "key_hash",
    "malformed_json_reason",
    "parse_body",
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


def _resources(rtype: str | None, rname: str | None, refs: Any) -> tuple[tuple[str, str], ...]:
    """resourceType/resourceName and every referencedResources entry, de-duplicated, order kept."""
    pairs: list[tuple[str, str]] = []
    if rtype or rname:
        pairs.append((rtype or "", rname or ""))
    if refs:
        for ref_type, names in refs.items():
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise EventInvalid(f"field referencedResources.{ref_type} must be an array of strings")
            pairs.extend((ref_type, n) for n in names)
            if not names:
                pairs.append((ref_type, ""))
    return tuple(dict.fromkeys(pairs))


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
    if body is None:
        try:
            body = orjson.dumps(event)
        except TypeError as exc:  # e.g. an integer beyond 64 bits
            raise EventInvalid(f"event cannot be stored as JSON: {exc}") from None
    return _record(
        account_id,
        event["eventId"],
        event["eventTime"],
        event["eventName"],
        body,
        event.get("eventType"),
        event.get("eventRW"),
        event.get("eventCategory"),
        event.get("serviceName"),
        event.get("requestId"),
        identity.get("type"),
        identity.get("userName"),
        identity.get("accessKeyId"),
        event.get("sourceIpAddress"),
        event.get("sensitiveAction"),
        event.get("errorCode"),
        _resources(event.get("resourceType"), event.get("resourceName"), event.get("referencedResources")),
    )


def _record(
    account_id: str,
    event_id: str,
    event_time: str,
    event_name: str,
    body: bytes,
    event_type: str | None,
    event_rw: str | None,
    event_category: str | None,
    service_name: str | None,
    request_id: str | None,
    identity_type: str | None,
    user_name: str | None,
    access_key_id: str | None,
    source_ip: str | None,
    sensitive: Any,
    error_code: str | None,
    resources: tuple[tuple[str, str], ...],
) -> EventRecord:
    try:
        event_time_ms = parse_event_time(event_time)
    except TimeFormatError as exc:
        raise EventInvalid(f"field eventTime: {exc}") from None
    role_name = None
    if identity_type == "assumed-role" and user_name:
        role_name = user_name.split(":", 1)[0]
    return EventRecord(
        account_id=account_id,
        event_id=event_id,
        event_time_ms=event_time_ms,
        event_name=event_name,
        body=body,
        event_type=event_type,
        event_rw=event_rw,
        event_category=event_category,
        service_name=service_name,
        request_id=request_id,
        user_name=user_name,
        access_key_id=access_key_id,
        source_ip=source_ip,
        role_name=role_name,
        sensitive_action=_sensitive(sensitive),
        error_code=error_code or None,
        resources=resources,
        event_key=key_hash(event_id),
        request_key=key_hash(request_id) if request_id is not None else None,
    )


# The fast path: a typed msgspec decode in C of only what is indexed or type-checked. A default of
# None is not validated, so an absent field is None while a present null fails, as it must for a
# documented field. Objects that are only type-checked stay raw (their first byte says the type).
# Any failure falls back to event_from_mapping, whose messages say exactly what is wrong.
class _Identity(msgspec.Struct):
    type: str = None  # type: ignore[assignment]
    accountId: str | int = None  # type: ignore[assignment]  # noqa: N815 (wire names)
    principalId: str | int = None  # type: ignore[assignment]  # noqa: N815
    userName: str = None  # type: ignore[assignment]  # noqa: N815
    accessKeyId: str = None  # type: ignore[assignment]  # noqa: N815
    sessionContext: msgspec.Raw = None  # type: ignore[assignment]  # noqa: N815


class _Event(msgspec.Struct):
    eventId: str = None  # type: ignore[assignment]  # noqa: N815
    eventVersion: str | int = None  # type: ignore[assignment]  # noqa: N815
    eventTime: str = None  # type: ignore[assignment]  # noqa: N815
    eventName: str = None  # type: ignore[assignment]  # noqa: N815
    eventSource: str = None  # type: ignore[assignment]  # noqa: N815
    eventType: str = None  # type: ignore[assignment]  # noqa: N815
    eventRW: str = None  # type: ignore[assignment]  # noqa: N815
    eventCategory: str = None  # type: ignore[assignment]  # noqa: N815
    serviceName: str = None  # type: ignore[assignment]  # noqa: N815
    apiVersion: str = None  # type: ignore[assignment]  # noqa: N815
    acsRegion: str = None  # type: ignore[assignment]  # noqa: N815
    isGlobal: bool = None  # type: ignore[assignment]  # noqa: N815
    requestId: str = None  # type: ignore[assignment]  # noqa: N815
    requestParameters: msgspec.Raw = None  # type: ignore[assignment]  # noqa: N815
    requestParameterJson: str = None  # type: ignore[assignment]  # noqa: N815
    responseElements: msgspec.Raw = None  # type: ignore[assignment]  # noqa: N815
    additionalEventData: msgspec.Raw = None  # type: ignore[assignment]  # noqa: N815
    referencedResources: dict[str, list[str] | str] = None  # type: ignore[assignment]  # noqa: N815
    resourceName: str = None  # type: ignore[assignment]  # noqa: N815
    resourceType: str = None  # type: ignore[assignment]  # noqa: N815
    errorCode: str = None  # type: ignore[assignment]  # noqa: N815
    errorMessage: str = None  # type: ignore[assignment]  # noqa: N815
    sourceIpAddress: str = None  # type: ignore[assignment]  # noqa: N815
    userAgent: str = None  # type: ignore[assignment]  # noqa: N815
    vpcId: str = None  # type: ignore[assignment]  # noqa: N815
    recipientAccountId: str = None  # type: ignore[assignment]  # noqa: N815
    eventAttributes: msgspec.Raw = None  # type: ignore[assignment]  # noqa: N815
    userIdentity: _Identity = None  # type: ignore[assignment]  # noqa: N815
    sensitiveAction: bool | str = None  # type: ignore[assignment]  # noqa: N815


_DECODER = msgspec.json.Decoder(_Event)
# Raw fields and the first byte their documented types allow.
_OBJECT = ord("{")
_RESPONSE = (ord("{"), ord("["), ord('"'))


def _fast_record(body: bytes) -> EventRecord | None:
    """The record of a compact JSON event, or None when the slow path must judge it."""
    try:
        ev = _DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    identity = ev.userIdentity
    if (
        identity is None
        or not ev.eventId
        or not ev.eventTime
        or not ev.eventName
        or len(ev.eventId) > MAX_ID_LENGTH
    ):
        return None
    account_id = identity.accountId
    if type(account_id) is not str or not account_id or len(account_id) > MAX_ID_LENGTH:
        return None  # integers and the rest: the slow path converts or explains
    for raw in (ev.requestParameters, ev.additionalEventData, ev.eventAttributes, identity.sessionContext):
        if raw is not None and memoryview(raw)[0] != _OBJECT:
            return None
    if ev.responseElements is not None and memoryview(ev.responseElements)[0] not in _RESPONSE:
        return None
    return _record(
        account_id,
        ev.eventId,
        ev.eventTime,
        ev.eventName,
        body,
        ev.eventType,
        ev.eventRW,
        ev.eventCategory,
        ev.serviceName,
        ev.requestId,
        identity.type,
        identity.userName,
        identity.accessKeyId,
        ev.sourceIpAddress,
        ev.sensitiveAction,
        ev.errorCode,
        _resources(ev.resourceType, ev.resourceName, ev.referencedResources),
    )


def malformed_json_reason(data: bytes) -> str:
    """Why ``data`` (which msgspec refused) is not JSON, in orjson's words as in every other
    malformed-JSON message here."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return f"malformed JSON: {exc}"
    return "malformed JSON"


def compact_json(data: bytes) -> bytes:
    """The input with insignificant whitespace removed, or EventInvalid when it is not JSON."""
    try:
        return msgspec.json.format(data, indent=-1)
    except msgspec.DecodeError:
        raise EventInvalid(malformed_json_reason(data)) from None


def event_from_json(data: bytes | str, *, compact: bool = False) -> EventRecord:
    """Parse and validate one event given as JSON text; the stored body is that text, compacted.

    ``compact`` says the caller already removed insignificant whitespace (``compact_json``).
    """
    if isinstance(data, str):
        data = data.encode()
    body = data if compact else compact_json(data)
    record = _fast_record(body)
    if record is not None:
        return record
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventInvalid(f"malformed JSON: {exc}") from None
    return event_from_mapping(event, body=body)


def parse_body(body: bytes) -> Any:
    """A stored body as Python values.

    Bodies are kept as they were ingested, so a number no double can hold (``1e400``), which orjson
    refuses, is read by the standard library instead (as infinity).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        import json

        return json.loads(body)


def usage_source(event_category: str | None) -> str:
    """The ``Source`` of the GetAccessKeyLastUsed* family, from the event's category.

    Events without a category predate data events and are management events.
    """
    if event_category is None or event_category == "Management":
        return "ManagementEvent"
    if event_category == "Data":
        return "DataEvent"
    return "Internal"
