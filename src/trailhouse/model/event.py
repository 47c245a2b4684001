"""The ActionTrail event: validation of the documented structure and the typed record the store keeps.

An event is kept verbatim: the compact JSON of exactly what was ingested (unknown fields included,
value types unchanged) travels as ``EventRecord.body``. Beside it sit the typed attributes that
lookups filter on, extracted once at ingest so that no query ever has to parse JSON: only the exact
check behind an eventId or requestId hash hit reads the two fields from the body (``event_id_of``).
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from .times import TimeFormatError, parse_event_time

__all__ = [
    "MAX_DEPTH",
    "EventInvalid",
    "EventRecord",
    "event_from_mapping",
    "event_id_of",
    "fast_record",
    "id_text",
    "key_hash",
    "request_id_of",
    "usage_source",
]


class EventInvalid(ValueError):
    """An event that cannot be an audit record; the message says why."""


# Fields ActionTrail documents for its event structure, and the JSON types each takes. Unknown
# fields are kept verbatim. A documented field of another type is kept verbatim too, with a
# warning; it is only not indexed
# (an integer where a string is indexed is indexed as its decimal text). ``null`` is absence.
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
# Checked on their own: what an event cannot be without.
_IDENTIFYING = frozenset({"eventId", "eventTime", "eventName", "userIdentity"})
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}
MAX_ID_LENGTH = 256
#: Deeper JSON than this is refused: no audit record needs it, and every reader recurses.
MAX_DEPTH = 100


def key_hash(value: str) -> int:
    """A signed 64-bit hash used to index long unique strings (eventId, requestId) compactly.

    Equality is always re-checked on the real value: the hash only narrows the search.
    """
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One validated event: the typed attributes lookups filter on, and the verbatim JSON body.

    ``warnings`` say what was odd about the event as sent (kept, but not indexed); they are
    reported to the sender, not stored.
    """

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
    warnings: tuple[str, ...] = ()


def _type_name(value: Any) -> str:
    if isinstance(value, orjson.Fragment):  # a number kept as spelled (see event_text.parse_body)
        return "number"
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _has_type(value: Any, expected: tuple[type, ...]) -> bool:
    # bool is a subclass of int: an integer field must not silently accept true/false.
    if isinstance(value, bool):
        return bool in expected
    return isinstance(value, expected)


def _check_types(
    obj: Mapping[str, Any], table: dict[str, tuple[type, ...]], prefix: str, warnings: list[str]
) -> None:
    """A warning for each documented field of another type than documented (null is absence)."""
    for name, value in obj.items():
        expected = table.get(name)
        if expected is None or value is None or (name in _IDENTIFYING and not prefix):
            continue
        if not _has_type(value, expected):
            want = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in expected)
            warnings.append(
                f"field {prefix}{name} should be {want}, got {_type_name(value)}: kept as sent, not indexed"
            )


