"""The table of bench.queries runs written by queries_ab.sh (run from the repository root)."""

import json
import statistics
import sys
from pathlib import Path

runs = sys.argv[1:]
RESULTS = "bench/results/20261206-230133-1m-queries-{}.json"
data = {r: json.loads(Path(RESULTS.format(r)).read_text())["queries"] for r in runs}
shapes = list(next(iter(data.values())).keys())
heads = [f"{r} p50/p99 ms (1 client)" for r in runs] + [f"{r} req/s @8" for r in runs]
heads += [f"{r} server CPU ms/req @8" for r in runs]
print("| question | " + " | ".join(heads) + " |")
print("|---" * (1 + len(heads)) + "|")
rates: dict[str, list[float]] = {r: [] for r in runs}
for shape in shapes:
    one, many, cpu = [], [], []
    for r in runs:
        q = data[r][shape]
        lat = q["one_client"]["latency_ms"]
        one.append(f"{lat['p50']:.1f} / {lat['p99']:.1f}")
        c = q["concurrent"]
        many.append(f"{c['requests_per_second']:.0f}")
        cpu.append(f"{c.get('server_cpu_ms_per_request', float('nan')):.2f}")
        rates[r].append(c["requests_per_second"])
    print(f"| {shape} | " + " | ".join(one + many + cpu) + " |")
for r in runs:
    lookups = round(statistics.mean(rates[r][:-2]), 1)
    print(r, "LookupEvents mean req/s @8:", lookups, " usage shapes:", [round(x) for x in rates[r][-2:]])
