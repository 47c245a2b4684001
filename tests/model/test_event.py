"""The event model: validation of the documented structure, and verbatim round trips."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailhouse.model.event import EventInvalid, event_from_mapping, fast_record, usage_source
from trailhouse.model.event_text import ODD_NUMBER_HINT, event_from_json, may_hold_odd_number, parse_body
from trailhouse.model.times import format_wire_time, parse_event_time, parse_wire_time


def base_event(**extra: object) -> dict[str, object]:
    event: dict[str, object] = {
        "eventId": "A1",
        "eventTime": "2026-11-01T10:00:00Z",
        "eventName": "DescribeInstances",
        "userIdentity": {
            "accountId": "1234567890123456",
            "type": "ram-user",
            "userName": "alice",
            "accessKeyId": "LTAI5tExample0000000000",
        },
    }
    event.update(extra)
    return event


def test_required_fields_and_extraction() -> None:
    rec = event_from_mapping(
        base_event(
            serviceName="Ecs",
            eventRW="Read",
            sourceIpAddress="10.0.0.1",
            requestId="R1",
            resourceType="ACS::ECS::Instance",
            resourceName="i-1",
            referencedResources={"ACS::ECS::Instance": ["i-1", "i-2"]},
            errorCode="NoPermission",
        )
    )
    assert rec.account_id == "1234567890123456"
    assert rec.event_time_ms == parse_wire_time("2026-11-01T10:00:00Z")
    assert rec.user_name == "alice" and rec.access_key_id == "LTAI5tExample0000000000"
    assert rec.resources == (("ACS::ECS::Instance", "i-1"), ("ACS::ECS::Instance", "i-2"))
    assert rec.error_code == "NoPermission"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"eventId": None}, "missing required field eventId"),
        ({"eventId": ""}, "eventId must be a non-empty string"),
        ({"eventId": {"id": 1}}, "eventId must be a non-empty string, got object"),
        ({"eventId": "x" * 257}, "longer than the limit of 256"),
        ({"eventTime": None}, "missing required field eventTime"),
        ({"eventTime": "yesterday"}, "eventTime"),
        ({"eventTime": "2026-11-01T10:00:00"}, "UTC"),
        ({"eventTime": 1700000000}, "eventTime must be a string, got integer"),
        ({"userIdentity": None}, "userIdentity.accountId"),
        ({"userIdentity": {"type": "ram-user"}}, "userIdentity.accountId"),
        ({"userIdentity": {"accountId": None}}, "missing required field userIdentity.accountId"),
        ({"userIdentity": {"accountId": True}}, "accountId must be a non-empty string, got boolean"),
        ({"userIdentity": "root"}, "userIdentity must be object"),
    ],
)
def test_what_cannot_be_an_event_is_refused_naming_why(change: dict[str, object], reason: str) -> None:
    event = base_event()
    for k, v in change.items():
        if v is None:
            event.pop(k)
        else:
            event[k] = v
    with pytest.raises(EventInvalid, match=reason):
        event_from_mapping(event)
    with pytest.raises(EventInvalid, match=reason):
        event_from_json(orjson.dumps(event))


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"isGlobal": "yes"}, "field isGlobal should be boolean, got string"),
        ({"eventVersion": True}, "field eventVersion should be string or integer, got boolean"),
        ({"referencedResources": {"ACS::ECS::Instance": [1]}}, "referencedResources.ACS::ECS::Instance"),
        ({"referencedResources": ["i-1"]}, "field referencedResources should be object, got array"),
        ({"vpcId": 42}, "field vpcId should be string, got integer"),
        ({"requestParameters": "a=b"}, "field requestParameters should be object, got string"),
        ({"sensitiveAction": "maybe"}, "sensitiveAction should be true or false"),
        ({"sensitiveAction": 1}, "field sensitiveAction should be boolean or string, got integer"),
        ({"eventName": ""}, "field eventName is missing"),
        ({"eventName": None}, "field eventName is missing"),
        ({"eventName": 7}, "field eventName should be string, got integer"),
    ],
)
def test_odd_fields_are_kept_verbatim_with_a_warning(change: dict[str, object], warning: str) -> None:
    event = base_event(**change)
    if change.get("eventName", "") is None:
        event.pop("eventName")
    text = orjson.dumps(event)
    for rec in (event_from_mapping(event), event_from_json(text)):
        assert any(warning in w for w in rec.warnings), rec.warnings
        assert orjson.loads(rec.body) == event
        assert rec.account_id == "1234567890123456"


def test_wrongly_typed_fields_are_not_indexed() -> None:
    rec = event_from_json(
        orjson.dumps(
            base_event(
                errorCode=404,
                sourceIpAddress=["10.0.0.1"],
                sensitiveAction="maybe",
                referencedResources={"ACS::ECS::Instance": ["i-1"], "ACS::RAM::User": 5},
                userIdentity={"accountId": 1234567890123456, "userName": 9, "accessKeyId": "AK"},
            )
        )
    )
    assert rec.account_id == "1234567890123456"  # an integer account is the account
    assert rec.error_code is None and rec.source_ip is None and rec.sensitive_action is None
    assert rec.user_name is None and rec.access_key_id == "AK"
    assert rec.resources == (("ACS::ECS::Instance", "i-1"),)
    assert len(rec.warnings) == 5, rec.warnings


def test_null_is_absence_without_a_warning() -> None:
    nulls = {
        name: None
        for name in (
            "vpcId",
            "userAgent",
            "errorCode",
            "errorMessage",
            "requestParameters",
            "responseElements",
            "additionalEventData",
            "referencedResources",
            "resourceType",
            "sensitiveAction",
            "isGlobal",
            "eventVersion",
        )
    }
    event = base_event(**nulls)
    event["userIdentity"] = {**event["userIdentity"], "userName": None, "sessionContext": None}  # type: ignore[dict-item]
    for rec in (event_from_mapping(event), event_from_json(orjson.dumps(event))):
        assert rec.warnings == ()
        assert rec.error_code is None and rec.user_name is None and rec.resources == ()
        assert orjson.loads(rec.body) == event  # the nulls are kept as sent


def test_assumed_role_gives_role_name() -> None:
    rec = event_from_mapping(
        base_event(
            userIdentity={
                "accountId": "1",
                "type": "assumed-role",
                "userName": "ops-role:session-1",
                "accessKeyId": "STS.x",
            }
        )
    )
    assert rec.role_name == "ops-role"


def test_event_times() -> None:
    assert parse_event_time("2026-11-01T10:00:00.250Z") == parse_wire_time("2026-11-01T10:00:00Z") + 250
    assert parse_event_time("2026-11-01T12:00:00+02:00") == parse_wire_time("2026-11-01T10:00:00Z")
    assert format_wire_time(parse_wire_time("2026-02-28T23:59:59Z")) == "2026-02-28T23:59:59Z"


def test_usage_source_mapping() -> None:
    assert usage_source(None) == "ManagementEvent"
    assert usage_source("Management") == "ManagementEvent"
    assert usage_source("Data") == "DataEvent"
    assert usage_source("Insight") == "Internal"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
reserved = {
    "eventId",
    "eventTime",
    "eventName",
    "userIdentity",
    "eventVersion",
    "eventSource",
    "eventType",
    "eventRW",
    "eventCategory",
    "serviceName",
    "apiVersion",
    "acsRegion",
    "isGlobal",
    "requestId",
    "requestParameters",
    "requestParameterJson",
    "responseElements",
    "additionalEventData",
    "referencedResources",
    "resourceName",
    "resourceType",
    "errorCode",
    "errorMessage",
    "sourceIpAddress",
    "userAgent",
    "vpcId",
    "recipientAccountId",
    "eventAttributes",
    "sensitiveAction",
}


@settings(max_examples=200, deadline=None)
@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in reserved), json_values, max_size=6
    ),
    event_id=st.text(min_size=1, max_size=40),
    name=st.text(min_size=1, max_size=30),
)
def test_body_is_the_event_verbatim(extra: dict[str, object], event_id: str, name: str) -> None:
    event = base_event(eventId=event_id, eventName=name, **extra)
    rec = event_from_json(orjson.dumps(event))
    assert orjson.loads(rec.body) == event
    assert list(orjson.loads(rec.body)) == list(event)  # key order kept too


# The fast path (a typed msgspec decode) and the slow path (orjson + Python checks) must agree on
# every event: the same record, or the same rejection with the same words.
documented_values = {
    "eventVersion": st.one_of(st.integers(0, 3), st.text(max_size=3), st.booleans(), st.none()),
    "isGlobal": st.one_of(st.booleans(), st.text(max_size=3), st.none()),
    "requestParameters": json_values,
    "responseElements": json_values,
    "additionalEventData": json_values,
    "eventAttributes": json_values,
    "serviceName": st.one_of(st.text(max_size=5), st.integers(0, 9), st.none()),
    "sensitiveAction": st.one_of(st.booleans(), st.sampled_from(["true", "False", "yes", ""]), st.none()),
    "referencedResources": st.one_of(
        st.dictionaries(
            st.text(max_size=6),
            st.one_of(st.lists(st.text(max_size=4), max_size=3), st.text(max_size=4), st.integers(0, 3)),
            max_size=3,
        ),
        json_values,
    ),
    "resourceName": st.one_of(st.text(max_size=4), st.none()),
    "errorCode": st.one_of(st.text(max_size=4), st.none()),
}
identity_values = {
    "type": st.one_of(st.sampled_from(["ram-user", "assumed-role", "root-account"]), st.integers(0, 2)),
    "accountId": st.one_of(st.text(max_size=6), st.integers(0, 10**6), st.booleans(), st.none()),
    "userName": st.one_of(st.text(max_size=8), st.none()),
    "accessKeyId": st.one_of(st.text(max_size=8), st.none(), st.integers(0, 3)),
    "sessionContext": json_values,
}


def _outcome(make: object) -> object:
    try:
        rec = make()  # type: ignore[operator]
    except EventInvalid as exc:
        return ("rejected", str(exc))
    return ("record", rec.__class__(**{**{f: getattr(rec, f) for f in rec.__slots__}, "body": b""}))


@settings(max_examples=400, deadline=None)
@given(
    fields=st.fixed_dictionaries({}, optional=documented_values),
    identity=st.fixed_dictionaries({}, optional=identity_values),
    event_time=st.sampled_from(["2026-11-01T10:00:00Z", "2026-11-01T10:00:00.5+00:00", "yesterday"]),
)
def test_fast_and_slow_paths_agree(
    fields: dict[str, object], identity: dict[str, object], event_time: str
) -> None:
    event = base_event(eventTime=event_time, **fields)
    event["userIdentity"] = {**event["userIdentity"], **identity}  # type: ignore[dict-item]
    text = orjson.dumps(event)
    assert _outcome(lambda: event_from_json(text)) == _outcome(lambda: event_from_mapping(event))


@pytest.mark.parametrize(
    "extra",
    [
        {"requestParameters": {"RegionId": "cn-hangzhou"}},
        {"responseElements": [1, 2]},
        {"responseElements": "ok"},
        {"additionalEventData": {"a": 1}, "eventAttributes": {"b": 2}},
        {"requestParameters": None, "responseElements": None},
        {"referencedResources": {"ACS::ECS::Instance": ["i-1", "i-2"]}},
    ],
)
def test_typical_events_take_the_fast_path(extra: dict[str, object]) -> None:
    # Regression: ``msgspec.Raw | None`` fields made every event with an object field fail the
    # typed decode, so the fast path answered for almost no real event.
    event = base_event(**extra)
    event["userIdentity"] = {**event["userIdentity"], "sessionContext": {"attributes": {}}}  # type: ignore[dict-item]
    body = orjson.dumps(event)
    fast = fast_record(body)
    assert fast is not None
    assert _outcome(lambda: fast) == _outcome(lambda: event_from_mapping(event, body=body))


@pytest.mark.parametrize(
    "extra", [{"requestParameters": "a=b"}, {"responseElements": 5}, {"eventAttributes": [1]}]
)
def test_a_raw_field_of_another_type_leaves_the_fast_path(extra: dict[str, object]) -> None:
    assert fast_record(orjson.dumps(base_event(**extra))) is None


def test_body_is_the_input_without_insignificant_whitespace() -> None:
    text = b'{ "eventId" : "A1",\n "eventTime": "2026-11-01T10:00:00Z", "eventName": "caf\\u00e9",'
    text += b' "n": 1.50, "userIdentity": {"accountId": "1"} }'
    rec = event_from_json(text)
    # Escapes and number spellings are kept as sent; only the whitespace between tokens goes.
    assert rec.body == (
        b'{"eventId":"A1","eventTime":"2026-11-01T10:00:00Z","eventName":"caf\\u00e9",'
        b'"n":1.50,"userIdentity":{"accountId":"1"}}'
    )
    assert rec.event_name == "café"


@pytest.mark.parametrize(
    "number", [b"1e400", b"-1E+999", b"123456789012345678901234567890", b"-99999999999999999999"]
)
def test_a_number_no_double_holds_is_kept_as_spelled_with_a_warning(number: bytes) -> None:
    text = (
        b'{"eventId":"A1","eventTime":"2026-11-01T10:00:00Z","eventName":"x",'
        b'"userIdentity":{"accountId":"1"},"big":' + number + b',"nested":{"n":[' + number + b"]}}"
    )
    rec = event_from_json(text)
    assert rec.body == text
    assert any(number.decode() in w and "kept as sent" in w for w in rec.warnings), rec.warnings
    doc = parse_body(rec.body)
    # Written back exactly as it was spelled, by orjson, wherever it sits.
    assert orjson.dumps(doc) == text
    assert orjson.dumps(doc["nested"]) == b'{"n":[' + number + b"]}"


def test_ordinary_numbers_take_no_warning() -> None:
    rec = event_from_json(
        b'{"eventId":"A1","eventTime":"2026-11-01T10:00:00Z","eventName":"x",'
        b'"userIdentity":{"accountId":"1"},"n":18446744073709551615,"f":1.5e300,'
        b'"s":"e999 1234567890123456789012"}'
    )
    assert rec.warnings == ()
    assert parse_body(rec.body)["n"] == 2**64 - 1


def test_lone_surrogate_escapes_are_replaced_with_a_warning() -> None:
    text = (
        rb'{"eventId":"A1","eventTime":"2026-11-01T10:00:00Z","eventName":"x\\ud800",'
        rb'"userIdentity":{"accountId":"1"},"a":"\ud800","b":"\ud83d\ude00","c":"\\\udc00"}'
    )
    rec = event_from_json(text)
    assert rec.warnings == (r"2 lone surrogate escape(s) (such as \ud800) replaced with \ufffd",)
    doc = parse_body(rec.body)
    assert rec.event_name == "x\\ud800"  # an escaped backslash, not an escape
    assert doc["a"] == "\ufffd" and doc["b"] == "\U0001f600" and doc["c"] == "\\\ufffd"


def test_nesting_deeper_than_the_limit_is_refused_naming_it() -> None:
    head = b'{"eventId":"A1","eventTime":"2026-11-01T10:00:00Z","eventName":"x",'
    head += b'"userIdentity":{"accountId":"1"},'
    ok = head + b'"p":' + b"[" * 98 + b"]" * 98 + b"}"
    assert event_from_json(ok).warnings == ()
    for depth in (101, 5000, 100_000):
        with pytest.raises(EventInvalid, match="nested deeper than the limit of 100 levels"):
            event_from_json(head + b'"p":' + b"[" * depth + b"]" * depth + b"}")
    # Brackets inside strings are text, not nesting.
    assert event_from_json(head + b'"p":"' + b"[" * 500 + b'"}').warnings == ()


def test_malformed_json_is_named() -> None:
    with pytest.raises(EventInvalid, match="malformed JSON"):
        event_from_json(b'{"eventId": "A1",}')


# Bytes made mostly of what the hint looks at, so that near misses (18 digits, "e+00") are common.
_HINT_BYTES = st.binary(max_size=60) | st.lists(
    st.sampled_from([b"0", b"9", b"5", b"e", b"E", b"+", b"-", b".", b" ", b"x", b"\xb2", b"1" * 18]),
    max_size=40,
).map(b"".join)


@given(_HINT_BYTES)
@settings(max_examples=3000)
def test_odd_number_check_answers_as_the_regex(data: bytes) -> None:
    assert may_hold_odd_number(data) == (ODD_NUMBER_HINT.search(data) is not None)


@pytest.mark.parametrize(
    ("text", "odd"),
    [
        (b'{"n": 1234567890123456789}', True),
        (b'{"n": 123456789012345678}', False),
        (b'{"n": 1e400}', True),
        (b'{"n": 1E-308}', True),
        (b'{"n": 1e99}', False),
        (b'{"s": "Describe123"}', True),  # a string too: it only takes the exact parse
        (b'{"s": "\xc2\xb2\xc2\xb2"}', False),  # superscript digits are not digits here
    ],
)
def test_odd_number_check_examples(text: bytes, odd: bool) -> None:
    assert may_hold_odd_number(text) is odd
