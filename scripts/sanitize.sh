#!/usr/bin/env bash
# Runs the test suite under the address sanitizer, and the threaded kernels and forward passes
# under the thread sanitizer. Separate build folders keep the normal build untouched.
# Usage: scripts/sanitize.sh [address|thread|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
if [ "$which" = address ] || [ "$which" = all ]; then
  echo "== address sanitizer: the whole suite"
  # Leak checking is off: the test harness (XCTest, swift-testing) keeps allocations to exit.
  ASAN_OPTIONS=detect_leaks=0 swift test --no-parallel --sanitize=address --scratch-path .build-asan
fi
if [ "$which" = thread ] || [ "$which" = all ]; then
  echo "== thread sanitizer: threaded kernels, forward passes and verify"
  swift test --no-parallel --sanitize=thread --scratch-path .build-tsan --filter 'KernelTests|VerifyTests|NativeFormatTests'
fi
