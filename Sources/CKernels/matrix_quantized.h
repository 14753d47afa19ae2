// Integer dot products on quantized activations: the arithmetic llama.cpp runs ggml's block
// formats with (moeckpt's `--arithmetic ggml`, docs/PERFORMANCE.md). Part of a variant
// (variant.h), compiled under its target attribute.
//
// The activations of each token are quantized once per product, as ggml's reference functions do:
// - for Q8_0 and Q4_0 weights, to Q8_0 (quantize_row_q8_0_ref): per 32, amax = max |x| (NaN
//   lanes left out), d = amax / 127, q = roundf(x (1 / d)) (0 where d is 0), d rounded to F16;
// - for Q4_K, Q5_K and Q6_K, to Q8_K (quantize_row_q8_K_ref): per 256, max = the first element of
//   the largest |x|, iscale = -127 / max, q = min(127, round-half-even(iscale x)), d = 1 / iscale
//   (fp32), and the sum of q per 32 (for the k-quants' minimums).
// Then each weight row times each activation row is exact integer arithmetic within its block
// and fp32 arithmetic across blocks:
// - k-quant lanes: per 32 elements, 8 int32 lanes, lane l the exact sum over elements 4l..4l+3 of
//   weight code times activation code, times the sub-block scale (Q6_K: each 16's own);
// - Q8_0, Q4_0 (code q - 8): per block b, the exact integer total T of its 32 products, and
//   chain b mod 8 (a lane of 8) takes fma(dw db, T, chain) (dw db: the two F16 scales' product,
//   exact); the row is the lane sum, in order;
// - Q4_K, Q5_K, Q6_K: per super-block, the lanes of its 8 sub-blocks summed exactly (under 2^24,
//   so converted exactly), then one chain fma(dw dx, lanes, chain); Q4_K and Q5_K also keep a
//   scalar chain fma(dmin dx, sum of m_j times sub-block j's activation sum, minimums); the row is
//   the lane sum, in order, minus the minimums.
// The values of ggml's products, within rounding (ggml sums its fp32 partial sums in another
// order, which also differs between its CPU paths); every variant here gives the same bits.

typedef int8_t mk_i8x32 __attribute__((ext_vector_type(32)));
typedef uint8_t mk_u8x32 __attribute__((ext_vector_type(32)));
typedef int16_t mk_i16x16 __attribute__((ext_vector_type(16)));
typedef int32_t mk_i32x8 __attribute__((ext_vector_type(8)));
typedef int32_t mk_i32x16 __attribute__((ext_vector_type(16)));

