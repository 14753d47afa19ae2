// One variant of the kernels, compiled by the including file under its target attribute with
// MK_VARIANT (its name), MK_ROW_TILE, MK_TOKEN_PANEL and MK_MAX_DOT_TOKENS defined, and optionally
// MK_HAS_F16C, MK_HAS_LOOKUP16 (with its `mk_lookup16`, the one instruction a variant names) and
// MK_HAS_X86_PAIR_PRODUCTS (the integer products of matrix_quantized.h with AVX2's instructions)
// and MK_HAS_VNNI (with VNNI's), MK_HAS_BF16_PAIRS (matrix_bf16_pairs.h's products with
// AVX512-BF16's `vdpbf16ps`) and MK_HAS_X86_MXCSR (those products with MXCSR's flushes).
// Otherwise the vectors are the compiler's, so one source serves every instruction set.
//
// Every output element is one sequence of operations whatever the variant, tile, edge, block or
// thread that computes it (the tests hold scalar references of both):
// - panel products (`multiply`): one fused multiply-add per k, in order, from zero;
// - dot products (`multiply_rows`): two sets of 16 lane chains of fused multiply-adds, over the
//   even and over the odd whole 16-element chunks of k, each in order; their lane-wise sum; its
//   lanes summed in order; then the rest of k in order.

#include "matrix_elements.h"
#include "matrix_tiles.h"
#include "elementwise.h"
#include "matrix_bf16_pairs.h"
#include "matrix_quantized.h"

// Tiles and dot products, once per weight format.
#define MK_ELEMENT f32
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT bf16
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT mxfp4
#define MK_PAIR 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT q8_0
#define MK_PAIR 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT q4_0
#define MK_PAIR 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT q4_K
#define MK_SUPER 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT q6_K
#define MK_SUPER 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT q5_K
#define MK_SUPER 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT f16
#define MK_PAIR 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT f8e4m3
#define MK_SCALED 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT mlx4
#define MK_TABLE 1
#define MK_SCALED 1
#define MK_AFFINE 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT mlx8
#define MK_SCALED 1
#define MK_AFFINE 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT mlx2
#define MK_TABLE 1
#define MK_SCALED 1
#define MK_AFFINE 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT
#define MK_ELEMENT e2m1
#define MK_TABLE 1
#define MK_SCALED 1
#include "matrix_element_kernels.h"
#undef MK_ELEMENT

#define MK_FORMAT_SWITCH(function, ...)                                         \
    switch (format) {                                                           \
    case MOECKPT_WEIGHTS_F32: function##_f32(__VA_ARGS__); break;               \
    case MOECKPT_WEIGHTS_BF16: function##_bf16(__VA_ARGS__); break;             \
    case MOECKPT_WEIGHTS_MXFP4: function##_mxfp4(__VA_ARGS__); break;           \
    case MOECKPT_WEIGHTS_Q8_0: function##_q8_0(__VA_ARGS__); break;             \
    case MOECKPT_WEIGHTS_Q4_0: function##_q4_0(__VA_ARGS__); break;             \
    case MOECKPT_WEIGHTS_Q4_K: function##_q4_K(__VA_ARGS__); break;             \
    case MOECKPT_WEIGHTS_Q6_K: function##_q6_K(__VA_ARGS__); break;             \
    case MOECKPT_WEIGHTS_Q5_K: function##_q5_K(__VA_ARGS__); break;             \
    case MOECKPT_WEIGHTS_F16: function##_f16(__VA_ARGS__); break;               \
    case MOECKPT_WEIGHTS_F8_E4M3_BLOCK_SCALED: function##_f8e4m3(__VA_ARGS__); break; \
    case MOECKPT_WEIGHTS_MLX_AFFINE4: function##_mlx4(__VA_ARGS__); break;      \
    case MOECKPT_WEIGHTS_MLX_AFFINE8: function##_mlx8(__VA_ARGS__); break;      \
    case MOECKPT_WEIGHTS_MLX_AFFINE2: function##_mlx2(__VA_ARGS__); break;      \
    case MOECKPT_WEIGHTS_MLX_E2M1: function##_e2m1(__VA_ARGS__); break;         \
    }

static void mk_multiply(
    moeckpt_weight_format format, const void *weight, const moeckpt_block_scales *scales, long row_begin,
    long row_end, long inputs, const float *x, long tokens, long valid_tokens, float *y, long outputs) {
    MK_FORMAT_SWITCH(gemm, weight, scales, row_begin, row_end, inputs, x, tokens, valid_tokens, y, outputs)
}

static void mk_multiply_rows(
    moeckpt_weight_format format, const void *weight, const moeckpt_block_scales *scales, long row_begin,
    long row_end, long inputs, const float *x, long tokens, float *y, long outputs) {
    MK_FORMAT_SWITCH(dots, weight, scales, row_begin, row_end, inputs, x, tokens, y, outputs)
}

static void mk_widen_rows(
    moeckpt_weight_format format, const void *weight, const moeckpt_block_scales *scales, long row_begin,
    long row_end, long columns, float *out) {
    MK_FORMAT_SWITCH(widen_rows, weight, scales, row_begin, row_end, columns, out)
}

static const moeckpt_kernels MK_GLUE(mk_kernels_, MK_VARIANT) = {
    .row_tile = MK_ROW_TILE,
    .token_panel = MK_TOKEN_PANEL,
    .max_dot_tokens = MK_MAX_DOT_TOKENS,
    .multiply = mk_multiply,
    .multiply_rows = mk_multiply_rows,
    .widen_rows = mk_widen_rows,
    .quantize_activations = mk_quantize_activations,
    .multiply_rows_quantized = mk_multiply_rows_quantized,
    .silu_multiply = mk_silu_multiply,
    .exp_shifted_sum = mk_exp_shifted_sum,
    .exp = mk_exp,
};
