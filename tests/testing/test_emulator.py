"""The emulator (``trailhouse.testing``) as a user's test suite meets it: the context manager, the
official SDKs of both versions against it, ``record`` through the real ingest path, no throttling,
and the answer to an operation Trailhouse does not serve."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from trailhouse.testing import Emulator, RecordError, SdkMissing, Trail, emulator, make_event


@pytest.fixture(scope="module")
def server() -> Emulator:
    with Emulator() as running:
        yield running


def test_context_manager_serves_and_stops() -> None:
    from alibabacloud_actiontrail20200706 import models as m20

    with emulator(account_id="1234567890123456") as trail:
        assert trail.account_id == "1234567890123456"
        assert trail.endpoint.startswith("127.0.0.1:") and trail.access_key_id.startswith("LTAI")
        trail.record(make_event("CreateUser", service="Ram", user="alice"))
        response = trail.client_2020.lookup_events(m20.LookupEventsRequest())
        assert [e["eventName"] for e in response.body.events] == ["CreateUser"]
        port = trail.server.port
    import socket

    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(2)
        probe.connect(("127.0.0.1", port))


def test_recorded_events_reach_both_sdks(server: Emulator) -> None:
    from alibabacloud_actiontrail20171204 import models as m17
    from alibabacloud_actiontrail20200706 import models as m20

    trail = server.trail()
    key = "LTAI5tTestingKey00000001"
    recorded = trail.record(
        make_event("DeleteBucket", service="Oss", user="bob", access_key_id=key, ip="203.0.113.9"),
        [{"eventName": "DescribeInstances", "eventTime": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)}],
    )
    assert len(recorded) == 2 and all(e["userIdentity"]["accountId"] == trail.account_id for e in recorded)
    assert recorded[1]["eventTime"].endswith("Z") and recorded[1]["eventId"]

    found17 = trail.client_2017.lookup_events(m17.LookupEventsRequest(event_name="DeleteBucket")).body.events
    assert [e["eventId"] for e in found17] == [recorded[0]["eventId"]]
    attribute = m20.LookupEventsRequestLookupAttribute(key="EventAccessKeyId", value=key)
    found20 = trail.client_2020.lookup_events(
        m20.LookupEventsRequest(lookup_attribute=[attribute])
    ).body.events
    assert [(e["eventName"], e["sourceIpAddress"]) for e in found20] == [("DeleteBucket", "203.0.113.9")]
    ips = trail.client_2020.get_access_key_last_used_ips(
        m20.GetAccessKeyLastUsedIpsRequest(access_key=key, service_name="Oss")
    ).body.ips
    assert [ip.ip for ip in ips] == ["203.0.113.9"]
    # The native read side sees the same, filtered.
    assert [e["eventName"] for e in trail.events(User="bob")] == ["DeleteBucket"]


def test_accounts_of_one_server_are_apart(server: Emulator) -> None:
    first, second = server.trail(), server.trail()
    first.record(make_event("CreateUser"))
    assert first.events() and second.events() == []
    assert second.client_2020.lookup_events(_request_2020()).body.events == []


def test_no_throttling_on_quick_lookups(server: Emulator) -> None:
    trail = server.trail()
    trail.record(make_event("ListUsers", service="Ram"))
    for _ in range(12):  # the cloud allows a few per second; a test suite must not meet Throttling.User
        assert len(trail.client_2020.lookup_events(_request_2020()).body.events) == 1


def test_a_rejected_event_fails_the_record_and_stores_nothing(server: Emulator) -> None:
    trail = server.trail()
    with pytest.raises(RecordError, match="eventTime"):
        trail.record(make_event("CreateUser"), {"eventTime": "yesterday"})
    assert trail.events() == []


def test_unserved_operation_says_so_and_lists_what_is_served(server: Emulator) -> None:
    from alibabacloud_tea_openapi.exceptions import ClientException
    from alibabacloud_tea_openapi.models import OpenApiRequest, Params
    from darabonba.runtime import RuntimeOptions

    trail = server.trail()
    params = Params(
        action="CreateAdvancedQueryTemplate",  # an ActionTrail operation Trailhouse does not serve
        version="2020-07-06",
        protocol="HTTPS",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    with pytest.raises(ClientException) as info:
        trail.client_2020.call_api(params, OpenApiRequest(query={"TemplateName": "t"}), RuntimeOptions())
    err = info.value
    assert (err.code, err.status_code) == ("InvalidAction.NotFound", 404)
    assert (
        "Trailhouse does not implement the operation CreateAdvancedQueryTemplate (version 2020-07-06)"
        in err.message
    )
    from trailhouse.api.rpc.dispatch import OPERATIONS

    for action, version in OPERATIONS:  # generated from the operation table
        assert action in err.message and version in err.message
    assert "please check your url" not in err.message


def test_missing_sdk_is_a_clear_error(server: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alibabacloud_actiontrail20171204.client", None)
    trail: Trail = server.trail()
    with pytest.raises(SdkMissing, match="pip install alibabacloud-actiontrail20171204"):
        _ = trail.client_2017
    assert trail.client_2020 is trail.client("2020-07-06")  # the other version still works


def _request_2020():  # type: ignore[no-untyped-def]
    from alibabacloud_actiontrail20200706 import models as m20

    return m20.LookupEventsRequest()


def test_a_refused_setting_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from trailhouse.settings import SettingsError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(SettingsError, match="THROTTLE_LOOKUP_EVENTS"):
        Emulator(throttle_lookup_events=-1.0)
    assert list(tmp_path.iterdir()) == []