/// acc plus the 8 lanes of 32 products: lane l gets (l < 4 ? low : high) times the sum over
/// elements 4l..4l+3 of a b, a unsigned; exact for a <= 128, |b| <= 127 (every pair sum fits an
/// int16).
MK_INLINE mk_i32x8 mk_add_lanes4(mk_i32x8 acc, mk_u8x32 a, mk_i8x32 b, int16_t low, int16_t high) {
#if MK_HAS_X86_PAIR_PRODUCTS
    // Pairs of products summed into int16, then pairs of those times the scale into int32 (with
    // VNNI, that and the sum in one instruction).
    __m256i pairs = _mm256_maddubs_epi16((__m256i)a, (__m256i)b);
    __m256i scales = _mm256_setr_epi16(low, low, low, low, low, low, low, low, high, high, high, high, high, high, high, high);
#if MK_HAS_VNNI
    return (mk_i32x8)_mm256_dpwssd_epi32((__m256i)acc, pairs, scales);
#else
    return acc + (mk_i32x8)_mm256_madd_epi16(pairs, scales);
#endif
#else
    typedef int16_t i16x32 __attribute__((ext_vector_type(32)));
    i16x32 products = __builtin_convertvector(a, i16x32) * __builtin_convertvector(b, i16x32);
    mk_i16x16 pairs = __builtin_shufflevector(products, products, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
        + __builtin_shufflevector(products, products, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const mk_i32x16 select = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    mk_i32x16 scaled = __builtin_convertvector(pairs, mk_i32x16) * (low + select * (high - low));
    return acc + __builtin_shufflevector(scaled, scaled, 0, 2, 4, 6, 8, 10, 12, 14)
        + __builtin_shufflevector(scaled, scaled, 1, 3, 5, 7, 9, 11, 13, 15);
#endif
}

/// The same with scale 1 (with VNNI, the 4 products and their sum in one instruction).
MK_INLINE mk_i32x8 mk_add_products4(mk_i32x8 acc, mk_u8x32 a, mk_i8x32 b) {
#if MK_HAS_VNNI
    return (mk_i32x8)_mm256_dpbusd_epi32((__m256i)acc, (__m256i)a, (__m256i)b);
#else
    return mk_add_lanes4(acc, a, b, 1, 1);
#endif
}

/// Signed a times b as |a| (unsigned) times b with a's sign (ggml's x86 way), for |a| <= 128.
MK_INLINE void mk_move_signs(mk_i8x32 a, mk_i8x32 b, mk_u8x32 *magnitude, mk_i8x32 *signed_b) {
#if MK_HAS_X86_PAIR_PRODUCTS
    *magnitude = (mk_u8x32)_mm256_sign_epi8((__m256i)a, (__m256i)a);
    *signed_b = (mk_i8x32)_mm256_sign_epi8((__m256i)b, (__m256i)a);
#else
    mk_i8x32 negative = (mk_i8x32)(a < 0);  // all ones where a < 0
    *magnitude = (mk_u8x32)((a ^ negative) - negative);
    *signed_b = (b ^ negative) - negative;
#endif
}

MK_INLINE float mk_lane_sum8(mk_f32x8 v) {
    float sum = v[0];
    for (int lane = 1; lane < 8; lane++) sum += v[lane];
    return sum;
}

MK_INLINE mk_i8x32 mk_load_i8x32(const void *p) {
    mk_i8x32 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/// 16 bytes' low nibbles, then their high nibbles (ggml's order within Q4_0 and Q4_K blocks).
MK_INLINE mk_u8x32 mk_nibbles32(const unsigned char *p) {
    mk_u8x16 bytes = mk_load_u8x16(p);
    return __builtin_shufflevector(
        bytes & 0xF, bytes >> 4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31);
}

/// Where a lane is NaN, `a > b` is false: NaN lanes are left out of a maximum.
MK_INLINE mk_f32x16 mk_max_of(mk_f32x16 a, mk_f32x16 b) {
    mk_u32x16 take = (mk_u32x16)(a > b);
    return (mk_f32x16)(((mk_u32x16)a & take) | ((mk_u32x16)b & ~take));
}

MK_INLINE mk_f32x16 mk_abs16(mk_f32x16 v) { return (mk_f32x16)((mk_u32x16)v & 0x7FFFFFFFu); }

/// v limited to [-127, 127], NaN to 0: what a code can be (finite inputs never reach the limits
/// by more than rounding).
MK_INLINE mk_f32x16 mk_code_range(mk_f32x16 v) {
    mk_u32x16 high = (mk_u32x16)(v > 127.0f), low = (mk_u32x16)(v < -127.0f), inside = (mk_u32x16)(v == v) & ~high & ~low;
    return (mk_f32x16)(((mk_u32x16)v & inside) | ((mk_u32x16)(mk_f32x16)127.0f & high) | ((mk_u32x16)(mk_f32x16)-127.0f & low));
}

/// The value an F16 keeps of a non-negative float (round to nearest even), widened back.
MK_INLINE float mk_f16_rounded(float v) {
    if (!(v < 65520.0f)) return v != v ? v : INFINITY;  // 65520 and above round to infinity
    if (v < 6.103515625e-05f) {                         // below 2^-14: F16 subnormals, steps of 2^-24
        const float magic = 12582912.0f;
        return ((v * 16777216.0f + magic) - magic) * 5.9604644775390625e-08f;
    }
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & ~0x1FFFu;
    return mk_from_bits(bits);
}

/// One token's Q8_0 activations of k elements: the codes (k bytes), then each block's scale (F16
/// rounded, widened: k / 32 floats), then each block's sum of codes (k / 32 int32).
#define MK_Q8_0_SCALES(row, k) ((const float *)((const unsigned char *)(row) + (k)))
#define MK_Q8_0_SUMS(row, k) ((const int32_t *)((const unsigned char *)(row) + (k) + (k) / 8))

/// ggml's Q8_0 of one token's k (a multiple of 32) activations, into that layout.
static void mk_quantize_q8_0(const float *x, long k, unsigned char *out) {
    typedef int32_t i32x16 __attribute__((ext_vector_type(16)));
    typedef int8_t i8x16 __attribute__((ext_vector_type(16)));
    for (long b = 0; b < k / 32; b++) {
        mk_f32x16 low = mk_load16(x + 32 * b), high = mk_load16(x + 32 * b + 16);
        mk_f32x16 lanes = mk_max_of(mk_abs16(low), mk_abs16(high));
        float amax = 0;
        for (int lane = 0; lane < 16; lane++) amax = lanes[lane] > amax ? lanes[lane] : amax;
        float d = amax / 127.0f, inverse = d != 0 ? 1.0f / d : 0.0f, scale = mk_f16_rounded(d);
        int32_t sum = 0;
        for (int half = 0; half < 2; half++) {
            mk_f32x16 v = mk_code_range((half == 0 ? low : high) * inverse);
            // roundf: the truncation, plus one away from zero where the rest is a half or more.
            mk_f32x16 truncated = __builtin_convertvector(__builtin_convertvector(v, i32x16), mk_f32x16), rest = v - truncated;
            i32x16 q = __builtin_convertvector(truncated, i32x16) + (i32x16)(rest >= 0.5f) * -1 + (i32x16)(rest <= -0.5f);
            i8x16 codes = __builtin_convertvector(q, i8x16);
            memcpy(out + 32 * b + 16 * half, &codes, sizeof codes);
            sum += __builtin_reduce_add(q);
        }
        memcpy(out + k + 4 * b, &scale, sizeof scale);
        memcpy(out + k + k / 8 + 4 * b, &sum, sizeof sum);
    }
}

/// ggml's Q8_K of one token's k (a multiple of 256) activations, with the sums per 32.
static void mk_quantize_q8_K(const float *x, long k, mk_q8_K_activations *out) {
    typedef int32_t i32x16 __attribute__((ext_vector_type(16)));
    typedef int8_t i8x16 __attribute__((ext_vector_type(16)));
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer, half to even
    for (long s = 0; s < k / 256; s++) {
        const float *v = x + 256 * s;
        mk_f32x16 lanes = 0;
        for (int i = 0; i < 256; i += 16) lanes = mk_max_of(mk_abs16(mk_load16(v + i)), lanes);
        float amax = 0;
        for (int lane = 0; lane < 16; lane++) amax = lanes[lane] > amax ? lanes[lane] : amax;
        memset(&out[s], 0, sizeof out[s]);
        if (amax == 0) continue;
        float max = 0;  // the first element of that magnitude, with its sign
        for (int i = 0; i < 256; i += 16) {
            mk_f32x16 chunk = mk_load16(v + i);
            if (!__builtin_reduce_or((mk_abs16(chunk) == amax))) continue;
            for (int j = 0; j < 16; j++) {
                if (fabsf(chunk[j]) == amax) {
                    max = chunk[j];
                    break;
                }
            }
            break;
        }
        float iscale = -127.0f / max;
        for (int i = 0; i < 256; i += 16) {
            mk_f32x16 rounded = (mk_code_range(mk_load16(v + i) * iscale) + magic) - magic;
            i32x16 q = __builtin_convertvector(rounded, i32x16);
            i8x16 codes = __builtin_convertvector(q, i8x16);
            memcpy(out[s].q + i, &codes, sizeof codes);
            out[s].sums[i / 32] += (int16_t)__builtin_reduce_add(q);
        }
        out[s].d = 1.0f / iscale;
    }
}

static void mk_quantize_activations(moeckpt_weight_format format, const float *x, long tokens, long inputs, void *out) {
    long bytes = moeckpt_quantized_activation_bytes(format, inputs);
    for (long t = 0; t < tokens; t++) {
        void *row = (unsigned char *)out + t * bytes;
        if (format == MOECKPT_WEIGHTS_Q8_0 || format == MOECKPT_WEIGHTS_Q4_0) mk_quantize_q8_0(x + t * inputs, inputs, row);
        else if (format == MOECKPT_WEIGHTS_BF16) mk_round_bf16(x + t * inputs, inputs, row);
        else if (bytes > 0) mk_quantize_q8_K(x + t * inputs, inputs, row);
    }
}

// The integer codes of 32 weights of a block (Q8_0, Q4_0: block b) or sub-block (the k-quants:
// elements 32 j to 32 j + 31 of a super-block).
MK_INLINE mk_i8x32 mk_q8_0_codes32(const unsigned char *block) { return mk_load_i8x32(block + 2); }
MK_INLINE mk_i32x8 mk_q8_0_lanes(mk_i8x32 codes, const int8_t *x) {
    mk_u8x32 magnitude;
    mk_i8x32 signed_x;
    mk_move_signs(codes, mk_load_i8x32(x), &magnitude, &signed_x);
    return mk_add_products4((mk_i32x8)0, magnitude, signed_x);
}
/// Q4_0's codes q (0-15) times the activations; the offset, 8 times the activations' sum, is taken
/// from the block's total (`MK_Q4_0_OFFSET`), so that no sign has to move.
MK_INLINE mk_u8x32 mk_q4_0_codes32(const unsigned char *block) { return mk_nibbles32(block + 2); }
MK_INLINE mk_i32x8 mk_q4_0_lanes(mk_u8x32 codes, const int8_t *x) { return mk_add_products4((mk_i32x8)0, codes, mk_load_i8x32(x)); }
#define MK_Q8_0_OFFSET 0
#define MK_Q4_0_OFFSET 8

/// Each byte's bits `shift` up, under `mask` (16-bit shifts: the mask drops the neighbour's bits).
MK_INLINE mk_u8x32 mk_bits(mk_u8x32 bytes, int shift, uint8_t mask) {
    typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
    return (mk_u8x32)((u16x16)bytes >> (uint16_t)shift) & mask;
}
MK_INLINE mk_u8x32 mk_load_u8x32(const unsigned char *p) {
    mk_u8x32 v;
    memcpy(&v, p, sizeof v);
    return v;
}
/// The codes of sub-blocks 2p and 2p + 1 of a Q4_K super-block (low and high nibbles of 32 bytes),
/// with Q5_K's fifth bits where `fifth` is not NULL.
MK_INLINE void mk_k4_codes64(const unsigned char *nibbles, const unsigned char *fifth, int p, mk_u8x32 *even, mk_u8x32 *odd) {
    mk_u8x32 bytes = mk_load_u8x32(nibbles + 32 * p);
    *even = bytes & 0xF;
    *odd = mk_bits(bytes, 4, 0xF);
    if (fifth) {
        mk_u8x32 high = mk_load_u8x32(fifth);
        *even |= mk_bits(high, 2 * p, 1) << 4;
        *odd |= mk_bits(high, 2 * p + 1, 1) << 4;
    }
}
/// Q6_K's codes q - 32 of elements 32 j to 32 j + 31 (two 32-byte runs: low nibbles, high pairs).
MK_INLINE mk_i8x32 mk_q6_K_codes32(const unsigned char *block, int j) {
    mk_u8x32 low = mk_bits(mk_load_u8x32(block + (j >> 2) * 64 + (j & 1) * 32), ((j & 3) >> 1) * 4, 0xF);
    mk_u8x32 high = mk_bits(mk_load_u8x32(block + 128 + (j >> 2) * 32), (j & 3) * 2, 3);
    return (mk_i8x32)(low | high << 4) - 32;
}

/// The lanes of two blocks' products summed in fours: lanes 0-3 the first block's, 4-7 the second's.
MK_INLINE mk_i32x8 mk_pair_sums(mk_i32x8 first, mk_i32x8 second) {
    return __builtin_shufflevector(first, second, 0, 1, 2, 3, 8, 9, 10, 11)
        + __builtin_shufflevector(first, second, 4, 5, 6, 7, 12, 13, 14, 15);
}
/// Two pairs' sums (blocks 0, 1 and 2, 3) in twos: lanes [0 0 2 2 1 1 3 3] by block.
MK_INLINE mk_i32x8 mk_quad_sums(mk_i32x8 first, mk_i32x8 second) {
    return __builtin_shufflevector(first, second, 0, 1, 8, 9, 4, 5, 12, 13)
        + __builtin_shufflevector(first, second, 2, 3, 10, 11, 6, 7, 14, 15);
}
/// Two quads' sums (blocks 0-3 and 4-7): the 8 blocks' totals, in block order.
MK_INLINE mk_i32x8 mk_block_totals(mk_i32x8 first, mk_i32x8 second) {
    mk_i32x8 totals = __builtin_shufflevector(first, second, 0, 2, 4, 6, 8, 10, 12, 14)
        + __builtin_shufflevector(first, second, 1, 3, 5, 7, 9, 11, 13, 15);
    return __builtin_shufflevector(totals, totals, 0, 2, 1, 3, 4, 6, 5, 7);
}

/// The F16 scales of 8 blocks `stride` bytes apart, widened (as `mk_f16_scale`).
MK_INLINE mk_f32x8 mk_f16_scales8(const unsigned char *first, long stride) {
#if MK_HAS_F16C
    typedef _Float16 f16x8 __attribute__((ext_vector_type(8)));
    f16x8 halves;
    for (int i = 0; i < 8; i++) memcpy((_Float16 *)&halves + i, first + i * stride, 2);
    return __builtin_convertvector(halves, mk_f32x8);
#else
    mk_f32x8 scales;
    for (int i = 0; i < 8; i++) scales[i] = mk_f16_at(first + i * stride);
    return scales;
#endif
}

/// One weight row of 32-element blocks (Q8_0, 34 bytes a block; Q4_0, 18) times `group` tokens'
/// Q8_0 activations (rows `stride` bytes apart, of k), into y (`ldy` apart). Eight blocks at a
/// time: their lanes summed into the 8 totals of one vector, one conversion and one fused
/// multiply-add for the 8.
#define MK_DEFINE_Q8_0_DOTS(name, codes, lanes_of, block_bytes, offset)                                        \
    MK_INLINE void name(                                                                                       \
        const unsigned char *w, long blocks, long k, const unsigned char *x, long stride, float *y, long ldy,   \
        const int group) {                                                                                     \
        mk_f32x8 chains[4] = {0, 0, 0, 0};                                                                     \
        long b = 0;                                                                                            \
        for (; b + 8 <= blocks; b += 8) {                                                                      \
            mk_i32x8 quads[4][2];                                                                              \
            _Pragma("clang loop unroll(full)") for (int q = 0; q < 2; q++) {                                   \
                mk_i32x8 pairs[4][2];                                                                          \
                _Pragma("clang loop unroll(full)") for (int p = 0; p < 2; p++) {                               \
                    long first = b + 4 * q + 2 * p;                                                            \
                    __typeof__(codes(w)) w0 = codes(w + first * (block_bytes));                                \
                    __typeof__(codes(w)) w1 = codes(w + (first + 1) * (block_bytes));                          \
                    _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {                       \
                        const int8_t *a = (const int8_t *)(x + g * stride) + 32 * first;                       \
                        pairs[g][p] = mk_pair_sums(lanes_of(w0, a), lanes_of(w1, a + 32));                     \
                    }                                                                                          \
                }                                                                                              \
                _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) quads[g][q] = mk_quad_sums(pairs[g][0], pairs[g][1]); \
            }                                                                                                  \
            mk_f32x8 dw = mk_f16_scales8(w + b * (block_bytes), (block_bytes));                                \
            _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {                               \
                const unsigned char *row = x + g * stride;                                                     \
                mk_i32x8 totals = mk_block_totals(quads[g][0], quads[g][1]), sums;                             \
                mk_f32x8 dx;                                                                                   \
                memcpy(&sums, MK_Q8_0_SUMS(row, k) + b, sizeof sums);                                          \
                memcpy(&dx, MK_Q8_0_SCALES(row, k) + b, sizeof dx);                                            \
                if (offset) totals -= (offset) * sums;                                                         \
                chains[g] = __builtin_elementwise_fma(dw * dx, __builtin_convertvector(totals, mk_f32x8), chains[g]); \
            }                                                                                                  \
        }                                                                                                      \
        for (; b < blocks; b++) {                                                                              \
            __typeof__(codes(w)) w0 = codes(w + b * (block_bytes));                                            \
            float d = mk_f16_scale(w + b * (block_bytes));                                                     \
            for (int g = 0; g < group; g++) {                                                                  \
                const unsigned char *row = x + g * stride;                                                     \
                int total = __builtin_reduce_add(lanes_of(w0, (const int8_t *)row + 32 * b)) - (offset) * MK_Q8_0_SUMS(row, k)[b]; \
                chains[g][b & 7] = __builtin_fmaf(d * MK_Q8_0_SCALES(row, k)[b], (float)total, chains[g][b & 7]); \
            }                                                                                                  \
        }                                                                                                      \
        for (int g = 0; g < group; g++) y[g * ldy] = mk_lane_sum8(chains[g]);                                  \
    }
MK_DEFINE_Q8_0_DOTS(mk_q8_0_int_dots, mk_q8_0_codes32, mk_q8_0_lanes, 34, MK_Q8_0_OFFSET)
MK_DEFINE_Q8_0_DOTS(mk_q4_0_int_dots, mk_q4_0_codes32, mk_q4_0_lanes, 18, MK_Q4_0_OFFSET)

/// The 8 scales and 8 minimums of a Q4_K or Q5_K super-block from its 12 packed bytes: ggml's
/// get_scale_min_k4 for every sub-block at once, 4 bytes at a time.
MK_INLINE void mk_k4_scales(const unsigned char *packed, uint8_t scales[8], uint8_t minimums[8]) {
    uint32_t u[3];
    memcpy(u, packed, sizeof u);
    uint32_t words[4] = {
        u[0] & 0x3F3F3F3F, (u[2] & 0x0F0F0F0F) | (((u[0] >> 6) & 0x03030303) << 4),
        u[1] & 0x3F3F3F3F, ((u[2] >> 4) & 0x0F0F0F0F) | (((u[1] >> 6) & 0x03030303) << 4)};
    memcpy(scales, words, 8);
    memcpy(minimums, words + 2, 8);
}

/// The sum of each sub-block's minimum times its activations' sum (exact: at most 8 x 63 x 4064).
MK_INLINE int mk_minimum_offsets(const uint8_t minimums[8], const int16_t sums[8]) {
    typedef uint8_t u8x8 __attribute__((ext_vector_type(8)));
    typedef int16_t i16x8 __attribute__((ext_vector_type(8)));
    u8x8 m;
    i16x8 s;
    memcpy(&m, minimums, sizeof m);
    memcpy(&s, sums, sizeof s);
    return __builtin_reduce_add(__builtin_convertvector(m, mk_i32x8) * __builtin_convertvector(s, mk_i32x8));
}

/// One weight row of Q4_K (`fifth_at` 0, 144 bytes a super-block, nibbles at 16) or Q5_K (fifth
/// bits at 16, nibbles at 48, 176 bytes) super-blocks times `group` tokens' Q8_K activations.
#define MK_DEFINE_K4_DOTS(name, block_bytes, nibbles_at, fifth_at)                                              \
    MK_INLINE void name(                                                                                       \
        const unsigned char *w, long blocks, long k, const mk_q8_K_activations *x, long stride, float *y,      \
        long ldy, const int group) {                                                                           \
        (void)k;                                                                                               \
        mk_f32x8 chains[4] = {0, 0, 0, 0};                                                                     \
        float minimums[4] = {0, 0, 0, 0};                                                                      \
        for (long s = 0; s < blocks; s++) {                                                                    \
            const unsigned char *block = w + s * (block_bytes);                                                \
            uint8_t scales[8], mins[8];                                                                        \
            mk_k4_scales(block + 4, scales, mins);                                                             \
            mk_i32x8 lanes[4] = {0, 0, 0, 0};                                                                  \
            _Pragma("clang loop unroll(full)") for (int p = 0; p < 4; p++) {                                   \
                mk_u8x32 even, odd;                                                                            \
                mk_k4_codes64(block + (nibbles_at), (fifth_at) ? block + (fifth_at) : NULL, p, &even, &odd);   \
                _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {                           \
                    const int8_t *q = x[g * stride + s].q + 64 * p;                                            \
                    lanes[g] = mk_add_lanes4(lanes[g], even, mk_load_i8x32(q), scales[2 * p], scales[2 * p]);   \
                    lanes[g] = mk_add_lanes4(lanes[g], odd, mk_load_i8x32(q + 32), scales[2 * p + 1], scales[2 * p + 1]); \
                }                                                                                              \
            }                                                                                                  \
            float d = mk_f16_scale(block), dmin = mk_f16_scale(block + 2);                                     \
            _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {                               \
                const mk_q8_K_activations *a = x + g * stride + s;                                             \
                int offsets = mk_minimum_offsets(mins, a->sums);                                               \
                chains[g] = __builtin_elementwise_fma((mk_f32x8)(d * a->d), __builtin_convertvector(lanes[g], mk_f32x8), chains[g]); \
                minimums[g] = __builtin_fmaf(dmin * a->d, (float)offsets, minimums[g]);                        \
            }                                                                                                  \
        }                                                                                                      \
        for (int g = 0; g < group; g++) y[g * ldy] = mk_lane_sum8(chains[g]) - minimums[g];                    \
    }
MK_DEFINE_K4_DOTS(mk_q4_K_int_dots, 144, 16, 0)
MK_DEFINE_K4_DOTS(mk_q5_K_int_dots, 176, 48, 16)

/// One weight row of Q6_K super-blocks times `group` tokens' Q8_K activations.
MK_INLINE void mk_q6_K_int_dots(
    const unsigned char *w, long blocks, long k, const mk_q8_K_activations *x, long stride, float *y, long ldy,
    const int group) {
    (void)k;
    mk_f32x8 chains[4] = {0, 0, 0, 0};
    for (long s = 0; s < blocks; s++) {
        const unsigned char *block = w + s * 210;
        mk_i32x8 lanes[4] = {0, 0, 0, 0};
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 8; j++) {
            int16_t low = (int8_t)block[192 + 2 * j], high = (int8_t)block[193 + 2 * j];
            mk_i8x32 weights = mk_q6_K_codes32(block, j);
            _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {
                mk_u8x32 magnitude;
                mk_i8x32 signed_x;
                mk_move_signs(weights, mk_load_i8x32(x[g * stride + s].q + 32 * j), &magnitude, &signed_x);
                lanes[g] = mk_add_lanes4(lanes[g], magnitude, signed_x, low, high);
            }
        }
        float d = mk_f16_scale(block + 208);
        _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {
            chains[g] = __builtin_elementwise_fma((mk_f32x8)(d * x[g * stride + s].d), __builtin_convertvector(lanes[g], mk_f32x8), chains[g]);
        }
    }
    for (int g = 0; g < group; g++) y[g * ldy] = mk_lane_sum8(chains[g]);
}

/// Rows [row_begin, row_end) of the weight times `tokens` rows of quantized activations (as
/// `quantize_activations` writes them), y [tokens, outputs]. Each row's codes are widened once for
/// up to 4 tokens; many tokens (prefill) go 64 at a time (their activations stay in L2) over 16
/// rows at a time (which stay in L1).
#define MK_INT_DOTS_ROWS(dots, activation, block_elements)                                                     \
    do {                                                                                                       \
        enum { token_block = 64, row_block = 16 };                                                             \
        long blocks = inputs / (block_elements), stride = moeckpt_quantized_activation_bytes(format, inputs) / (long)sizeof(activation); \
        const activation *a = x;                                                                               \
        for (long t0 = 0; t0 < tokens; t0 += token_block) {                                                    \
            long t1 = mk_min(tokens, t0 + token_block);                                                        \
            for (long n0 = row_begin; n0 < row_end; n0 += row_block) {                                         \
                long n1 = mk_min(row_end, n0 + row_block), t = t0;                                             \
                for (; t + 4 <= t1; t += 4) {                                                                  \
                    for (long n = n0; n < n1; n++)                                                             \
                        dots(weight + n * row_bytes, blocks, inputs, a + t * stride, stride, y + t * outputs + n, outputs, 4); \
                }                                                                                              \
                for (; t + 2 <= t1; t += 2) {                                                                  \
                    for (long n = n0; n < n1; n++)                                                             \
                        dots(weight + n * row_bytes, blocks, inputs, a + t * stride, stride, y + t * outputs + n, outputs, 2); \
                }                                                                                              \
                if (t < t1) {                                                                                  \
                    for (long n = n0; n < n1; n++)                                                             \
                        dots(weight + n * row_bytes, blocks, inputs, a + t * stride, stride, y + t * outputs + n, outputs, 1); \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    } while (0)

#if MK_HAS_VNNI
// Prefill with VNNI (Q8_0, Q4_0): 16 weight rows in the lanes of one vector. A group's rows are
// repacked once per call so that step i of block b holds each row's codes 4i..4i+3 side by side:
// one `vpdpbusd` with a token's 4 activation codes broadcast adds 64 products, and after a block's
// 8 steps each lane holds one row's exact block total (the row kernels' horizontal sums are gone).
// Chain c (the blocks b = c mod 8) runs on its own over all tokens, its eighth of the codes in L1,
// and is added into y: the row kernels' fp32 sequence, so the same bits.
enum { mk_group_rows = 16, mk_group_tokens = 4 };
// The fewest tokens for which repacking pays (Zen 4, a 4-layer Mixtral of hidden 1024 in Q4_0 and
// Q4_K_M: a Q4_0 forward of 8 tokens 17-18 -> 14.6-18.5 ms; Q4_K's repacking costs more, and 8
// or 32 tokens were slower in groups, 128 faster).
#ifndef MK_GROUP_MIN_TOKENS
#define MK_GROUP_MIN_TOKENS 8
#endif
#ifndef MK_K_GROUP_MIN_TOKENS
#define MK_K_GROUP_MIN_TOKENS 48
#endif

/// The lanes of a group with `rows` rows left (all 16 from 16, none from 0).
MK_INLINE __mmask16 mk_rows_mask(long rows) { return rows >= 16 ? 0xFFFF : rows <= 0 ? 0 : (__mmask16)((1u << rows) - 1); }

/// Rows [n, n + 16) of a Q8_0 or Q4_0 weight (rows past `row_end` as zeros): codes [blocks][8][16]
/// x 4 bytes, unsigned (Q8_0's plus 128, taken back with 128 times the activations' sum), then
/// the scales [blocks][16].
MK_INLINE void mk_repack_group(
    moeckpt_weight_format format, const unsigned char *weight, long row_bytes, long n, long row_end, long blocks,
    unsigned char *codes, float *scales) {
    const int q8 = format == MOECKPT_WEIGHTS_Q8_0;
    const long block_bytes = q8 ? 34 : 18;
    typedef uint32_t u32x8 __attribute__((ext_vector_type(8)));
    for (int r = 0; r < mk_group_rows; r++) {
        const unsigned char *row = weight + (n + r) * row_bytes;
        for (long b = 0; b < blocks; b++) {
            mk_u8x32 values = 0;
            float scale = 0;
            if (n + r < row_end) {
                const unsigned char *block = row + b * block_bytes;
                values = q8 ? (mk_u8x32)mk_q8_0_codes32(block) + 128 : mk_q4_0_codes32(block);
                scale = mk_f16_scale(block);
            }
            unsigned char *out = codes + b * 8 * 64 + 4 * r;
            _Pragma("clang loop unroll(full)") for (int i = 0; i < 8; i++) {
                uint32_t four = ((u32x8)values)[i];
                memcpy(out + i * 64, &four, 4);
            }
            scales[b * mk_group_rows + r] = scale;
        }
    }
}

/// Chain c of two groups (32 rows) times `group` tokens' Q8_0 activations (rows `stride` bytes
/// apart), into y (`ldy` apart; stored where c is 0, added to after): lanes of rows past
/// `valid` are not stored.
MK_INLINE void mk_group_chain(
    const unsigned char *codes, const float *scales, long blocks, long k, int c, int32_t offset,
    const unsigned char *x, long stride, float *y, long ldy, __mmask16 valid0, __mmask16 valid1, const int group) {
    const long group_bytes = blocks * 512;
    __m512 chains[2][mk_group_tokens];
    _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) chains[0][t] = chains[1][t] = _mm512_setzero_ps();
    for (long b = c; b < blocks; b += 8) {
        __m512i totals[2][mk_group_tokens];
        _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
            totals[0][t] = totals[1][t] = _mm512_set1_epi32(-offset * MK_Q8_0_SUMS(x + t * stride, k)[b]);
        }
        const unsigned char *w = codes + b * 512;
        _Pragma("clang loop unroll(full)") for (int i = 0; i < 8; i++) {
            __m512i w0 = _mm512_loadu_si512(w + i * 64), w1 = _mm512_loadu_si512(w + group_bytes + i * 64);
            _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
                int32_t four;
                memcpy(&four, x + t * stride + 32 * b + 4 * i, 4);
                __m512i a = _mm512_set1_epi32(four);
                totals[0][t] = _mm512_dpbusd_epi32(totals[0][t], w0, a);
                totals[1][t] = _mm512_dpbusd_epi32(totals[1][t], w1, a);
            }
        }
        __m512 dw0 = _mm512_loadu_ps(scales + b * 16), dw1 = _mm512_loadu_ps(scales + blocks * 16 + b * 16);
        _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
            __m512 dx = _mm512_set1_ps(MK_Q8_0_SCALES(x + t * stride, k)[b]);
            chains[0][t] = _mm512_fmadd_ps(_mm512_mul_ps(dw0, dx), _mm512_cvtepi32_ps(totals[0][t]), chains[0][t]);
            chains[1][t] = _mm512_fmadd_ps(_mm512_mul_ps(dw1, dx), _mm512_cvtepi32_ps(totals[1][t]), chains[1][t]);
        }
    }
    _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
        float *out = y + t * ldy;
        if (c > 0) {
            chains[0][t] = _mm512_add_ps(_mm512_maskz_loadu_ps(valid0, out), chains[0][t]);
            chains[1][t] = _mm512_add_ps(_mm512_maskz_loadu_ps(valid1, out + 16), chains[1][t]);
        }
        _mm512_mask_storeu_ps(out, valid0, chains[0][t]);
        _mm512_mask_storeu_ps(out + 16, valid1, chains[1][t]);
    }
}

