"""Parse an RPC-style request into an ``RpcRequest`` and check its signature, without any framework.

The entry points, in the order the gateway uses them (docs/api.md, "Order of checks"):

1. ``parse_request``: mode detection (step 1) plus everything needed to read the request at all.
   Raises ``UnsupportedHTTPMethod``, ``IncompleteSignature``/``MissingSignature``,
   ``InvalidParameter`` (undecodable query, headers or body) and ``InvalidParameter.Format``.
2. ``validate_common``: mandatory common parameters (step 2, ``Missing{X}``) and the signature
   method/version (step 3).
3. (``api/auth.py``: timestamp window, AccessKey lookup, STS checks; it reads ``request_timestamp``,
   ``request_nonce`` and the ``RpcRequest`` properties.)
4. ``verify``: the signature itself (step 7).

Decisions worth knowing:

* V1 signs the query plus an ``application/x-www-form-urlencoded`` body (body wins on duplicate
  keys). Any other V1 body is ignored, never merged: nothing in V1 covers it, so merging would let
  an attacker change parameters under a valid signature.
* V3 covers the body through the payload hash, so form bodies and top-level JSON objects are both
  merged into ``params`` over the query (the 2017 tea client repeats its query as a JSON body).
  JSON scalars keep their literal spelling (``20``, ``1.50``, ``true``); nested values are flattened
  the SDK way (``Tags.1.Key``); ``null`` is dropped; a JSON body that is not an object is ignored.
* V3 ``SignedHeaders`` must cover ``host``, every ``x-acs-*`` header present and, when there is a
  body, ``content-type`` (the V3 signing rules; the tea SDK signs all of them). Otherwise an attacker could
  replay a request under a fresh unsigned ``x-acs-date``/nonce. Violations are IncompleteSignature.
* ``x-acs-content-sha256`` is compared with H(body) when present (mismatch: IncompleteSignature);
  when absent the canonical request still binds the body through the server-computed hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

from ..wire import one_of
from . import errors
from .render import Fmt
from .signature import (
    ACS3_HMAC_SM3,
    ACS3_RSA_SHA256,
    HMAC_SHA1,
    V3_ALGORITHMS,
    MalformedAuthorizationError,
    V3Authorization,
    parse_authorization,
    payload_hash,
    signatures_equal,
    sm3_available,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
    v3_verify_rsa,
)

__all__ = [
    "COMMON_PARAMS",
    "RpcRequest",
    "V1Auth",
    "V3Auth",
    "guess_format",
    "normalize_headers",
    "parse_request",
    "request_nonce",
    "request_timestamp",
    "string_to_sign",
    "validate_common",
    "verify",
]

Style = Literal["V1", "V3"]
BodyKind = Literal["none", "form", "json", "other"]

ALLOWED_METHODS = frozenset({"GET", "POST"})
FORM_TYPE = "application/x-www-form-urlencoded"
# Gateway-level parameters that are not business input of any operation.
COMMON_PARAMS = frozenset(
    {
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
    }
)
# Sane SDK bodies are two or three levels deep; deeper input is treated as hostile.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class V1Auth:
    access_key_id: str | None
    signature: str
    signature_method: str | None
    signature_version: str | None
    signature_nonce: str | None
    timestamp: str | None
    security_token: str | None
    signature_type: str | None


@dataclass(frozen=True, slots=True)
class V3Auth:
    authorization: V3Authorization
    date: str | None  # x-acs-date
    nonce: str | None  # x-acs-signature-nonce
    content_sha256: str | None  # x-acs-content-sha256
    security_token: str | None  # x-acs-security-token
    access_key_id_header: str | None  # x-acs-accesskey-id, sent alongside STS tokens


@dataclass(frozen=True, slots=True)
class RpcRequest:
    style: Style
    method: str
    path: str
    action: str | None
    version: str | None
    params: dict[str, str]  # query, then the merged body (see module doc)
    query_pairs: tuple[tuple[str, str], ...]  # decoded, wire order, for V3 canonicalisation
    body_kind: BodyKind
    body_pairs: tuple[tuple[str, str], ...]  # decoded form body, or the flattened JSON object
    fmt: Fmt
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    v1: V1Auth | None
    v3: V3Auth | None

    @property
    def access_key_id(self) -> str | None:
        if self.v3 is not None:
            return self.v3.authorization.credential
        return self.v1.access_key_id if self.v1 is not None else None

    @property
    def security_token(self) -> str | None:
        if self.v3 is not None:
            return self.v3.security_token
        return self.v1.security_token if self.v1 is not None else None

    @property
    def signature_method(self) -> str | None:
        """``HMAC-SHA1`` (or whatever V1 claimed) for V1, the ``ACS3-*`` algorithm for V3."""
        if self.v3 is not None:
            return self.v3.authorization.algorithm
        return self.v1.signature_method if self.v1 is not None else None

    @property
    def business_params(self) -> dict[str, str]:
        """``params`` without the gateway's common parameters (RegionId is kept)."""
        return {k: v for k, v in self.params.items() if k not in COMMON_PARAMS}

    def v1_signed_params(self) -> dict[str, str]:
        """The exact map V1 signs: query, then a form body over it, minus ``Signature``."""
        signed = dict(self.query_pairs)
        if self.body_kind == "form":
            signed.update(self.body_pairs)
        signed.pop("Signature", None)
        return signed