def _text(value: Any) -> str | None:
    """The indexed text of a string field: the string, an integer's decimal text, else nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _identifier(value: Any, path: str) -> str:
    """A required identifier (eventId, userIdentity.accountId): a non-empty string or an integer."""
    if value is None:
        raise EventInvalid(f"missing required field {path}")
    text = _text(value)
    if not text:
        got = "an empty string" if text is not None else _type_name(value)
        raise EventInvalid(f"field {path} must be a non-empty string, got {got}")
    if len(text) > MAX_ID_LENGTH:
        raise EventInvalid(f"field {path} is longer than the limit of {MAX_ID_LENGTH} characters")
    return text


def _resources(
    rtype: str | None, rname: str | None, refs: Any, warnings: list[str]
) -> tuple[tuple[str, str], ...]:
    """resourceType/resourceName and every referencedResources entry, de-duplicated, order kept."""
    pairs: list[tuple[str, str]] = []
    if rtype or rname:
        pairs.append((rtype or "", rname or ""))
    if isinstance(refs, dict):
        for ref_type, names in refs.items():
            if names is None:
                continue
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                warnings.append(
                    f"field referencedResources.{ref_type} should be an array of strings, "
                    f"got {_type_name(names)}: kept as sent, not indexed"
                )
                continue
            pairs.extend((ref_type, n) for n in names)
            if not names:
                pairs.append((ref_type, ""))
    return tuple(dict.fromkeys(pairs))


def _sensitive(value: Any, warnings: list[str]) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str):  # other types were named by the type check already
        warnings.append(f"field sensitiveAction should be true or false, got {value[:40]!r}: not indexed")
    return None


def _str(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return value if isinstance(value, str) else None


def event_from_mapping(
    event: Any, body: bytes | None = None, *, warnings: tuple[str, ...] = ()
) -> EventRecord:
    """Validate one decoded event and extract its typed attributes.

    ``body`` is the compact JSON of ``event`` when the caller already has it; ``warnings`` are
    what the caller noticed before (replaced escapes, numbers no double holds).
    """
    if not isinstance(event, dict):
        raise EventInvalid("an event must be a JSON object")
    event_id = _identifier(event.get("eventId"), "eventId")
    event_time = event.get("eventTime")
    if event_time is None:
        raise EventInvalid("missing required field eventTime")
    if not isinstance(event_time, str):
        raise EventInvalid(f"field eventTime must be a string, got {_type_name(event_time)}")
    identity = event.get("userIdentity")
    if identity is None:
        raise EventInvalid("missing required field userIdentity.accountId")
    if not isinstance(identity, dict):
        raise EventInvalid(f"field userIdentity must be object, got {_type_name(identity)}")
    account_id = _identifier(identity.get("accountId"), "userIdentity.accountId")
    found = list(warnings)
    if not isinstance(event["eventId"], str):
        found.append("field eventId should be string, got integer: indexed as its decimal text")
    event_name = event.get("eventName")
    if event_name is None or event_name == "":
        found.append("field eventName is missing: stored with an empty name")
        event_name = ""
    elif not isinstance(event_name, str):
        found.append(
            f"field eventName should be string, got {_type_name(event_name)}: kept as sent, not indexed"
        )
        event_name = ""
    _check_types(event, _FIELD_TYPES, "", found)
    _check_types(identity, _IDENTITY_TYPES, "userIdentity.", found)
    refs = event.get("referencedResources")
    resources = _resources(_str(event, "resourceType"), _str(event, "resourceName"), refs, found)
    sensitive = _sensitive(event.get("sensitiveAction"), found)
    if body is None:
        body = _dumps(event)
    return _record(
        account_id,
        event_id,
        event_time,
        event_name,
        body,
        _str(event, "eventType"),
        _str(event, "eventRW"),
        _str(event, "eventCategory"),
        _str(event, "serviceName"),
        _str(event, "requestId"),
        _str(identity, "type"),
        _str(identity, "userName"),
        _str(identity, "accessKeyId"),
        _str(event, "sourceIpAddress"),
        sensitive,
        _str(event, "errorCode"),
        resources,
        tuple(found),
    )


def _dumps(event: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(event)
    except TypeError:
        pass
    try:  # integers beyond 64 bits: msgspec writes them exactly
        return msgspec.json.encode(event)
    except (TypeError, ValueError) as exc:
        raise EventInvalid(f"event cannot be stored as JSON: {exc}") from None


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
    sensitive: bool | None,
    error_code: str | None,
    resources: tuple[tuple[str, str], ...],
    warnings: tuple[str, ...] = (),
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
        sensitive_action=sensitive,
        error_code=error_code or None,
        resources=resources,
        event_key=key_hash(event_id),
        request_key=key_hash(request_id) if request_id is not None else None,
        warnings=warnings,
    )


# The fast path: a typed msgspec decode in C of only what is indexed or type-checked, built from
# the same tables as the checks above. ``null`` is None, as absence is. Objects that are only
# type-checked stay raw (their first byte says the type; an empty Raw is an absent field). Anything
# odd returns None, and event_from_mapping judges it and words the warnings, so the fast path only
# ever answers for events without warnings.
_FIRST_BYTES: dict[type, int] = {dict: ord("{"), list: ord("["), str: ord('"')}
_SCALARS = (str, int, bool)


def _fast_struct(
    name: str, types: dict[str, tuple[type, ...]], decoded_as: dict[str, Any]
) -> tuple[type[msgspec.Struct], dict[str, frozenset[int]]]:
    """A msgspec Struct with one optional field per documented field, and the raw fields' allowed
    first bytes (``n`` is null)."""
    fields: list[tuple[str, Any, Any]] = []
    raw: dict[str, frozenset[int]] = {}
    for attr, allowed in types.items():
        if attr in decoded_as:
            fields.append((attr, decoded_as[attr] | None, None))
        elif all(t in _SCALARS for t in allowed):
            fields.append((attr, functools.reduce(operator.or_, allowed) | None, None))
        else:
            # ``Raw | None`` is not a type msgspec decodes: null comes in as the Raw text ``null``.
            fields.append((attr, msgspec.Raw, msgspec.Raw()))
            raw[attr] = frozenset({ord("n"), *(_FIRST_BYTES[t] for t in allowed)})
    return msgspec.defstruct(name, fields), raw


_Identity, _IDENTITY_RAW = _fast_struct("_Identity", _IDENTITY_TYPES, {})
_Event, _EVENT_RAW = _fast_struct(
    "_Event",
    _FIELD_TYPES,
    {"referencedResources": dict[str, list[str] | str], "userIdentity": _Identity},
)
_DECODER = msgspec.json.Decoder(_Event)


class _Ids(msgspec.Struct):
    """The two hashed identifiers of a stored body; msgspec skips every other field unconverted,
    so a number no double holds elsewhere (kept as sent) does not stop the read."""

    eventId: Any = None
    requestId: Any = None


_IDS = msgspec.json.Decoder(_Ids)


def _ids(body: bytes) -> _Ids:
    try:
        return _IDS.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _Ids()  # not an object: it has neither


def event_id_of(body: bytes) -> str:
    """A stored body's eventId as ingest indexed it (a string, or an integer's decimal text).

    The event row does not keep it (migrations sqlite/0017, postgres/0016): the body is the one
    copy, and this is the exact check behind an ``event_key`` hash hit. Ingest refuses an event
    without one, so only a body that is not an event reads as "".
    """
    return id_text(_ids(body).eventId)


def id_text(value: Any) -> str:
    """An eventId as ingest indexes it: a string, or an integer's decimal text; else ""."""
    return _text(value) or ""


