"""What a trail's insight delivery costs the store each tick: ``insights_after`` at its cursor.

Stores 100,000 insight records of 100 accounts (1,000 per commit, as the detector commits), then
times, for one account: the read of a caught-up cursor (what every tick of every trail with
insight selectors does, per destination), ``last_insight_ref`` (once per logging run), and a
full batch of 500 records.

    python -m bench.insight_reads sqlite:////dev/shm/insight-reads.db
    python -m bench.insight_reads 'postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dbench'

The database (or schema) should be empty: the records are added to it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from trailhouse.model.insights import StoredInsight
from trailhouse.storage import open_store
from trailhouse.storage.base import DetectorCheckpoint

ACCOUNTS = 100
COMMITS = 100
PER_COMMIT = 1000


def _per_call_us(call: Callable[[], object], times: int) -> float:
    started = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - started) / times * 1e6


def main(url: str) -> None:
    store = open_store(url)
    try:
        now = int(time.time() * 1000)
        assert store.take_detector_lease(detector="bench", owner="bench", now_ms=now, ttl_ms=3_600_000)
        for commit in range(COMMITS):
            records = [
                StoredInsight(
                    f"{1_000_000_000_000_000 + i % ACCOUNTS}",
                    f"id-{commit}-{i}",
                    f"shared-{commit}-{i}",
                    "IpInsight",
                    "Start",
                    now + i,
                    "cn-hangzhou",
                    "203.0.113.0/24",
                    b'{"n":%d}' % i,
                )
                for i in range(PER_COMMIT)
            ]
            store.commit_insights(
                records, detector="bench", owner="bench", checkpoint=DetectorCheckpoint(commit + 1, b"")
            )
        account = f"{1_000_000_000_000_000 + 42}"
        last = store.last_insight_ref(account_id=account)
        print(f"{COMMITS * PER_COMMIT:,} records of {ACCOUNTS} accounts in {url.split(':', 1)[0]}")
        caught_up = _per_call_us(
            lambda: store.insights_after(account_id=account, after_ref=last, limit=500), 2000
        )
        print(f"insights_after at a caught-up cursor: {caught_up:.0f} µs")
        newest = _per_call_us(lambda: store.last_insight_ref(account_id=account), 2000)
        print(f"last_insight_ref: {newest:.0f} µs")
        batch = _per_call_us(lambda: store.insights_after(account_id=account, after_ref=0, limit=500), 200)
        print(f"insights_after, a batch of 500: {batch:.0f} µs")
    finally:
        store.close()


if __name__ == "__main__":
    main(sys.argv[1])
