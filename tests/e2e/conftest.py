"""End-to-end fixtures: a live server per backend, AccessKeys, seeded events, and one client per
official SDK configuration, built the way a user of that SDK builds it (only the endpoint differs).

The SDK wrappers here add no protocol logic of their own: they call the generated SDK methods (or
the SDK's generic ``call_api`` / ``CommonRequest``), and report errors exactly as the SDK raised
them, through the SDK's own exception type.

``live_server`` is shared by the tests of a module, once per backend (``e2e_backend_url`` mirrors
the root ``backend_url``: a SQLite file, or a fresh PostgreSQL schema). Stopping uvicorn costs about
0.2 s, which over a hundred-odd SDK cases per backend would dominate the run; sharing is safe because
every test works in accounts, keys and nonces of its own (``make_tenant``). Tests that need other
settings (throttling, Redis) start their own servers with ``server_factory(db_url=backend_url)``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, LiveServer, free_port, pg_schema_url, run_server
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.credentials import NewAccessKey, create_access_key
from trailhouse.service.secrets import Sealer, load_master_key
from trailhouse.settings import Settings

V2017 = "2017-12-04"
V2020 = "2020-07-06"
REGION = "cn-hangzhou"


# ------------------------------------------------------------------------------------ SDK variants


@dataclass(frozen=True, slots=True)
class SdkVariant:
    """One way of calling the service with an official SDK."""

    id: str
    family: str  # "tea" (alibabacloud_*) or "core" (aliyunsdkcore AcsClient)
    version: str
    signature_algorithm: str | None = None  # Config.signature_algorithm for tea; None = SDK default

    @property
    def has_usage_api(self) -> bool:
        """Whether the SDK has GetAccessKeyLastUsedIps (only the 2020-07-06 ones do)."""
        return self.version == V2020


SDK_VARIANTS = (
    SdkVariant("tea2017-v3", "tea", V2017),
    SdkVariant("tea2017-v1", "tea", V2017, "v2"),
    SdkVariant("tea2020-v3", "tea", V2020),
    SdkVariant("tea2020-v1", "tea", V2020, "v2"),
    SdkVariant("tea2020-sm3", "tea", V2020, "ACS3-HMAC-SM3"),
    SdkVariant("core2020-v1", "core", V2020),
)


@dataclass(frozen=True, slots=True)
class SdkError:
    """An error response as the SDK reported it, through its own exception type."""

    code: str
    status: int | None
    message: str
    body: Mapping[str, Any] | None  # tea keeps the parsed error body; aliyunsdkcore does not
    exception: Exception


class SdkClient:
    """What every variant offers the tests; subclasses talk to one SDK."""

    variant: SdkVariant

    def lookup_events(self, event_name: str | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def last_used_ips(self, access_key: str, service_name: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def call(self, action: str, version: str, query: Mapping[str, str] | None = None) -> Any:
        """A call through the SDK's generic entry point (any action and version)."""
        raise NotImplementedError

    def error_type(self) -> type[Exception]:
        """The SDK's own exception type for an error answer the server meant to give."""
        raise NotImplementedError

    def to_error(self, exc: Exception) -> SdkError:
        raise NotImplementedError

    def expect_error(self, fn: Callable[[], object]) -> SdkError:
        """Run ``fn``, which must fail with the SDK's own exception type."""
        with pytest.raises(self.error_type()) as info:
            fn()
        return self.to_error(info.value)

    def attempt(self, fn: Callable[[], object]) -> SdkError | None:
        """Run ``fn``: None when it succeeds, the error when the SDK raised its own exception type."""
        try:
            fn()
        except self.error_type() as exc:
            return self.to_error(exc)
        return None

    def shift_clock(self, monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
        """Make the SDK stamp its requests ``seconds`` away from the real clock."""
        raise NotImplementedError

    def pin_nonce(self, monkeypatch: pytest.MonkeyPatch, nonce: str) -> None:
        """Make the SDK send the same SignatureNonce on every request."""
        raise NotImplementedError


def _skewed_wire_time(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def _check_response(response: Any) -> None:
    # The 2017 SDK's response model predates ``status_code``; both carry the headers.
    assert getattr(response, "status_code", 200) == 200
    assert response.body.request_id
    assert response.headers["x-acs-request-id"] == response.body.request_id


class TeaSdkClient(SdkClient):
    def __init__(
        self, variant: SdkVariant, server: LiveServer, key_id: str, secret: str, security_token: str | None
    ) -> None:
        from alibabacloud_tea_openapi.models import Config

        self.variant = variant
        config = Config(
            access_key_id=key_id, access_key_secret=secret, endpoint=server.endpoint, protocol="http"
        )
        if variant.signature_algorithm is not None:
            config.signature_algorithm = variant.signature_algorithm
        if security_token is not None:
            config.security_token = security_token
        if variant.version == V2017:
            from alibabacloud_actiontrail20171204.client import Client as Client17

            self.client: Any = Client17(config)
        else:
            from alibabacloud_actiontrail20200706.client import Client as Client20

            self.client = Client20(config)

    def lookup_events(self, event_name: str | None = None) -> list[dict[str, Any]]:
        if self.variant.version == V2017:
            from alibabacloud_actiontrail20171204 import models as m17

            response = self.client.lookup_events(m17.LookupEventsRequest(event_name=event_name))
        else:
            from alibabacloud_actiontrail20200706 import models as m20

            request = m20.LookupEventsRequest()
            if event_name:
                attribute = m20.LookupEventsRequestLookupAttribute(key="EventName", value=event_name)
                request.lookup_attribute = [attribute]
            response = self.client.lookup_events(request)
        _check_response(response)
        return list(response.body.events or [])

    def last_used_ips(self, access_key: str, service_name: str) -> list[dict[str, Any]]:
        from alibabacloud_actiontrail20200706 import models as m20

        response = self.client.get_access_key_last_used_ips(
            m20.GetAccessKeyLastUsedIpsRequest(access_key=access_key, service_name=service_name)
        )
        _check_response(response)
        return [ip.to_map() for ip in response.body.ips or []]

    def call(self, action: str, version: str, query: Mapping[str, str] | None = None) -> Any:
        from alibabacloud_tea_openapi.models import OpenApiRequest, Params
        from darabonba.runtime import RuntimeOptions

        params = Params(
            action=action,
            version=version,
            protocol="HTTPS",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        return self.client.call_api(params, OpenApiRequest(query=dict(query or {})), RuntimeOptions())

    def error_type(self) -> type[Exception]:
        from alibabacloud_tea_openapi.exceptions import ClientException

        return ClientException  # 4xx; a 5xx would be ServerException and fail the test

    def to_error(self, exc: Exception) -> SdkError:
        err: Any = exc
        return SdkError(str(err.code), err.status_code, str(err.message), err.data, exc)

    def shift_clock(self, monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
        from alibabacloud_tea_openapi.utils import Utils

        # The one clock of tea's RPC (V1 Timestamp) and ROA/V3 (x-acs-date) signing paths.
        monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: _skewed_wire_time(seconds)))

    def pin_nonce(self, monkeypatch: pytest.MonkeyPatch, nonce: str) -> None:
        from alibabacloud_tea_openapi.utils import Utils

        monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: nonce))


