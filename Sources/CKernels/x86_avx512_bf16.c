// The AVX-512 VNNI variant with AVX512-BF16 (Zen 4, Sapphire Rapids and later): the same source,
// whose BF16 products in ggml's arithmetic (matrix_bf16_pairs.h) are then `vdpbf16ps`, 32 products
// an instruction where the other variants take two fused multiply-adds and its flushes. The same
// results.
#include "matrix_common.h"

#include <immintrin.h>

#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c"))), apply_to = function)
#define MK_VARIANT avx512_bf16
#include "x86_avx512_settings.h"
#define MK_HAS_VNNI 1
#define MK_HAS_BF16_PAIRS 1
#include "variant.h"
#pragma clang attribute pop

const moeckpt_kernels *moeckpt_kernels_avx512_bf16(void) { return &mk_kernels_avx512_bf16; }

int moeckpt_cpu_runs_avx512_bf16_kernels(void) {
    __builtin_cpu_init();
    return moeckpt_cpu_runs_avx512_vnni_kernels() && __builtin_cpu_supports("avx512bf16");
}

#else

const moeckpt_kernels *moeckpt_kernels_avx512_bf16(void) { return NULL; }
int moeckpt_cpu_runs_avx512_bf16_kernels(void) { return 0; }

#endif
