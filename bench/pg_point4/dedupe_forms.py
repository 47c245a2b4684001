"""The dedupe look-up of one ingest batch in three forms (IN over unnest; LATERAL probes fenced with
OFFSET 0, as postgres.py has it; = ANY), N random (unknown) keys against a loaded schema, JIT off;
4 runs each and the start of the plan.

    python bench/pg_point4/dedupe_forms.py SCHEMA
"""

import random
import sys
import time

import psycopg

schema = sys.argv[1]
DB = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench"
SELECT = "SELECT x.account, x.event_key, x.n, e.body FROM "  # the eventId's one copy (postgres/0016)
LAT = (
    " LEFT JOIN LATERAL (SELECT body FROM events e WHERE e.seq = x.seq"
    " AND e.event_time = x.event_time LIMIT 1) e ON true"
)
forms = {
    "in-hash": SELECT + "event_ids x" + LAT + " WHERE (x.event_key, x.account) IN"
    " (SELECT * FROM unnest(%b::int8[], %b::int4[]))",
    "lateral": SELECT + "unnest(%b::int8[], %b::int4[]) AS k(key, account) CROSS JOIN LATERAL"
    " (SELECT * FROM event_ids x WHERE x.event_key = k.key AND x.account = k.account OFFSET 0) x" + LAT,
    "any": SELECT + "(SELECT * FROM event_ids x WHERE x.event_key = ANY(%b::int8[])"
    " AND x.account = ANY(%b::int4[])) x" + LAT,
}
with psycopg.connect(DB) as c:
    c.execute(f"SET search_path = {schema}")
    c.execute("SET jit = off")
    row = c.execute("SELECT account FROM event_ids LIMIT 1").fetchone()
    assert row is not None
    acc = row[0]
    for n in (1000, 20000):
        miss = [random.getrandbits(63) for _ in range(n)]
        for name, q in forms.items():
            ts = []
            for _ in range(4):
                t = time.perf_counter()
                c.execute(q, (miss, [acc] * n), binary=True).fetchall()
                ts.append((time.perf_counter() - t) * 1000)
            plan = c.execute("EXPLAIN (COSTS OFF) " + q, (miss, [acc] * n)).fetchall()
            head = " / ".join(r[0].strip() for r in plan[:4])[:100]
            print(n, name, " ".join(f"{x:.0f}" for x in ts), "ms |", head)