/// Q8_0 or Q4_0 rows [row_begin, row_end) times `tokens` tokens' Q8_0 activations, 32 rows at a
/// time. False where the scratch cannot be had (the row kernels then run).
static int mk_multiply_groups(
    moeckpt_weight_format format, const unsigned char *weight, long row_bytes, long row_begin, long row_end,
    long inputs, const unsigned char *x, long tokens, float *y, long outputs) {
    long blocks = inputs / 32, stride = moeckpt_quantized_activation_bytes(format, inputs);
    unsigned char *codes = malloc(2 * blocks * (512 + 64));
    if (!codes) return 0;
    float *scales = (float *)(codes + 2 * blocks * 512);
    int32_t offset = format == MOECKPT_WEIGHTS_Q8_0 ? 128 : 8;
    for (long n = row_begin; n < row_end; n += 2 * mk_group_rows) {
        mk_repack_group(format, weight, row_bytes, n, row_end, blocks, codes, scales);
        mk_repack_group(format, weight, row_bytes, n + 16, row_end, blocks, codes + blocks * 512, scales + blocks * 16);
        __mmask16 valid0 = mk_rows_mask(row_end - n), valid1 = mk_rows_mask(row_end - n - 16);
        for (int c = 0; c < 8; c++) {
            long t = 0;
            for (; t + mk_group_tokens <= tokens; t += mk_group_tokens) {
                mk_group_chain(codes, scales, blocks, inputs, c, offset, x + t * stride, stride, y + t * outputs + n, outputs, valid0, valid1, mk_group_tokens);
            }
            for (; t < tokens; t++) {
                mk_group_chain(codes, scales, blocks, inputs, c, offset, x + t * stride, stride, y + t * outputs + n, outputs, valid0, valid1, 1);
            }
        }
    }
    free(codes);
    return 1;
}

