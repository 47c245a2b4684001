"""Property tests of the RPC gateway: whatever arrives at ``/``, the answer is a well-formed envelope.

Driven in process: the real ASGI app through ``httpx.ASGITransport`` (routing, body reading and
the response headers included), and ``Gateway.process`` directly for what an HTTP client cannot
send (any method name, raw query bytes, any header text). Invariants for every input:

* never a 5xx (the store is healthy, so 500/503 could only be a bug);
* the body parses (JSON, or XML with the exact ``text/xml;charset=utf-8``) and carries RequestId
  equal to the ``x-acs-request-id`` header, plus Code and Message when it is an error;
* it completes quickly.

Besides unstructured garbage, one strategy signs its requests properly with a real AccessKey, so
the fuzzing reaches routing, authorisation and the operations' parameter validation.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trailhouse.api.app import create_app
from trailhouse.api.rpc.dispatch import OPERATIONS
from trailhouse.api.rpc.gateway import Gateway, build_gateway
from trailhouse.api.rpc.render import JSON_CONTENT_TYPE, XML_CONTENT_TYPE
from trailhouse.api.rpc.signature import (
    ACS3_HMAC_SHA256,
    ACS3_HMAC_SM3,
    ACS3_RSA_SHA256,
    payload_hash,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.credentials import create_access_key
from trailhouse.service.secrets import Sealer, load_master_key
from trailhouse.settings import Settings

HOST = "fuzz.test"
ACCOUNT = "1234567890123456"
MAX_SECONDS = 2.0
FUZZ = settings(
    max_examples=250,
    deadline=None,  # timing is asserted per request instead, with a margin for slow CI machines
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    gateway: Gateway
    key_id: str
    secret: str
    restricted_key_id: str
    restricted_secret: str

    def request(
        self, method: str, query: str, headers: dict[str, str] | list[tuple[bytes, bytes]], body: bytes
    ) -> httpx.Response:
        url = f"http://{HOST}/?{query}" if query else f"http://{HOST}/"
        started = time.monotonic()
        call = self.client.request(method, url, headers=headers, content=body)
        response = self.loop.run_until_complete(call)
        assert time.monotonic() - started < MAX_SECONDS
        return response


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    data = tmp_path_factory.mktemp("fuzz")
    cfg = Settings(
        db_url=f"sqlite:///{data / 'fuzz.db'}",
        data_dir=str(data),
        throttle_lookup_events=0,
        throttle_access_key_usage=0,
    )
    app = create_app(cfg, store=None)
    store = app.state.services.store
    sealer = Sealer(load_master_key(None, Path(data)))
    key = create_access_key(store, sealer, account_id=ACCOUNT)
    only_ips = ("actiontrail:GetAccessKeyLastUsedIps",)
    restricted = create_access_key(
        store, sealer, account_id=ACCOUNT, user_name="bob", allowed_actions=only_ips
    )
    now = now_ms()
    store.append(
        [
            event_from_mapping(
                {
                    "eventId": f"fuzz-{i}",
                    "eventTime": format_wire_time(now - i * 600_000),
                    "eventName": ("DescribeInstances", "ConsoleSignin", "CreateUser")[i % 3],
                    "serviceName": ("Ecs", "Ram")[i % 2],
                    "sourceIpAddress": f"198.51.100.{i}",
                    "eventRW": ("Read", "Write")[i % 2],
                    "userIdentity": {
                        "accountId": ACCOUNT,
                        "accessKeyId": "LTAIfuzzfuzzfuzz",
                        "userName": "alice",
                    },
                    "referencedResources": {"ACS::ECS::Instance": [f"i-{i}"]},
                }
            )
            for i in range(12)
        ]
    )
    gateway = build_gateway(app.state.services)
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    try:
        yield Harness(
            loop,
            client,
            gateway,
            key.key.access_key_id,
            key.secret,
            restricted.key.access_key_id,
            restricted.secret,
        )
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
        gateway.close()
        store.close()


# ------------------------------------------------------------------------------------------ checks


def check_envelope(status: int, content_type: str, request_id: str, body: bytes) -> dict[str, Any]:
    assert status < 500, body[:500]
    assert request_id
    if content_type == XML_CONTENT_TYPE:
        assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        root = ET.fromstring(body)
        assert root.tag == "Error" if status != 200 else root.tag.endswith("Response")
        data: dict[str, Any] = {child.tag: child.text for child in root if not len(child)}
    else:
        assert content_type == JSON_CONTENT_TYPE
        data = json.loads(body)
        assert isinstance(data, dict)
    assert data["RequestId"] == request_id
    if status != 200:
        assert data["Code"] and data["Message"]
        assert data["Code"] not in ("InternalError", "ServiceUnavailable")
    return data


def check_response(response: httpx.Response) -> dict[str, Any]:
    return check_envelope(
        response.status_code,
        response.headers.get("content-type", ""),
        response.headers.get("x-acs-request-id", ""),
        response.content,
    )


# -------------------------------------------------------------------------------------- strategies

COMMON_NAMES = (
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "SecurityToken",
    "BearerToken",
    "RegionId",
)
BUSINESS_NAMES = (
    "LookupAttribute.1.Key",
    "LookupAttribute.1.Value",
    "LookupAttribute.2.Key",
    "LookupAttribute.2.Value",
    "LookupAttribute.3.Key",
    "LookupAttribute.0.Value",
    "LookupAttribute.x.Key",
    "MaxResults",
    "NextToken",
    "StartTime",
    "EndTime",
    "Direction",
    "EventName",
    "User",
    "EventRW",
    "ResourceType",
    "ResourceName",
    "ServiceName",
    "Event",
    "Request",
    "EventAccessKeyId",
    "AccessKey",
    "PageSize",
)
ACTIONS = (
    "LookupEvents",
    "GetAccessKeyLastUsedIps",
    "GetAccessKeyLastUsedEvents",
    "GetAccessKeyLastUsedResources",
    "GetAccessKeyLastUsedProducts",
    "GetAccessKeyLastUsedInfo",
    "DescribeTrails",
    "lookupevents",
    "",
)
VERSIONS = ("2017-12-04", "2020-07-06", "2015-01-01", "2020-07-6", "")
HEADER_NAMES = (
    "authorization",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "x-acs-security-token",
    "x-acs-accesskey-id",
    "content-type",
    "accept",
)
PLAUSIBLE = (
    "EventName",
    "ServiceName",
    "User",
    "EventRW",
    "Read",
    "Write",
    "All",
    "ResourceType",
    "ACS::ECS::Instance",
    "Ecs",
    "FORWARD",
    "BACKWARD",
    "0",
    "1",
    "20",
    "50",
    "51",
    "-1",
    "true",
    "LTAIfuzzfuzzfuzz",
    "2024-01-01T00:00:00Z",
    "2099-01-01T00:00:00Z",
    "JSON",
    "XML",
    "json",
    "HMAC-SHA1",
    "1.0",
    "application/json",
    "application/xml",
    "application/x-www-form-urlencoded",
    "ACS3-HMAC-SHA256",
)

# Text as a client may produce it: anything encodable, surrogates excluded (clients cannot send them).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
values = st.one_of(st.sampled_from(PLAUSIBLE), any_text, st.text("0123456789:-TZ.", max_size=25))
names = st.one_of(st.sampled_from(COMMON_NAMES + BUSINESS_NAMES), any_text)
# Header values must survive HTTP framing: latin-1, no CR/LF/NUL.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)


@st.composite
def authorization(draw: st.DrawFn) -> str:
    algorithm = draw(
        st.sampled_from(["ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", "ACS3-RSA-SHA256", "ACS3-", "HMAC"])
    )
    fields = draw(
        st.lists(
            st.tuples(st.sampled_from(["Credential", "SignedHeaders", "Signature", "X", ""]), header_text),
            max_size=4,
        )
    )
    separator = draw(st.sampled_from([",", ", ", ";"]))
    return f"{algorithm} " + separator.join(f"{k}={v}" for k, v in fields)


def _encode_query(pairs: list[tuple[str, str]], plus: bool) -> str:
    enc = (lambda s: quote(s, safe="").replace("%20", "+")) if plus else (lambda s: quote(s, safe=""))
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)


raw_query = st.one_of(
    st.builds(_encode_query, st.lists(st.tuples(names, values), max_size=12), st.booleans()),
    # Raw text with stray escapes: bad UTF-8 (%FF, a truncated %E4%B8), NUL, '%ZZ', a lone '%'.
    st.lists(
        st.sampled_from([*"AaZz09=&%+._-~", "%FF", "%C3", "%00", "%E4%B8", "%ZZ", "Action=", "Signature="]),
        max_size=30,
    ).map("".join),
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(
            names,
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | values,
                lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
                max_leaves=10,
            ),
            max_size=5,
        ),
    ),
    st.builds(lambda q: q.encode(), raw_query),
)
headers_strategy = st.dictionaries(
    st.sampled_from(HEADER_NAMES),
    st.one_of(header_text, st.sampled_from(PLAUSIBLE), authorization()),
    max_size=6,
)


# ------------------------------------------------------------------------------- unsigned garbage


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST"]),
    query=raw_query,
    headers=headers_strategy,
    body=bodies,
)
def test_garbage_through_the_app(
    harness: Harness, method: str, query: str, headers: dict[str, str], body: bytes
) -> None:
    encoded = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    data = check_response(harness.request(method, query, encoded, body))
    event(f"code {data.get('Code', 'OK')}")


@FUZZ
@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "get"]), any_text),
    query=st.one_of(st.binary(max_size=200), raw_query.map(str.encode)),
    headers=st.dictionaries(
        st.one_of(st.sampled_from(HEADER_NAMES), any_text),
        st.one_of(
            any_text,
            authorization(),
            st.text(max_size=20),  # st.text may include lone surrogates
        ),
        max_size=6,
    ),
    body=bodies,
)
def test_garbage_through_process(
    harness: Harness, method: str, query: bytes, headers: dict[str, str], body: bytes
) -> None:
    """Inputs no HTTP stack would deliver (any method, any header text) never escape as exceptions."""
    request_id = str(uuid.uuid4()).upper()
    lowered = {k.lower(): v for k, v in headers.items()}
    started = time.monotonic()
    outcome = harness.gateway.process(method, query, lowered, body, request_id, "/")
    assert time.monotonic() - started < MAX_SECONDS
    check_envelope(outcome.status, outcome.content_type, request_id, outcome.body)


# ------------------------------------------------------------------------------- signed requests


@dataclass(frozen=True)
class SignedCase:
    style: str
    method: str
    route: tuple[str, str]  # (Action, Version)
    params: list[tuple[str, str]]
    body_kind: str  # none / form / json
    accept: str | None
    fmt: str | None
    restricted: bool
    usage_key: bool  # give GetAccessKeyLastUsed* a real AccessKey and ServiceName unless drawn
    algorithm: str  # V3 only; ACS3-RSA-SHA256 is claimed with an HMAC key (InvalidSignatureMethod)


business_params = st.lists(
    st.tuples(st.sampled_from(BUSINESS_NAMES), values), max_size=6, unique_by=lambda p: p[0]
)
signed_cases = st.builds(
    SignedCase,
    style=st.sampled_from(["V1", "V3"]),
    method=st.sampled_from(["GET", "POST"]),
    # Mostly served operations, so that most cases get past routing into parameter validation.
    route=st.one_of(
        st.sampled_from([("LookupEvents", "2017-12-04"), ("LookupEvents", "2020-07-06")]),
        st.sampled_from(sorted(OPERATIONS)),
        st.tuples(st.sampled_from(ACTIONS), st.sampled_from(VERSIONS)),
    ),
    params=business_params,
    body_kind=st.sampled_from(["none", "form", "json"]),
    accept=st.sampled_from([None, "application/json", "application/xml", "*/*"]),
    fmt=st.one_of(st.sampled_from([None, "JSON", "XML", "json"]), st.sampled_from(["yaml", ""])),
    restricted=st.sampled_from([False, False, False, True]),
    usage_key=st.booleans(),
    algorithm=st.sampled_from([ACS3_HMAC_SHA256, ACS3_HMAC_SHA256, ACS3_HMAC_SM3, ACS3_RSA_SHA256]),
)


def _signed_request(case: SignedCase, harness: Harness) -> tuple[str, dict[str, str], bytes]:
    key_id = harness.restricted_key_id if case.restricted else harness.key_id
    secret = harness.restricted_secret if case.restricted else harness.secret
    params = list(case.params)
    if case.usage_key:
        drawn = {name for name, _ in params}
        defaults = (("AccessKey", "LTAIfuzzfuzzfuzz"), ("ServiceName", "Ecs"))
        params += [(k, v) for k, v in defaults if k not in drawn]
    half = len(params) // 2
    in_query, in_body = params[:half], params[half:]
    if case.body_kind == "none":
        in_query, in_body = params, []
    nonce = uuid.uuid4().hex
    stamp = format_wire_time(now_ms())
    if case.style == "V1":
        common = {
            "Action": case.route[0],
            "Version": case.route[1],
            "AccessKeyId": key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": nonce,
            "Timestamp": stamp,
        }
        if case.fmt is not None:
            common["Format"] = case.fmt
        query = [*common.items(), *in_query]
        headers: dict[str, str] = {}
        body = b""
        signed = dict(query)
        if in_body:  # V1 bodies are always form-encoded, and signed
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = _encode_query(in_body, plus=True).encode()
            signed.update(in_body)
        query.append(("Signature", v1_signature(secret, v1_string_to_sign(case.method, signed))))
        return _encode_query(query, plus=True), headers, body

    body = b""
    headers = {
        "host": HOST,
        "x-acs-action": case.route[0],
        "x-acs-version": case.route[1],
        "x-acs-date": stamp,
        "x-acs-signature-nonce": nonce,
    }
    if case.body_kind == "form" and in_body:
        body = _encode_query(in_body, plus=False).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif case.body_kind == "json" and in_body:
        body = json.dumps(dict(in_body), ensure_ascii=False).encode()
        headers["content-type"] = "application/json; charset=utf-8"
    if case.accept is not None:
        headers["accept"] = case.accept
    digest = payload_hash(case.algorithm, body)
    headers["x-acs-content-sha256"] = digest
    signed_names = sorted(headers)
    creq = v3_canonical_request(case.method, "/", in_query, headers, signed_names, digest)
    sts = v3_string_to_sign(case.algorithm, creq)
    signature = "00" * 64 if case.algorithm == ACS3_RSA_SHA256 else v3_signature(case.algorithm, secret, sts)
    headers["authorization"] = (
        f"{case.algorithm} Credential={key_id},SignedHeaders={';'.join(signed_names)},Signature={signature}"
    )
    return _encode_query(in_query, plus=False), headers, body


@FUZZ
@given(case=signed_cases)
def test_signed_requests_with_arbitrary_parameters(harness: Harness, case: SignedCase) -> None:
    query, headers, body = _signed_request(case, harness)
    encoded = [(k.encode(), v.encode()) for k, v in headers.items()]
    data = check_response(harness.request(case.method, query, encoded, body))
    event(f"code {data.get('Code', 'OK')}")
    if case.style == "V3" and case.algorithm == ACS3_RSA_SHA256:
        # Mandatory headers are checked before the method (docs/api.md §1.4, steps 2 and 3).
        assert data.get("Code") in ("InvalidSignatureMethod", "MissingAction", "MissingVersion"), data
        return
    # A correctly signed request is never refused for its signature.
    assert data.get("Code") not in (
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "SignatureNonceUsed",
        "InvalidTimeStamp.Expired",
        "InvalidAccessKeyId.NotFound",
    ), data
