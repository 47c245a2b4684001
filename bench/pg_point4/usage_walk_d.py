"""As usage_walk.py (service Ecs), each page then its Details: (1) usage(with_details=True), one
statement; (2) usage() then events_by_seq, two statements."""

import statistics
import time

from trailhouse.model.query import UsageKind
from trailhouse.storage.postgres import PostgresStore

URL = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench?options=-csearch_path%3Dbench_pgbase"
ACCOUNT, KEY = "1069960679966479", "LTAI5tOf03zqjQolJ5iGTE5k"
SINCE = 1796428799000 - 400 * 86_400_000
store = PostgresStore(URL)


def walk(joined):
    out, after = [], None
    for _ in range(10):
        t = time.perf_counter()
        rows = store.usage(
            account_id=ACCOUNT,
            access_key_id=KEY,
            kind=UsageKind.IP,
            service_name="Ecs",
            since_ms=SINCE,
            after=after,
            limit=21,
            with_details=joined,
        )
        if not joined:
            store.events_by_seq(account_id=ACCOUNT, seqs=[r.last_seq for r in rows[:20]])
        out.append((time.perf_counter() - t) * 1000)
        after = rows[19].position
    return out


for joined in (True, False, False, True):
    walk(joined)
    lat = [x for _ in range(30) for x in walk(joined)]
    q = statistics.quantiles(lat, n=100)
    how = "one statement (joined)" if joined else "usage + events_by_seq"
    print(f"{how:24} p50={q[49]:.3f} p95={q[94]:.3f} p99={q[98]:.3f} ms", flush=True)
