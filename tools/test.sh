#!/usr/bin/env bash
# The whole test suite: set up, then build and run every test twice — a release build, and an
# AddressSanitizer + UndefinedBehaviorSanitizer build — with warnings as errors.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/tools/setup.sh"
jobs=$(nproc)

echo "== release build"
# Every option this pass needs is set here, whatever an earlier run.sh left in the cache (it builds without
# tests); ctest fails when it finds no test rather than passing on nothing.
"$here/tools/build.sh" "$here/build" -DHFE_BUILD_TESTS=ON -DHFE_BUILD_BENCH=ON -DHFE_SANITIZE=
(cd "$here/build" && ctest --output-on-failure --no-tests=error -j "$jobs" --timeout 900)

echo "== address + undefined sanitizer build"
"$here/tools/build.sh" "$here/build-asan" -DHFE_BUILD_TESTS=ON -DHFE_SANITIZE=address -DHFE_BUILD_BENCH=OFF
# The installed-package test links a consumer without the sanitizer runtime: it runs in the release pass.
(cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure --no-tests=error -j "$jobs" --timeout 1800 -E install_consumer)

echo "== thread sanitizer build (lock-free rings, pipelined appends)"
cmake -S "$here" -B "$here/build-tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHFE_WERROR=ON \
  -DHFE_BUILD_TESTS=ON -DHFE_SANITIZE=thread -DHFE_BUILD_BENCH=OFF >/dev/null
cmake --build "$here/build-tsan" -j "$jobs" --target ring_test pipelined_append_test
(cd "$here/build-tsan" && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure --no-tests=error -j "$jobs" \
   -R "Ring(Test|ConcurrentTest)|PipelinedAppendTest")
