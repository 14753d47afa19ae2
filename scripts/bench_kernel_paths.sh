#!/usr/bin/env bash
# The matrix kernel on three code paths, one thread, in one process, interleaved (3 rounds):
#   - the AVX2 + FMA variant (C under a function-level target attribute: what moeckpt runs);
#   - the same source with multiply-then-add on baseline x86-64 (SSE2): the code Swift's
#     `Relaxed.multiplyAdd` gets without a target CPU;
#   - the generic variant on baseline x86-64, where each lane's fused multiply-add is an fmaf call
#     (what Swift SIMD `addProduct` gets without a target CPU).
# Usage: scripts/bench_kernel_paths.sh [tokens]   (512 tokens: the tiles; 1-4: dot products)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kernels="$root/Sources/CKernels"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in generic x86 x86_avx512 x86_avx512_logic; do clang -O2 -I"$kernels/include" -c "$kernels/$f.c" -o "$work/$f.o"; done
clang -O2 -I"$kernels" -I"$kernels/include" -c "$root/scripts/kernel-paths/muladd.c" -o "$work/muladd.o"
clang -O2 -I"$kernels/include" "$root/scripts/kernel-paths/bench.c" "$work"/*.o -lm -o "$work/bench"
"$work/bench" "${1:-512}"
