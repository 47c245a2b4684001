"""Nothing lost, nothing doubled: `kill -9` of `serve` during HTTP ingest and of `trailhouse ingest`
mid-file.

An event is *acknowledged* when its batch got 200 with ``accepted + duplicates`` equal to the
batch size. After a `kill -9` and a restart every acknowledged event must be stored, once; sending
every batch again must add nothing that was acknowledged (``accepted == 0``, ``duplicates`` equal
to the batch). Some events come twice with the same eventId and an eventTime on either side of
00:00 UTC: they are one event (ingest is idempotent on account and eventId, whatever the day).
"""

from __future__ import annotations

import collections
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.reliability._harness import (
    CLI,
    Creds,
    ServeProcess,
    event,
    export_event_ids,
    make_creds,
)
from tests.reliability._report import FULL, size
from tests.reliability.conftest import backend_of
from trailhouse.model.query import EventFilter
from trailhouse.model.times import now_ms
from trailhouse.storage import open_store

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900 if FULL else 180)]

DAY_MS = 86_400_000
#: One in this many events sits just before 00:00 UTC and has a twin just after it.
TWIN_EVERY = 10


def _midnight() -> int:
    """Yesterday's 00:00 UTC: in the past, and inside every default search window."""
    now = now_ms()
    return now - now % DAY_MS - DAY_MS


@dataclass
class Batch:
    events: list[dict[str, Any]]
    acked: bool = False
    answer: dict[str, Any] | None = None


@dataclass
class Producer:
    """One client posting batches until the server dies or it has sent its share."""

    name: str
    creds: Creds
    url: str
    batch_size: int
    max_batches: int
    rng: random.Random
    midnight: int
    batches: list[Batch] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    _twins: list[dict[str, Any]] = field(default_factory=list)

    def _next(self, number: int) -> list[dict[str, Any]]:
        events = list(self._twins)
        self._twins = []
        for i in range(self.batch_size):
            event_id = f"{self.name}-b{number}-{i}"
            if i % TWIN_EVERY == 0:
                before = self.midnight - self.rng.randint(1, 5_000)
                events.append(event(self.creds.account_id, event_id, before))
                after = self.midnight + self.rng.randint(1, 5_000)
                self._twins.append(
                    event(self.creds.account_id, event_id, after, eventName="TwinAfterMidnight")
                )
            else:
                events.append(
                    event(self.creds.account_id, event_id, now_ms() - self.rng.randint(0, 2 * DAY_MS))
                )
        return events

    def run(self, stop: threading.Event) -> None:
        with httpx.Client(timeout=30, headers=self.creds.bearer) as http:
            for number in range(self.max_batches):
                if stop.is_set():
                    return
                batch = Batch(self._next(number))
                self.batches.append(batch)
                try:
                    r = http.post(f"{self.url}/api/v1/events", content=orjson.dumps(batch.events))
                except httpx.TransportError:
                    return  # the server was killed: this batch is not acknowledged
                self.statuses[r.status_code] += 1
                if r.status_code == 200:
                    batch.answer = r.json()
                    batch.acked = batch.answer["accepted"] + batch.answer["duplicates"] == len(batch.events)


def _resend(server: ServeProcess, creds: Creds, batches: list[Batch]) -> tuple[int, int, int, int]:
    """Every batch again; (acknowledged events re-sent, their duplicates, their accepted, 5xx)."""
    resent = duplicates = accepted = server_errors = 0
    with httpx.Client(timeout=60, headers=creds.bearer) as http:
        for batch in batches:
            r = http.post(f"{server.url}/api/v1/events", content=orjson.dumps(batch.events))
            if r.status_code >= 500:
                server_errors += 1
                continue
            assert r.status_code == 200, r.text
            if batch.acked:
                resent += len(batch.events)
                duplicates += r.json()["duplicates"]
                accepted += r.json()["accepted"]
    return resent, duplicates, accepted, server_errors


