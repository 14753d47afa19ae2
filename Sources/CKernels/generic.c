// The variant every host runs: plain C vectors, mapped by the compiler to the baseline of the
// target (SSE2 on x86-64, NEON on arm64). On x86-64 it is the fallback for CPUs without AVX2 and
// FMA, where a vector fused multiply-add becomes calls to fmaf: slow, but the same results.
#include "matrix_common.h"

#define MK_VARIANT generic
#define MK_ROW_TILE 6
#define MK_TOKEN_PANEL 16
#define MK_MAX_DOT_TOKENS 4
#include "variant.h"

const moeckpt_kernels *moeckpt_kernels_generic(void) { return &mk_kernels_generic; }
