"""In-process lookup latency on a loaded PostgreSQL schema: the LookupEvents shapes of bench.queries
(20 results a page, 10 pages deep through the keyset, a 7-day window ending at the data's newest
event), plus one eventId and one requestId, and the hot AccessKey's usage pages (IPs, 20 a page,
10 pages). The parameters are picked by SQL from the schema itself, the same for either layout.

    PYTHONPATH=<code> python bench/pg_point4/lookups.py SCHEMA LABEL [WALKS] [--json OUT]
"""

import json
import statistics
import sys
import time

import psycopg

from trailhouse.model.event import event_id_of, request_id_of
from trailhouse.model.query import Attr, EventFilter, UsageKind
from trailhouse.storage import codec
from trailhouse.storage.postgres import PostgresStore

schema, label = sys.argv[1], sys.argv[2]
walks = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 20
out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
DB = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench"
DAY = 86_400_000


def one(conn: psycopg.Connection, q: str, *a: object) -> object:
    row = conn.execute(q, a).fetchone()
    assert row is not None, q
    v = row[0]
    return bytes(v).decode() if isinstance(v, (bytes, memoryview)) else v


with psycopg.connect(DB) as conn:
    conn.execute(f"SET search_path = {schema}")
    end = int(one(conn, "SELECT max(event_time) FROM events"))  # type: ignore[call-overload]
    start = end - 7 * DAY
    acc = one(conn, "SELECT account FROM events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    account = one(conn, "SELECT value FROM terms WHERE id = %s", acc)

    def top(column: str, rank: int = 0) -> str:
        ref = one(
            conn,
            f"SELECT {column} FROM events WHERE account = %s AND event_time >= %s AND {column} IS NOT NULL"
            f" GROUP BY 1 ORDER BY count(*) DESC, 1 OFFSET {rank} LIMIT 1",
            acc,
            start,
        )
        return str(one(conn, "SELECT value FROM terms WHERE id = %s", ref))

    params = {
        "none": {},
        "EventName": {Attr.EVENT_NAME: (top("event_name"),)},
        "ServiceName": {Attr.SERVICE_NAME: (top("service", 1),)},
        "User": {Attr.USER_NAME: (top("user_name", 3),)},
        "EventAccessKeyId hot": {Attr.ACCESS_KEY_ID: (top("access_key"),)},
        "SourceIpAddress": {Attr.SOURCE_IP: (top("source_ip", 5),)},
    }
    rname = one(
        conn,
        "SELECT t.value FROM event_resources r JOIN terms t ON t.id = r.rname WHERE r.account = %s"
        " AND r.event_time >= %s GROUP BY 1 ORDER BY count(*) DESC OFFSET 10 LIMIT 1",
        acc,
        start,
    )
    params["ResourceName"] = {Attr.RESOURCE_NAME: (str(rname),)}
    some = conn.execute(
        "SELECT body FROM events WHERE account = %s AND event_time >= %s ORDER BY seq LIMIT 50",
        (acc, start),
    ).fetchall()
    # The rows keep no id texts since postgres/0016: the body is their one copy.
    some = [(event_id_of(b), request_id_of(b)) for b in (codec.unpack(bytes(r[0])) for r in some)]
    hot_key = top("access_key")
store = PostgresStore(f"{DB}?options=-csearch_path%3D{schema}")
result: dict[str, dict[str, float]] = {}


def report(name: str, lat: list[float]) -> None:
    q = statistics.quantiles(lat, n=100)
    result[name] = {"p50": q[49], "p99": q[98], "n": len(lat)}
    print(f"{label:8} {name:24} n={len(lat):4} p50={q[49]:6.3f} p99={q[98]:6.3f} ms")


for name, equals in params.items():
    flt = EventFilter(start, end, equals=equals)
    lat = []
    for walk in range(walks + 1):
        after = None
        for _ in range(10):
            t = time.perf_counter()
            page = store.find_events(account_id=str(account), flt=flt, after=after, descending=True, limit=20)
            if walk:  # the first walk warms up
                lat.append((time.perf_counter() - t) * 1000)
            if len(page) < 20:
                break
            after = page[-1].position
    report(name, lat)
for name, attr, col in (("EventId", Attr.EVENT_ID, 0), ("RequestId", Attr.REQUEST_ID, 1)):
    lat = []
    for walk in range(max(1, walks // 4) + 1):
        for row in some:
            flt = EventFilter(start, end, equals={attr: (row[col],)})
            t = time.perf_counter()
            page = store.find_events(account_id=str(account), flt=flt, after=None, descending=True, limit=20)
            if walk:
                lat.append((time.perf_counter() - t) * 1000)
            assert page, name
    report(name, lat)
lat = []
for walk in range(walks + 1):
    after = None
    for _ in range(10):
        t = time.perf_counter()
        usage = store.usage(
            account_id=str(account),
            access_key_id=hot_key,
            kind=UsageKind.IP,
            service_name=None,
            since_ms=0,
            after=after,
            limit=20,
            with_details=True,
        )
        if walk:
            lat.append((time.perf_counter() - t) * 1000)
        if len(usage) < 20:
            break
        after = usage[-1].position
report("usage IPs hot key", lat)
store.close()
if out:
    with open(out, "w") as f:
        json.dump({"schema": schema, "label": label, "walks": walks, "shapes": result}, f, indent=1)