# ------------------------------------------------------------------------------------------- parsing


def _bad(what: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(what)


def _check_text(value: str, what: str) -> str:
    # Lone surrogates cannot be re-encoded for signing, so they are refused at the door.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(what) from None
    return value


def normalize_headers(raw: Iterable[tuple[str | bytes, str | bytes]]) -> dict[str, str]:
    """Lower-case names and join repeated headers with ``,`` as V3 canonicalisation expects.

    Feed it ``request.headers.raw`` (ASGI byte pairs). Bytes are read as UTF-8, since that is what
    clients sign, falling back to Latin-1 so no input is refused here.
    """
    out: dict[str, str] = {}
    for name, value in raw:
        n = _to_text(name).lower()
        v = _to_text(value)
        out[n] = f"{out[n]},{v}" if n in out else v
    return out


def _to_text(b: str | bytes) -> str:
    if isinstance(b, str):
        return b
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("latin-1")


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        n = _check_text(str(name), "Header").lower()
        # Trimmed as V3 signs them (signature.canonical_request): a value is used as it was signed,
        # so "x-acs-version: 2017-12-04\r" cannot verify as one version and run as another.
        v = _check_text(str(value), "Header").strip()
        out[n] = f"{out[n]},{v}" if n in out else v
    return out


def _decode_pairs(text: str, what: str) -> tuple[tuple[str, str], ...]:
    # Form decoding: '+' and %20 are both a space, blank values are kept, bad UTF-8 is an error.
    try:
        return tuple(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
    except ValueError:
        raise _bad(what) from None


def _query_pairs(raw_query: bytes | str) -> tuple[tuple[str, str], ...]:
    if isinstance(raw_query, bytes | bytearray):
        try:
            text = bytes(raw_query).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("QueryString") from None
    else:
        text = _check_text(raw_query, "QueryString")
    return _decode_pairs(text, "QueryString")


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _body_kind(headers: Mapping[str, str], body: bytes) -> BodyKind:
    if not body:
        return "none"
    media = _media_type(headers)
    if media == FORM_TYPE:
        return "form"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    return "other"


def _form_pairs(body: bytes) -> tuple[tuple[str, str], ...]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("Body") from None
    return _decode_pairs(text, "Body")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_pairs(body: bytes) -> tuple[tuple[str, str], ...]:
    try:
        # Numbers stay as their literal text so "20" and 20 both reach the service as "20".
        doc = json.loads(
            body.decode("utf-8"), parse_int=str, parse_float=str, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.InvalidParameter("Body", "Specified request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        return ()
    return tuple(_flatten(doc))


def _flatten(doc: dict[str, object]) -> list[tuple[str, str]]:
    """Flatten like the SDK's query flattening: ``{"Tags":[{"Key":"k"}]}`` → ``Tags.1.Key=k``."""
    out: list[tuple[str, str]] = []
    # Explicit stack instead of recursion so depth is bounded by MAX_JSON_DEPTH, not the interpreter.
    stack: list[tuple[str, object, int]] = [(k, v, 1) for k, v in reversed(list(doc.items()))]
    while stack:
        key, value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise errors.InvalidParameter("Body", "Specified request body is nested too deeply.")
        if value is None:
            continue
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v, depth + 1) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((f"{key}.{i}", v, depth + 1) for i, v in reversed(list(enumerate(value, 1))))
        else:
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            out.append((_check_text(key, "Body"), _check_text(text, "Body")))
    return out


def _v1_format(value: str | None) -> Fmt:
    # Absent or blank means the documented default, XML; tea sends "json", aliyunsdkcore "JSON".
    if not value:
        return "XML"
    chosen = one_of(value, ("json", "xml"))
    if chosen is None:
        raise errors.InvalidParameterFormat()
    return "JSON" if chosen == "json" else "XML"


def _v3_format(headers: Mapping[str, str]) -> Fmt:
    # The tea SDK sends ``accept: application/json`` and parses nothing else; XML only on request.
    accept = headers.get("accept", "").lower()
    return "XML" if "xml" in accept and "json" not in accept else "JSON"


def _is_v3(headers: Mapping[str, str]) -> bool:
    return headers.get("authorization", "").lstrip().startswith("ACS3-")


def parse_request(
    method: str,
    raw_query: bytes | str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    path: str = "/",
) -> RpcRequest:
    """Decode a request and detect its signature style. Raises only ``ApiError`` subclasses.

    ``path`` is the raw request path (the V3 CanonicalURI); RPC-style clients always use ``/``.
    """
    if method not in ALLOWED_METHODS:
        raise errors.UnsupportedHTTPMethod()
    path = _check_text(path, "Path")
    hdrs = _headers(headers)
    body = bytes(body)
    query = _query_pairs(raw_query)
    kind = _body_kind(hdrs, body)

    v3 = _v3_auth(hdrs) if _is_v3(hdrs) else None
    if v3 is not None:
        # V3 covers the body through the payload hash, so form and JSON bodies are both merged.
        body_pairs = _form_pairs(body) if kind == "form" else _json_pairs(body) if kind == "json" else ()
    else:
        # V1 signs the query plus a form body; any other body is not covered, so never merged.
        body_pairs = _form_pairs(body) if kind == "form" else ()
    params = {**dict(query), **dict(body_pairs)}
    v1 = _v1_auth(params, hdrs) if v3 is None else None
    # V3 names the action and version in headers, V1 in parameters.
    if v3 is not None:
        action, version, fmt = hdrs.get("x-acs-action"), hdrs.get("x-acs-version"), _v3_format(hdrs)
    else:
        action, version, fmt = params.get("Action"), params.get("Version"), _v1_format(params.get("Format"))
    return RpcRequest(
        style="V1" if v3 is None else "V3",
        method=method,
        path=path,
        action=action or None,
        version=version or None,
        params=params,
        query_pairs=query,
        body_kind=kind,
        body_pairs=body_pairs,
        fmt=fmt,
        headers=hdrs,
        body=body,
        v1=v1,
        v3=v3,
    )


def _v3_auth(hdrs: Mapping[str, str]) -> V3Auth:
    try:
        authorization = parse_authorization(hdrs["authorization"])
    except MalformedAuthorizationError:
        raise errors.IncompleteSignature() from None
    return V3Auth(
        authorization=authorization,
        date=hdrs.get("x-acs-date"),
        nonce=hdrs.get("x-acs-signature-nonce"),
        content_sha256=hdrs.get("x-acs-content-sha256"),
        security_token=hdrs.get("x-acs-security-token"),
        access_key_id_header=hdrs.get("x-acs-accesskey-id"),
    )


def _v1_auth(params: Mapping[str, str], hdrs: Mapping[str, str]) -> V1Auth:
    if "Signature" not in params:
        if "authorization" not in hdrs and params.get("AccessKeyId"):
            raise errors.Missing("Signature")
        raise errors.IncompleteSignature()
    return V1Auth(
        access_key_id=params.get("AccessKeyId"),
        signature=params["Signature"],
        signature_method=params.get("SignatureMethod"),
        signature_version=params.get("SignatureVersion"),
        signature_nonce=params.get("SignatureNonce"),
        timestamp=params.get("Timestamp"),
        security_token=params.get("SecurityToken"),
        signature_type=params.get("SignatureType"),
    )


def guess_format(raw_query: bytes | str, headers: Mapping[str, str]) -> Fmt:
    """Best-effort response format for errors raised before ``parse_request`` could finish. Never raises."""
    try:
        hdrs = {str(k).lower(): str(v) for k, v in headers.items()}
        if _is_v3(hdrs):
            return _v3_format(hdrs)
        text = raw_query.decode("utf-8", "replace") if isinstance(raw_query, bytes) else raw_query
        fmt = dict(parse_qsl(text, keep_blank_values=True, errors="replace")).get("Format")
        return _v1_format(fmt)
    except Exception:  # this is the fallback of the error path itself: it must not fail
        return "XML"


# -------------------------------------------------------------------------------------- validation


_V1_MANDATORY = (
    "Action",
    "Version",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
)
# V3 carries the same facts in headers; the codes keep the V1 names, the messages name the header.
_V3_MANDATORY = (
    ("x-acs-action", "Action"),
    ("x-acs-version", "Version"),
    ("x-acs-date", "Timestamp"),
    ("x-acs-signature-nonce", "SignatureNonce"),
)


def _require_v3_algorithm(algorithm: str) -> None:
    if algorithm not in V3_ALGORITHMS or (algorithm == ACS3_HMAC_SM3 and not sm3_available()):
        raise errors.InvalidSignatureMethod()


def validate_common(req: RpcRequest) -> None:
    """Steps 2–3: mandatory common parameters (blank counts as absent), then signature method/version."""
    if req.style == "V1":
        for name in _V1_MANDATORY:
            if not req.params.get(name):
                raise errors.Missing(name)
        if req.params["SignatureMethod"] != HMAC_SHA1:
            raise errors.InvalidSignatureMethod()
        if req.params["SignatureVersion"] != "1.0":
            raise errors.Invalid("SignatureVersion")
        return
    for header, name in _V3_MANDATORY:
        if not req.headers.get(header):
            raise errors.Missing(name, f"{header} is mandatory for this action.")
    assert req.v3 is not None
    _require_v3_algorithm(req.v3.authorization.algorithm)


def request_timestamp(req: RpcRequest) -> str | None:
    """The raw ``Timestamp`` (V1) or ``x-acs-date`` (V3); parsing it is the caller's business."""
    if req.v3 is not None:
        return req.v3.date or None
    if req.v1 is not None:
        return req.v1.timestamp or None
    return None


def request_nonce(req: RpcRequest) -> str | None:
    """The raw ``SignatureNonce`` (V1) or ``x-acs-signature-nonce`` (V3)."""
    if req.v3 is not None:
        return req.v3.nonce or None
    if req.v1 is not None:
        return req.v1.signature_nonce or None
    return None


# ------------------------------------------------------------------------------------ verification


def _v3_required_signed(req: RpcRequest) -> set[str]:
    required = {"host"} | {h for h in req.headers if h.startswith("x-acs-")}
    if req.body and "content-type" in req.headers:
        required.add("content-type")
    return required


def string_to_sign(req: RpcRequest) -> str:
    """The server-side StringToSign (what goes after ``server string to sign is:``).

    Raises InvalidSignatureMethod for a V3 algorithm it cannot compute.
    """
    if req.style == "V1":
        return v1_string_to_sign(req.method, req.v1_signed_params())
    assert req.v3 is not None
    auth = req.v3.authorization
    _require_v3_algorithm(auth.algorithm)
    creq = v3_canonical_request(
        req.method,
        req.path,
        req.query_pairs,
        req.headers,
        auth.signed_headers,
        payload_hash(auth.algorithm, req.body),
    )
    return v3_string_to_sign(auth.algorithm, creq)


def verify(req: RpcRequest, secret: str) -> None:
    """Step 7. Raises SignatureDoesNotMatch (with our StringToSign) or IncompleteSignature.

    ``secret`` is the AccessKey secret, or for ACS3-RSA-SHA256 the registered key PEM (public, or the
    private PEM the SDK signs with; only its public half is used). Also raises InvalidSignatureMethod
    for an unsupported method, so it is safe to call without ``validate_common``, and for an RSA
    request whose credential is not an RSA key.
    """
    if req.style == "V1":
        assert req.v1 is not None
        if req.v1.signature_method != HMAC_SHA1:
            raise errors.InvalidSignatureMethod()
        sts = string_to_sign(req)
        if not signatures_equal(v1_signature(secret, sts), req.v1.signature):
            raise errors.SignatureDoesNotMatch(sts)
        return

    assert req.v3 is not None
    auth = req.v3.authorization
    _require_v3_algorithm(auth.algorithm)
    if not _v3_required_signed(req) <= set(auth.signed_headers):
        raise errors.IncompleteSignature()
    claimed = req.v3.content_sha256
    if claimed is not None and claimed.strip().lower() != payload_hash(auth.algorithm, req.body):
        raise errors.IncompleteSignature()
    sts = string_to_sign(req)
    if auth.algorithm == ACS3_RSA_SHA256:
        try:
            ok = v3_verify_rsa(secret, sts, auth.signature)
        except ValueError:
            # The credential holds no RSA key (e.g. an HMAC secret): the client picked a method
            # this AccessKey cannot do. A 400 lets the SDK report it as a client error, not a 5xx.
            raise errors.InvalidSignatureMethod() from None
    else:
        ok = signatures_equal(v3_signature(auth.algorithm, secret, sts), auth.signature.lower())
    if not ok:
        raise errors.SignatureDoesNotMatch(sts)
