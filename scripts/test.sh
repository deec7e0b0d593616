#!/usr/bin/env bash
# The test command: installs what is missing (Debian 12, root or sudo), builds Synod twice
# (Release, and ASan+UBSan) and runs every test: the unit tests in both builds, the integration
# tests under the sanitizers (where they also find memory errors and undefined behaviour in the
# paths they drive), the chaos, browser and heavy scenarios (and the "release" integration tests)
# in the release build. Exit status 0 only if all pass.
#   scripts/test.sh            both builds
#   SYNOD_TEST_BUILDS=release scripts/test.sh   one of: release, sanitize
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh --for-tests

jobs=$(nproc)
builds=${SYNOD_TEST_BUILDS:-"release sanitize"}
for build in $builds; do
  case $build in
    release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
    # -O1 -g1 with assertions on: the sanitizers' recommended optimisation, line tables for their
    # reports, and a build quicker than -O2 -g.
    sanitize) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNOD_SANITIZE=ON
                                     "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1") ;;
    *) echo "unknown build '$build' (release, sanitize)" >&2; exit 2 ;;
  esac
  echo "==> $build build in $dir" >&2
  cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "==> $build tests" >&2
  # The chaos run checks the cluster's behaviour and the browser run the page, not memory: once,
  # in the release build; so are the heavy scenarios (tests/CMakeLists.txt says why). Each
  # integration test runs once, sanitized, which keeps the whole run within CI's 30 minutes; those
  # labelled "release" also run in the release build, the binary users run.
  selection=(-L 'unit|chaos|browser|heavy|release')
  [[ $build == sanitize ]] && selection=(-LE 'chaos|browser|heavy')
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 300 "${selection[@]}"
done
echo "==> all tests passed ($builds)" >&2
