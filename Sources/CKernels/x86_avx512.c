// AVX-512: 8 rows x 32 tokens, 16 zmm accumulators of 32. And the same tiles compiled for AVX2,
// so that the tests check their logic on any x86-64-v3 machine.
#include "matrix_common.h"

#include <immintrin.h>

#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))), apply_to = function)
#define MK_VARIANT avx512
#include "x86_avx512_settings.h"
#include "variant.h"
#pragma clang attribute pop

const moeckpt_kernels *moeckpt_kernels_avx512(void) { return &mk_kernels_avx512; }

#else

const moeckpt_kernels *moeckpt_kernels_avx512(void) { return NULL; }

#endif
