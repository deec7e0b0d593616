#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 60).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
cd "$root"
SYNOD_WITH_CLANG=1 scripts/install-deps.sh
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSYNOD_FUZZ=ON -DSYNOD_SANITIZE=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build build-fuzz --target beacon_fuzz timestamp_fuzz frame_fuzz http_request_fuzz \
  replicated_state_fuzz -j "$(nproc)"
for target in beacon_fuzz timestamp_fuzz frame_fuzz http_request_fuzz replicated_state_fuzz; do
  mkdir -p "build-fuzz/corpus/$target"
  echo "==> $target for ${seconds}s" >&2
  "build-fuzz/fuzz/$target" -max_total_time="$seconds" -max_len=4096 "build-fuzz/corpus/$target"
done
