// What Swift's Relaxed.multiplyAdd gives on baseline x86-64: SSE2 multiply then add (no FMA).
#include "matrix_common.h"
#define __builtin_elementwise_fma(a, b, c) ((a) * (b) + (c))
#define __builtin_fmaf(a, b, c) ((a) * (b) + (c))
#define MK_VARIANT muladd
#define MK_ROW_TILE 6
#define MK_TOKEN_PANEL 16
#define MK_MAX_DOT_TOKENS 4
#include "variant.h"
const moeckpt_kernels *muladd_kernels(void) { return &mk_kernels_muladd; }
