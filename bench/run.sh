#!/usr/bin/env bash
# Runs the store micro-benchmarks interleaved over several rounds (so the machine's fast and slow phases
# fall on every benchmark alike), writes JSON, and prints each figure beside the memcpy floor of the same
# run as a ratio. Usage: bench/run.sh [build-dir] [rounds]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
rounds=${2:-3}
out=${HFE_BENCH_OUT:-$build/bench-results}
mkdir -p "$out"
"$build/bench/store_bench" --benchmark_repetitions="$rounds" --benchmark_enable_random_interleaving=true \
  --benchmark_min_time=0.3 --benchmark_out="$out/store_bench.json" --benchmark_out_format=json \
  --benchmark_report_aggregates_only=false >"$out/store_bench.txt"
python3 "$here/bench/ratios.py" "$out/store_bench.json" BM_MemcpyFloor
"$build/bench/ring_bench" --benchmark_repetitions="$rounds" --benchmark_enable_random_interleaving=true \
  --benchmark_min_time=0.3 --benchmark_out="$out/ring_bench.json" --benchmark_out_format=json >"$out/ring_bench.txt"
python3 "$here/bench/ratios.py" "$out/ring_bench.json" BM_BoostSpscQueue
"$build/bench/handler_bench" --benchmark_repetitions="$rounds" --benchmark_enable_random_interleaving=true \
  --benchmark_min_time=0.3 --benchmark_out="$out/handler_bench.json" --benchmark_out_format=json >"$out/handler_bench.txt"
python3 "$here/bench/ratios.py" "$out/handler_bench.json" BM_WriteLineFloor
"$build/bench/snapshot_bench" --events "${HFE_SNAPSHOT_EVENTS:-10000000}" --rounds "$rounds" --out "$out/snapshot_bench.json"
