"""No 5xx from anything a client sends: malformed signed RPC requests, and schemathesis against the
native API's own OpenAPI document, against a real `trailhouse serve`.

The RPC fuzzer starts from a valid signed request of a random operation and breaks one or two
things: a parameter dropped, huge, oddly encoded, deeply nested or repeated; a bad signature,
timestamp, version or action; another method or content type. Most mutations are signed again
afterwards, so the broken value reaches the operation instead of stopping at the signature check.
Every answer must be below 500 and the server must be alive at the end. The store holds events
with nulls, huge numbers (``1e400``) and deep values, so the renderers (JSON and XML) meet them.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability._harness import V2017, V2020, Creds, ServeProcess, make_creds, serving, v1_params
from tests.reliability._report import FULL, size
from tests.reliability.conftest import backend_of
from trailhouse.api.rpc.signature import percent_encode, v1_signature, v1_string_to_sign
from trailhouse.model.times import format_wire_time, now_ms

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900 if FULL else 120)]

NO_THROTTLE = {"TRAILHOUSE_THROTTLE_LOOKUP_EVENTS": 0, "TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE": 0}
USAGE_OPS = (
    "GetAccessKeyLastUsedIps",
    "GetAccessKeyLastUsedEvents",
    "GetAccessKeyLastUsedResources",
    "GetAccessKeyLastUsedProducts",
    "GetAccessKeyLastUsedInfo",
)
KEY_ID = "LTAI5tFuzzedKey000000001"
DEEP = 5_000


# --------------------------------------------------------------------------------- seeded store


def _row(creds: Creds, n: int, request_parameters: str, nulls: str = "") -> str:
    return (
        "{"
        f'"eventId":"fz-{n}","eventVersion":"1","eventTime":"{format_wire_time(now_ms() - n * 60_000)}",'
        '"eventName":"DescribeInstances","eventType":"ApiCall","eventRW":"Read","serviceName":"Ecs",'
        f'"sourceIpAddress":"192.0.2.{n % 250}","acsRegion":"cn-hangzhou","requestId":"R-{n}",'
        '"resourceName":"i-abc","resourceType":"ACS::ECS::Instance",'
        f"{nulls}"
        f'"requestParameters":{request_parameters},'
        f'"userIdentity":{{"type":"ram-user","accountId":"{creds.account_id}","principalId":"2001",'
        f'"userName":{"null" if nulls else chr(34) + "alice" + chr(34)},"accessKeyId":"{KEY_ID}"}}'
        "}"
    )


def _seed(server: ServeProcess, creds: Creds) -> int:
    """Events the renderers must cope with: deep values (asserted stored), and nulls in optional
    fields and 1e400, which the ingest contract (issue 17, point 2) says are stored verbatim; how
    many of those 20 were stored is returned, for the figure line."""
    plain = [_row(creds, n, '{"deep":' + "[" * 50 + "1" + "]" * 50 + "}") for n in range(40)]
    r = httpx.post(
        f"{server.url}/api/v1/events", content=("[" + ",".join(plain) + "]").encode(), headers=creds.bearer
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] + r.json()["duplicates"] == len(plain), r.text
    nulls = '"userAgent":null,"vpcId":null,"errorCode":null,'
    huge = [_row(creds, n, '{"huge":1e400,"neg":-1e400}') for n in range(40, 50)]
    huge += [_row(creds, n, "null", nulls) for n in range(50, 60)]
    r = httpx.post(
        f"{server.url}/api/v1/events", content=("[" + ",".join(huge) + "]").encode(), headers=creds.bearer
    )
    assert r.status_code < 500, r.text
    return int(r.json().get("accepted", 0)) if r.status_code == 200 else 0


# -------------------------------------------------------------------------------- the mutations

Request = tuple[str, str, dict[str, str], bytes]  # method, target (path?query), headers, body


def _business(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    pick = rng.randrange(4)
    if pick == 0:
        return "LookupEvents", V2017, {"EventName": "DescribeInstances", "MaxResults": "5"}
    if pick == 1:
        return (
            "LookupEvents",
            V2020,
            {"LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "DescribeInstances"},
        )
    action = rng.choice(USAGE_OPS)
    business = {"AccessKey": KEY_ID}
    if action not in ("GetAccessKeyLastUsedProducts", "GetAccessKeyLastUsedInfo"):
        business["ServiceName"] = "Ecs"
    return action, V2020, business


def _encode(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)


def _signed(params: dict[str, str], secret: str, method: str = "GET") -> list[tuple[str, str]]:
    return [*params.items(), ("Signature", v1_signature(secret, v1_string_to_sign(method, params)))]


ODD_VALUES: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202e\u200b",
    "²",
    "١٢",
    "-1",
    "0",
    "1e400",
    "NaN",
    "Infinity",
    "99999999999999999999999999999",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2020-02-30T00:00:00Z",
    "0000-00-00T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "%",
    "%zz",
    "../../etc/passwd",
    "'; DROP TABLE events; --",
    "<xml>&amp;</xml>",
    "\\u0000",
    "true",
    "null",
    "[]",
    "{}",
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
    "LookupAttribute.1.Key",
    "emoji \U0001f600 \U0010ffff",
)
ODD_NAMES = (
    "LookupAttribute.0.Key",
    "LookupAttribute.-1.Key",
    "LookupAttribute.99999999999999999999.Value",
    "LookupAttribute.x.Key",
    "LookupAttribute.3.Key",
    "LookupAttribute.1.Value",
    "LookupAttribute.2.Key",
    "MaxResults",
    "PageSize",
    "NextToken",
    "StartTime",
    "EndTime",
    "Direction",
    "EventRW",
    "ServiceName",
    "AccessKey",
    "Format",
    "ResourceType",
    "SignatureNonce",
    "Timestamp",
    "Version",
    "Action",
    "RegionId",
    "Unknown",
    "",
)
INVALID_UTF8 = ("%FF%FE", "%ED%A0%80", "%C0%AF", "%E2%82", "%F4%90%80%80")


def _value(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        return rng.choice("Aé中\U0001f600") * rng.choice((300, 3_000, 12_000))
    if roll < 0.25:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    return rng.choice(ODD_VALUES)


def _mutate_params(rng: random.Random, params: dict[str, str]) -> None:
    kind = rng.randrange(6)
    if kind == 0 and params:
        params.pop(rng.choice(list(params)))
    elif kind in (1, 2):
        params[rng.choice(list(params) + list(ODD_NAMES))] = _value(rng)
    elif kind == 3:
        params[rng.choice(ODD_NAMES) or "X"] = _value(rng)
    elif kind == 4:
        params["Format"] = rng.choice(("XML", "xml", "JSON", "json", "", "YAML", "XML" * 1000))
        params[rng.choice(ODD_NAMES) or "X"] = _value(rng)
    else:
        params["NextToken"] = rng.choice(
            ("AAAA", "=" * 100, "eyJ" + "A" * rng.randrange(1, 5000), "not base64 !", "\x00", "🙂")
        )


def make_request(rng: random.Random, creds: Creds) -> tuple[str, Request]:
    """One malformed request and the name of the mutation, for a failure message."""
    action, version, business = _business(rng)
    params = v1_params(creds, action, version, **business)
    kind = rng.randrange(100)
    if kind < 45:  # a broken value, signed again: it reaches the operation
        for _ in range(rng.choice((1, 1, 2))):
            _mutate_params(rng, params)
        try:
            query = _encode(_signed(params, creds.secret))
        except UnicodeEncodeError:
            query = _encode(list(params.items()))
        return "signed-mutation", ("GET", "/?" + query, {}, b"")
    if kind < 55:  # the same as a POSTed form, or with an odd content type
        _mutate_params(rng, params)
        try:
            body = _encode(_signed(params, creds.secret, "POST")).encode()
        except UnicodeEncodeError:
            body = _encode(list(params.items())).encode()
        ctype = rng.choice(
            (
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=latin-1",
                "application/json",
                "text/plain",
                "multipart/form-data; boundary=",
                "multipart/form-data",
                "application/xml",
                "",
                "x" * 5000,
            )
        )
        headers = {"content-type": ctype} if ctype else {}
        if rng.random() < 0.2:
            headers["content-encoding"] = rng.choice(("gzip", "deflate", "br", "x"))
        if ctype == "application/json" and rng.random() < 0.5:
            body = ("[" * DEEP + "]" * DEEP).encode()
        return "post-" + (ctype.split(";")[0][:30] or "none"), ("POST", "/", headers, body)
    if kind < 62:  # invalid UTF-8 or raw percent signs inside an otherwise signed query
        query = _encode(_signed(params, creds.secret))
        name = rng.choice(list(params))
        broken = f"{percent_encode(name)}={rng.choice(INVALID_UTF8)}"
        pairs = query.split("&")
        pairs[rng.randrange(len(pairs))] = broken
        return "invalid-utf8", ("GET", "/?" + "&".join(pairs), {}, b"")
    if kind < 68:  # a repeated parameter with another value after signing
        query = _encode(_signed(params, creds.secret))
        name = rng.choice(list(params))
        return "repeated", (
            "GET",
            f"/?{query}&{percent_encode(name)}={percent_encode(_value(rng)[:2000])}",
            {},
            b"",
        )
    if kind < 76:  # a wrong signature, signature method or version
        signed = dict(_signed(params, creds.secret))
        which = rng.randrange(5)
        if which == 0:
            signed["Signature"] = signed["Signature"][::-1]
        elif which == 1:
            signed.pop("Signature")
        elif which == 2:
            signed["SignatureMethod"] = rng.choice(("HMAC-SHA256", "MD5", "", "HMAC-SHA1" * 500))
        elif which == 3:
            signed["SignatureVersion"] = rng.choice(("2.0", "", "1.0.0", "\x00"))
        else:
            signed["AccessKeyId"] = rng.choice(("LTAInotakey", "", "A" * 10_000, creds.key_id + "x"))
        return "bad-signature", ("GET", "/?" + _encode(list(signed.items())), {}, b"")
    if kind < 84:  # another method
        method = rng.choice(("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "GETX"))
        return "method-" + method, (method, "/?" + _encode(_signed(params, creds.secret)), {}, b"x" * 10)
    if kind < 90:  # a V3 (ACS3) header signature that is wrong in some way
        headers = {
            "x-acs-action": rng.choice((action, "", "A" * 3000)),
            "x-acs-version": rng.choice((version, "1999-01-01", "")),
            "x-acs-date": rng.choice((params["Timestamp"], "yesterday", "")),
            "x-acs-signature-nonce": rng.choice(("n" * 9000, "abc", "")),
            "x-acs-content-sha256": rng.choice(("UNSIGNED-PAYLOAD", "zz", "")),
            "authorization": rng.choice(
                (
                    f"ACS3-HMAC-SHA256 Credential={creds.key_id},SignedHeaders=host,Signature=00",
                    "ACS3-HMAC-SM3 Credential=,SignedHeaders=,Signature=",
                    "ACS3-HMAC-SHA256",
                    "Bearer x",
                    "ACS3-HMAC-SHA256 " + ",".join(["a=b"] * 2000),
                )
            ),
        }
        return "v3-header", ("POST", "/?" + _encode(list(business.items())), headers, b"")
    if kind < 95:  # an unsigned query, or nothing at all
        params.pop("Signature", None)
        params[rng.choice(ODD_NAMES) or "Y"] = _value(rng)
        try:
            return "unsigned", ("GET", "/?" + _encode(list(params.items())), {}, b"")
        except UnicodeEncodeError:
            return "unsigned", ("GET", "/?" + "&" * rng.randrange(1, 500), {}, b"")
    # a valid request but with odd headers
    headers = rng.choice(
        (
            {"accept": "application/xml"},
            {"accept": "*/*;q=" + "9" * 500},
            {"content-length": "0", "transfer-encoding": "chunked"},
            {"x-forwarded-for": "1.1.1.1, " * 200},
            {"host": ""},
        )
    )
    return "odd-headers", ("GET", "/?" + _encode(_signed(params, creds.secret)), headers, b"")


# ----------------------------------------------------------------------------------- the sender


class Sender:
    """Keep-alive HTTP/1.1 on one connection, re-opened whenever the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def send(self, req: Request) -> int | None:
        method, target, headers, body = req
        for _ in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.putrequest(method, target, skip_accept_encoding=True)
                for k, v in headers.items():
                    self.conn.putheader(k, v)
                if body or method in ("POST", "PUT", "PATCH"):
                    self.conn.putheader("content-length", str(len(body)))
                self.conn.endheaders(body or None)
                response = self.conn.getresponse()
                response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return response.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # a keep-alive connection the server had just closed: once more
            except (http.client.HTTPException, OSError):
                self.close()
                return None
        return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def raw_exchange(port: int, data: bytes) -> int | None:
    """Bytes that no HTTP client would send; the status of the answer, None when none came."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = b""
        try:
            while b"\r\n" not in chunks:
                got = sock.recv(4096)
                if not got:
                    break
                chunks += got
        except TimeoutError:
            return None
    parts = chunks.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


RAW_REQUESTS = (
    b"GET /?Action=\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /?\x00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: application/x-www-form-urlencoded"
    b"\r\nConnection: close\r\n\r\n\xff\xfe\x00=%",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"Connection: close\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
)


def _fuzz(server: ServeProcess, creds: Creds, total: int, seed: int) -> dict[str, Any]:
    statuses: collections.Counter[int] = collections.Counter()
    by_kind: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    no_answer = 0
    lock = threading.Lock()
    workers = 4

    def work(n: int) -> None:
        nonlocal no_answer
        rng = random.Random(seed * 100 + n)
        sender = Sender(server.port)
        try:
            for _ in range(total // workers):
                kind, req = make_request(rng, creds)
                status = sender.send(req)
                with lock:
                    by_kind[kind] += 1
                    if status is None:
                        no_answer += 1
                    else:
                        statuses[status] += 1
                        if status >= 500 and len(errors) < 10:
                            errors.append(f"{status} {kind}: {req[0]} {req[1][:300]!r} {req[2]}")
        finally:
            sender.close()

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(workers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=800)
    for data in RAW_REQUESTS:
        status = raw_exchange(server.port, data)
        by_kind["raw-bytes"] += 1
        if status is None:
            no_answer += 1
        else:
            statuses[status] += 1
            if status >= 500:
                errors.append(f"{status} raw: {data[:120]!r}")
    return {
        "sent": sum(by_kind.values()),
        "statuses": statuses,
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "no_answer": no_answer,
        "examples": errors,
        "seconds": time.monotonic() - started,
        "kinds": dict(by_kind),
    }


def test_fuzzed_rpc_requests_never_5xx(db_url: str, data_dir: Path, master_key: str, report: Any) -> None:
    backend = backend_of(db_url)
    creds = make_creds(db_url, master_key)
    total = size(400, 10_000)
    with serving(db_url, data_dir, master_key, **NO_THROTTLE) as server:
        huge_stored = _seed(server, creds)
        result = _fuzz(server, creds, total, seed=17)
        alive = server.alive() and server.healthz_seconds(5) < 5
        sane = httpx.get(f"{server.url}/?{_encode(_signed(v1_params(creds), creds.secret))}", timeout=10)
        served_after = sane.status_code == 200
        log = server.log_tail()
    ok = result["server_errors"] == 0 and alive and served_after
    top = ", ".join(f"{s}: {n}" for s, n in sorted(result["statuses"].items()))
    report(
        "fuzzed signed RPC requests",
        backend,
        f"{result['server_errors']} 5xx of {result['sent']:,} malformed requests "
        f"({result['no_answer']} closed without an answer) in {result['seconds']:.1f} s; "
        f"server alive after: {alive and served_after}; statuses {top}; "
        f"store holds {huge_stored} of 20 events with 1e400 or nulls",
        ok=ok,
        huge_number_events_stored=huge_stored,
        sent=result["sent"],
        server_errors=result["server_errors"],
        no_answer=result["no_answer"],
        statuses={str(k): v for k, v in result["statuses"].items()},
        kinds=result["kinds"],
        examples=result["examples"],
    )
    assert result["server_errors"] == 0, "\n".join(result["examples"]) + "\n" + log
    assert alive and served_after, log
    assert result["sent"] >= total


# ---------------------------------------------------------------------------------- schemathesis

CONFORMANCE_CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


def _schemathesis(server: ServeProcess, creds: Creds, examples: int) -> dict[str, Any]:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import checks as st_checks
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    conformance: list[Callable[..., Any]] = [getattr(st_checks, name) for name in CONFORMANCE_CHECKS]
    sent = 0
    statuses: collections.Counter[int] = collections.Counter()
    failed_checks: collections.Counter[str] = collections.Counter()
    failed_examples: dict[str, str] = {}
    server_errors: list[str] = []
    operations = 0
    headers = creds.bearer
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal sent
                response = case.call(base_url=server.url, headers=headers, timeout=30)
                sent += 1
                statuses[response.status_code] += 1
                if response.status_code >= 500 and len(server_errors) < 10:
                    server_errors.append(f"{response.status_code} {case.as_curl_command()}")
                for check in conformance:
                    try:
                        case.validate_response(response, checks=[check])
                    except (Failure, FailureGroup) as exc:
                        inner = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
                        label = f"{check.__name__} on {case.operation.label}"
                        failed_checks[label] += 1
                        failed_examples.setdefault(
                            label, " / ".join(f"{getattr(f, 'title', '')}: {f}"[:300] for f in inner)
                        )

            with contextlib.suppress(Unsatisfiable):  # no negative data without parameters (/healthz)
                run()
    return {
        "operations": operations,
        "sent": sent,
        "statuses": statuses,
        "server_errors": server_errors,
        "failed_checks": dict(failed_checks),
        "failed_examples": failed_examples,
    }


def test_schemathesis_native_api_never_5xx(db_url: str, data_dir: Path, master_key: str, report: Any) -> None:
    backend = backend_of(db_url)
    creds = make_creds(db_url, master_key)
    with serving(db_url, data_dir, master_key, **NO_THROTTLE) as server:
        _seed(server, creds)
        started = time.monotonic()
        result = _schemathesis(server, creds, size(12, 120))
        took = time.monotonic() - started
        alive = server.alive() and server.healthz_seconds(5) < 5
        log = server.log_tail()
    errors = sum(n for s, n in result["statuses"].items() if s >= 500)
    failed = result["failed_checks"]
    conformance = (
        "all conformance checks passed"
        if not failed
        else "conformance checks failing: " + "; ".join(f"{k} x{v}" for k, v in sorted(failed.items()))
    )
    report(
        "schemathesis /api/v1/openapi.json",
        backend,
        f"{errors} 5xx of {result['sent']:,} requests over {result['operations']} operations "
        f"(positive and negative data) in {took:.1f} s; {conformance}",
        ok=errors == 0 and alive and not failed,
        sent=result["sent"],
        server_errors=errors,
        statuses={str(k): v for k, v in result["statuses"].items()},
        failed_checks=failed,
        failed_examples=result["failed_examples"],
    )
    assert errors == 0, "\n".join(result["server_errors"]) + "\n" + log
    assert alive, log
    assert result["sent"] >= result["operations"]
    # The document is the contract: every answer's status, content type, headers and body match it.
    assert not failed, "\n".join(
        f"{k} x{v}: {result['failed_examples'][k]}" for k, v in sorted(failed.items())
    )


def test_fuzz_request_builder_makes_every_kind() -> None:
    """The generator itself: every family of mutation comes up, and each request is well formed."""
    creds = Creds("1000000000000001", "LTAI5tSomeKey0000000000", "secret", "token")
    rng = random.Random(1)
    kinds = collections.Counter(make_request(rng, creds)[0].split("-")[0] for _ in range(2000))
    for family in ("signed", "post", "invalid", "repeated", "bad", "method", "v3", "unsigned", "odd"):
        assert kinds[family] > 0, kinds
    _, (method, target, _, _) = make_request(random.Random(2), creds)
    assert target.startswith("/") and urllib.parse.urlsplit(target).path == "/" and method
