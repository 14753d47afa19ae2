// The AVX-512 variant's tiles (8 x 32, 32-token panels) compiled for AVX2: only the tests use it,
// to check that logic on machines without AVX-512.
#include "matrix_common.h"

#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define MK_VARIANT avx512_logic
#define MK_HAS_F16C 1
#define MK_ROW_TILE 8
#define MK_TOKEN_PANEL 32
#define MK_MAX_DOT_TOKENS 4
#include "variant.h"
#pragma clang attribute pop

const moeckpt_kernels *moeckpt_kernels_avx512_logic_on_avx2(void) { return &mk_kernels_avx512_logic; }

#else

const moeckpt_kernels *moeckpt_kernels_avx512_logic_on_avx2(void) { return NULL; }

#endif
