#!/usr/bin/env bash
# Builds the benchmarks (Release), runs every workload REPS times (default 5)
# and writes docs/performance.md (tables of medians with min-max, the
# machine, the commit) and docs/performance.svg (a chart, with gnuplot).
#   bash scripts/bench.sh [REPS] [extra Google Benchmark flags, e.g. --benchmark_filter=W2]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
reps=${1:-5}
shift || true
if ! command -v gnuplot >/dev/null || ! command -v python3 >/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox python3 >/dev/null
fi
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTASKDIST_BUILD_EXAMPLES=OFF -DTASKDIST_BUILD_TESTS=OFF >/dev/null
cmake --build build/bench --target taskdist_bench -j"$(nproc)"
mkdir -p build/bench/out
# Repetitions run in random order across all benchmarks: this machine has
# spells, seconds long, in which every backend runs 2-3x slower; run each
# backend's repetitions back to back and a spell lands on one backend's
# median and skews the ratios between them.
# The W1pair/W2pair rows (the closest calls against their targets) get
# three times the repetitions: with 5, the W2 4-against-2 median read 0.90
# in a full run and 1.00 over 15 alone.
export TASKDIST_BENCH_PAIR_REPETITIONS=$((reps * 3))
# The commit goes into the JSON itself, so a report re-rendered later (or
# after a commit) still names the code that ran; "+dirty" if the tree had
# uncommitted changes.
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$rev" != unknown ] && ! git diff --quiet HEAD 2>/dev/null; then rev="$rev+dirty"; fi
runs=(--benchmark_repetitions="$reps" --benchmark_enable_random_interleaving=true
      --benchmark_report_aggregates_only=false --benchmark_out_format=json
      --benchmark_context=commit="$rev")
build/bench/bench/taskdist_bench "${runs[@]}" --benchmark_out=build/bench/out/results.json "$@"
# R1 (Redis) when built: it starts its own redis-server. Three times the
# repetitions (each takes under a second): its two paths share the 2 cores
# with the server, and 5-repetition medians of their ratio ranged 0.68-1.31.
redis_json=""
if cmake --build build/bench --target taskdist_redis_bench -j"$(nproc)" 2>/dev/null && [ -x build/bench/bench/taskdist_redis_bench ]; then
    build/bench/bench/taskdist_redis_bench "${runs[@]}" --benchmark_repetitions=$((reps * 3)) \
        --benchmark_out=build/bench/out/redis.json "$@" || true
    redis_json=build/bench/out/redis.json
fi
python3 scripts/bench_report.py build/bench/out/results.json docs/performance.md docs/performance.svg $redis_json
echo "wrote docs/performance.md and docs/performance.svg"
