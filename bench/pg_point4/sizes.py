"""Where a PostgreSQL store's bytes are: each table and each index, its partitions summed, as bytes
per event; with ``--density`` also pgstattuple's leaf density of every index (reads them all).

    python bench/pg_point4/sizes.py SCHEMA [--density] [--json OUT]
"""

import json
import sys
from collections import defaultdict

import psycopg

DB = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench"
schema = sys.argv[1]
density = "--density" in sys.argv
out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None

with psycopg.connect(DB, autocommit=True) as conn:
    conn.execute(f"SET search_path = {schema}, public")
    events = conn.execute("SELECT count(*) FROM event_ids").fetchone()[0]
    # Every plain table (partitions under their parent's name), heap + TOAST + FSM/VM.
    tables = conn.execute(
        """SELECT coalesce(p.relname, c.relname), sum(pg_table_size(c.oid)), sum(pg_relation_size(c.oid))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
           WHERE n.nspname = %s AND c.relkind IN ('r', 'm') GROUP BY 1""",
        (schema,),
    ).fetchall()
    # Every index (a partition's under its parent index's name).
    indexes = conn.execute(
        """SELECT coalesce(p.relname, c.relname), c.oid::regclass::text, pg_relation_size(c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
           WHERE n.nspname = %s AND c.relkind = 'i'""",
        (schema,),
    ).fetchall()
    by_index: dict[str, int] = defaultdict(int)
    dens: dict[str, list[float]] = defaultdict(list)
    for parent, name, size in indexes:
        size = int(size)
        by_index[parent] += size
        if density and size > 8192 * 4:
            d = conn.execute("SELECT avg_leaf_density FROM pgstatindex(%s)", (name,)).fetchone()[0]
            dens[parent].append((d, size))
    total = sum(int(t[1]) for t in tables) + sum(by_index.values())

print(f"schema {schema}: {events:,} events, {total / 1e6:,.1f} MB, {total / events:,.1f} B/event")
print(f"{'relation':40} {'MB':>9} {'B/event':>9} {'heap B/ev':>9}  leaf density")
rows = [(t, int(s), int(h)) for t, s, h in tables] + [(i, s, None) for i, s in by_index.items()]
result = {"schema": schema, "events": events, "bytes": total, "relations": {}}
for name, size, heap in sorted(rows, key=lambda r: -r[1]):
    if size < 100_000:
        continue
    d = ""
    if dens.get(name):
        w = sum(s for _, s in dens[name])
        d = f"{sum(x * s for x, s in dens[name]) / w:5.1f} %"
    h = f"{heap / events:9.1f}" if heap is not None else " " * 9
    print(f"{name:40} {size / 1e6:9.1f} {size / events:9.1f} {h}  {d}")
    result["relations"][name] = {"bytes": size, "heap": heap, "density": d}
if out:
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
