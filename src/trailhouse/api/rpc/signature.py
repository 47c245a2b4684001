"""Pure signature arithmetic for Alibaba Cloud's RPC signature V1 and signature V3 (ACS3-*).

Nothing here knows about HTTP frameworks, stores or clocks: every function maps strings to strings,
so the worked signing examples of Alibaba Cloud's documentation and captured SDK requests
(tests/data/captures) can be checked byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = [
    "ACS3_HMAC_SHA256",
    "ACS3_HMAC_SM3",
    "ACS3_RSA_SHA256",
    "HMAC_SHA1",
    "V3_ALGORITHMS",
    "MalformedAuthorizationError",
    "V3Authorization",
    "parse_authorization",
    "payload_hash",
    "percent_encode",
    "signatures_equal",
    "sm3_available",
    "v1_canonical_query",
    "v1_signature",
    "v1_string_to_sign",
    "v3_canonical_query",
    "v3_canonical_request",
    "v3_signature",
    "v3_string_to_sign",
    "v3_verify_rsa",
]

HMAC_SHA1 = "HMAC-SHA1"
ACS3_HMAC_SHA256 = "ACS3-HMAC-SHA256"
ACS3_HMAC_SM3 = "ACS3-HMAC-SM3"
ACS3_RSA_SHA256 = "ACS3-RSA-SHA256"
V3_ALGORITHMS = frozenset({ACS3_HMAC_SHA256, ACS3_HMAC_SM3, ACS3_RSA_SHA256})


# Most values (actions, versions, key ids, nonces, page sizes) need no encoding at all; matching
# them is several times cheaper than ``quote``, which would return them unchanged anyway.
_UNRESERVED = re.compile("[A-Za-z0-9_.~-]*")


def percent_encode(s: str) -> str:
    """RFC 3986 encoding of the UTF-8 bytes of ``s``: only ``A-Za-z0-9-_.~`` stay literal."""
    if _UNRESERVED.fullmatch(s):
        return s
    return quote(s, safe="~")


# ---------------------------------------------------------------------------------------------- V1


def v1_canonical_query(params: Mapping[str, str]) -> str:
    # A ``Signature`` entry is dropped defensively: it can never be part of what was signed.
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )


def v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&percentEncode(canonical query)``; ``params`` is the merged query and form body."""
    return f"{method}&{percent_encode('/')}&{percent_encode(v1_canonical_query(params))}"


def v1_signature(secret: str, string_to_sign: str) -> str:
    """Base64 of HMAC-SHA1 keyed with ``secret + '&'`` (the '&' is the empty token-secret slot)."""
    digest = hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# ---------------------------------------------------------------------------------------------- V3


def sm3_available() -> bool:
    """Whether this interpreter's OpenSSL offers SM3 (it is not guaranteed by hashlib)."""
    try:
        hashlib.new("sm3")
    except ValueError:
        return False
    return True


# hashlib names for each algorithm's digest; RSA signs over a SHA-256 StringToSign.
_DIGEST = MappingProxyType({ACS3_HMAC_SHA256: "sha256", ACS3_RSA_SHA256: "sha256", ACS3_HMAC_SM3: "sm3"})


def _digest_name(algorithm: str) -> str:
    try:
        return _DIGEST[algorithm]
    except KeyError:
        raise ValueError(f"unsupported V3 algorithm: {algorithm!r}") from None


def _hex_hash(algorithm: str, data: bytes) -> str:
    return hashlib.new(_digest_name(algorithm), data).hexdigest()


def payload_hash(algorithm: str, body: bytes) -> str:
    """Lower-case hex of H(body): SM3 for ACS3-HMAC-SM3, SHA-256 otherwise (header name notwithstanding)."""
    return _hex_hash(algorithm, body)


def v3_canonical_query(query_pairs: Iterable[tuple[str, str]]) -> str:
    # Keys are encoded too, as the V3 rules say; the Python SDK leaves them raw, which is identical for the
    # ``[A-Za-z0-9.]`` keys ActionTrail uses. Sorting by (key, value) only matters for repeated keys,
    # which no SDK sends.
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(query_pairs))


def v3_canonical_request(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """Rebuild the CanonicalRequest from the client's SignedHeaders list, in the order it gave.

    ``headers`` must have lower-case names, duplicates already joined with ``,``. A signed header that
    is absent canonicalises as empty, which then simply fails to match.
    """
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method,
            path or "/",
            v3_canonical_query(query_pairs),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def v3_string_to_sign(algorithm: str, canonical_request: str) -> str:
    return f"{algorithm}\n{_hex_hash(algorithm, canonical_request.encode())}"


def v3_signature(algorithm: str, secret: str, string_to_sign: str) -> str:
    """Lower-case hex HMAC for the two HMAC algorithms; the key is the bare secret (no '&' here)."""
    if algorithm not in (ACS3_HMAC_SHA256, ACS3_HMAC_SM3):
        raise ValueError(f"not an HMAC V3 algorithm: {algorithm!r}")
    return hmac.new(secret.encode(), string_to_sign.encode(), _digest_name(algorithm)).hexdigest()


def _load_rsa_public_key(key_pem: str) -> RSAPublicKey:
    # The import is local so that HMAC-only use does not load cryptography.
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

    text = key_pem.strip()
    if "-----BEGIN" not in text:
        # Like the SDK, accept the base64 body without armour lines (taken as SubjectPublicKeyInfo).
        text = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
    data = text.encode()
    if "PRIVATE KEY-----" in text:
        # Operators may register the very PEM the SDK signs with; only its public half is used.
        key = load_pem_private_key(data, password=None).public_key()
    else:
        key = load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("ACS3-RSA-SHA256 needs an RSA key")
    return key


def v3_verify_rsa(public_key_pem: str, string_to_sign: str, signature_hex: str) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256 over the StringToSign.

    Returns False for any bad signature (including non-hex text); raises ValueError only when the
    key itself cannot be loaded, because that is a server-side configuration fault.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = _load_rsa_public_key(public_key_pem)
    try:
        signature = binascii.unhexlify(signature_hex)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------------------------- Authorization


class MalformedAuthorizationError(ValueError):
    """The Authorization header is not ``ACS3-<alg> Credential=…,SignedHeaders=…,Signature=…``."""


@dataclass(frozen=True, slots=True)
class V3Authorization:
    algorithm: str
    credential: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(header: str) -> V3Authorization:
    """Parse a V3 Authorization header; any ``ACS3-*`` algorithm name is accepted syntactically.

    Whether the algorithm is supported is a separate check (InvalidSignatureMethod), so this only
    rejects structure. Spaces after commas are tolerated; signed header names are lower-cased.
    """
    algorithm, sep, rest = header.strip().partition(" ")
    if not sep or not algorithm.startswith("ACS3-"):
        raise MalformedAuthorizationError("expected 'ACS3-<algorithm> <fields>'")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq or not name:
            raise MalformedAuthorizationError(f"malformed field {part.strip()!r}")
        if name in fields:
            raise MalformedAuthorizationError(f"repeated field {name!r}")
        fields[name] = value.strip()
    try:
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    except KeyError as missing:
        raise MalformedAuthorizationError(f"missing field {missing.args[0]}") from None
    signed_headers = tuple(h.strip().lower() for h in signed.split(";"))
    if not credential or not signature or not signed or not all(signed_headers):
        raise MalformedAuthorizationError("empty Credential, SignedHeaders or Signature")
    return V3Authorization(algorithm, credential, signed_headers, signature)


def signatures_equal(a: str, b: str) -> bool:
    """Constant-time comparison; non-ASCII input is compared as UTF-8 rather than rejected."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
