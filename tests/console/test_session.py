"""Sessions and the sign-in throttle, without a server."""

from __future__ import annotations

import os

from trailhouse.console.session import SessionCodec, SignInThrottle, same_secret
from trailhouse.service.secrets import Sealer


def test_the_throttle_lets_five_failures_through_then_doubles_the_wait() -> None:
    throttle = SignInThrottle(free=5, window_s=900, max_wait_s=60)
    names = ("ip:1.2.3.4", "key:LTAIx")
    for n in range(5):
        assert throttle.wait_s(names, now=100.0 + n) == 0
        throttle.failed(names, now=100.0 + n)
    assert throttle.wait_s(names, now=104.5) == 1.5  # 2 s after the fifth failure
    throttle.failed(names, now=107.0)
    assert throttle.wait_s(names, now=107.0) == 4.0
    throttle.failed(names, now=111.0)
    assert throttle.wait_s(names, now=111.0) == 8.0
    for n in range(20):
        throttle.failed(names, now=120.0 + n)
    assert throttle.wait_s(names, now=139.0) == 60.0  # capped
    assert throttle.wait_s(("ip:5.6.7.8",), now=139.0) == 0  # others are not slowed
    assert throttle.wait_s(names, now=139.0 + 901) == 0  # failures age out of the window
    throttle.failed(names, now=2000.0)
    throttle.succeeded(("key:LTAIx",))
    assert throttle.wait_s(("key:LTAIx",), now=2000.0) == 0


def test_the_throttle_forgets_the_quietest_names_when_full() -> None:
    throttle = SignInThrottle(max_entries=100)
    for n in range(1000):
        throttle.failed((f"key:{n}",), now=float(n))
    assert len(throttle._failures) <= 100
    assert "key:999" in throttle._failures


def test_a_session_cookie_opens_only_unchanged_unexpired_and_with_its_key() -> None:
    codec = SessionCodec(Sealer(os.urandom(32)), lifetime_s=60)
    cookie = codec.issue(kind="key", credential_id="LTAIx", account_id="1", proof=b"", now_s=1000.0)
    payload = codec.open(cookie, now_s=1059.0)
    assert payload is not None and payload["id"] == "LTAIx" and payload["a"] == "1"
    assert codec.open(cookie, now_s=1060.0) is None
    assert codec.open(cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"), now_s=1000.0) is None
    assert codec.open("not a cookie", now_s=1000.0) is None
    other = SessionCodec(Sealer(os.urandom(32)), lifetime_s=60)
    assert other.open(cookie, now_s=1000.0) is None
    assert "LTAIx" not in cookie  # sealed, not merely signed


def test_same_secret() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abd") and not same_secret("", "abc") and not same_secret("abc", "abcd")