// The k-quants the same way, with `vpdpwssd`: each code times its sub-block's scale is an int16
// (at most 63 x 31 for Q5_K, 32 x 128 for Q6_K) and meets the activations widened to int16, two
// products a lane. Lane l of the row kernels (elements 4l..4l+3 of every sub-block, summed
// exactly) is pass l here, its own chain over the super-blocks; pass 8 is Q4_K's and Q5_K's
// chain of minimums.

/// One super-block of Q4_K, Q5_K or Q6_K: its 256 codes, each times its scale, and d, dmin and the
/// 8 minimums (0 for Q6_K).
MK_INLINE void mk_k_quant_scaled(
    moeckpt_weight_format format, const unsigned char *block, int16_t codes[256], float *d, float *dmin, int16_t minimums[8]) {
    typedef int16_t i16x32 __attribute__((ext_vector_type(32)));
    if (format == MOECKPT_WEIGHTS_Q6_K) {
        for (int j = 0; j < 8; j++) {
            i16x32 q = __builtin_convertvector(mk_q6_K_codes32(block, j), i16x32);
            int16_t low = (int8_t)block[192 + 2 * j], high = (int8_t)block[193 + 2 * j];
            i16x32 scales = __builtin_shufflevector((i16x32)low, (i16x32)high, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47);
            i16x32 scaled = q * scales;
            memcpy(codes + 32 * j, &scaled, sizeof scaled);
            minimums[j] = 0;
        }
        *d = mk_f16_scale(block + 208);
        *dmin = 0;
        return;
    }
    const int q5 = format == MOECKPT_WEIGHTS_Q5_K;
    uint8_t scales[8], mins[8];
    mk_k4_scales(block + 4, scales, mins);
    for (int p = 0; p < 4; p++) {
        mk_u8x32 even, odd;
        mk_k4_codes64(block + (q5 ? 48 : 16), q5 ? block + 16 : NULL, p, &even, &odd);
        i16x32 low = __builtin_convertvector(even, i16x32) * (int16_t)scales[2 * p];
        i16x32 high = __builtin_convertvector(odd, i16x32) * (int16_t)scales[2 * p + 1];
        memcpy(codes + 64 * p, &low, sizeof low);
        memcpy(codes + 64 * p + 32, &high, sizeof high);
    }
    for (int j = 0; j < 8; j++) minimums[j] = mins[j];
    *d = mk_f16_scale(block);
    *dmin = mk_f16_scale(block + 2);
}

