#!/usr/bin/env bash
# Sets up (Debian 12), builds and runs the demo: one skewed workload replayed
# through every distributor. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DTASKDIST_BUILD_TESTS=OFF \
      -DTASKDIST_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/demo --target demo -j"$(nproc)" >/dev/null
exec ./build/demo/examples/demo "$@"
