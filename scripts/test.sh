#!/usr/bin/env bash
# Sets up (Debian 12), then builds and runs every test, the soak test (a few
# seconds) included, these ways:
#   gcc         g++ 12, -Wall -Wextra -Wpedantic -Werror, all targets, all tests
#   tsan        g++ + ThreadSanitizer
#   asan        g++ + AddressSanitizer + UndefinedBehaviorSanitizer
#   clang-tsan  clang++ 14 + ThreadSanitizer
#   clang-asan  clang++ 14 + AddressSanitizer + UndefinedBehaviorSanitizer,
#               examples too (so clang's -Werror covers them)
#   fuzz        libFuzzer targets, 20 s each (scripts/fuzz.sh)
#   lint        clang-tidy and cppcheck (scripts/lint.sh)
# Also: clang (clang++ 14, no sanitizer). Pass names to run a subset:
#   scripts/test.sh gcc tsan
# TASKDIST_PRUNE=1 deletes each row's build folder once the row passes (its
# logs stay): the rows' builds take 0.8-0.9 GB each, 5 GB in all, and a CI
# machine's disk may be nearly full (.ci/run sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc)
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then configs=(gcc tsan asan clang-tsan clang-asan fuzz lint); fi

run_config() {
    local name=$1; shift
    local dir=build/$name
    echo "=== $name: configure + build"
    cmake -S . -B "$dir" -DTASKDIST_WERROR=ON "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
    if ! cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
        grep -Ev '^\[ *[0-9]+%\]' "$dir.build.log" | head -200
        echo "=== $name: build failed (full log: $dir.build.log)"
        return 1
    fi
    echo "=== $name: test"
    ctest --test-dir "$dir" --output-on-failure -j"$jobs"
}

mkdir -p build
for c in "${configs[@]}"; do
    # Printed so that a build that fails for want of space says so at once.
    echo "=== $c: $(df -h --output=avail . | tail -1 | tr -d ' ') free on the build's disk"
    case $c in
        gcc)   run_config gcc -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo ;;
        # Sanitizer rows build at -O0 with line tables only: on CI's two
        # cores that compiles 2.5 times quicker than -O1 (a clang-tsan row:
        # 78 s against 165 s) and the tests still run in about 30 s; races,
        # memory errors and front-end warnings are found as well, with
        # file:line in every report. Warnings that need the optimiser are the
        # gcc row's (-O2), as are the benchmarks (built with -Werror there only).
        tsan)  run_config tsan -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" \
                   -DTASKDIST_SANITIZE=thread -DTASKDIST_BUILD_EXAMPLES=OFF -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        asan)  run_config asan -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" \
                   -DTASKDIST_SANITIZE=address,undefined -DTASKDIST_BUILD_EXAMPLES=OFF -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        clang-tsan) run_config clang-tsan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only" \
                   -DTASKDIST_SANITIZE=thread -DTASKDIST_BUILD_EXAMPLES=OFF -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        clang-asan) run_config clang-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only" \
                   -DTASKDIST_SANITIZE=address,undefined -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        clang) run_config clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        fuzz)  bash scripts/fuzz.sh 20 ;;
        lint)  bash scripts/lint.sh ;;
        *) echo "unknown configuration '$c' (gcc, tsan, asan, clang-tsan, clang-asan, clang, fuzz, lint)" >&2; exit 2 ;;
    esac
    if [ "${TASKDIST_PRUNE:-0}" = 1 ]; then rm -rf "build/$c"; fi
done
echo "=== all configurations passed: ${configs[*]}"
