"""Memory stays bounded under hostile traffic (issue 17): a flood of genuine signed requests, each
with a fresh ``SignatureNonce``, must not grow the server without bound.

* The longest nonce the gateway accepts (128 characters): the server keeps each one for the replay
  window, but the store of nonces is capped per key and in total; a request past the cap is refused
  (4xx), never a 5xx. RSS is read from /proc before and after; the figure is MiB added and bytes per
  request. The issue measured 45 MiB for 140k requests and 420 MiB for 52k 8,000-character nonces.
* Longer nonces (8,000 characters, as in the issue) are refused with a 4xx and not kept.
* Nonces of throttled requests are not kept: a request that was throttled, sent again unchanged once
  the throttle allows it, succeeds (it is not a replay of anything the server accepted).
* Bodies close to the 1 MiB limit (signed RPC POSTs, native ingest of one large event) and over it:
  answered 4xx or 200, and RSS after many of them is what it was after a few.

Requests come from a few client processes at once, on 127.0.0.1 only, each loop bounded in count.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import pg_schema_url
from tests.reliability._harness import (
    Creds,
    ServeProcess,
    event,
    make_creds,
    memory_kib,
    serving,
    sign_query,
    v1_params,
)
from tests.reliability._report import FULL, size
from tests.reliability.conftest import backend_of
from trailhouse.model.times import now_ms

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900 if FULL else 120)]

MIB = 1024 * 1024
#: The longest SignatureNonce the gateway keeps (longer ones are refused).
NONCE_MAX = 128
#: What the issue used to grow the server by 420 MiB.
NONCE_HUGE = 8000
CLIENTS = 3
#: What the flood of accepted nonces may add to the server, whatever its length (the nonce store is
#: capped): generous next to the cost of the cap itself, far below the issue's 420 MiB.
NONCE_GROWTH_MAX_MIB = 64.0
#: What a refused 8,000-character nonce may leave behind, on average: allocator noise, an eighth of
#: what keeping it would cost.
HUGE_KEPT_MAX = 1024.0
#: What a throttled request (128-character nonce) may leave behind, on average: keeping its nonce
#: costs about 240 bytes (measured by the flood above), the allocator's noise about 60 over 6,000.
THROTTLED_KEPT_MAX = 200.0
#: Steady state under large bodies: RSS after all of them against RSS after the first third.
BODY_GROWTH_MAX_MIB = 32.0
RPC_BODY_LIMIT = 1024 * 1024


def _nonce(tag: str, n: int, length: int) -> str:
    head = f"{tag}-{n}-"
    return head + secrets.token_hex(length)[: length - len(head)]


def _flood(url: str, creds: Creds, count: int, nonce_len: int, tag: str) -> Counter[str]:
    """``count`` signed LookupEvents, each with a fresh nonce of ``nonce_len``: "<status> <Code>"."""
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=30) as http:
        for n in range(count):
            params = v1_params(creds, nonce=_nonce(tag, n, nonce_len), MaxResults="1")
            try:
                r = http.get("/?" + sign_query(params, creds.secret))
            except httpx.TransportError as exc:
                seen[f"no answer ({type(exc).__name__})"] += 1
                continue
            code = "" if r.status_code == 200 else _rpc_code(r)
            seen[f"{r.status_code} {code}".strip()] += 1
    return seen


def _rpc_code(r: httpx.Response) -> str:
    try:
        return str(r.json().get("Code", "?"))
    except ValueError:
        return f"not JSON {r.text[:40]!r}"


def _flood_parallel(server: ServeProcess, creds: Creds, count: int, nonce_len: int, tag: str) -> Counter[str]:
    per = max(1, count // CLIENTS)
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(CLIENTS, mp_context=ctx) as pool:
        parts = [pool.submit(_flood, server.url, creds, per, nonce_len, f"{tag}{c}") for c in range(CLIENTS)]
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part.result(timeout=600))
    return total


def _fivexx(seen: Counter[str]) -> int:
    return sum(n for k, n in seen.items() if k.startswith("5") or k.startswith("no answer"))


def _refused(seen: Counter[str]) -> int:
    return sum(n for k, n in seen.items() if k.startswith("4"))


def _show(seen: Counter[str]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in seen.most_common())


def _settle(pid: int) -> dict[str, int]:
    """Memory figures (KiB) once the server has had a moment to finish what was in flight."""
    time.sleep(0.5)
    return memory_kib(pid)


def _anon_grown_kib(before: dict[str, int], after: dict[str, int]) -> int:
    return max(0, after["RssAnon"] - before["RssAnon"])


@pytest.fixture(params=["sqlite", "postgres"] if FULL else ["sqlite"])
def nonce_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The nonce store lives in the server process whatever the backend: short runs use SQLite only,
    full runs both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nonces.db'}"
        return
    with pg_schema_url(request.getfixturevalue("pg_available")) as url:
        yield url


def _mib(kib: float) -> float:
    return kib / 1024


def test_nonce_flood_keeps_memory_bounded(
    nonce_db_url: str, data_dir: Path, master_key: str, report: Any
) -> None:
    backend = backend_of(nonce_db_url)
    creds = make_creds(nonce_db_url, master_key)
    count = size(3000, 60_000)
    huge_count = size(600, 10_000)
    with serving(nonce_db_url, data_dir, master_key, TRAILHOUSE_THROTTLE_LOOKUP_EVENTS=0) as server:
        warm = _flood_parallel(server, creds, 600, NONCE_MAX, "warm")
        assert _fivexx(warm) == 0, _show(warm)
        base = _settle(server.pid)
        started = time.monotonic()
        flood = _flood_parallel(server, creds, count, NONCE_MAX, "max")
        took = time.monotonic() - started
        after = _settle(server.pid)
        huge = _flood_parallel(server, creds, huge_count, NONCE_HUGE, "huge")
        after_huge = _settle(server.pid)
        alive = server.alive()
        log = server.log_tail()
    sent = sum(flood.values())
    grown = _anon_grown_kib(base, after)
    per_request = grown * 1024 / sent
    huge_sent = sum(huge.values())
    huge_grown = _anon_grown_kib(after, after_huge)
    huge_per_request = huge_grown * 1024 / huge_sent
    ok_flood = _fivexx(flood) == 0 and _mib(grown) <= NONCE_GROWTH_MAX_MIB
    ok_huge = _fivexx(huge) == 0 and _refused(huge) == huge_sent and huge_per_request <= HUGE_KEPT_MAX
    report(
        f"nonce memory ({NONCE_MAX}-character nonces)",
        backend,
        f"{sent} signed requests with fresh {NONCE_MAX}-character nonces in {took:.1f} s ({_show(flood)}): "
        f"heap (RssAnon) +{_mib(grown):.1f} MiB, {per_request:.0f} bytes per request (bound "
        f"+{NONCE_GROWTH_MAX_MIB:.0f} MiB); RSS {_mib(base['VmRSS']):.0f} -> {_mib(after['VmRSS']):.0f} MiB",
        ok=ok_flood and alive,
        requests=sent,
        rss_before_mib=_mib(base["VmRSS"]),
        rss_after_mib=_mib(after["VmRSS"]),
        anon_grown_mib=_mib(grown),
        bytes_per_nonce=per_request,
        statuses=dict(flood),
    )
    report(
        f"nonce memory ({NONCE_HUGE}-character nonces)",
        backend,
        f"{huge_sent} signed requests with {NONCE_HUGE}-character nonces ({_show(huge)}): "
        f"{_refused(huge)} refused 4xx, heap +{_mib(huge_grown):.1f} MiB ({huge_per_request:.0f} bytes per "
        f"request, bound {HUGE_KEPT_MAX:.0f}; the issue measured 420 MiB for 52k); peak RSS "
        f"{_mib(after_huge['VmHWM']):.0f} MiB",
        ok=ok_huge and alive,
        requests=huge_sent,
        refused=_refused(huge),
        bytes_per_request=huge_per_request,
        peak_rss_mib=_mib(after_huge["VmHWM"]),
        statuses=dict(huge),
    )
    assert alive, log
    assert _fivexx(flood) == 0, f"5xx or no answer: {_show(flood)}\n{log}"
    assert _mib(grown) <= NONCE_GROWTH_MAX_MIB, f"+{_mib(grown):.1f} MiB for {sent} nonces ({_show(flood)})"
    assert _fivexx(huge) == 0, f"5xx or no answer: {_show(huge)}\n{log}"
    assert _refused(huge) == huge_sent, f"{NONCE_HUGE}-character nonces were not all refused: {_show(huge)}"
    assert huge_per_request <= HUGE_KEPT_MAX, (
        f"{huge_per_request:.0f} bytes per refused {NONCE_HUGE}-character nonce: it was kept"
    )


def test_throttled_nonces_are_not_kept(
    nonce_db_url: str, data_dir: Path, master_key: str, report: Any
) -> None:
    """Throttling at 2 calls/s: almost all of a flood is throttled, adds nothing, and a throttled
    request sent again unchanged once the throttle allows it is answered 200, not SignatureNonceUsed."""
    backend = backend_of(nonce_db_url)
    creds = make_creds(nonce_db_url, master_key)
    count = size(6000, 60_000)
    with serving(nonce_db_url, data_dir, master_key, TRAILHOUSE_THROTTLE_LOOKUP_EVENTS=2) as server:
        _flood_parallel(server, creds, 600, NONCE_MAX, "warm")
        base = _settle(server.pid)
        flood = _flood_parallel(server, creds, count, NONCE_MAX, "thr")
        after = _settle(server.pid)
        # The replay check: exhaust the throttle, keep one throttled request, send it again later.
        with httpx.Client(base_url=server.url, timeout=30) as http:
            throttled_query = None
            for n in range(50):
                query = "/?" + sign_query(
                    v1_params(creds, nonce=_nonce("again", n, NONCE_MAX), MaxResults="1"), creds.secret
                )
                r = http.get(query)
                if r.status_code == 400 and _rpc_code(r).startswith("Throttling"):
                    throttled_query = query
                    break
            assert throttled_query is not None, "the throttle never refused anything"
            time.sleep(1.5)  # the bucket refills
            again = http.get(throttled_query)
        alive = server.alive()
        log = server.log_tail()
    sent = sum(flood.values())
    throttled = sum(n for k, n in flood.items() if "Throttling" in k)
    grown = _anon_grown_kib(base, after)
    per_request = grown * 1024 / sent
    again_code = "" if again.status_code == 200 else _rpc_code(again)
    ok = _fivexx(flood) == 0 and per_request <= THROTTLED_KEPT_MAX and again.status_code == 200
    report(
        "nonce memory (throttled requests)",
        backend,
        f"{sent} signed requests at a 2/s throttle ({_show(flood)}): heap +{_mib(grown):.1f} MiB, "
        f"{per_request:.0f} bytes per request (bound {THROTTLED_KEPT_MAX:.0f}; the issue measured 45 MiB "
        f"for 140k); a throttled request sent again later: {again.status_code} {again_code}".rstrip(),
        ok=ok and alive,
        requests=sent,
        throttled=throttled,
        bytes_per_request=per_request,
        resent_status=again.status_code,
    )
    assert alive, log
    assert _fivexx(flood) == 0, f"5xx or no answer: {_show(flood)}\n{log}"
    assert throttled >= sent * 0.9, f"the throttle let through more than expected: {_show(flood)}"
    assert again.status_code == 200, (
        f"a throttled request sent again got {again.status_code} {again_code}: its nonce was kept"
    )
    assert per_request <= THROTTLED_KEPT_MAX, f"{per_request:.0f} bytes kept per throttled request"


def _big_rpc_post(creds: Creds, total: int) -> tuple[bytes, dict[str, str]]:
    """A signed LookupEvents POST whose form body is about ``total`` bytes (padded in
    ``LookupAttribute.1.Value``)."""
    params = v1_params(creds, MaxResults="1")
    params["LookupAttribute.1.Key"] = "EventName"
    params["LookupAttribute.1.Value"] = ""
    overhead = len(sign_query(params, creds.secret, method="POST"))
    params["LookupAttribute.1.Value"] = "A" * max(0, total - overhead)
    body = sign_query(params, creds.secret, method="POST").encode()
    return body, {"content-type": "application/x-www-form-urlencoded"}


def _big_event(creds: Creds, n: int, total: int) -> bytes:
    one = event(creds.account_id, f"big-{n}-{time.time_ns()}", now_ms() - 60_000)
    overhead = len(orjson.dumps([one])) + len('"requestParameters":{"blob":""},')
    one["requestParameters"] = {"blob": secrets.token_urlsafe(total)[: max(0, total - overhead)]}
    return orjson.dumps([one])


def test_large_bodies_keep_memory_bounded(db_url: str, data_dir: Path, master_key: str, report: Any) -> None:
    """Signed RPC POSTs just under and just over 1 MiB, and native ingest of one ~1 MiB event, many
    times over: never 5xx, and the heap after all of them about what it was after the first third.

    On SQLite the heap also holds the page cache, which fills with the stored bodies up to
    TRAILHOUSE_SQLITE_CACHE_MIB (1 GiB by default): set small here, so that what grows past it
    would be a leak, not the cache."""
    backend = backend_of(db_url)
    creds = make_creds(db_url, master_key)
    rounds = size(15, 300)
    near = RPC_BODY_LIMIT - 4096
    seen: Counter[str] = Counter()
    with serving(
        db_url, data_dir, master_key, TRAILHOUSE_THROTTLE_LOOKUP_EVENTS=0, TRAILHOUSE_SQLITE_CACHE_MIB=64
    ) as server:
        base = _settle(server.pid)
        third = base
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for n in range(rounds):
                for kind in ("rpc-near", "rpc-over", "ingest-near"):
                    try:
                        if kind == "ingest-near":
                            r = http.post(
                                "/api/v1/events", content=_big_event(creds, n, near), headers=creds.bearer
                            )
                        else:
                            body, headers = _big_rpc_post(
                                creds, near if kind == "rpc-near" else RPC_BODY_LIMIT + 4096
                            )
                            r = http.post("/", content=body, headers=headers)
                        seen[f"{kind} {r.status_code}"] += 1
                    except httpx.TransportError as exc:
                        seen[f"{kind} no answer ({type(exc).__name__})"] += 1
                if n == rounds // 3:
                    third = _settle(server.pid)
        after = _settle(server.pid)
        alive = server.alive()
        log = server.log_tail()
    bad = {k: n for k, n in seen.items() if not (k.endswith(" 200") or " 4" in k)}
    steady = _anon_grown_kib(third, after)
    ok = not bad and _mib(steady) <= BODY_GROWTH_MAX_MIB and alive
    statuses = ", ".join(f"{k}: {n}" for k, n in sorted(seen.items()))
    report(
        "memory under ~1 MiB bodies",
        backend,
        f"{sum(seen.values())} bodies near and over 1 MiB ({statuses}): heap (RssAnon) "
        f"{_mib(base['RssAnon']):.0f} MiB at start, {_mib(third['RssAnon']):.0f} after a third, "
        f"{_mib(after['RssAnon']):.0f} at the end (+{_mib(steady):.1f} MiB over the last two thirds, "
        f"bound {BODY_GROWTH_MAX_MIB:.0f}); RSS {_mib(after['VmRSS']):.0f} MiB, peak "
        f"{_mib(after['VmHWM']):.0f} MiB",
        ok=ok,
        anon_start_mib=_mib(base["RssAnon"]),
        anon_third_mib=_mib(third["RssAnon"]),
        anon_end_mib=_mib(after["RssAnon"]),
        rss_end_mib=_mib(after["VmRSS"]),
        peak_rss_mib=_mib(after["VmHWM"]),
        statuses=dict(seen),
    )
    assert alive, log
    assert not bad, f"answers neither 200 nor 4xx: {bad}\n{log}"
    over_refused = sum(n for k, n in seen.items() if k.startswith("rpc-over 4"))
    assert over_refused == rounds, f"RPC bodies over the 1 MiB limit not all refused 4xx: {seen}"
    assert _mib(steady) <= BODY_GROWTH_MAX_MIB, f"+{_mib(steady):.1f} MiB over the last two thirds"
