// AVX-512: 8 rows x 32 tokens, 16 zmm accumulators of 32. And the same tiles compiled for AVX2,
// so that the tests check their logic on any x86-64-v3 machine.
#include "matrix_common.h"

#include <immintrin.h>

#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))), apply_to = function)
#define MK_VARIANT avx512
#define MK_HAS_F16C 1
#define MK_ROW_TILE 8
#define MK_TOKEN_PANEL 32
#define MK_MAX_DOT_TOKENS 4
#define MK_HAS_LOOKUP16 1
#define MK_HAS_X86_PAIR_PRODUCTS 1
#define mk_lookup16(table, indices) ((mk_f32x16)_mm512_permutexvar_ps((__m512i)(indices), (__m512)(table)))
#include "variant.h"
#pragma clang attribute pop

const moeckpt_kernels *moeckpt_kernels_avx512(void) { return &mk_kernels_avx512; }

#else

const moeckpt_kernels *moeckpt_kernels_avx512(void) { return NULL; }

#endif
