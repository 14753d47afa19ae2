#ifndef MOECKPT_KERNELS_H
#define MOECKPT_KERNELS_H

// moeckpt's hot loops: the matrix products of linear layers (Y = W X on weights read in place in
// their dtype) and the vector exp of activations and softmax. One source (variant.h) is compiled once per instruction set with a
// function-level target attribute, and the caller picks a variant at run time (ggml's approach):
// no build flags, so the package builds as a versioned dependency, and every variant computes
// every element with the same sequence of operations (bit-identical results).

/// The weight formats the kernels read in place.
typedef enum moeckpt_weight_format {
    MOECKPT_WEIGHTS_F32 = 0,
    MOECKPT_WEIGHTS_BF16 = 1,
    /// OCP MXFP4 in llama.cpp's block_mxfp4 layout: per 32 elements, an E8M0 scale byte, then 16
    /// bytes whose low nibbles are elements 0-15 and high nibbles 16-31, each an E2M1 code.
    MOECKPT_WEIGHTS_MXFP4 = 2,
    /// ggml's Q8_0: per 32 elements, an F16 scale d, then 32 int8 q; the element is q d.
    MOECKPT_WEIGHTS_Q8_0 = 3,
    /// ggml's Q4_0 (18 bytes per 32 elements), Q4_K (144 per 256) and Q6_K (210 per 256).
    MOECKPT_WEIGHTS_Q4_0 = 4,
    MOECKPT_WEIGHTS_Q4_K = 5,
    MOECKPT_WEIGHTS_Q6_K = 6,
    /// IEEE half precision, widened exactly (subnormals, infinities and NaN payloads included).
    MOECKPT_WEIGHTS_F16 = 7,
    /// OCP FP8 E4M3 ("fn": no infinities, S.1111.111 is NaN), widened exactly, times its block's
    /// scale (`moeckpt_block_scales`): DeepSeek-V3's released weights.
    MOECKPT_WEIGHTS_F8_E4M3_BLOCK_SCALED = 8,
    /// MLX's affine codes (mlx-lm's quantized checkpoints), 4 bits (two per byte, the low nibble
    /// first) or 8 bits (a byte each): each is scale q + bias, its group's
    /// (`moeckpt_block_scales` with `biases`, one row high, a group wide), two rounded operations.
    MOECKPT_WEIGHTS_MLX_AFFINE4 = 9,
    MOECKPT_WEIGHTS_MLX_AFFINE8 = 10,
    /// MLX's affine codes of 2 bits (four per byte, the lowest bits first), as the 4-bit ones.
    MOECKPT_WEIGHTS_MLX_AFFINE2 = 11,
    /// MLX's E2M1 codes (mxfp4, nvfp4; two per byte, the low nibble first), widened exactly,
    /// times their group's scale (`moeckpt_block_scales`: E8M0 or E4M3 widened to fp32).
    MOECKPT_WEIGHTS_MLX_E2M1 = 12,
    /// ggml's Q5_K (176 bytes per 256 elements: Q4_K's scales, a fifth bit per element).
    MOECKPT_WEIGHTS_Q5_K = 13,
} moeckpt_weight_format;

/// The scales of a matrix stored in blocks of `rows` x `columns` elements: element (r, c), r
/// counted from the matrix's first row, is its stored value times
/// `values[(r / rows) * stride + c / columns]` (plus the same entry of `biases` for the affine
/// formats). `columns` is a multiple of 16. Only the block-scaled formats read it (NULL for the
/// others).
typedef struct moeckpt_block_scales {
    const float *values;
    long rows;
    long columns;
    long stride;
    /// The affine formats' offsets, laid out as `values` (NULL for FP8).
    const float *biases;
} moeckpt_block_scales;

