#!/usr/bin/env python3
"""Prints Google Benchmark results as items/s per round (median and spread) and as a ratio to a reference
benchmark of the same run (argv[2]: the name prefix of the floor or baseline)."""
import json
import statistics
import sys

data = json.load(open(sys.argv[1]))
ctx = data["context"]
runs = {}
for b in data["benchmarks"]:
    if b.get("run_type") != "iteration" or "items_per_second" not in b:
        continue
    runs.setdefault(b["run_name"], []).append(b["items_per_second"])

print(f"machine: {ctx.get('host_name')} cpus={ctx.get('num_cpus')} mhz={ctx.get('mhz_per_cpu')} "
      f"scaling={ctx.get('cpu_scaling_enabled')} date={ctx.get('date')}")
reference = sys.argv[2] if len(sys.argv) > 2 else "BM_MemcpyFloor"
floor_name = next((n for n in runs if n.startswith(reference)), None)
floor = statistics.median(runs[floor_name]) if floor_name else None
print(f"{'benchmark':34} {'median M items/s':>17} {'min':>9} {'max':>9} {'x ' + reference:>9}")
for name, vals in runs.items():
    med = statistics.median(vals)
    ratio = f"{med / floor:9.4f}" if floor else "        -"
    print(f"{name:34} {med / 1e6:17.3f} {min(vals) / 1e6:9.3f} {max(vals) / 1e6:9.3f} {ratio}")