def request_id_of(body: bytes) -> str | None:
    """A stored body's requestId as ingest indexed it: the value if it is a string, else none."""
    value = _ids(body).requestId
    return value if isinstance(value, str) else None


def _raw_fields_fit(obj: Any, allowed: dict[str, frozenset[int]]) -> bool:
    for name, first in allowed.items():
        raw = getattr(obj, name)
        if len(raw) and memoryview(raw)[0] not in first:
            return False
    return True


def fast_record(body: bytes) -> EventRecord | None:
    """The record of a compact JSON event, or None when the slow path must judge it."""
    try:
        ev: Any = _DECODER.decode(body)
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
    if not (_raw_fields_fit(ev, _EVENT_RAW) and _raw_fields_fit(identity, _IDENTITY_RAW)):
        return None
    warnings: list[str] = []
    sensitive = _sensitive(ev.sensitiveAction, warnings)
    resources = _resources(ev.resourceType, ev.resourceName, ev.referencedResources, warnings)
    if warnings:
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
        sensitive,
        ev.errorCode,
        resources,
    )


def usage_source(event_category: str | None) -> str:
    """The ``Source`` of the GetAccessKeyLastUsed* family, from the event's category.

    Events without a category predate data events and are management events.
    """
    if event_category is None or event_category == "Management":
        return "ManagementEvent"
    if event_category == "Data":
        return "DataEvent"
    return "Internal"
