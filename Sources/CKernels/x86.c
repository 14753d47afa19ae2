// The x86-64 variants: the same source as generic.c under function-level target attributes, so
// that no build flag is needed (a package with flags cannot be a versioned dependency), and the
// CPU check that picks one at run time. The portable configuration (MOECKPT_PORTABLE, as every
// non-x86 host builds) leaves them out.
#include "matrix_common.h"

#include <immintrin.h>

#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)

// AVX2 + FMA: 6 rows x 16 tokens, 12 of the 16 ymm registers. Dot products win over the tiles up
// to about 4 tokens (Zen 3, 1024 -> 3584, 2 threads: 2 tokens 0.37 ms against 0.52, 4 tokens
// 0.50 against 0.53, 8 tokens 1.03 against 0.57).
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define MK_VARIANT avx2
#define MK_HAS_F16C 1
#define MK_ROW_TILE 6
#define MK_TOKEN_PANEL 16
#define MK_MAX_DOT_TOKENS 4
#define MK_HAS_X86_PAIR_PRODUCTS 1
#define MK_HAS_X86_MXCSR 1
#include "variant.h"
#undef MK_HAS_X86_PAIR_PRODUCTS
#undef MK_HAS_X86_MXCSR
#undef MK_VARIANT
#undef MK_HAS_F16C
#undef MK_ROW_TILE
#undef MK_TOKEN_PANEL
#undef MK_MAX_DOT_TOKENS
#pragma clang attribute pop

const moeckpt_kernels *moeckpt_kernels_avx2(void) { return &mk_kernels_avx2; }

int moeckpt_cpu_runs_avx2_kernels(void) {
    __builtin_cpu_init();  // __builtin_cpu_supports also checks that the OS saves the registers
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

int moeckpt_cpu_runs_avx512_kernels(void) {
    __builtin_cpu_init();
    return moeckpt_cpu_runs_avx2_kernels() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

#else

const moeckpt_kernels *moeckpt_kernels_avx2(void) { return NULL; }
int moeckpt_cpu_runs_avx2_kernels(void) { return 0; }
int moeckpt_cpu_runs_avx512_kernels(void) { return 0; }

#endif
