import statistics
import sys
import time

from trailhouse.service import access_keys as ak
from trailhouse.service.pagetoken import PageTokens
from trailhouse.storage.postgres import PostgresStore

URL = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench?options=-csearch_path%3Dbench_pgbase"
store = PostgresStore(URL)
tokens = PageTokens.for_store(store)
KEY, SVC = sys.argv[1], sys.argv[2]
which = list(ak.UsageList)[0]
lat = []
for _walk in range(30):
    token = None
    for _ in range(10):
        t = time.perf_counter()
        page = ak.list_last_used(
            store,
            tokens,
            which,
            account_id="1069960679966479",
            access_key_id=KEY,
            service_name=SVC,
            now_ms=1796428799000,
            page_size=20,
            next_token=token,
        )
        lat.append((time.perf_counter() - t) * 1000)
        token = page.next_token
        if not token:
            break
q = statistics.quantiles(lat[5:], n=100)
print(sys.argv[1:], which, len(lat), f"p50={q[49]:.3f} p99={q[98]:.3f}")
