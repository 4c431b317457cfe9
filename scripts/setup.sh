#!/usr/bin/env bash
# Installs what taskdist's build, tests, examples and benchmarks need on
# Debian 12. Idempotent; uses sudo when not run as root.
set -euo pipefail
packages=(
    g++ clang cmake make pkg-config
    catch2 libfmt-dev libconcurrentqueue-dev libbenchmark-dev
    libtbb-dev libboost-dev libpng-dev doxygen
    libhiredis-dev redis-server
    libclang-rt-14-dev
    clang-tidy cppcheck
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
