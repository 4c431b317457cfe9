#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang++ in build/fuzz, then runs
# each for a bounded time from a scratch copy of its seed corpus, so that the
# corpus in the repository never grows by itself.
#   scripts/fuzz.sh [seconds per target, default 30]
# Exits nonzero if any target crashes, leaks, hangs or fails a check; the
# input that did it is kept under build/fuzz/artifacts/<target>/. To make it
# a regression test, copy it to fuzz/corpus/<target>/regression-<what>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
dir=build/fuzz
mkdir -p "$dir"
echo "=== fuzz: configure + build (clang++, $dir)"
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DTASKDIST_WERROR=ON -DTASKDIST_BUILD_FUZZERS=ON \
    -DTASKDIST_BUILD_TESTS=OFF -DTASKDIST_BUILD_EXAMPLES=OFF -DTASKDIST_BUILD_BENCHMARKS=OFF \
    -DTASKDIST_INSTALL=OFF >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
if ! cmake --build "$dir" -j"${JOBS:-$(nproc)}" >"$dir.build.log" 2>&1; then
    grep -Ev '^\[ *[0-9]+%\]' "$dir.build.log" | head -200
    echo "=== fuzz: build failed (full log: $dir.build.log)"
    exit 1
fi

targets=()
for src in fuzz/corpus/*/; do
    t=$(basename "$src")
    if [ -x "$dir/fuzz/fuzz_$t" ]; then targets+=("$t"); else echo "=== fuzz: $t not built (missing dependency?)"; fi
done
[ ${#targets[@]} -gt 0 ] || { echo "=== fuzz: no fuzz targets were built" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    cp -r "fuzz/corpus/$t" "$scratch/$t"
    artifacts="$dir/artifacts/$t/"
    mkdir -p "$artifacts"
    log="$dir/fuzz_$t.log"
    echo "=== fuzz: $t for ${seconds}s"
    # -timeout: an input that takes over 10 s is a hang, reported as a failure.
    status=0
    "$dir/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$scratch/$t" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$status" -ne 0 ]; then
        grep -E 'ERROR|fuzz check failed|runtime error|Test unit written' "$log" | head -20 || true
        echo "=== fuzz: $t FAILED (exit $status; log: $log; input under $artifacts)"
        failed+=("$t")
    else
        echo "=== fuzz: $t ok: ${execs:-?} executions (${rate:-?}/s), corpus $(ls "$scratch/$t" | wc -l) inputs"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "=== fuzz: failed: ${failed[*]}"
    exit 1
fi
echo "=== fuzz: all targets passed: ${targets[*]}"
