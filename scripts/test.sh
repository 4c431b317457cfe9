#!/usr/bin/env bash
# Sets up (Debian 12), then builds and runs every test four ways:
#   gcc     -Wall -Wextra -Wpedantic -Werror, all targets, all tests
#   tsan    gcc + ThreadSanitizer, all tests
#   asan    gcc + AddressSanitizer + UndefinedBehaviorSanitizer, all tests
#   clang   clang++ 14 -Werror, all targets but the benchmarks, all tests
# and, when named, one more:
#   lint    clang-tidy and cppcheck (scripts/lint.sh)
# Pass names to run a subset: scripts/test.sh gcc tsan
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc)
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then configs=(gcc tsan asan clang); fi

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
    case $c in
        gcc)   run_config gcc -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo ;;
        # Sanitizer and clang builds use -O1: a third quicker to compile than
        # -O2 on CI's two cores, and as good for finding races, memory errors
        # and warnings. The benchmarks are built (-Werror) by the gcc row only.
        tsan)  run_config tsan -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
                   -DTASKDIST_SANITIZE=thread -DTASKDIST_BUILD_EXAMPLES=OFF -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        asan)  run_config asan -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
                   -DTASKDIST_SANITIZE=address,undefined -DTASKDIST_BUILD_EXAMPLES=OFF -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        clang) run_config clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DTASKDIST_BUILD_BENCHMARKS=OFF ;;
        # clang-tidy and cppcheck over every translation unit; builds nothing.
        lint)  bash scripts/lint.sh ;;
        *) echo "unknown configuration '$c' (gcc, tsan, asan, clang, lint)" >&2; exit 2 ;;
    esac
done
echo "=== all configurations passed: ${configs[*]}"