class CoreSdkClient(SdkClient):
    """aliyunsdkcore's AcsClient with the aliyun-python-sdk-actiontrail request classes."""

    def __init__(
        self, variant: SdkVariant, server: LiveServer, key_id: str, secret: str, security_token: str | None
    ) -> None:
        from aliyunsdkcore.client import AcsClient

        self.variant = variant
        self.host = server.host
        if security_token is None:
            self.acs = AcsClient(key_id, secret, REGION, port=server.port)
        else:
            from aliyunsdkcore.auth.credentials import StsTokenCredential

            credential = StsTokenCredential(key_id, secret, security_token)
            self.acs = AcsClient(region_id=REGION, port=server.port, credential=credential)

    def _prepare(self, request: Any) -> Any:
        request.set_endpoint(self.host)  # the bare host; the port comes from AcsClient(port=...)
        request.set_protocol_type("http")
        return request

    def _send(self, request: Any) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.acs.do_action_with_exception(self._prepare(request)))
        assert body["RequestId"]
        return body

    def _lookup_request(self, event_name: str | None) -> Any:
        from aliyunsdkactiontrail.request.v20200706.LookupEventsRequest import LookupEventsRequest

        request = LookupEventsRequest()
        if event_name:
            request.set_LookupAttributes([{"Key": "EventName", "Value": event_name}])
        return request

    def lookup_events(self, event_name: str | None = None) -> list[dict[str, Any]]:
        return list(self._send(self._lookup_request(event_name)).get("Events") or [])

    def lookup_events_raw(self, event_name: str | None = None) -> tuple[int, dict[str, Any]]:
        """Status and parsed body without raising (AcsClient.get_response), to see whole error bodies."""
        request = self._prepare(self._lookup_request(event_name))
        request.set_accept_format("JSON")  # as do_action_with_exception does (unset, it sends Format=None)
        status, _headers, body = self.acs.get_response(request)
        return int(status), json.loads(body)

    def last_used_ips(self, access_key: str, service_name: str) -> list[dict[str, Any]]:
        from aliyunsdkactiontrail.request.v20200706.GetAccessKeyLastUsedIpsRequest import (
            GetAccessKeyLastUsedIpsRequest,
        )

        request = GetAccessKeyLastUsedIpsRequest()
        request.set_AccessKey(access_key)
        request.set_ServiceName(service_name)
        return list(self._send(request).get("Ips") or [])

    def call(self, action: str, version: str, query: Mapping[str, str] | None = None) -> Any:
        from aliyunsdkcore.request import CommonRequest

        request = CommonRequest(domain=self.host, version=version, action_name=action)
        request.set_method("POST")
        request.set_protocol_type("http")
        for name, value in (query or {}).items():
            request.add_query_param(name, value)
        return json.loads(self.acs.do_action_with_exception(request))

    def error_type(self) -> type[Exception]:
        from aliyunsdkcore.acs_exception.exceptions import ServerException

        return ServerException  # what AcsClient raises for any error answer (status >= 300)

    def to_error(self, exc: Exception) -> SdkError:
        err: Any = exc
        return SdkError(err.get_error_code(), err.get_http_status(), err.get_error_msg(), None, exc)

    def shift_clock(self, monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
        from aliyunsdkcore.utils import parameter_helper

        monkeypatch.setattr(parameter_helper, "get_iso_8061_date", lambda: _skewed_wire_time(seconds))

    def pin_nonce(self, monkeypatch: pytest.MonkeyPatch, nonce: str) -> None:
        from aliyunsdkcore.utils import parameter_helper

        monkeypatch.setattr(parameter_helper, "get_uuid", lambda: nonce)


def make_sdk_client(
    variant: SdkVariant, server: LiveServer, key_id: str, secret: str, *, security_token: str | None = None
) -> SdkClient:
    cls = TeaSdkClient if variant.family == "tea" else CoreSdkClient
    return cls(variant, server, key_id, secret, security_token)


# ------------------------------------------------------------------------------- accounts and data


@dataclass(frozen=True, slots=True)
class Tenant:
    """One account with an AccessKey and a few stored events."""

    account_id: str
    key_id: str
    secret: str
    event_name: str
    event_ids: tuple[str, ...]  # newest first
    events: tuple[dict[str, Any], ...]  # as stored, same order
    used_key_id: str  # the AccessKey the seeded events were made with
    service_name: str
    used_ips: tuple[str, ...]


def new_access_key(
    server: LiveServer, account_id: str, *, user_name: str = "root", allowed_actions: tuple[str, ...] = ()
) -> NewAccessKey:
    assert server.settings.data_dir is not None
    sealer = Sealer(load_master_key(None, Path(server.settings.data_dir)))
    return create_access_key(
        server.store, sealer, account_id=account_id, user_name=user_name, allowed_actions=allowed_actions
    )


def seed_events(
    server: LiveServer, account_id: str, *, event_name: str, used_key_id: str, service_name: str, count: int
) -> list[dict[str, Any]]:
    """Store ``count`` recent events of ``account_id``, one minute apart; returns them newest first."""
    now = now_ms()
    events: list[dict[str, Any]] = []
    for i in range(count):
        events.append(
            {
                "eventId": f"{account_id}-{i}-{uuid.uuid4().hex[:8]}",
                "eventVersion": "1",
                "eventTime": format_wire_time(now - (i + 1) * 60_000),
                "eventName": event_name,
                "eventType": "ApiCall",
                "eventRW": "Read",
                "serviceName": service_name,
                "sourceIpAddress": f"192.0.2.{10 + i}",
                "requestId": str(uuid.uuid4()).upper(),
                "acsRegion": REGION,
                "userIdentity": {
                    "type": "ram-user",
                    "accountId": account_id,
                    "principalId": "2000000000000001",
                    "userName": "alice",
                    "accessKeyId": used_key_id,
                },
            }
        )
    server.store.append([event_from_mapping(event) for event in events])
    return events


@pytest.fixture
def make_tenant() -> Callable[..., Tenant]:
    """``make_tenant(server, allowed_actions=(), events=2, event_name=..., used_key_id=...)``.

    Every tenant gets a fresh account id, so tenants never share throttling buckets or data unless
    a test makes them share event names and AccessKey ids on purpose.
    """

    def make(
        server: LiveServer,
        *,
        allowed_actions: tuple[str, ...] = (),
        events: int = 2,
        event_name: str = "DescribeInstances",
        used_key_id: str | None = None,
        service_name: str = "Ecs",
    ) -> Tenant:
        account_id = str(1_000_000_000_000_000 + uuid.uuid4().int % 10**15)
        key = new_access_key(server, account_id, user_name="auditor", allowed_actions=allowed_actions)
        used = used_key_id or "LTAI" + uuid.uuid4().hex[:20]
        stored = seed_events(
            server,
            account_id,
            event_name=event_name,
            used_key_id=used,
            service_name=service_name,
            count=events,
        )
        return Tenant(
            account_id=account_id,
            key_id=key.key.access_key_id,
            secret=key.secret,
            event_name=event_name,
            event_ids=tuple(e["eventId"] for e in stored),
            events=tuple(stored),
            used_key_id=used,
            service_name=service_name,
            used_ips=tuple(e["sourceIpAddress"] for e in stored),
        )

    return make


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=BACKENDS)
def e2e_backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``backend_url`` at module scope: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'trail.db'}"
        return
    base = request.getfixturevalue("pg_available")
    with pg_schema_url(base) as url:
        yield url