@pytest.mark.parametrize("decode_workers", [0, 1], ids=["in-process", "decode-workers"])
def test_kill9_serve_during_http_ingest(
    db_url: str, data_dir: Path, master_key: str, report: Any, decode_workers: int
) -> None:
    backend = backend_of(db_url)
    creds = make_creds(db_url, master_key)
    # With a decode process the batches are judged there and written here: the same promise.
    workers_env = {"TRAILHOUSE_INGEST_WORKERS": str(decode_workers)}
    server = ServeProcess(db_url, data_dir, master_key, env_extra=workers_env).start()
    rng = random.Random(17)
    midnight = _midnight()
    rounds, producers, batch_size = size(1, 3), size(4, 8), size(100, 250)
    everything: list[Batch] = []
    statuses: collections.Counter[int] = collections.Counter()
    try:
        for round_no in range(rounds):
            stop = threading.Event()
            team = [
                Producer(f"r{round_no}p{p}", creds, server.url, batch_size, size(60, 400), rng, midnight)
                for p in range(producers)
            ]
            threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in team]
            for t in threads:
                t.start()
            # Kill while every producer has a batch in flight, at a moment no test can plan for.
            time.sleep(rng.uniform(*((0.8, 1.6) if not FULL else (2.0, 5.0))))
            server.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=60)
            for p in team:
                everything.extend(p.batches)
                statuses.update(p.statuses)
            server.start()
        acked_ids = {e["eventId"] for b in everything if b.acked for e in b.events}
        sent_ids = {e["eventId"] for b in everything for e in b.events}
        after_crash = collections.Counter(export_event_ids(server, creds))
        lost = len(acked_ids - after_crash.keys())
        doubled_after_crash = sum(n - 1 for n in after_crash.values() if n > 1)
        resent, duplicates, accepted, resend_5xx = _resend(server, creds, everything)
        final = collections.Counter(export_event_ids(server, creds))
        missing_final = len(sent_ids - final.keys())
        doubled = sum(n - 1 for n in final.values() if n > 1)
        unknown = len(final.keys() - sent_ids)
        ok = (
            lost == 0
            and doubled_after_crash == 0
            and doubled == 0
            and missing_final == 0
            and unknown == 0
            and accepted == 0
            and duplicates == resent
            and resend_5xx == 0
            and len(acked_ids) > 0
        )
        report(
            "kill -9 serve during HTTP ingest"
            + (f", {decode_workers} decode worker" if decode_workers else ""),
            backend,
            f"{rounds} kill(s), {producers} producers: {lost} of {len(acked_ids):,} acknowledged lost, "
            f"{doubled_after_crash + doubled} stored twice (incl. eventIds repeated across 00:00 UTC); "
            f"re-send of {resent:,} acknowledged: {duplicates:,} duplicates, {accepted} accepted again",
            ok=ok,
            acknowledged=len(acked_ids),
            sent=len(sent_ids),
            lost=lost,
            doubled_after_crash=doubled_after_crash,
            doubled_after_resend=doubled,
            resent_acknowledged=resent,
            resent_duplicates=duplicates,
            resent_accepted=accepted,
            missing_after_resend=missing_final,
            statuses=dict(statuses),
        )
        assert len(acked_ids) > 0, f"no batch was acknowledged before the kill: {statuses}"
        assert lost == 0, f"{lost} acknowledged events lost"
        assert doubled_after_crash == 0 and doubled == 0, (
            f"eventIds stored more than once: after the crash {doubled_after_crash}, after re-send {doubled}"
        )
        assert resend_5xx == 0
        assert accepted == 0 and duplicates == resent, (accepted, duplicates, resent)
        assert missing_final == 0 and unknown == 0
        assert all(s < 500 for s in statuses), statuses
    finally:
        server.stop()


def _write_file(path: Path, account: str, count: int, rng: random.Random) -> set[str]:
    """An NDJSON file of ``count`` events; every TWIN_EVERY-th has a twin across 00:00 UTC later on."""
    midnight = _midnight()
    ids: set[str] = set()
    twins: list[dict[str, Any]] = []
    with open(path, "wb") as out:
        for i in range(count):
            event_id = f"file-{i}"
            ids.add(event_id)
            if i % TWIN_EVERY == 0:
                out.write(orjson.dumps(event(account, event_id, midnight - rng.randint(1, 5_000))) + b"\n")
                twins.append(event(account, event_id, midnight + rng.randint(1, 5_000), eventName="Twin"))
            else:
                stamp = now_ms() - rng.randint(0, 2 * DAY_MS)
                out.write(orjson.dumps(event(account, event_id, stamp)) + b"\n")
            if len(twins) >= 300:  # a twin lands a few transactions after its first copy
                out.write(b"".join(orjson.dumps(t) + b"\n" for t in twins))
                twins = []
        out.write(b"".join(orjson.dumps(t) + b"\n" for t in twins))
    return ids


def _stored_ids(db_url: str, account: str) -> collections.Counter[str]:
    store = open_store(db_url)
    try:
        found = store.iter_events(account_id=account, flt=EventFilter(0, 2**62), descending=False)
        return collections.Counter(e.event_id for e in found)
    finally:
        store.close()


def test_kill9_ingest_file_then_rerun(db_url: str, tmp_path: Path, report: Any) -> None:
    backend = backend_of(db_url)
    account = "7770001112223334"
    count = size(30_000, 300_000)
    path = tmp_path / "big.ndjson"
    ids = _write_file(path, account, count, random.Random(4))
    store = open_store(db_url)  # migrated before the ingest starts, so counting can begin at once
    command = [*CLI, "ingest", str(path), "--db", db_url, "--batch", "2000"]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        at_kill = 0
        while proc.poll() is None and time.monotonic() < deadline:
            at_kill = store.count_events()
            if at_kill >= count // 5:
                break
            time.sleep(0.02)
        killed_mid_file = proc.poll() is None
        proc.kill()
        proc.wait(timeout=30)
        at_kill = store.count_events()
    finally:
        store.close()
    rerun = subprocess.run(
        [*CLI, "ingest", str(path), "--db", db_url, "--json"], capture_output=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    stored = _stored_ids(db_url, account)
    missing = len(ids - stored.keys())
    doubled = sum(n - 1 for n in stored.values() if n > 1)
    ok = killed_mid_file and 0 < at_kill < len(ids) and missing == 0 and doubled == 0
    report(
        "kill -9 trailhouse ingest FILE",
        backend,
        f"killed after {at_kill:,} of {len(ids):,} events, re-run: {missing} missing, {doubled} stored twice "
        f"({len(ids) // TWIN_EVERY:,} eventIds repeated across 00:00 UTC)",
        ok=ok,
        events=len(ids),
        stored_at_kill=at_kill,
        missing=missing,
        doubled=doubled,
        killed_mid_file=killed_mid_file,
    )
    assert killed_mid_file and 0 < at_kill < len(ids), f"the kill did not land mid-file ({at_kill})"
    assert missing == 0, f"{missing} events missing after the re-run"
    assert doubled == 0, f"{doubled} events stored twice (the eventId repeats across 00:00 UTC)"
    assert sum(stored.values()) == len(ids)
