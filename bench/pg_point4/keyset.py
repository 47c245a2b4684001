"""EXPLAIN ANALYZE of a LookupEvents page 5 pages deep at 1M: expanded OR keyset vs row comparison,
with the statistics ANALYZE left and with them removed (in a rolled-back transaction)."""

import psycopg

URL = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench?options=-csearch_path%3Dbench_pgbase"
ACCOUNT, START, END = "1069960679966479", 1795824000000, 1796428799000
PARTITIONS = "SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass"
PAGE = (
    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT e.seq, e.event_time, e.body FROM events e"
    " WHERE e.account = %s AND e.event_time >= %s AND e.event_time <= %s AND {cond}{extra}"
    " ORDER BY e.event_time DESC, e.seq DESC LIMIT 21"
)
SHOWN = ("Index", "Seq Scan", "Buffers", "Rows Removed", "Sort")

with psycopg.connect(URL) as conn:

    def term(value: bytes) -> int:
        row = conn.execute("SELECT id FROM terms WHERE value = %s", (value,)).fetchone()
        assert row is not None
        return int(row[0])

    acc, user = term(ACCOUNT.encode()), term(b"etl-worker-12")
    for label, extra, xp in (("none (7 days)", "", ()), ("User", " AND e.user_name = %s", (user,))):
        rows = conn.execute(
            "SELECT event_time, seq FROM events e WHERE account = %s AND event_time >= %s"
            f" AND event_time <= %s{extra} ORDER BY event_time DESC, seq DESC LIMIT 100",
            (acc, START, END, *xp),
        ).fetchall()
        t, s = rows[-1]  # the position after 5 pages of 20
        forms = {
            "expanded": ("e.event_time <= %s AND (e.event_time < %s OR e.seq < %s)", (t, t, s)),
            "row": ("(e.event_time, e.seq) < (%s, %s)", (t, s)),
        }
        for stats in ("with statistics", "without statistics"):
            with conn.transaction(force_rollback=True):
                if stats.startswith("without"):
                    conn.execute(
                        f"DELETE FROM pg_statistic WHERE starelid IN ({PARTITIONS})"
                        " OR starelid = 'events'::regclass"
                    )
                    conn.execute(
                        f"UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid IN ({PARTITIONS})"
                    )
                for name, (cond, p) in forms.items():
                    sql = PAGE.format(cond=cond, extra=extra)
                    plan = [r[0] for r in conn.execute(sql, (acc, START, END, *p, *xp))]
                    took = next(line for line in plan if "Execution Time" in line)
                    print(f"## {label} / {stats} / {name}: {took.strip()}")
                    for line in plan:
                        if any(word in line for word in SHOWN):
                            print("   ", line.strip()[:230])
