"""The event model: validation of the documented structure, and verbatim round trips."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailhouse.model.event import EventInvalid, event_from_json, event_from_mapping, usage_source
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
        ({"eventId": None}, "eventId"),
        ({"eventTime": "yesterday"}, "eventTime"),
        ({"eventTime": "2026-11-01T10:00:00"}, "UTC"),
        ({"eventName": ""}, "eventName"),
        ({"userIdentity": {"type": "ram-user"}}, "userIdentity.accountId"),
        ({"userIdentity": "root"}, "userIdentity must be object"),
        ({"isGlobal": "yes"}, "isGlobal must be boolean"),
        ({"eventVersion": True}, "eventVersion"),
        ({"referencedResources": {"ACS::ECS::Instance": [1]}}, "referencedResources"),
    ],
)
def test_invalid_events_name_the_problem(change: dict[str, object], reason: str) -> None:
    event = base_event()
    for k, v in change.items():
        if v is None:
            event.pop(k)
        else:
            event[k] = v
    with pytest.raises(EventInvalid, match=reason):
        event_from_mapping(event)


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