/// Rows [n, n + 16) of a k-quant weight (rows past `row_end` as zeros), per super-block s: the
/// scaled codes [pass l][sub-block j][pair h][16 rows] x 2 int16 (elements 32j + 4l + 2h, + 1),
/// 8 KiB; then d, dmin [blocks][16] and the minimums [blocks][4 pairs][16 rows] x 2 int16.
MK_INLINE void mk_repack_k_group(
    moeckpt_weight_format format, const unsigned char *weight, long row_bytes, long block_bytes, long n, long row_end,
    long blocks, int16_t *codes, float *d, float *dmin, int16_t *minimums) {
    int16_t scaled[mk_group_rows][256], mins[mk_group_rows][8];
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(128));
    const __m512i row_minimums = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(4));
    for (long s = 0; s < blocks; s++) {
        for (int r = 0; r < mk_group_rows; r++) {
            if (n + r < row_end) {
                mk_k_quant_scaled(format, weight + (n + r) * row_bytes + s * block_bytes, scaled[r], d + s * 16 + r, dmin + s * 16 + r, mins[r]);
            } else {
                memset(scaled[r], 0, sizeof scaled[r]);
                memset(mins[r], 0, sizeof mins[r]);
                d[s * 16 + r] = dmin[s * 16 + r] = 0;
            }
        }
        // Each 64-byte line: one pair of elements of all 16 rows (a gather of 4 bytes 512 apart).
        int16_t *out = codes + s * 4096;
        for (int l = 0; l < 8; l++) {
            for (int j = 0; j < 8; j++) {
                for (int h = 0; h < 2; h++) {
                    const int16_t *first = &scaled[0][32 * j + 4 * l + 2 * h];
                    _mm512_storeu_si512(out + ((l * 8 + j) * 2 + h) * 32, _mm512_i32gather_epi32(rows, first, 4));
                }
            }
        }
        for (int p = 0; p < 4; p++) {
            _mm512_storeu_si512(minimums + (s * 4 + p) * 32, _mm512_i32gather_epi32(row_minimums, &mins[0][2 * p], 4));
        }
    }
}