/// One compiled variant of the kernels.
typedef struct moeckpt_kernels {
    /// Weight rows per register tile of `multiply`; threads split rows in multiples of it.
    long row_tile;
    /// Tokens per panel of the activations `multiply` reads and writes.
    long token_panel;
    /// Token counts up to this go through `multiply_rows` (dot products) instead.
    long max_dot_tokens;
    /// y[n, t] = sum_k weight[n, k] x[k, t] for n in [row_begin, row_end), all `tokens` (whole
    /// panels): x is [inputs, tokens] and y [outputs, tokens] in panels of `token_panel`. Only the
    /// first `valid_tokens` tokens are guaranteed to be computed. Block formats need `inputs` a
    /// multiple of their block.
    void (*multiply)(
        moeckpt_weight_format format, const void *weight, const moeckpt_block_scales *scales, long row_begin,
        long row_end, long inputs, const float *x, long tokens, long valid_tokens, float *y, long outputs);
    /// y[t, n] = sum_k weight[n, k] x[t, k] for n in [row_begin, row_end), t < tokens, row-major:
    /// x [tokens, inputs], y [tokens, outputs].
    void (*multiply_rows)(
        moeckpt_weight_format format, const void *weight, const moeckpt_block_scales *scales, long row_begin,
        long row_end, long inputs, const float *x, long tokens, float *y, long outputs);
    /// out[r - row_begin][c] = weight[r, c] widened to fp32 for r in [row_begin, row_end), c <
    /// columns: rows of a matrix read where they are (an embedding's, token by token).
    void (*widen_rows)(
        moeckpt_weight_format format, const void *weight, const moeckpt_block_scales *scales, long row_begin,
        long row_end, long columns, float *out);
    /// ggml's conversion of `tokens` rows of `inputs` activations for its products on `format`
    /// (Q8_0 for Q8_0 and Q4_0 weights, Q8_K for Q4_K, Q5_K and Q6_K, BF16 for BF16), into `out`,
    /// `moeckpt_quantized_activation_bytes(format, inputs)` per row.
    void (*quantize_activations)(moeckpt_weight_format format, const float *x, long tokens, long inputs, void *out);
    /// y[t, n] = weight row n times quantized activation row t (`quantize_activations`), as ggml
    /// computes it: integer products within blocks (matrix_quantized.h), BF16 pairs
    /// (matrix_bf16_pairs.h), for n in [row_begin, row_end), t < tokens: y [tokens, outputs].
    void (*multiply_rows_quantized)(
        moeckpt_weight_format format, const void *weight, long row_begin, long row_end, long inputs, const void *x,
        long tokens, float *y, long outputs);
    /// gate[i] = silu(gate[i]) * up[i] = gate / (1 + e^-gate) * up, for i < count.
    void (*silu_multiply)(float *gate, const float *up, long count);
    /// p[i] = e^(p[i] - shift) for i < count; returns their sum (16 lane sums over the whole
    /// 16-element chunks, summed lane by lane, then the rest in order).
    float (*exp_shifted_sum)(float *p, long count, float shift);
    /// y[i] = e^x[i] for i < count (16 at a time with the vector exp, the rest with expf).
    void (*exp)(const float *x, float *y, long count);
} moeckpt_kernels;

/// Bytes of one row of `inputs` activations converted for ggml's products on `format`
/// (`quantize_activations`); 0 where the format has none or `inputs` is not a whole number of
/// its blocks (32 elements, or 256 for the k-quants; BF16 takes any, padded to 32).
long moeckpt_quantized_activation_bytes(moeckpt_weight_format format, long inputs);

/// Plain C vectors the compiler maps to the host's baseline (SSE2 on x86-64, NEON on arm64).
const moeckpt_kernels *moeckpt_kernels_generic(void);
/// AVX2 + FMA (x86-64-v3): 6 x 16 register tiles. NULL where not built (not x86-64, or portable).
const moeckpt_kernels *moeckpt_kernels_avx2(void);
/// AVX-512 (F, BW, DQ, VL): 8 x 32 tiles on 32 zmm registers. NULL where not built.
const moeckpt_kernels *moeckpt_kernels_avx512(void);
/// The AVX-512 variant with VNNI (its integer products in one instruction). NULL where not built.
const moeckpt_kernels *moeckpt_kernels_avx512_vnni(void);
/// The VNNI variant with AVX512-BF16 (`vdpbf16ps` for BF16 weights in ggml's arithmetic). NULL
/// where not built.
const moeckpt_kernels *moeckpt_kernels_avx512_bf16(void);
/// The AVX-512 variant's tiles compiled for AVX2, so that their logic is tested on any x86-64-v3
/// machine (the instruction selection is the compiler's). NULL where not built.
const moeckpt_kernels *moeckpt_kernels_avx512_logic_on_avx2(void);

/// Whether this CPU and OS run the AVX2 (x86-64-v3), AVX-512, AVX-512 VNNI and AVX-512 BF16
/// variants.
int moeckpt_cpu_runs_avx2_kernels(void);
int moeckpt_cpu_runs_avx512_kernels(void);
int moeckpt_cpu_runs_avx512_vnni_kernels(void);
int moeckpt_cpu_runs_avx512_bf16_kernels(void);

#endif
