"""Per-page latency of PostgresStore.usage for the 1M benchmark's hot key (GetAccessKeyLastUsedIps'
store query), 30 walks of 10 pages of 21, service Ecs and every service; run with the code under test
on PYTHONPATH."""

import statistics
import sys
import time

from trailhouse.model.query import UsageKind
from trailhouse.storage.postgres import PostgresStore

URL = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench?options=-csearch_path%3Dbench_pgbase"
ACCOUNT, KEY = "1069960679966479", "LTAI5tOf03zqjQolJ5iGTE5k"
SINCE = 1796428799000 - 400 * 86_400_000
label = sys.argv[1]
KW = {"with_details": True} if len(sys.argv) > 2 else {}
store = PostgresStore(URL)


def walk(service):
    out, after = [], None
    for _ in range(10):
        t = time.perf_counter()
        rows = store.usage(
            account_id=ACCOUNT,
            access_key_id=KEY,
            kind=UsageKind.IP,
            service_name=service,
            since_ms=SINCE,
            after=after,
            limit=21,
            **KW,
        )
        out.append((time.perf_counter() - t) * 1000)
        after = rows[19].position
    return out


for service in ("Ecs", None):
    walk(service)
    lat = [x for _ in range(30) for x in walk(service)]
    q = statistics.quantiles(lat, n=100)
    quantiles = f"p50={q[49]:.3f} p95={q[94]:.3f} p99={q[98]:.3f} ms"
    print(f"{label:34} service={service!s:5} pages={len(lat)} {quantiles}", flush=True)
store.close()