/// acc plus pairs of int16 products, as one `vpdpwssd` (which clang otherwise splits into
/// `vpmaddwd` and `vpaddd`, two instructions).
MK_INLINE __m512i mk_dpwssd(__m512i acc, __m512i a, __m512i b) {
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

/// The repacked k-quant rows of two groups (`group_stride` int16 apart) as one pointer set.
typedef struct mk_k_groups {
    const int16_t *codes, *minimums;
    const float *d, *dmin;
    long codes_stride, minimums_stride, scales_stride;
} mk_k_groups;

/// Pass l (0-7: lane l's chain; 8: the minimums' chain) of two groups times `group` tokens: their
/// activations (`x`, Q8_K, `stride` apart) and the codes widened (`wide`, `wide_stride` int16 apart),
/// into y: lane 0 stored, lanes 1-7 added, the minimums subtracted.
MK_INLINE void mk_k_group_pass(
    const mk_k_groups *w, long blocks, int l, const mk_q8_K_activations *x, long stride, const int16_t *wide,
    long wide_stride, float *y, long ldy, __mmask16 valid0, __mmask16 valid1, const int group) {
    __m512 chains[2][mk_group_tokens];
    _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) chains[0][t] = chains[1][t] = _mm512_setzero_ps();
    for (long s = 0; s < blocks; s++) {
        __m512i totals[2][mk_group_tokens];
        _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) totals[0][t] = totals[1][t] = _mm512_setzero_si512();
        __m512 scale0, scale1;
        if (l < 8) {
            const int16_t *c = w->codes + s * 4096 + l * 512;
            _Pragma("clang loop unroll(full)") for (int i = 0; i < 16; i++) {
                __m512i w0 = _mm512_loadu_si512(c + i * 32), w1 = _mm512_loadu_si512(c + w->codes_stride + i * 32);
                int element = 32 * (i >> 1) + 4 * l + 2 * (i & 1);
                _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
                    int32_t two;
                    memcpy(&two, wide + t * wide_stride + s * 256 + element, 4);
                    __m512i a = _mm512_set1_epi32(two);
                    totals[0][t] = mk_dpwssd(totals[0][t], w0, a);
                    totals[1][t] = mk_dpwssd(totals[1][t], w1, a);
                }
            }
            scale0 = _mm512_loadu_ps(w->d + s * 16), scale1 = _mm512_loadu_ps(w->d + w->scales_stride + s * 16);
        } else {
            const int16_t *m = w->minimums + s * 128;
            _Pragma("clang loop unroll(full)") for (int p = 0; p < 4; p++) {
                __m512i m0 = _mm512_loadu_si512(m + p * 32), m1 = _mm512_loadu_si512(m + w->minimums_stride + p * 32);
                _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
                    int32_t two;
                    memcpy(&two, x[t * stride + s].sums + 2 * p, 4);
                    __m512i a = _mm512_set1_epi32(two);
                    totals[0][t] = mk_dpwssd(totals[0][t], m0, a);
                    totals[1][t] = mk_dpwssd(totals[1][t], m1, a);
                }
            }
            scale0 = _mm512_loadu_ps(w->dmin + s * 16), scale1 = _mm512_loadu_ps(w->dmin + w->scales_stride + s * 16);
        }
        _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
            __m512 dx = _mm512_set1_ps(x[t * stride + s].d);
            chains[0][t] = _mm512_fmadd_ps(_mm512_mul_ps(scale0, dx), _mm512_cvtepi32_ps(totals[0][t]), chains[0][t]);
            chains[1][t] = _mm512_fmadd_ps(_mm512_mul_ps(scale1, dx), _mm512_cvtepi32_ps(totals[1][t]), chains[1][t]);
        }
    }
    _Pragma("clang loop unroll(full)") for (int t = 0; t < group; t++) {
        float *out = y + t * ldy;
        if (l > 0) {
            __m512 y0 = _mm512_maskz_loadu_ps(valid0, out), y1 = _mm512_maskz_loadu_ps(valid1, out + 16);
            chains[0][t] = l < 8 ? _mm512_add_ps(y0, chains[0][t]) : _mm512_sub_ps(y0, chains[0][t]);
            chains[1][t] = l < 8 ? _mm512_add_ps(y1, chains[1][t]) : _mm512_sub_ps(y1, chains[1][t]);
        }
        _mm512_mask_storeu_ps(out, valid0, chains[0][t]);
        _mm512_mask_storeu_ps(out + 16, valid1, chains[1][t]);
    }
}