@pytest.fixture(scope="module")
def live_server(e2e_backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server on the parametrized backend with throttling off, shared by a module's tests."""
    settings = Settings(
        db_url=e2e_backend_url,
        port=free_port(),
        data_dir=str(tmp_path_factory.mktemp("e2e-data")),
        throttle_lookup_events=0,
        throttle_access_key_usage=0,
    )
    with run_server(settings) as server:
        yield server


@pytest.fixture(params=SDK_VARIANTS, ids=[v.id for v in SDK_VARIANTS])
def sdk_variant(request: pytest.FixtureRequest) -> SdkVariant:
    variant: SdkVariant = request.param
    if variant.signature_algorithm == "ACS3-HMAC-SM3":
        from trailhouse.api.rpc.signature import sm3_available

        if not sm3_available():
            pytest.skip("this interpreter's OpenSSL has no SM3, so the server answers InvalidSignatureMethod")
    return variant


@pytest.fixture
def sdk_client(sdk_variant: SdkVariant) -> Callable[..., SdkClient]:
    """``sdk_client(server, tenant_or_(key_id, secret), security_token=None)`` for this test's variant."""

    def make(
        server: LiveServer, who: Tenant | tuple[str, str], *, security_token: str | None = None
    ) -> SdkClient:
        key_id, secret = (who.key_id, who.secret) if isinstance(who, Tenant) else who
        return make_sdk_client(sdk_variant, server, key_id, secret, security_token=security_token)

    return make
