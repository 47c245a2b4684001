"""A real ``trailhouse serve`` closes idle and unfinished connections, serves HTTPS, and keeps
answering while many connections sit open. Real sockets on 127.0.0.1 against a real process."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli._proc import Served, clean_env, serving

IDLE_S, REQUEST_S = 1.0, 2.0
SLACK_S = 1.5  # the server's timer plus scheduling on a busy 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve")
    env = clean_env(
        home,
        TRAILHOUSE_DB=f"sqlite:///{home / 't.db'}",
        TRAILHOUSE_IDLE_TIMEOUT_S=str(IDLE_S),
        TRAILHOUSE_REQUEST_TIMEOUT_S=str(REQUEST_S),
    )
    with serving(env=env) as served:
        yield served


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(IDLE_S + REQUEST_S + 5)  # a connection never closed fails the test, not hangs it
    return sock


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {time.monotonic() - started:.1f}s")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return received, time.monotonic() - started
        received += chunk


def test_a_connection_that_sends_nothing_is_closed(server: Served) -> None:
    with _connect(server.port) as sock:
        received, waited = _until_closed(sock)
    assert received == b"" and waited < IDLE_S + SLACK_S


def test_half_a_request_line_is_answered_408_and_closed(server: Served) -> None:
    with _connect(server.port) as sock:
        sock.sendall(b"GET /heal")
        received, waited = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert REQUEST_S - 0.3 < waited < REQUEST_S + SLACK_S


def test_a_trickled_request_is_closed_at_the_deadline(server: Served) -> None:
    """Slowloris: a byte now and then keeps resetting an idle timer, never the request deadline."""
    with _connect(server.port) as sock:
        started = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * 200
        sent_all = True
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                sent_all = False
                break
            time.sleep(0.25)
            if time.monotonic() - started > REQUEST_S + SLACK_S + 1:
                break
        received, _ = _until_closed(sock)
        elapsed = time.monotonic() - started
    assert not sent_all and b"408" in received.split(b"\r\n", 1)[0]
    assert elapsed < REQUEST_S + SLACK_S + 0.5


def test_a_body_that_stops_half_way_is_closed(server: Served) -> None:
    with _connect(server.port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n"
            b"content-length: 1000\r\n\r\nAction=LookupEvents&Version="
        )
        received, waited = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert waited < REQUEST_S + SLACK_S


def test_an_idle_keep_alive_connection_is_closed_after_its_response(server: Served) -> None:
    with _connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        time.sleep(0.3)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        received, waited = _until_closed(sock)
    assert received == b"" and waited < IDLE_S + SLACK_S


def test_a_slow_request_does_not_stall_a_fast_one(server: Served) -> None:
    with _connect(server.port) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # headers never finished
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0


def test_two_hundred_idle_connections_do_not_stop_the_server(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        TRAILHOUSE_DB=f"sqlite:///{tmp_path / 't.db'}",
        TRAILHOUSE_IDLE_TIMEOUT_S="60",
        TRAILHOUSE_REQUEST_TIMEOUT_S="60",
    )
    with serving(env=env) as served, contextlib.ExitStack() as held:
        for i in range(200):
            sock = held.enter_context(socket.create_connection(("127.0.0.1", served.port), timeout=10))
            if i % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # half of them mid-request
        time.sleep(0.5)
        with httpx.Client(timeout=5) as client:
            for _ in range(20):
                started = time.monotonic()
                assert client.get(f"{served.url}/healthz").status_code == 200
                assert time.monotonic() - started < 1.0


def test_past_the_connection_cap_requests_are_refused_fast(tmp_path: Path) -> None:
    env = clean_env(tmp_path, TRAILHOUSE_DB=f"sqlite:///{tmp_path / 't.db'}", TRAILHOUSE_MAX_CONNECTIONS="5")
    with serving(env=env) as served, contextlib.ExitStack() as held:
        for _ in range(6):
            held.enter_context(socket.create_connection(("127.0.0.1", served.port), timeout=10))
        time.sleep(0.3)
        started = time.monotonic()
        assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 503
        assert time.monotonic() - started < 1.0


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trailhouse test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_serve_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    env = clean_env(tmp_path, TRAILHOUSE_DB=f"sqlite:///{tmp_path / 't.db'}")
    with serving("--tls-cert", str(cert), "--tls-key", str(key), env=env, ca=cert) as served:
        verified = ssl.create_default_context(cafile=str(cert))
        reply = httpx.get(f"{served.url}/healthz", verify=verified, timeout=5)
        assert reply.status_code == 200 and served.url.startswith("https://")
        with pytest.raises(httpx.ConnectError):  # a client that trusts only the system roots refuses it
            httpx.get(f"{served.url}/healthz", timeout=5)
        with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP on the TLS port is not served
            httpx.get(f"http://127.0.0.1:{served.port}/healthz", timeout=5)
        assert f"Trailhouse on https://127.0.0.1:{served.port}" in served.stderr()
