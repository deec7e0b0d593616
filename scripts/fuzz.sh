#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for SECONDS (default 60),
# starting from the committed corpus in fuzz/corpus/<target>; new finds go to
# build-fuzz/corpus/<target>, crashes to build-fuzz/artifacts/. Exits non-zero on the first crash.
#   scripts/fuzz.sh [SECONDS] [TARGET...]        default: every target
#   SYNOD_FUZZ_KEEP=1 scripts/fuzz.sh ...        then folds the finds into fuzz/corpus (minimized)
# The node targets (peer_handlers_fuzz, http_api_fuzz) run a whole node in a private network
# namespace of the process (root, or unprivileged user namespaces): nothing leaves the machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(beacon_fuzz timestamp_fuzz frame_fuzz http_request_fuzz
  replicated_state_fuzz peer_handlers_fuzz http_api_fuzz)
cd "$root"
SYNOD_WITH_CLANG=1 scripts/install-deps.sh
echo "==> building the fuzz targets (clang, build-fuzz/)" >&2
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSYNOD_FUZZ=ON -DSYNOD_SANITIZE=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build build-fuzz --target "${targets[@]}" peer_seeds -j "$(nproc)"
build-fuzz/fuzz/peer_seeds build-fuzz/seeds/peer_handlers_fuzz >/dev/null

for target in "${targets[@]}"; do
  found="build-fuzz/corpus/$target"
  mkdir -p "$found" "fuzz/corpus/$target" build-fuzz/artifacts build-fuzz/seeds/"$target"
  options=(-max_total_time="$seconds" -max_len=4096 -timeout=20 -rss_limit_mb=4096
    -artifact_prefix=build-fuzz/artifacts/"$target"-)
  [ "$target" = http_api_fuzz ] && options+=(-dict=fuzz/http_api.dict -max_len=8192)
  [ "$target" = peer_handlers_fuzz ] && options+=(-max_len=16384)
  rm -rf "build-fuzz/work/$target"
  echo "==> $target for ${seconds}s" >&2
  SYNOD_FUZZ_WORKDIR="$root/build-fuzz/work/$target" \
    "build-fuzz/fuzz/$target" "${options[@]}" "$found" "fuzz/corpus/$target" \
    "build-fuzz/seeds/$target"
  if [ -n "${SYNOD_FUZZ_KEEP:-}" ]; then
    merged="build-fuzz/merged/$target"
    rm -rf "$merged" && mkdir -p "$merged"
    SYNOD_FUZZ_WORKDIR="$root/build-fuzz/work/$target-merge" \
      "build-fuzz/fuzz/$target" -merge=1 "${options[@]:1}" "$merged" "fuzz/corpus/$target" "$found" \
      "build-fuzz/seeds/$target"
    rm -rf "fuzz/corpus/$target" && mv "$merged" "fuzz/corpus/$target"
    echo "==> fuzz/corpus/$target: $(ls "fuzz/corpus/$target" | wc -l) inputs" >&2
  fi
done
