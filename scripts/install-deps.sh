#!/usr/bin/env bash
# Installs, from Debian 12 packages only, everything Synod needs to build, test and run.
# Idempotent: when every package is present it returns at once without touching apt.
# Needs root or sudo when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libraft-dev liblz4-dev libuv1-dev libprotobuf-dev protobuf-compiler nlohmann-json3-dev
  libspdlog-dev libfmt-dev libcli11-dev libcurl4-openssl-dev libssl-dev
  prometheus-cpp-dev libhttp-parser-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3 iproute2 util-linux procps faketime clang-format nftables libjs-chart.js zlib1g-dev
  openssl
)
# The tests also drive the dashboard in a real browser.
if [[ "${1:-}" == --for-tests ]]; then
  packages+=(chromium chromium-driver python3-selenium)
fi
if [[ "${SYNOD_WITH_CLANG:-0}" == 1 ]]; then
  packages+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: missing packages (${missing[*]}) and neither root nor sudo; install them and retry" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