/// Q4_K, Q5_K or Q6_K rows [row_begin, row_end) times `tokens` tokens' Q8_K activations, 32 rows
/// at a time, up to 256 tokens at a time (their activations widened, at most 256 x inputs int16s).
/// False where the scratch cannot be had (the row kernels then run).
static int mk_multiply_k_groups(
    moeckpt_weight_format format, const unsigned char *weight, long row_bytes, long block_bytes, long row_begin,
    long row_end, long inputs, const mk_q8_K_activations *x, long tokens, float *y, long outputs) {
    enum { token_block = 256 };
    long blocks = inputs / 256, stride = moeckpt_quantized_activation_bytes(format, inputs) / (long)sizeof *x;
    long codes_stride = blocks * 4096, minimums_stride = blocks * 128, scales_stride = blocks * 16;
    long widened = mk_min(tokens, token_block) * inputs;
    size_t bytes = sizeof(int16_t) * (size_t)(2 * codes_stride + 2 * minimums_stride + widened)
        + sizeof(float) * (size_t)(4 * scales_stride);
    int16_t *scratch = malloc(bytes);
    if (!scratch) return 0;
    int16_t *codes = scratch, *minimums = codes + 2 * codes_stride, *wide = minimums + 2 * minimums_stride;
    float *d = (float *)(wide + widened), *dmin = d + 2 * scales_stride;
    const mk_k_groups groups = {codes, minimums, d, dmin, codes_stride, minimums_stride, scales_stride};
    const int passes = format == MOECKPT_WEIGHTS_Q6_K ? 8 : 9;
    for (long t0 = 0; t0 < tokens; t0 += token_block) {
        long count = mk_min(token_block, tokens - t0);
        const mk_q8_K_activations *a = x + t0 * stride;
        float *out = y + t0 * outputs;
        for (long t = 0; t < count; t++) {
            for (long s = 0; s < blocks; s++) {
                for (int e = 0; e < 256; e++) wide[t * inputs + s * 256 + e] = a[t * stride + s].q[e];
            }
        }
        for (long n = row_begin; n < row_end; n += 2 * mk_group_rows) {
            for (int g = 0; g < 2; g++) {
                mk_repack_k_group(
                    format, weight, row_bytes, block_bytes, n + 16 * g, row_end, blocks, codes + g * codes_stride,
                    d + g * scales_stride, dmin + g * scales_stride, minimums + g * minimums_stride);
            }
            __mmask16 valid0 = mk_rows_mask(row_end - n), valid1 = mk_rows_mask(row_end - n - 16);
            for (int l = 0; l < passes; l++) {
                long t = 0;
                for (; t + mk_group_tokens <= count; t += mk_group_tokens) {
                    mk_k_group_pass(&groups, blocks, l, a + t * stride, stride, wide + t * inputs, inputs, out + t * outputs + n, outputs, valid0, valid1, mk_group_tokens);
                }
                for (; t < count; t++) {
                    mk_k_group_pass(&groups, blocks, l, a + t * stride, stride, wide + t * inputs, inputs, out + t * outputs + n, outputs, valid0, valid1, 1);
                }
            }
        }
    }
    free(scratch);
    return 1;
}

