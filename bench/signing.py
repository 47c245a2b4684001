"""Signed ActionTrail requests, built the way the SDKs build them, for the load generators.

V1 (HMAC-SHA1, everything in the query) is what the 2017-12-04 SDK sends; V3 (ACS3-HMAC-SHA256,
signed headers) what the 2020-07-06 tea SDK sends. Only the project's pure signature arithmetic is
used, so a signing bug shows up as a 4xx in the results rather than as a fast wrong answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trailhouse.api.rpc.signature import (
    ACS3_HMAC_SHA256,
    payload_hash,
    percent_encode,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)

__all__ = ["Credentials", "SignedRequest", "sign", "sign_v1", "sign_v3"]

_EMPTY_SHA256 = payload_hash(ACS3_HMAC_SHA256, b"")


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret: str
    host: str  # "127.0.0.1:8080", exactly what the HTTP client sends as Host


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    query: str  # already encoded, without the leading '?'
    headers: dict[str, str]


def _wire_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _encode(pairs: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)


def sign_v1(creds: Credentials, action: str, version: str, params: Mapping[str, str]) -> SignedRequest:
    """A GET with every parameter and the HMAC-SHA1 ``Signature`` in the query (aliyun-python-sdk-core)."""
    signed = {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": creds.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": _wire_now(),
        **params,
    }
    signature = v1_signature(creds.secret, v1_string_to_sign("GET", signed))
    return SignedRequest("GET", _encode([*signed.items(), ("Signature", signature)]), {})


def sign_v3(creds: Credentials, action: str, version: str, params: Mapping[str, str]) -> SignedRequest:
    """A GET with business parameters in the query and an ACS3-HMAC-SHA256 Authorization header."""
    headers = {
        "host": creds.host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": _wire_now(),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": _EMPTY_SHA256,
        "accept": "application/json",
    }
    pairs = list(params.items())
    signed_headers = sorted(headers)
    canonical = v3_canonical_request("GET", "/", pairs, headers, signed_headers, _EMPTY_SHA256)
    signature = v3_signature(ACS3_HMAC_SHA256, creds.secret, v3_string_to_sign(ACS3_HMAC_SHA256, canonical))
    headers["authorization"] = (
        f"{ACS3_HMAC_SHA256} Credential={creds.access_key_id},"
        f"SignedHeaders={';'.join(signed_headers)},Signature={signature}"
    )
    return SignedRequest("GET", _encode(pairs), headers)


def sign(
    style: str, creds: Credentials, action: str, version: str, params: Mapping[str, str]
) -> SignedRequest:
    return (sign_v1 if style == "V1" else sign_v3)(creds, action, version, params)
