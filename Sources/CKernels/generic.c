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

long moeckpt_quantized_activation_bytes(moeckpt_weight_format format, long inputs) {
    if (inputs <= 0) return 0;
    switch (format) {
    case MOECKPT_WEIGHTS_Q8_0:
    case MOECKPT_WEIGHTS_Q4_0: return inputs % 32 == 0 ? inputs + inputs / 32 * 8 : 0;  // codes, scales, sums
    case MOECKPT_WEIGHTS_Q4_K:
    case MOECKPT_WEIGHTS_Q5_K:
    case MOECKPT_WEIGHTS_Q6_K: return inputs % 256 == 0 ? inputs / 256 * (long)sizeof(mk_q8_K_activations) : 0;
    case MOECKPT_WEIGHTS_BF16: return MK_BF16_CHUNKS(inputs) * 64;  // BF16s, zero-padded to a chunk of 32
    default: return 0;
    }
}