/// Prefill in groups where it pays (enough tokens) and the scratch can be had; false otherwise.
static int mk_multiply_in_groups(
    moeckpt_weight_format format, const unsigned char *weight, long row_begin, long row_end, long inputs,
    const void *x, long tokens, float *y, long outputs) {
    switch (format) {
    case MOECKPT_WEIGHTS_Q8_0:
    case MOECKPT_WEIGHTS_Q4_0: {
        long row_bytes = format == MOECKPT_WEIGHTS_Q8_0 ? q8_0_bytes(inputs) : q4_0_bytes(inputs);
        return tokens >= MK_GROUP_MIN_TOKENS
            && mk_multiply_groups(format, weight, row_bytes, row_begin, row_end, inputs, x, tokens, y, outputs);
    }
    case MOECKPT_WEIGHTS_Q4_K:
    case MOECKPT_WEIGHTS_Q5_K:
    case MOECKPT_WEIGHTS_Q6_K: {
        long (*bytes)(long) = format == MOECKPT_WEIGHTS_Q4_K ? q4_K_bytes : format == MOECKPT_WEIGHTS_Q5_K ? q5_K_bytes : q6_K_bytes;
        return tokens >= MK_K_GROUP_MIN_TOKENS
            && mk_multiply_k_groups(format, weight, bytes(inputs), bytes(256), row_begin, row_end, inputs, x, tokens, y, outputs);
    }
    default: return 0;
    }
}
#endif

static void mk_multiply_rows_quantized(
    moeckpt_weight_format format, const void *weight_bytes, long row_begin, long row_end, long inputs, const void *x,
    long tokens, float *y, long outputs) {
    const unsigned char *weight = weight_bytes;
#if MK_HAS_VNNI
    if (mk_multiply_in_groups(format, weight, row_begin, row_end, inputs, x, tokens, y, outputs)) return;
#endif
    switch (format) {
    case MOECKPT_WEIGHTS_Q8_0: {
        long row_bytes = q8_0_bytes(inputs);
        MK_INT_DOTS_ROWS(mk_q8_0_int_dots, unsigned char, 32);
        break;
    }
    case MOECKPT_WEIGHTS_Q4_0: {
        long row_bytes = q4_0_bytes(inputs);
        MK_INT_DOTS_ROWS(mk_q4_0_int_dots, unsigned char, 32);
        break;
    }
    case MOECKPT_WEIGHTS_Q4_K: {
        long row_bytes = q4_K_bytes(inputs);
        MK_INT_DOTS_ROWS(mk_q4_K_int_dots, mk_q8_K_activations, 256);
        break;
    }
    case MOECKPT_WEIGHTS_Q5_K: {
        long row_bytes = q5_K_bytes(inputs);
        MK_INT_DOTS_ROWS(mk_q5_K_int_dots, mk_q8_K_activations, 256);
        break;
    }
    case MOECKPT_WEIGHTS_Q6_K: {
        long row_bytes = q6_K_bytes(inputs);
        MK_INT_DOTS_ROWS(mk_q6_K_int_dots, mk_q8_K_activations, 256);
        break;
    }
    case MOECKPT_WEIGHTS_BF16: mk_multiply_rows_bf16(weight, row_begin, row_end, inputs, x, tokens, y, outputs); break;
    default: break;
    }
}
