#!/usr/bin/env bash
# Static analysis: clang-tidy 14 (.clang-tidy) and cppcheck 2.10
# (scripts/cppcheck/), over every translation unit of the tests, examples and
# benchmarks, and through them every library header. Exits nonzero on any
# finding. Needs what scripts/setup.sh installs.
#
# clang-tidy reads the flags of a clang++ build (build/lint), so that what it
# parses is what clang compiles; nothing is built. cppcheck reads the same
# compile database, with moodycamel's header made visible (see run_cppcheck).
#
# Cost: about 5.5 CPU-minutes; on two cores it took 3.3 minutes (clang-tidy
# 138 s, cppcheck 58 s), and up to 7.5 while other builds shared them. Every
# file is analysed, benchmarks included: the whole set fits CI's time, so
# none is left out.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
dir=build/lint
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [ -z "$tidy" ] || ! command -v cppcheck >/dev/null; then
    echo "lint: needs clang-tidy (14) and cppcheck; run scripts/setup.sh" >&2
    exit 2
fi

echo "=== lint: configure ($dir)"
mkdir -p build
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DTASKDIST_INSTALL=OFF >"$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; exit 1; }

# Every translation unit but Catch2's main (tests/catch_main.cpp), which is
# nothing but Catch2.
mapfile -t units < <(grep -o '"file": "[^"]*"' "$dir/compile_commands.json" | cut -d'"' -f4 |
                     grep -v '/tests/catch_main\.cpp$' | sort -u)

run_clang_tidy() {
    echo "=== lint: $("$tidy" --version | grep -o 'version [0-9.]*') over ${#units[@]} files, $jobs at a time"
    local out=$dir/clang-tidy
    rm -rf "$out" && mkdir -p "$out"
    # One log per file, printed whole, so that parallel runs do not interleave.
    export tidy dir out
    printf '%s\n' "${units[@]}" | xargs -P "$jobs" -n 1 bash -c '
        log=$out/$(echo "$1" | tr / _).log
        start=$SECONDS
        if "$tidy" -p "$dir" --quiet "$1" >"$log" 2>&1; then
            echo "  ok    $1 ($((SECONDS - start)) s)"
        else
            echo "  FAIL  $1 ($((SECONDS - start)) s)"; touch "$log.failed"
        fi' _
    if compgen -G "$out/*.failed" >/dev/null; then
        for f in "$out"/*.failed; do grep -v ' warnings\? generated\.$' "${f%.failed}" || true; done
        # A header's finding shows once per file that includes it: count each once.
        echo "=== lint: clang-tidy findings, by check:"
        cat "$out"/*.log | grep -oE '^[^ ]+:[0-9]+:[0-9]+: (warning|error): .*\[[^]]+\]$' |
            sed -E 's|/[^/ ]+/\.\./|/|g' | sort -u | grep -oE '\[[^],]+' | tr -d '[' | sort | uniq -c | sort -rn
        return 1
    fi
}

run_cppcheck() {
    echo "=== lint: $(cppcheck --version)"
    # cppcheck does not search the compiler's own include directories, so the
    # #error in detail/concurrentqueue.hpp would stop every file: give it
    # moodycamel's header (found as the compiler finds it) in a directory of
    # its own. Catch2 is not shown to it: scripts/cppcheck/catch2.cfg stands
    # in for its macros (why: see there). cppcheck takes include paths from
    # the compile database only, hence a copy of it with the directory added.
    local inc=$dir/cppcheck-include db=$dir/cppcheck-db cq
    cq=$(echo '#include <taskdist/detail/concurrentqueue.hpp>' |
         clang++ -std=c++20 -Iinclude -x c++ -M - | tr ' \\' '\n\n' | grep -m1 '/concurrentqueue\.h$')
    rm -rf "$inc" "$db" && mkdir -p "$inc" "$db"
    ln -s "$cq" "$inc/concurrentqueue.h"
    sed 's|"command": "\([^ ]*\) |"command": "\1 -I'"$PWD/$inc"' |' "$dir/compile_commands.json" >"$db/compile_commands.json"
    # cppcheck 2.10 gives up on a whole file (an "Internal Error" naming the
    # literal) when its loop analysis meets a chrono literal such as 100ms:
    # in loops, spell such a duration std::chrono::milliseconds(100).
    cppcheck --project="$db/compile_commands.json" -i tests/catch_main.cpp -j "$jobs" \
        --std=c++20 --enable=warning,performance,portability --inline-suppr \
        --library=scripts/cppcheck/catch2.cfg --suppressions-list=scripts/cppcheck/suppressions.txt \
        --error-exitcode=1 --quiet --template='{file}:{line}:{column}: {severity}: {message} [{id}]'
}

status=0
start=$SECONDS
run_clang_tidy || status=1
echo "=== lint: clang-tidy took $((SECONDS - start)) s"
start=$SECONDS
run_cppcheck || status=1
echo "=== lint: cppcheck took $((SECONDS - start)) s"
if [ $status -ne 0 ]; then
    echo "=== lint: FAILED (fix the findings, or suppress a false positive where it occurs, with its reason)"
    exit 1
fi
echo "=== lint: clean"
