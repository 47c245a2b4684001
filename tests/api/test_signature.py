"""Signature arithmetic against known vectors.

Example A is the DescribeRegions vector Alibaba Cloud publishes for the RPC signature (V1), example C
the RunInstances vector it publishes for V3. Examples B and D are LookupEvents requests with special
characters, signed with the official SDKs' own code; example E re-checks requests captured from those
SDKs end to end.
The algorithms: https://www.alibabacloud.com/help/en/sdk/product-overview/rpc-mechanism and
https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailhouse.api.rpc.signature import (
    ACS3_HMAC_SHA256,
    ACS3_HMAC_SM3,
    ACS3_RSA_SHA256,
    MalformedAuthorizationError,
    V3Authorization,
    parse_authorization,
    payload_hash,
    percent_encode,
    signatures_equal,
    sm3_available,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
    v3_verify_rsa,
)

from ._vectors import SECRET, captured, rsa_test_key, rsa_test_public_key

needs_sm3 = pytest.mark.skipif(not sm3_available(), reason="this OpenSSL build has no SM3")

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EMPTY_SM3 = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~", "~"),
        ("/", "%2F"),
        ("-_.", "-_."),
        ("+=&", "%2B%3D%26"),
        ("中", "%E4%B8%AD"),
        ("", ""),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


@pytest.mark.parametrize("raw", ["LTAI5tAbc", "a\n", "abc\u00e9", "ＡＢ", "٣", "a-b_c.d~e", "x" * 200])
def test_percent_encode_fast_path_agrees_with_quote(raw: str) -> None:
    assert percent_encode(raw) == quote(raw, safe="~")


@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_percent_encode_equals_quote_for_any_text(raw: str) -> None:
    assert percent_encode(raw) == quote(raw, safe="~")


# ----------------------------------------------------------------------------------- V1 (HMAC-SHA1)


def test_example_a_official_doc_vector() -> None:
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    sts = v1_string_to_sign("GET", params)
    assert sts == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod"
        "%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert v1_signature(SECRET, sts) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


EXAMPLE_B = {
    "Action": "LookupEvents",
    "Format": "JSON",
    "Version": "2017-12-04",
    "AccessKeyId": "testid",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureVersion": "1.0",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Timestamp": "2024-01-01T00:00:00Z",
    "EventName": "ConsoleSignin",
    "User": "a b*~c",
    "MaxResults": "20",
}


@pytest.mark.parametrize(
    ("method", "signature"),
    [("GET", "7uq9Qej/LZSGSF0Gtu+BANHLbns="), ("POST", "9mE4yVWTFHqXnwp68A7141Dnh0U=")],
)
def test_example_b_special_characters(method: str, signature: str) -> None:
    sts = v1_string_to_sign(method, EXAMPLE_B)
    assert sts == (
        f"{method}&%2F&AccessKeyId%3Dtestid%26Action%3DLookupEvents%26EventName%3DConsoleSignin%26Format"
        "%3DJSON%26MaxResults%3D20%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce"
        "%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp"
        "%3D2024-01-01T00%253A00%253A00Z%26User%3Da%2520b%252A~c%26Version%3D2017-12-04"
    )
    assert v1_signature(SECRET, sts) == signature


def test_v1_string_to_sign_ignores_a_signature_entry() -> None:
    assert v1_string_to_sign("GET", {**EXAMPLE_B, "Signature": "x"}) == v1_string_to_sign("GET", EXAMPLE_B)


def test_v1_keeps_empty_values() -> None:
    assert "SignatureType%3D%26" in v1_string_to_sign("POST", {"SignatureType": "", "Z": "1"})


@pytest.mark.parametrize(
    ("index", "signature"),
    [
        (40, "6g5G1uq4z+BPvH2gt6w/3e/AE74="),  # tea 2020 'v2'
        (43, "Hza9inYUah5wPQN3xMV9kKr0KNs="),  # tea 2017 'v2', form body included
        (44, "HmZ1aZWfinWWhFMnNIQE3W52T4o="),  # aliyunsdkcore, SignatureType= and RegionId
    ],
)
def test_captured_v1_vectors(index: int, signature: str) -> None:
    req = captured()[index]
    params = dict(parse_qsl(req.raw_query, keep_blank_values=True))
    if req.body:
        params.update(parse_qsl(req.body.decode(), keep_blank_values=True))
    assert params.pop("Signature") == signature
    assert v1_signature(SECRET, v1_string_to_sign(req.method, params)) == signature


# -------------------------------------------------------------------------------------- V3 (ACS3-*)


def test_example_c_official_v3_vector() -> None:
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T09:01:01Z",
        "x-acs-signature-nonce": "d410180a5abf7fe235dd9b74aca91fc0",
        "x-acs-content-sha256": EMPTY_SHA256,
    }
    signed = [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ]
    query = parse_qsl("ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai")
    creq = v3_canonical_request("POST", "/", query, headers, signed, payload_hash(ACS3_HMAC_SHA256, b""))
    assert creq == (
        "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
        "host:ecs.cn-shanghai.aliyuncs.com\n"
        "x-acs-action:RunInstances\n"
        f"x-acs-content-sha256:{EMPTY_SHA256}\n"
        "x-acs-date:2023-10-26T09:01:01Z\n"
        "x-acs-signature-nonce:d410180a5abf7fe235dd9b74aca91fc0\n"
        "x-acs-version:2014-05-26\n"
        "\n"
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        f"{EMPTY_SHA256}"
    )
    sts = v3_string_to_sign(ACS3_HMAC_SHA256, creq)
    assert sts == "ACS3-HMAC-SHA256\n29622f5feb1e9fcaaa2e276a72889c975f7b16f00e02be1ca34965b18cd85015"
    assert (
        v3_signature(ACS3_HMAC_SHA256, "YourAccessKeySecret", sts)
        == "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
    )


@pytest.mark.parametrize(
    ("algorithm", "payload", "sts_hash", "signature"),
    [
        pytest.param(
            ACS3_HMAC_SHA256,
            EMPTY_SHA256,
            "5e1db5e67c29d1aa78420195b41bd0441d94a94af35c78f7c190ac5e6d6dba24",
            "c73e9455f1a45c063466fdecdcc5f69e234b9509cbdcd248b20c4733abd1ec89",
            id="sha256",
        ),
        pytest.param(
            ACS3_HMAC_SM3,
            EMPTY_SM3,
            "31d02216c2d21982a75f5165bafe9f5ac00b62d91ce6dd9de6f587a124929467",
            "e7637ed2832d75f7004dc6232b30a5b3b8bd5d4e79f9625399060c608bfc46ab",
            id="sm3",
            marks=needs_sm3,
        ),
    ],
)
def test_example_d_actiontrail(algorithm: str, payload: str, sts_hash: str, signature: str) -> None:
    assert payload_hash(algorithm, b"") == payload
    headers = {
        "host": "actiontrail.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "LookupEvents",
        "x-acs-version": "2020-07-06",
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-signature-nonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "accept": "application/json",
        "x-acs-content-sha256": payload,
    }
    signed = sorted(headers)
    assert ";".join(signed) == (
        "accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    query = parse_qsl("EventName=ConsoleSignin&MaxResults=20&User=a+b%2A~c")
    creq = v3_canonical_request("POST", "/", query, headers, signed, payload)
    assert creq.split("\n")[2] == "EventName=ConsoleSignin&MaxResults=20&User=a%20b%2A~c"
    sts = v3_string_to_sign(algorithm, creq)
    assert sts == f"{algorithm}\n{sts_hash}"
    assert v3_signature(algorithm, SECRET, sts) == signature


def _captured_sts(index: int) -> tuple[V3Authorization, str]:
    req = captured()[index]
    auth = parse_authorization(req.authorization)
    creq = v3_canonical_request(
        req.method,
        "/",
        parse_qsl(req.raw_query, keep_blank_values=True),
        req.headers,
        auth.signed_headers,
        payload_hash(auth.algorithm, req.body),
    )
    return auth, v3_string_to_sign(auth.algorithm, creq)


@pytest.mark.parametrize(
    ("index", "sts_hash", "signature"),
    [
        pytest.param(
            37,
            "19e8aca54eff021c07c785617fa73f0d0680d47aded1563d20f7b2bd3eb323d6",
            "e8849647b91b3bedebb4c7c17e39836acd1a7120a5a9b9bb448a82c543e5b51c",
            id="v3-lookupevents",
        ),
        pytest.param(
            38,
            "b9a6e6207cbb3038705ef9f3f615401870d0587d4353a49d2bf4c9a4b42ed56c",
            "4045e27c128f57421f907ff91955550635d6d855c2222b24f6c9a1b72204eb57",
            id="sm3",
            marks=needs_sm3,
        ),
        pytest.param(
            41,
            "a1dcaa570ed05aaf65d5159b4155d95f1d8d0bdd33953b410fed709d4b6ebe91",
            "027ec96bf584572fba52520ddfe31f77ec8dddaf1ecc176b3f932cae0355994e",
            id="sts",
        ),
        pytest.param(
            42,
            "6aaafadceec5cc7e50bbfd7a018ef50b63e437396e5ef97bef560eec39c72ac0",
            "4c6e34250c4b2577886b2b3f55d57bd2a9ce5a494737b3aeabfdd18c41dc05b2",
            id="2017-json-body",
        ),
    ],
)
def test_example_e_end_to_end(index: int, sts_hash: str, signature: str) -> None:
    auth, sts = _captured_sts(index)
    assert auth.signature == signature
    assert sts == f"{auth.algorithm}\n{sts_hash}"
    assert v3_signature(auth.algorithm, SECRET, sts) == signature


def test_example_e_2017_payload_hash() -> None:
    req = captured()[42]
    assert req.body == b'{"EventName":"ConsoleSignin","MaxResults":"20"}'
    assert payload_hash(ACS3_HMAC_SHA256, req.body) == (
        "97f1c9358696e6cfce05c0cf1499676ae34b28ca914e5fcdb022784f414e9afb"
    )


RSA_SIGNATURE = (
    "1f9f05a66ad2a24058f9ae9794e91ff505f1c6f1d20ec79221b0e83bd33ee77cf5219229d74523844d00909b1773d075"
    "a61afcbc5a3bf1740178a606df9046b519c17775f9505f4be424258f5b5cef8c79fabc3b086dfb8d600b823b8f5a1744"
    "250c48ca739f34ae9b07035b0e563e44f35009e19518f724025b20e9fd570ac9"
)


def test_example_e_rsa() -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    auth, sts = _captured_sts(39)
    assert auth.algorithm == ACS3_RSA_SHA256
    assert sts == "ACS3-RSA-SHA256\n19e8aca54eff021c07c785617fa73f0d0680d47aded1563d20f7b2bd3eb323d6"
    assert auth.signature == RSA_SIGNATURE
    # PKCS#1 v1.5 is deterministic, so re-signing with the private half reproduces the vector.
    private = serialization.load_pem_private_key(rsa_test_key().encode(), password=None)
    assert private.sign(sts.encode(), padding.PKCS1v15(), hashes.SHA256()).hex() == RSA_SIGNATURE  # type: ignore[call-arg,union-attr]
    public_pem = rsa_test_public_key()
    assert v3_verify_rsa(public_pem, sts, RSA_SIGNATURE)
    assert v3_verify_rsa(public_pem, sts, RSA_SIGNATURE.upper())
    assert not v3_verify_rsa(public_pem, sts + "x", RSA_SIGNATURE)
    assert not v3_verify_rsa(public_pem, sts, "zz" + RSA_SIGNATURE[2:])
    assert not v3_verify_rsa(public_pem, sts, "abc")


def test_rsa_key_forms() -> None:
    _, sts = _captured_sts(39)
    public_pem = rsa_test_public_key()
    bare = "".join(line for line in public_pem.splitlines() if "-----" not in line)
    assert v3_verify_rsa(bare, sts, RSA_SIGNATURE)
    assert v3_verify_rsa(rsa_test_key(), sts, RSA_SIGNATURE)  # the PEM the SDK signs with
    with pytest.raises(ValueError):
        v3_verify_rsa("not a key", sts, RSA_SIGNATURE)


def test_v3_signature_rejects_rsa_and_unknown() -> None:
    with pytest.raises(ValueError):
        v3_signature(ACS3_RSA_SHA256, SECRET, "x")
    with pytest.raises(ValueError):
        payload_hash("ACS3-HMAC-MD5", b"")


def test_canonical_request_missing_header_and_whitespace() -> None:
    creq = v3_canonical_request("GET", "", [], {"a": "  x  y  "}, ["a", "b"], "h")
    assert creq == "GET\n/\n\na:x  y\nb:\n\na;b\nh"


# ------------------------------------------------------------------------------------ Authorization


def test_parse_authorization() -> None:
    auth = parse_authorization(captured()[41].authorization)
    assert auth.algorithm == ACS3_HMAC_SHA256
    assert auth.credential == "testid"
    assert auth.signed_headers == (
        "accept",
        "host",
        "user-agent",
        "x-acs-accesskey-id",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-credentials-provider",
        "x-acs-date",
        "x-acs-security-token",
        "x-acs-signature-nonce",
        "x-acs-version",
    )
    assert auth.signature.startswith("027ec96b")


def test_parse_authorization_tolerates_spaces() -> None:
    auth = parse_authorization("ACS3-HMAC-SM3 Credential=id, SignedHeaders=Host;X-Acs-Date, Signature=ab")
    assert auth == V3Authorization("ACS3-HMAC-SM3", "id", ("host", "x-acs-date"), "ab")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "ACS3-HMAC-SHA256",
        "HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=b",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=",
        "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=b",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;x,Signature=b",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=b,Signature=c",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature",
        "ACS3-HMAC-SHA256 Credential=a,,Signature=b",
    ],
)
def test_parse_authorization_malformed(header: str) -> None:
    with pytest.raises(MalformedAuthorizationError) as info:
        parse_authorization(header)
    assert isinstance(info.value, ValueError)


def test_signatures_equal() -> None:
    assert signatures_equal("abc", "abc")
    assert not signatures_equal("abc", "abd")
    assert not signatures_equal("abc", "ab")
    assert signatures_equal("中文", "中文")
    assert not signatures_equal("\ud800", "x")
