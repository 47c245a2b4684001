"""The official SDKs, unmodified, against a real server: success paths and every gateway error the
SDKs must be able to report through their own exception types.

Each test runs once per SDK configuration (``sdk_variant``) and per backend (the shared
``live_server`` of ``e2e_backend_url``, or ``server_factory(db_url=backend_url)``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import SDK_VARIANTS, CoreSdkClient, SdkClient, SdkVariant, Tenant
from trailhouse.model.credentials import KeyStatus

pytestmark = pytest.mark.e2e

MakeTenant = Callable[..., Tenant]
MakeClient = Callable[..., SdkClient]
STS_TOKEN = "CAIS" + "x" * 60  # shaped like an STS token; this server issues none
USAGE_VARIANTS = [v for v in SDK_VARIANTS if v.has_usage_api]  # the 2017-12-04 SDK lacks the usage API


def _ids(events: list[dict[str, object]]) -> set[object]:
    return {event["eventId"] for event in events}


# ------------------------------------------------------------------------------------------ success


def test_lookup_events_returns_the_stored_events(
    live_server: LiveServer, sdk_variant: SdkVariant, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=3)
    other = make_tenant(live_server, events=1, event_name="CreateInstance")  # another account's noise
    client = sdk_client(live_server, tenant)

    # Newest first, each event exactly as it was stored.
    assert client.lookup_events(tenant.event_name) == list(tenant.events)

    assert _ids(client.lookup_events()) == set(tenant.event_ids)  # no filter: the account's events only
    assert client.lookup_events("NoSuchEventName") == []
    assert not _ids(client.lookup_events(other.event_name)) & set(other.event_ids)


@pytest.mark.parametrize("sdk_variant", USAGE_VARIANTS, ids=[v.id for v in USAGE_VARIANTS], indirect=True)
def test_get_access_key_last_used_ips(
    live_server: LiveServer, sdk_variant: SdkVariant, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=3)
    client = sdk_client(live_server, tenant)

    ips = client.last_used_ips(tenant.used_key_id, tenant.service_name)
    assert [ip["Ip"] for ip in ips] == list(tenant.used_ips)  # most recent first
    for ip in ips:
        assert isinstance(ip["UsedTimestamp"], int)
        assert ip["Source"] == "ManagementEvent"
        assert tenant.used_key_id in ip["Detail"]
    assert client.last_used_ips(tenant.used_key_id, "Oss") == []
    assert client.last_used_ips("LTAI" + "0" * 20, tenant.service_name) == []


def test_throttling_off_with_zero(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    assert live_server.settings.throttle_lookup_events == 0
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    for _ in range(8):
        assert _ids(client.lookup_events(tenant.event_name)) == set(tenant.event_ids)


# ------------------------------------------------------------------------------ credentials errors


def test_wrong_secret_is_signature_does_not_match(
    live_server: LiveServer, sdk_variant: SdkVariant, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, (tenant.key_id, "not-the-secret"))
    err = client.expect_error(client.lookup_events)
    assert err.status == 400
    if sdk_variant.family == "core":
        # aliyunsdkcore compares the text after "server string to sign is:" with its own
        # StringToSign and rewrites the code when they are equal: proof the suffix is exact.
        assert err.code == "InvalidAccessKeySecret"
        return
    assert err.code == "SignatureDoesNotMatch"
    assert "server string to sign is:" in err.message
    suffix = err.message.split("server string to sign is:", 1)[1]
    if sdk_variant.signature_algorithm == "v2":
        assert suffix.startswith("POST&%2F&")
    else:
        assert suffix.startswith((sdk_variant.signature_algorithm or "ACS3-HMAC-SHA256") + "\n")


def test_unknown_access_key_is_not_found(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    make_tenant(live_server, events=1)
    client = sdk_client(live_server, ("LTAI" + uuid.uuid4().hex[:20], "whatever-secret"))
    err = client.expect_error(client.lookup_events)
    assert (err.code, err.status) == ("InvalidAccessKeyId.NotFound", 404)


def test_disabled_access_key_is_inactive(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    assert live_server.store.set_access_key_status(tenant.key_id, KeyStatus.INACTIVE)
    err = client.expect_error(client.lookup_events)
    assert (err.code, err.status) == ("InvalidAccessKeyId.Inactive", 400)

    assert live_server.store.set_access_key_status(tenant.key_id, KeyStatus.ACTIVE)
    assert _ids(client.lookup_events(tenant.event_name)) == set(tenant.event_ids)


@pytest.mark.parametrize("offset_s", [-20 * 60, 20 * 60], ids=["past", "future"])
def test_timestamp_outside_the_window_is_expired(
    live_server: LiveServer,
    sdk_client: MakeClient,
    make_tenant: MakeTenant,
    monkeypatch: pytest.MonkeyPatch,
    offset_s: int,
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    client.shift_clock(monkeypatch, offset_s)
    err = client.expect_error(client.lookup_events)
    assert (err.code, err.status) == ("InvalidTimeStamp.Expired", 400)


def test_timestamp_inside_the_window_is_accepted(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    client.shift_clock(monkeypatch, -10 * 60)  # a client clock 10 minutes slow is still fine (15 allowed)
    assert _ids(client.lookup_events(tenant.event_name)) == set(tenant.event_ids)


def test_security_token_is_malformed(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant, security_token=STS_TOKEN)
    err = client.expect_error(client.lookup_events)
    assert (err.code, err.status) == ("InvalidSecurityToken.Malformed", 400)


def test_replayed_nonce_is_rejected(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    client.pin_nonce(monkeypatch, uuid.uuid4().hex)
    assert _ids(client.lookup_events(tenant.event_name)) == set(tenant.event_ids)
    err = client.expect_error(lambda: client.lookup_events(tenant.event_name))
    assert (err.code, err.status) == ("SignatureNonceUsed", 400)


# ----------------------------------------------------------------------------------- routing errors


def test_unknown_action_is_not_found(
    live_server: LiveServer, sdk_variant: SdkVariant, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    err = client.expect_error(lambda: client.call("DescribeNoSuchThing", sdk_variant.version))
    assert (err.code, err.status) == ("InvalidAction.NotFound", 404)
    # The generic entry point itself works: the same call with a real action succeeds.
    body = client.call("LookupEvents", sdk_variant.version)
    body = body.get("body", body)  # tea wraps the parsed body; aliyunsdkcore returns it
    assert _ids(body["Events"]) == set(tenant.event_ids)


def test_unknown_version_is_invalid_version(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    err = client.expect_error(lambda: client.call("LookupEvents", "2015-01-01"))
    assert (err.code, err.status) == ("InvalidVersion", 400)


def test_action_of_the_other_version_is_not_found(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    # GetAccessKeyLastUsedIps exists only in 2020-07-06.
    tenant = make_tenant(live_server, events=1)
    client = sdk_client(live_server, tenant)
    query = {"AccessKey": "LTAIx", "ServiceName": "Ecs"}
    err = client.expect_error(lambda: client.call("GetAccessKeyLastUsedIps", "2017-12-04", query))
    assert (err.code, err.status) == ("InvalidAction.NotFound", 404)


# ------------------------------------------------------------------------------- isolation and RAM


def test_accounts_are_isolated(
    live_server: LiveServer, sdk_variant: SdkVariant, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    # Both accounts' events share the event name and the AccessKey id: only the account differs.
    a = make_tenant(live_server, events=3)
    b = make_tenant(live_server, events=0, event_name=a.event_name, used_key_id=a.used_key_id)
    client_a, client_b = sdk_client(live_server, a), sdk_client(live_server, b)

    assert _ids(client_a.lookup_events(a.event_name)) == set(a.event_ids)
    assert client_b.lookup_events(a.event_name) == []
    assert client_b.lookup_events() == []
    if sdk_variant.has_usage_api:
        assert len(client_a.last_used_ips(a.used_key_id, a.service_name)) == len(a.used_ips)
        assert client_b.last_used_ips(a.used_key_id, a.service_name) == []


def test_key_without_the_action_gets_no_permission(
    live_server: LiveServer, sdk_variant: SdkVariant, sdk_client: MakeClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant(live_server, events=2, allowed_actions=("actiontrail:GetAccessKeyLastUsedIps",))
    client = sdk_client(live_server, tenant)
    err = client.expect_error(client.lookup_events)
    assert (err.code, err.status) == ("NoPermission", 403)

    if isinstance(client, CoreSdkClient):
        status, body = client.lookup_events_raw()  # ServerException keeps no body
        assert status == 403
    else:
        assert err.body is not None
        body = dict(err.body)
        assert getattr(err.exception, "access_denied_detail", None) == body["AccessDeniedDetail"]
    assert body["Code"] == "NoPermission"
    detail = body["AccessDeniedDetail"]
    assert detail["AuthAction"] == "actiontrail:LookupEvents"
    assert detail["NoPermissionType"] == "ImplicitDeny"
    assert detail["AuthPrincipalOwnerId"] == tenant.account_id
    assert detail["AuthPrincipalType"] == "SubUser"
    assert detail["AuthPrincipalDisplayName"] == "auditor"

    if sdk_variant.has_usage_api:  # the one allowed action works
        assert [ip["Ip"] for ip in client.last_used_ips(tenant.used_key_id, tenant.service_name)] == list(
            tenant.used_ips
        )


# --------------------------------------------------------------------------------------- throttling


def _burst(client: SdkClient, calls: int) -> tuple[list[str], float]:
    """``calls`` LookupEvents back to back: "ok" or the error code of each, and the seconds taken."""
    outcomes: list[str] = []
    started = time.monotonic()
    for _ in range(calls):
        err = client.attempt(client.lookup_events)
        outcomes.append("ok" if err is None else err.code)
    return outcomes, time.monotonic() - started


def test_throttling_user_beyond_two_per_second(
    backend_url: str,
    server_factory: Callable[..., LiveServer],
    sdk_client: MakeClient,
    make_tenant: MakeTenant,
) -> None:
    server = server_factory(db_url=backend_url, throttle_access_key_usage=0)  # LookupEvents at its default
    assert server.settings.throttle_lookup_events == 2.0
    tenant = make_tenant(server, events=1)
    client = sdk_client(server, tenant)

    outcomes, elapsed = _burst(client, 6)
    assert set(outcomes) <= {"ok", "Throttling.User"}
    assert outcomes[:2] == ["ok", "ok"]  # a burst of two is allowed
    assert "Throttling.User" in outcomes
    # GCRA: at most 2 at once plus 2 per second after that.
    assert outcomes.count("ok") <= 2 + int(2 * elapsed) + 1


def test_throttling_is_per_account_and_recovers(
    backend_url: str, server_factory: Callable[..., LiveServer], make_tenant: MakeTenant
) -> None:
    from tests.e2e.conftest import make_sdk_client

    server = server_factory(db_url=backend_url, throttle_access_key_usage=0)
    variant = next(v for v in SDK_VARIANTS if v.id == "tea2020-v3")
    a, b = make_tenant(server, events=1), make_tenant(server, events=1)
    client_a = make_sdk_client(variant, server, a.key_id, a.secret)
    client_b = make_sdk_client(variant, server, b.key_id, b.secret)

    outcomes, _ = _burst(client_a, 4)
    assert "Throttling.User" in outcomes
    # Another account is not affected by a's bucket.
    assert _burst(client_b, 2)[0] == ["ok", "ok"]
    # The throttle of LookupEvents is not the one of GetAccessKeyLastUsed* (switched off here).
    for _ in range(5):
        client_a.last_used_ips(a.used_key_id, a.service_name)
    time.sleep(1.1)  # two calls' worth of budget at 2/s
    assert _ids(client_a.lookup_events()) == set(a.event_ids)
