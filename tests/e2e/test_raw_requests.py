"""Hand-built requests against a real server: what the SDKs never send, or send only one way.

Requests are signed here with the project's own signer functions (``trailhouse.api.rpc.signature``)
and sent with httpx, so every byte on the wire is under the test's control: replayed nonces,
formats, encodings, methods, broken signatures and hostile inputs. Every response is checked for
the invariants of the envelope (``x-acs-request-id`` equal to the body's RequestId, the exact
content types) by ``check``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import Tenant
from trailhouse.api.rpc.signature import (
    ACS3_HMAC_SHA256,
    payload_hash,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from trailhouse.model.times import format_wire_time, now_ms

pytestmark = pytest.mark.e2e

MakeTenant = Callable[..., Tenant]
V2017 = "2017-12-04"
V2020 = "2020-07-06"
JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "text/xml;charset=utf-8"


# --------------------------------------------------------------------------------- request builders


def _plus(text: str) -> str:
    return quote_plus(text, safe="")


def _pct20(text: str) -> str:
    return quote(text, safe="")


def encode_query(pairs: Sequence[tuple[str, str]], encoder: Callable[[str], str] = _plus) -> str:
    return "&".join(f"{encoder(k)}={encoder(v)}" for k, v in pairs)


@dataclass
class Signed:
    """A request ready to send: method, query string, headers, body; plus what was signed."""

    method: str
    query: str
    headers: dict[str, str]
    body: bytes
    string_to_sign: str


def v1_params(
    key_id: str,
    *,
    action: str = "LookupEvents",
    version: str = V2020,
    fmt: str | None = "JSON",
    nonce: str | None = None,
    timestamp: str | None = None,
    **business: str,
) -> dict[str, str]:
    params = {
        "Action": action,
        "Version": version,
        "AccessKeyId": key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": timestamp or format_wire_time(now_ms()),
    }
    if fmt is not None:
        params["Format"] = fmt
    params.update(business)
    return params


def sign_v1(
    method: str,
    params: Mapping[str, str],
    secret: str,
    *,
    form_body: Mapping[str, str] | None = None,
    encoder: Callable[[str], str] = _plus,
) -> Signed:
    """RPC signature V1 over the query plus an optional form body; Signature goes in the query."""
    signed_map = {**params, **(form_body or {})}
    sts = v1_string_to_sign(method, signed_map)
    query = [*params.items(), ("Signature", v1_signature(secret, sts))]
    headers: dict[str, str] = {}
    body = b""
    if form_body is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
        body = encode_query(list(form_body.items()), encoder).encode()
    return Signed(method, encode_query(query, encoder), headers, body, sts)


def sign_v3(
    server: LiveServer,
    method: str,
    key_id: str,
    secret: str,
    *,
    action: str = "LookupEvents",
    version: str = V2020,
    query: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    nonce: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
    algorithm: str = ACS3_HMAC_SHA256,
    encoder: Callable[[str], str] = _plus,
) -> Signed:
    """Signature V3 the way the tea SDK builds it: every header present is signed."""
    digest = payload_hash(algorithm, body)
    headers = {
        "host": server.endpoint,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": format_wire_time(now_ms()),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": digest,
        "accept": "application/json",
        **(extra_headers or {}),
    }
    if content_type is not None:
        headers["content-type"] = content_type
    signed = sorted(headers)
    creq = v3_canonical_request(method, "/", list(query), headers, signed, digest)
    sts = v3_string_to_sign(algorithm, creq)
    signature = v3_signature(algorithm, secret, sts)
    headers["authorization"] = (
        f"{algorithm} Credential={key_id},SignedHeaders={';'.join(signed)},Signature={signature}"
    )
    return Signed(method, encode_query(list(query), encoder), headers, body, sts)


# ------------------------------------------------------------------------------------ response checks


@dataclass
class Answer:
    status: int
    content_type: str
    request_id: str
    root: str | None  # XML root element name; None for JSON
    data: dict[str, Any]  # the JSON object, or the XML tree as nested dicts (repeated names as lists)
    xml: ET.Element | None
    response: httpx.Response

    @property
    def code(self) -> str | None:
        return self.data.get("Code")


def _xml_to_dict(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        value: Any = _xml_to_dict(child) if len(child) else (child.text or "")
        if child.tag in out:
            existing = out[child.tag]
            out[child.tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[child.tag] = value
    return out


def check(response: httpx.Response) -> Answer:
    """The envelope rules every gateway answer obeys, whatever it says."""
    assert response.status_code < 500, response.text
    content_type = response.headers.get("content-type", "")
    assert content_type in (JSON_TYPE, XML_TYPE), content_type
    header_id = response.headers.get("x-acs-request-id", "")
    assert header_id
    root: str | None = None
    tree: ET.Element | None = None
    if content_type == XML_TYPE:
        assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        tree = ET.fromstring(response.content)
        root = tree.tag
        data = _xml_to_dict(tree)
    else:
        data = json.loads(response.content)
        assert isinstance(data, dict)
    assert data["RequestId"] == header_id
    if response.status_code != 200:
        assert data["Code"]
        assert data["Message"]
        assert data["Recommend"].startswith("https://")
        if root is not None:
            assert root == "Error"
    return Answer(response.status_code, content_type, header_id, root, data, tree, response)


def send(http: httpx.Client, server: LiveServer, req: Signed) -> Answer:
    url = f"{server.url}/?{req.query}" if req.query else f"{server.url}/"
    return check(http.request(req.method, url, headers=req.headers, content=req.body))


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def tenant(live_server: LiveServer, make_tenant: MakeTenant) -> Tenant:
    return make_tenant(live_server, events=3)


def _event_ids(events: Any) -> list[str]:
    items = events if isinstance(events, list) else [events]
    return [e["eventId"] for e in items]


# ---------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_v1_get_and_post(http: httpx.Client, live_server: LiveServer, tenant: Tenant, method: str) -> None:
    req = sign_v1(method, v1_params(tenant.key_id), tenant.secret)
    answer = send(http, live_server, req)
    assert answer.status == 200
    assert answer.content_type == JSON_TYPE
    assert answer.data["Events"] == list(tenant.events)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_v3_get_and_post(http: httpx.Client, live_server: LiveServer, tenant: Tenant, method: str) -> None:
    req = sign_v3(live_server, method, tenant.key_id, tenant.secret)
    answer = send(http, live_server, req)
    assert answer.status == 200
    assert answer.content_type == JSON_TYPE
    assert answer.data["Events"] == list(tenant.events)


def test_v1_post_with_a_form_body(http: httpx.Client, live_server: LiveServer, tenant: Tenant) -> None:
    params = v1_params(tenant.key_id, version=V2017)
    form = {"EventName": tenant.event_name, "MaxResults": "20"}
    req = sign_v1("POST", params, tenant.secret, form_body=form)
    answer = send(http, live_server, req)
    assert answer.status == 200
    assert _event_ids(answer.data["Events"]) == list(tenant.event_ids)


def test_v3_json_body_like_the_2017_tea_client(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    query = [("EventName", tenant.event_name), ("MaxResults", "20")]
    body = json.dumps({"EventName": tenant.event_name, "MaxResults": "20"}, separators=(",", ":")).encode()
    req = sign_v3(
        live_server,
        "POST",
        tenant.key_id,
        tenant.secret,
        version=V2017,
        query=query,
        body=body,
        content_type="application/json; charset=utf-8",
    )
    answer = send(http, live_server, req)
    assert answer.status == 200
    assert _event_ids(answer.data["Events"]) == list(tenant.event_ids)


@pytest.mark.parametrize("style", ["V1", "V3"])
def test_replayed_nonce_is_rejected(
    http: httpx.Client, live_server: LiveServer, make_tenant: MakeTenant, tenant: Tenant, style: str
) -> None:
    nonce = uuid.uuid4().hex

    def build(who: Tenant) -> Signed:
        if style == "V1":
            return sign_v1("POST", v1_params(who.key_id, nonce=nonce), who.secret)
        return sign_v3(live_server, "POST", who.key_id, who.secret, nonce=nonce)

    assert send(http, live_server, build(tenant)).status == 200
    again = send(http, live_server, build(tenant))  # freshly signed, same nonce
    assert (again.status, again.code) == (400, "SignatureNonceUsed")
    assert again.data["Message"] == "Specified signature nonce was used already."
    # Nonces are remembered per AccessKey: another key may use the same value.
    other = make_tenant(live_server, events=0)
    assert send(http, live_server, build(other)).status == 200


def test_identical_request_replayed_verbatim_is_rejected(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    req = sign_v1("GET", v1_params(tenant.key_id), tenant.secret)
    assert send(http, live_server, req).status == 200
    assert send(http, live_server, req).code == "SignatureNonceUsed"


@pytest.mark.parametrize("failure", ["wrong secret", "expired timestamp", "unknown key"])
def test_a_refused_request_does_not_burn_its_nonce(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, failure: str
) -> None:
    nonce = uuid.uuid4().hex
    if failure == "wrong secret":
        bad = sign_v1("GET", v1_params(tenant.key_id, nonce=nonce), "wrong-secret")
    elif failure == "expired timestamp":
        stale = format_wire_time(now_ms() - 3600_000)
        bad = sign_v1("GET", v1_params(tenant.key_id, nonce=nonce, timestamp=stale), tenant.secret)
    else:
        bad = sign_v1("GET", v1_params("LTAI" + uuid.uuid4().hex[:20], nonce=nonce), tenant.secret)
    assert send(http, live_server, bad).status in (400, 404)
    # Only a genuine request records its nonce: a forger cannot use up someone else's nonces.
    good = sign_v1("GET", v1_params(tenant.key_id, nonce=nonce), tenant.secret)
    assert send(http, live_server, good).status == 200


@pytest.mark.parametrize("fmt", ["YAML", "JSONP", "json ", "ＪＳＯＮ"])
def test_bad_format_is_invalid_parameter_format(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, fmt: str
) -> None:
    answer = send(http, live_server, sign_v1("GET", v1_params(tenant.key_id, fmt=fmt), tenant.secret))
    assert (answer.status, answer.code) == (400, "InvalidParameter.Format")
    assert answer.data["Message"] == "Specified parameter format is not valid."


@pytest.mark.parametrize("fmt", ["JSON", "json", "Json"])
def test_format_json_any_case(http: httpx.Client, live_server: LiveServer, tenant: Tenant, fmt: str) -> None:
    answer = send(http, live_server, sign_v1("GET", v1_params(tenant.key_id, fmt=fmt), tenant.secret))
    assert (answer.status, answer.content_type) == (200, JSON_TYPE)


@pytest.mark.parametrize("fmt", ["XML", "xml", None], ids=["XML", "xml", "absent"])
def test_format_xml_success(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, fmt: str | None
) -> None:
    answer = send(http, live_server, sign_v1("GET", v1_params(tenant.key_id, fmt=fmt), tenant.secret))
    assert answer.status == 200
    assert answer.response.headers["content-type"] == XML_TYPE
    assert answer.root == "LookupEventsResponse"
    assert answer.xml is not None
    # Arrays are repeated elements named after the JSON key, with no wrapper.
    events = answer.xml.findall("Events")
    assert [e.findtext("eventId") for e in events] == list(tenant.event_ids)
    assert all(e.findtext("userIdentity/accountId") == tenant.account_id for e in events)
    assert answer.xml.findtext("RequestId") == answer.request_id
    assert answer.xml.findtext("StartTime") and answer.xml.findtext("EndTime")


def test_xml_and_json_carry_the_same_data(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    as_json = send(http, live_server, sign_v1("GET", v1_params(tenant.key_id, fmt="JSON"), tenant.secret))
    as_xml = send(http, live_server, sign_v1("GET", v1_params(tenant.key_id, fmt="XML"), tenant.secret))
    assert as_xml.xml is not None
    for event, element in zip(as_json.data["Events"], as_xml.xml.findall("Events"), strict=True):
        for key in ("eventId", "eventName", "eventTime", "sourceIpAddress", "serviceName"):
            assert element.findtext(key) == event[key]
        assert element.findtext("userIdentity/userName") == event["userIdentity"]["userName"]


@pytest.mark.parametrize("fmt", ["XML", None], ids=["XML", "absent"])
def test_xml_error_under_error_root(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, fmt: str | None
) -> None:
    req = sign_v1("GET", v1_params(tenant.key_id, fmt=fmt), "wrong-secret")
    answer = send(http, live_server, req)
    assert answer.status == 400
    assert answer.response.headers["content-type"] == XML_TYPE  # the exact string tea parses
    assert answer.root == "Error"
    assert answer.code == "SignatureDoesNotMatch"
    assert set(answer.data) >= {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert answer.data["HostId"] == live_server.endpoint
    # The server's StringToSign is exactly the one the client signed.
    assert answer.data["Message"].split("server string to sign is:", 1)[1] == req.string_to_sign


def test_v1_signature_mismatch_reports_the_string_to_sign(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    req = sign_v1("POST", v1_params(tenant.key_id, EventName="a b*~c"), "wrong-secret")
    answer = send(http, live_server, req)
    assert (answer.status, answer.code, answer.content_type) == (400, "SignatureDoesNotMatch", JSON_TYPE)
    prefix = "Specified signature is not matched with our calculation. server string to sign is:"
    assert answer.data["Message"] == prefix + req.string_to_sign


def test_v3_signature_mismatch_reports_the_string_to_sign(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    req = sign_v3(live_server, "POST", tenant.key_id, "wrong-secret", query=[("MaxResults", "20")])
    answer = send(http, live_server, req)
    assert (answer.status, answer.code) == (400, "SignatureDoesNotMatch")
    assert answer.data["Message"].split("server string to sign is:", 1)[1] == req.string_to_sign


@pytest.mark.parametrize("accept", ["application/xml", "text/xml"])
def test_v3_accept_xml_gets_xml(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, accept: str
) -> None:
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret, extra_headers={"accept": accept})
    answer = send(http, live_server, req)
    assert (answer.status, answer.content_type, answer.root) == (200, XML_TYPE, "LookupEventsResponse")
    assert answer.xml is not None
    assert [e.findtext("eventId") for e in answer.xml.findall("Events")] == list(tenant.event_ids)

    bad = sign_v3(live_server, "POST", tenant.key_id, "wrong-secret", extra_headers={"accept": accept})
    error = send(http, live_server, bad)
    assert (error.status, error.content_type, error.root, error.code) == (
        400,
        XML_TYPE,
        "Error",
        "SignatureDoesNotMatch",
    )


@pytest.mark.parametrize("encoder", [_plus, _pct20], ids=["plus", "pct20"])
@pytest.mark.parametrize("style", ["V1-query", "V1-form", "V3"])
def test_plus_and_pct20_both_mean_space(
    http: httpx.Client,
    live_server: LiveServer,
    make_tenant: MakeTenant,
    encoder: Callable[[str], str],
    style: str,
) -> None:
    name = "Get Thing+Now/中文 ~*'()!"
    who = make_tenant(live_server, events=2, event_name=name)
    lookup = {"LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": name}
    if style == "V1-query":
        req = sign_v1("POST", v1_params(who.key_id, **lookup), who.secret, encoder=encoder)
    elif style == "V1-form":
        req = sign_v1("POST", v1_params(who.key_id), who.secret, form_body=lookup, encoder=encoder)
    else:
        query = list(lookup.items())
        req = sign_v3(live_server, "POST", who.key_id, who.secret, query=query, encoder=encoder)
    if encoder is _plus:
        assert "+" in req.query or "+" in req.body.decode()
    else:
        assert "%20" in req.query or "%20" in req.body.decode()
    answer = send(http, live_server, req)
    assert answer.status == 200, answer.data
    assert _event_ids(answer.data["Events"]) == list(who.event_ids)
    assert answer.data["Events"][0]["eventName"] == name


def test_request_id_header_matches_body_on_success_and_errors(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    answers = [
        send(http, live_server, sign_v1("GET", v1_params(tenant.key_id), tenant.secret)),
        send(http, live_server, sign_v1("GET", v1_params(tenant.key_id, fmt="XML"), tenant.secret)),
        send(http, live_server, sign_v1("GET", v1_params(tenant.key_id), "bad")),
        send(http, live_server, sign_v3(live_server, "POST", tenant.key_id, tenant.secret)),
        check(http.get(f"{live_server.url}/")),
        check(http.post(f"{live_server.url}/", content=b"\x00\xff")),
    ]
    ids = [a.request_id for a in answers]
    assert len(set(ids)) == len(ids)  # (``check`` compared each with its body)


# ------------------------------------------------------------------------------ missing / malformed


def test_no_signature_at_all_is_incomplete_signature(http: httpx.Client, live_server: LiveServer) -> None:
    for answer in (
        check(http.get(f"{live_server.url}/")),
        check(http.post(f"{live_server.url}/?Action=LookupEvents&Version={V2020}")),
        check(http.get(f"{live_server.url}/", headers={"authorization": "Bearer abc"})),
    ):
        assert (answer.status, answer.code) == (400, "IncompleteSignature")


def test_v1_without_signature_is_missing_signature(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    query = encode_query(list(v1_params(tenant.key_id).items()))
    answer = check(http.get(f"{live_server.url}/?{query}"))
    assert answer.status == 400
    assert answer.code in ("MissingSignature", "IncompleteSignature")


@pytest.mark.parametrize(
    "name", ["SignatureNonce", "Timestamp", "SignatureMethod", "SignatureVersion", "Action", "Version"]
)
def test_v1_missing_common_parameter(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, name: str
) -> None:
    params = v1_params(tenant.key_id)
    del params[name]
    answer = send(http, live_server, sign_v1("GET", params, tenant.secret))
    assert (answer.status, answer.code) == (400, f"Missing{name}")


@pytest.mark.parametrize(
    "authorization",
    [
        "ACS3-HMAC-SHA256",
        "ACS3-HMAC-SHA256 Credential=abc",
        "ACS3-HMAC-SHA256 Credential=abc,SignedHeaders=host",
        "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=00",
        "ACS3-HMAC-SHA256 Credential=abc,SignedHeaders=,Signature=00",
        "ACS3-HMAC-SHA256 Credential=abc,SignedHeaders=host;;x-acs-date,Signature=00",
        "ACS3-HMAC-SHA256 Credential=abc,Credential=abc,SignedHeaders=host,Signature=00",
        "ACS3-HMAC-SHA256 garbage",
        "ACS3-HMAC-SHA256 Credential=abc;SignedHeaders=host;Signature=00",
    ],
)
def test_malformed_authorization_is_incomplete_signature(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, authorization: str
) -> None:
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret)
    req.headers["authorization"] = authorization
    answer = send(http, live_server, req)
    assert (answer.status, answer.code) == (400, "IncompleteSignature")


def test_v3_unsigned_acs_header_is_incomplete_signature(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret)
    req.headers["x-acs-signature-nonce"] = uuid.uuid4().hex + "-swapped"  # still signed: mismatch
    assert send(http, live_server, req).code == "SignatureDoesNotMatch"
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret)
    req.headers["x-acs-extra"] = "not signed"
    assert send(http, live_server, req).code == "IncompleteSignature"


def test_v3_payload_hash_mismatch_is_rejected(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    req = sign_v3(
        live_server,
        "POST",
        tenant.key_id,
        tenant.secret,
        body=b"EventName=x",
        content_type="application/x-www-form-urlencoded",
    )
    req.body = b"EventName=y"
    answer = send(http, live_server, req)
    assert answer.status == 400
    assert answer.code in ("IncompleteSignature", "SignatureDoesNotMatch")


def test_v3_repeated_header_is_joined_with_a_comma(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    # A repeated header is canonicalised once, its values joined with ',' (what the tea SDK signs).
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret, extra_headers={"x-acs-custom": "a,b"})
    wire = [(n.encode(), v.encode()) for n, v in req.headers.items() if n != "x-acs-custom"]
    wire += [(b"x-acs-custom", b"a"), (b"x-acs-custom", b"b")]
    answer = check(http.post(f"{live_server.url}/?{req.query}", headers=wire))
    assert answer.status == 200, answer.data


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_v3_non_ascii_signed_header(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, encoding: str
) -> None:
    # tea signs user-agent; Python's http.client sends latin-1, other SDKs send UTF-8 bytes.
    agent = "AlibabaCloud café" if encoding == "latin-1" else "AlibabaCloud 测试"
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret, extra_headers={"user-agent": agent})
    wire = [(n.encode(), v.encode(encoding)) for n, v in req.headers.items()]
    answer = check(http.post(f"{live_server.url}/?{req.query}", headers=wire))
    assert answer.status == 200, answer.data


def test_v3_rsa_claim_for_an_hmac_key_is_invalid_signature_method(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    # The key holds an HMAC secret, no RSA key: the client chose a method its key cannot use.
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret)
    _, fields = req.headers["authorization"].split(" ", 1)
    req.headers["authorization"] = f"ACS3-RSA-SHA256 {fields}"
    answer = send(http, live_server, req)
    assert (answer.status, answer.code) == (400, "InvalidSignatureMethod")


@pytest.mark.parametrize("algorithm", ["ACS3-HMAC-MD5", "ACS3-"])
def test_v3_unknown_algorithm(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, algorithm: str
) -> None:
    req = sign_v3(live_server, "POST", tenant.key_id, tenant.secret)
    _, fields = req.headers["authorization"].split(" ", 1)
    req.headers["authorization"] = f"{algorithm} {fields}"
    answer = send(http, live_server, req)
    assert (answer.status, answer.code) == (400, "InvalidSignatureMethod")


def test_v1_wrong_signature_method(http: httpx.Client, live_server: LiveServer, tenant: Tenant) -> None:
    params = v1_params(tenant.key_id, SignatureMethod="HMAC-SHA256")
    answer = send(http, live_server, sign_v1("GET", params, tenant.secret))
    assert (answer.status, answer.code) == (400, "InvalidSignatureMethod")


@pytest.mark.parametrize(
    "stamp",
    ["2024-01-01 00:00:00", "2024-01-01T00:00:00.000Z", "yesterday", "1700000000", "2024-13-45T99:99:99Z"],
)
def test_bad_timestamp_format(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, stamp: str
) -> None:
    params = v1_params(tenant.key_id, timestamp=stamp)
    answer = send(http, live_server, sign_v1("GET", params, tenant.secret))
    assert (answer.status, answer.code) == (400, "InvalidTimeStamp.Format")


def test_access_log_records_no_secrets(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    v1 = sign_v1("GET", v1_params(tenant.key_id, SecurityToken="CAIS-secret-token"), tenant.secret)
    v3 = sign_v3(live_server, "POST", tenant.key_id, tenant.secret)
    answers = [send(http, live_server, v1), send(http, live_server, v3)]
    assert answers[0].code == "InvalidSecurityToken.Malformed" and answers[1].status == 200

    def server_lines() -> list[str]:  # the server's loggers only; httpx here logs its own URLs
        return [r.getMessage() for r in caplog.records if r.name.startswith(("trailhouse", "uvicorn"))]

    deadline = time.monotonic() + 2  # the access line is written after the response is sent
    while sum(a.request_id in "\n".join(server_lines()) for a in answers) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = server_lines()
    for answer in answers:
        line = next(m for m in lines if answer.request_id in m)
        assert " / " in line and "LookupEvents" in line and str(answer.status) in line
    v1_wire = dict(p.split("=", 1) for p in v1.query.split("&"))["Signature"]
    v1_raw = v1_signature(tenant.secret, v1.string_to_sign)
    v3_raw = v3.headers["authorization"].rsplit("Signature=", 1)[1]
    for secret in (tenant.secret, v1_wire, v1_raw, v3_raw, "CAIS-secret-token"):
        assert not any(secret in line for line in lines), secret


# ---------------------------------------------------------------------------------- odd and hostile


def _odd_requests(server: LiveServer, tenant: Tenant) -> Iterator[tuple[str, httpx.Request]]:
    base = server.url + "/"
    signed_v1 = sign_v1("GET", v1_params(tenant.key_id), tenant.secret)
    yield "bad utf-8 query", httpx.Request("GET", base + "?Action=%FF%FE&Signature=x")
    yield "lone surrogate escape", httpx.Request("GET", base + "?Action=%ED%A0%80&Signature=x")
    yield "query without =", httpx.Request("GET", base + "?Signature&&&=&==")
    yield "12 KB value", httpx.Request("GET", base + "?Signature=x&A=" + "x" * 12_000)
    yield "2000 parameters", httpx.Request("GET", base + "?" + "&".join(f"P{i}=v" for i in range(2000)))
    yield "2 MB body", httpx.Request("POST", base + "?" + signed_v1.query, content=b"a" * (2 * 1024 * 1024))
    yield (
        "form body, bad utf-8",
        httpx.Request(
            "POST",
            base + "?" + signed_v1.query,
            headers={"content-type": "application/x-www-form-urlencoded"},
            content=b"EventName=%FF\xff",
        ),
    )
    yield "binary body", httpx.Request("POST", base, content=bytes(range(256)) * 64)
    yield "null bytes in values", httpx.Request("GET", base + "?Signature=%00&AccessKeyId=%00&Format=%00")
    # V1 signs no headers and reads Action from the query: a stray x-acs-action is ignored (200).
    yield (
        "header with latin-1",
        httpx.Request(
            "GET", base + "?" + signed_v1.query, headers={"x-acs-action": "Lookup\xe9vents".encode("latin-1")}
        ),
    )
    latin1_auth = "ACS3-HMAC-SHA256 Credential=\xe9,SignedHeaders=host,Signature=1".encode("latin-1")
    yield "authorization latin-1", httpx.Request("POST", base, headers={"authorization": latin1_auth})
    for label, body in (
        ("v3 json array deep", b"[" * 5000 + b"]" * 5000),
        ("v3 json object deep", b'{"a":' * 2000 + b"1" + b"}" * 2000),
        ("v3 bad json", b'{"EventName": NaN, "x": '),
        ("v3 json huge number", b'{"MaxResults": 1' + b"0" * 5000 + b"}"),
    ):
        signed = sign_v3(
            server, "POST", tenant.key_id, tenant.secret, body=body, content_type="application/json"
        )
        yield label, httpx.Request("POST", base, content=body, headers=signed.headers)
    huge = f"ACS3-HMAC-SHA256 Credential={'k' * 4000},SignedHeaders={';'.join(['h'] * 500)},Signature=0"
    yield "huge authorization", httpx.Request("POST", base, headers={"authorization": huge})
    yield (
        "json body, no signature",
        httpx.Request("POST", base, headers={"content-type": "application/json"}, content=b"{}"),
    )


def _signed_hostile(tenant: Tenant) -> Iterator[tuple[str, dict[str, str], str]]:
    """Validly signed requests with hostile business parameters: (label, params, version)."""
    yield "MaxResults huge", {"MaxResults": "9" * 40}, V2020
    yield "MaxResults negative", {"MaxResults": "-1"}, V2020
    yield "MaxResults unicode digits", {"MaxResults": "٣"}, V2020
    yield "attribute index huge", {"LookupAttribute.99999999999.Key": "EventName"}, V2020
    yield "attribute index 0", {"LookupAttribute.0.Key": "EventName", "LookupAttribute.0.Value": "x"}, V2020
    yield "attribute key unknown", {"LookupAttribute.1.Key": "No", "LookupAttribute.1.Value": "x"}, V2020
    yield (
        "three attributes",
        {
            **{f"LookupAttribute.{i}.Key": "EventName" for i in (1, 2, 3)},
            **{f"LookupAttribute.{i}.Value": "x" for i in (1, 2, 3)},
        },
        V2020,
    )
    yield "NextToken garbage", {"NextToken": "garbage" * 50}, V2020
    yield "NextToken base64-ish", {"NextToken": "eyJ4IjoxfQ=="}, V2020
    yield "StartTime only", {"StartTime": "2024-01-01T00:00:00Z"}, V2020
    yield "reversed", {"StartTime": format_wire_time(now_ms()), "EndTime": "2020-01-01T00:00:00Z"}, V2020
    yield "times not times", {"StartTime": "x" * 500, "EndTime": "\u0000"}, V2020
    yield "year 9999", {"StartTime": "9999-12-31T23:59:59Z", "EndTime": "9999-12-31T23:59:59Z"}, V2020
    yield "year 0000", {"StartTime": "0000-01-01T00:00:00Z", "EndTime": "0001-01-01T00:00:00Z"}, V2020
    yield "direction", {"Direction": "SIDEWAYS"}, V2020
    yield "2017 EventRW", {"EventRW": "Both"}, V2017
    yield "2017 huge filters", {"EventName": "x" * 10_000, "User": "\U0001f600" * 500}, V2017
    yield "usage huge key", {"AccessKey": "L" * 10_000, "ServiceName": "Ecs"}, "usage"
    used = {"AccessKey": tenant.used_key_id, "ServiceName": "Ecs"}
    yield "usage page size 0", {**used, "PageSize": "0"}, "usage"
    yield "usage page size big", {**used, "PageSize": "999"}, "usage"
    yield "usage page size text", {**used, "PageSize": "ten"}, "usage"
    yield "usage missing", {}, "usage"


def test_odd_inputs_never_give_5xx(http: httpx.Client, live_server: LiveServer, tenant: Tenant) -> None:
    for label, request in _odd_requests(live_server, tenant):
        started = time.monotonic()
        response = http.send(request)
        assert time.monotonic() - started < 5, label
        answer = check(response)
        assert answer.status >= 400 or label == "header with latin-1", label


def test_signed_hostile_parameters_never_give_5xx(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant
) -> None:
    for label, business, version in _signed_hostile(tenant):
        action = "GetAccessKeyLastUsedIps" if version == "usage" else "LookupEvents"
        params = v1_params(tenant.key_id, action=action, version=V2020 if version == "usage" else version)
        params.update(business)
        answer = send(http, live_server, sign_v1("POST", params, tenant.secret))
        assert answer.status in (200, 400, 404), (label, answer.data)
        if answer.status != 200:
            assert answer.code not in ("InternalError", "ServiceUnavailable"), label


def test_very_long_url_is_refused_cleanly(http: httpx.Client, live_server: LiveServer) -> None:
    # Beyond what the HTTP layer buffers for a request line, uvicorn answers before the app runs.
    response = http.get(f"{live_server.url}/?Signature=x&A=" + "x" * 60_000)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_unsupported_http_method(
    http: httpx.Client, live_server: LiveServer, tenant: Tenant, method: str
) -> None:
    req = sign_v1(method, v1_params(tenant.key_id), tenant.secret)
    answer = send(http, live_server, req)
    assert (answer.status, answer.code) == (400, "UnsupportedHTTPMethod")


# ------------------------------------------------------------------------------ several nodes, Redis


@pytest.fixture
def redis_cleanup(redis_url: str) -> Iterator[Callable[[Tenant], None]]:
    """Register tenants whose Redis keys (nonces, throttle buckets) are deleted after the test."""
    import redis

    tenants: list[Tenant] = []
    yield tenants.append
    client = redis.Redis.from_url(redis_url)
    try:
        for t in tenants:
            for pattern in (f"trailhouse:nonce:{t.key_id}:*", f"trailhouse:rate:{t.account_id}:*"):
                keys = list(client.scan_iter(match=pattern, count=500))
                if keys:
                    client.delete(*keys)
    finally:
        client.close()


@pytest.mark.redis
def test_nonce_used_on_one_node_is_rejected_on_the_other(
    backend_url: str,
    redis_url: str,
    server_factory: Callable[..., LiveServer],
    make_tenant: MakeTenant,
    redis_cleanup: Callable[[Tenant], None],
    http: httpx.Client,
) -> None:
    nodes = [
        server_factory(db_url=backend_url, redis_url=redis_url, throttle_lookup_events=0) for _ in range(2)
    ]
    who = make_tenant(nodes[0], events=2)
    redis_cleanup(who)
    # Same database, same master key (same data_dir): the key made through node 0 works on node 1.
    assert send(http, nodes[1], sign_v1("GET", v1_params(who.key_id), who.secret)).status == 200

    for style in ("V1", "V3"):
        nonce = uuid.uuid4().hex
        if style == "V1":
            first = sign_v1("POST", v1_params(who.key_id, nonce=nonce), who.secret)
            second = sign_v1("POST", v1_params(who.key_id, nonce=nonce), who.secret)
        else:
            first = sign_v3(nodes[0], "POST", who.key_id, who.secret, nonce=nonce)
            second = sign_v3(nodes[1], "POST", who.key_id, who.secret, nonce=nonce)
        assert send(http, nodes[0], first).status == 200
        answer = send(http, nodes[1], second)
        assert (answer.status, answer.code) == (400, "SignatureNonceUsed"), style


@pytest.mark.redis
def test_throttle_is_one_limit_across_nodes(
    backend_url: str,
    redis_url: str,
    server_factory: Callable[..., LiveServer],
    make_tenant: MakeTenant,
    redis_cleanup: Callable[[Tenant], None],
    http: httpx.Client,
) -> None:
    nodes = [server_factory(db_url=backend_url, redis_url=redis_url) for _ in range(2)]
    assert all(n.settings.throttle_lookup_events == 2.0 for n in nodes)
    who = make_tenant(nodes[0], events=1)
    redis_cleanup(who)

    outcomes: list[str] = []
    started = time.monotonic()
    for i in range(8):  # alternate: each node alone would allow its own burst of two
        node = nodes[i % 2]
        answer = send(http, node, sign_v1("GET", v1_params(who.key_id), who.secret))
        outcomes.append("ok" if answer.status == 200 else str(answer.code))
    elapsed = time.monotonic() - started
    assert set(outcomes) <= {"ok", "Throttling.User"}, outcomes
    assert outcomes[:2] == ["ok", "ok"]
    assert outcomes.count("Throttling.User") >= 1
    assert outcomes.count("ok") <= 2 + int(2 * elapsed) + 1, (outcomes, elapsed)
    # Both nodes refuse once the shared bucket is empty.
    assert {i % 2 for i, outcome in enumerate(outcomes) if outcome != "ok"} == {0, 1}, outcomes
