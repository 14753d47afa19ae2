// How the kernels read one weight element as fp32 (`<format>_scalar`) and 16 consecutive ones
// (`<format>_vector`, index a multiple of 16), widened exactly in registers; `<format>_bytes`
// is the size of a row's first `elements` (for block formats, whole blocks). Part of a variant
// (variant.h), compiled under its target attribute.

#define MK_INLINE static inline __attribute__((always_inline))

MK_INLINE float mk_load_f32(const unsigned char *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

MK_INLINE mk_f32x16 mk_load16(const float *p) {
    mk_f32x16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

MK_INLINE void mk_store16(float *p, mk_f32x16 v) { memcpy(p, &v, sizeof v); }

/// The sum of the 16 lanes, lane 0 first, in order (the sequence the tests' references use).
MK_INLINE float mk_lane_sum(mk_f32x16 v) {
    float sum = v[0];
    for (int lane = 1; lane < 16; lane++) sum += v[lane];
    return sum;
}

MK_INLINE mk_u8x16 mk_load_u8x16(const unsigned char *p) {
    mk_u8x16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

MK_INLINE float mk_from_bits(uint32_t bits) {
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/// An F16 (a ggml block scale) widened exactly.
MK_INLINE float mk_f16_at(const unsigned char *p) {
    uint32_t h = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    uint32_t sign = (h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    if (exponent == 0x1F) return mk_from_bits(sign | 0x7F800000 | mantissa << 13);
    if (exponent != 0) return mk_from_bits(sign | (exponent + 112) << 23 | mantissa << 13);
    // Subnormal: mantissa 2^-24, exactly.
    return (float)mantissa * mk_from_bits(0x33800000) * (sign == 0 ? 1.0f : -1.0f);
}

/// Codes 0-255 widened to fp32 exactly, less `offset`: 2^23 + code as fp32 bits, minus
/// 2^23 + offset (integer operations and one subtraction, no conversion instruction needed).
MK_INLINE mk_f32x16 mk_widened_codes(mk_u8x16 codes, float offset) {
    mk_u32x16 words = __builtin_convertvector(codes, mk_u32x16) | 0x4B000000u;
    return (mk_f32x16)words - (8388608.0f + offset);
}

// F32.
MK_INLINE long f32_bytes(long elements) { return 4 * elements; }
MK_INLINE float f32_scalar(const unsigned char *base, long index) { return mk_load_f32(base + 4 * index); }
MK_INLINE mk_f32x16 f32_vector(const unsigned char *base, long index) {
    mk_f32x16 v;  // from bytes: an F32 tensor's offset in a file need not be 4-aligned
    memcpy(&v, base + 4 * index, sizeof v);
    return v;
}

// BF16 is the top half of an fp32: widening is a 16-bit shift, exact.
MK_INLINE long bf16_bytes(long elements) { return 2 * elements; }
MK_INLINE float bf16_scalar(const unsigned char *base, long index) {
    uint16_t h;
    memcpy(&h, base + 2 * index, sizeof h);
    return mk_from_bits((uint32_t)h << 16);
}
MK_INLINE mk_f32x16 bf16_vector(const unsigned char *base, long index) {
    typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
    u16x16 halves;
    memcpy(&halves, base + 2 * index, sizeof halves);
    return (mk_f32x16)(__builtin_convertvector(halves, mk_u32x16) << 16);
}

// F16: its fields moved into an fp32's (exponent + 112), subnormals as mantissa 2^-24, all exact;
// the integer form of `mk_f16_at`, lane by lane, or the F16C instruction where the variant has it
// (MK_HAS_F16C) and no lane is a NaN: the same values either way.
MK_INLINE long f16_bytes(long elements) { return 2 * elements; }
MK_INLINE float f16_scalar(const unsigned char *base, long index) { return mk_f16_at(base + 2 * index); }
MK_INLINE mk_f32x16 f16_vector(const unsigned char *base, long index) {
    typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
    u16x16 halves;
    memcpy(&halves, base + 2 * index, sizeof halves);
#if MK_HAS_F16C
    // The conversion instruction (F16C: one per 8 lanes, where the integer form takes about 15),
    // unless a lane is a NaN, which it would quiet.
    if (!__builtin_reduce_or(((halves & 0x7C00) == 0x7C00) & ((halves & 0x3FF) != 0))) {
        typedef _Float16 f16x16 __attribute__((ext_vector_type(16)));
        f16x16 values;
        memcpy(&values, &halves, sizeof values);
        return __builtin_convertvector(values, mk_f32x16);
    }
#endif
    mk_u32x16 h = __builtin_convertvector(halves, mk_u32x16);
    mk_u32x16 sign = (h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    mk_u32x16 special = (mk_u32x16)(exponent == 0x1F), subnormal = (mk_u32x16)(exponent == 0);
    mk_u32x16 normal = ((exponent + 112) << 23) | (mantissa << 13);
    mk_u32x16 infinite = 0x7F800000 | (mantissa << 13);
    mk_f32x16 small = ((mk_f32x16)(mantissa | 0x4B000000u) - 8388608.0f) * mk_from_bits(0x33800000);
    mk_u32x16 bits = (normal & ~special & ~subnormal) | (infinite & special) | ((mk_u32x16)small & subnormal);
    return (mk_f32x16)(bits | sign);
}

/// 32 F16s from `index`: the two vectors of `f16_vector`, with one NaN check for both (a format
/// whose rows need not be whole pairs: the callers take a last 16 with `f16_vector`).
MK_INLINE void f16_pair(const unsigned char *base, long index, mk_f32x16 *low, mk_f32x16 *high) {
#if MK_HAS_F16C
    typedef uint16_t u16x32 __attribute__((ext_vector_type(32)));
    u16x32 halves;
    memcpy(&halves, base + 2 * index, sizeof halves);
    if (!__builtin_reduce_or(((halves & 0x7C00) == 0x7C00) & ((halves & 0x3FF) != 0))) {
        typedef _Float16 f16x32 __attribute__((ext_vector_type(32)));
        f16x32 values;
        memcpy(&values, &halves, sizeof values);
        mk_f32x32 wide = __builtin_convertvector(values, mk_f32x32);
        *low = __builtin_shufflevector(wide, wide, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        *high = __builtin_shufflevector(wide, wide, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
        return;
    }
#endif
    *low = f16_vector(base, index);
    *high = f16_vector(base, index + 16);
}

// E2M1 (FP4) codes widened by building their fp32 bits: sign, exponent e + 126, the mantissa
// bit; 0.5 for the subnormal code. Exact.
MK_INLINE float mk_e2m1_scalar(unsigned code) {
    static const float magnitudes[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    float value = magnitudes[code & 7];
    return (code & 8) == 0 ? value : -value;
}
#define MK_E2M1_VALUES {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6}
/// (With MK_HAS_LOOKUP16, the 16 values are looked up: the same values, fewer instructions.)
MK_INLINE mk_f32x16 mk_e2m1_vector(mk_u32x16 codes) {
#if MK_HAS_LOOKUP16
    return mk_lookup16((mk_f32x16)MK_E2M1_VALUES, codes);
#endif
    mk_u32x16 exponent = (codes >> 1) & 3, mantissa = codes & 1;
    mk_u32x16 normal = ((exponent + 126) << 23) | (mantissa << 22);
    mk_u32x16 subnormal = ((exponent | (exponent >> 1)) & 1) - 1;  // all ones where the exponent is 0
    return (mk_f32x16)((normal & ~subnormal) | ((mantissa * 0x3F000000u) & subnormal) | ((codes & 8) << 28));
}

// MXFP4: each E2M1 code widened, times the block's 2^(s - 127).
MK_INLINE long mxfp4_bytes(long elements) { return elements / 32 * 17; }
MK_INLINE float mxfp4_scale(const unsigned char *block) {
    uint32_t s = block[0];
    return mk_from_bits(s == 0 ? 0x00400000u : s << 23);  // 2^-127 is subnormal; 255 gives 2^128 = inf
}
MK_INLINE float mxfp4_scalar(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 5) * 17;
    unsigned byte = block[1 + (index & 15)];
    return mk_e2m1_scalar((index & 16) == 0 ? byte & 0xF : byte >> 4) * mxfp4_scale(block);
}
MK_INLINE mk_f32x16 mxfp4_vector(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 5) * 17;
    mk_u8x16 bytes = mk_load_u8x16(block + 1);
    return mk_e2m1_vector(__builtin_convertvector((index & 16) == 0 ? bytes & 0xF : bytes >> 4, mk_u32x16)) * mxfp4_scale(block);
}
MK_INLINE void mxfp4_pair(const unsigned char *base, long index, mk_f32x16 *low, mk_f32x16 *high) {
    const unsigned char *block = base + (index >> 5) * 17;
    mk_u32x16 bytes = __builtin_convertvector(mk_load_u8x16(block + 1), mk_u32x16);
    float scale = mxfp4_scale(block);
    *low = mk_e2m1_vector(bytes & 0xF) * scale;
    *high = mk_e2m1_vector(bytes >> 4) * scale;
}

/// A block's F16 scale widened once per block (`<format>_pair`): the conversion instruction where
/// the variant has it. Exact; a NaN comes out quiet, as the products with it do either way.
MK_INLINE float mk_f16_scale(const unsigned char *p) {
#if MK_HAS_F16C
    _Float16 h;
    memcpy(&h, p, sizeof h);
    return (float)h;
#else
    return mk_f16_at(p);
#endif
}

// Block formats of 32 elements also read a whole block at once (`<format>_pair`, index a multiple
// of 32, MK_PAIR: MXFP4 above, Q8_0 and Q4_0 here): its two vectors, the same values as two
// `<format>_vector`s, the scale widened once (one token's MoE block on Zen 4, 2 threads: Q4_0
// 2.1 -> 0.9 ms, Q8_0 2.7 -> 1.0, MXFP4 1.5-1.8 -> 0.9-1.0).

// Q8_0: each int8 widened exactly through its bits, times the block's scale (q d is exact in
// fp32: 8 by 11 significant bits).
MK_INLINE long q8_0_bytes(long elements) { return elements / 32 * 34; }
MK_INLINE float q8_0_scalar(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 5) * 34;
    return (float)(int8_t)block[2 + (index & 31)] * mk_f16_at(block);
}
MK_INLINE mk_f32x16 q8_0_vector(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 5) * 34;
    return mk_widened_codes(mk_load_u8x16(block + 2 + (index & 16)) ^ 0x80, 128) * mk_f16_at(block);
}

MK_INLINE void q8_0_pair(const unsigned char *base, long index, mk_f32x16 *low, mk_f32x16 *high) {
    typedef int8_t i8x16 __attribute__((ext_vector_type(16)));
    const unsigned char *block = base + (index >> 5) * 34;
    i8x16 first, second;
    memcpy(&first, block + 2, sizeof first);
    memcpy(&second, block + 18, sizeof second);
    float d = mk_f16_scale(block);
    *low = __builtin_convertvector(first, mk_f32x16) * d;
    *high = __builtin_convertvector(second, mk_f32x16) * d;
}

// Q4_0: (q - 8) d, as ggml computes it.
MK_INLINE long q4_0_bytes(long elements) { return elements / 32 * 18; }
MK_INLINE float q4_0_scalar(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 5) * 18;
    unsigned byte = block[2 + (index & 15)];
    int code = (int)((index & 16) == 0 ? byte & 0xF : byte >> 4);
    return (float)(code - 8) * mk_f16_at(block);
}
MK_INLINE mk_f32x16 q4_0_vector(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 5) * 18;
    mk_u8x16 bytes = mk_load_u8x16(block + 2);
    return mk_widened_codes((index & 16) == 0 ? bytes & 0xF : bytes >> 4, 8) * mk_f16_at(block);
}

/// With a 16-entry lookup (MK_HAS_LOOKUP16: `mk_lookup16(table, indices)`, the table's lanes at the
/// low 4 bits of each index), the block's 16 possible values (q - 8) d are computed once, the same
/// products, and each code picks its own.
MK_INLINE void q4_0_pair(const unsigned char *base, long index, mk_f32x16 *low, mk_f32x16 *high) {
    const unsigned char *block = base + (index >> 5) * 18;
    mk_u8x16 bytes = mk_load_u8x16(block + 2);
    float d = mk_f16_scale(block);
#if MK_HAS_LOOKUP16
    const mk_f32x16 codes = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
    mk_f32x16 values = codes * d;
    *low = mk_lookup16(values, __builtin_convertvector(bytes, mk_u32x16));
    *high = mk_lookup16(values, __builtin_convertvector(bytes >> 4, mk_u32x16));
#else
    *low = mk_widened_codes(bytes & 0xF, 8) * d;
    *high = mk_widened_codes(bytes >> 4, 8) * d;
#endif
}

// Q4_K super-blocks, 144 bytes per 256 elements: F16 d and dmin, 12 bytes of 6-bit scales and
// mins for 8 sub-blocks of 32, then 128 bytes of nibbles (per 64 elements, 32 bytes: low nibbles
// the first sub-block, high the second). The element is (d sc) q - (dmin m), as ggml computes it.
MK_INLINE long q4_K_bytes(long elements) { return elements / 256 * 144; }
/// Sub-block j's 6-bit scale and min from the 12 packed bytes (ggml's get_scale_min_k4).
MK_INLINE void mk_k4_scale_min(const unsigned char *q, long j, unsigned *sc, unsigned *m) {
    if (j < 4) {
        *sc = q[j] & 0x3F;
        *m = q[4 + j] & 0x3F;
    } else {
        *sc = (q[4 + j] & 0x0F) | ((q[j - 4] >> 2) & 0x30);
        *m = (q[4 + j] >> 4) | ((q[j] >> 2) & 0x30);
    }
}
/// Sub-block j's scale d sc and offset dmin m.
MK_INLINE void q4_K_scale_and_offset(const unsigned char *block, long j, float *scale, float *offset) {
    unsigned sc, m;
    mk_k4_scale_min(block + 4, j, &sc, &m);
    *scale = mk_f16_at(block) * (float)sc;
    *offset = mk_f16_at(block + 2) * (float)m;
}
/// The codes of elements i to i + 15 of a super-block (i a multiple of 16, under 256).
MK_INLINE mk_u8x16 q4_K_codes(const unsigned char *block, long i) {
    long j = i >> 5;
    mk_u8x16 bytes = mk_load_u8x16(block + 16 + (j >> 1) * 32 + (i & 16));
    return (j & 1) == 0 ? bytes & 0xF : bytes >> 4;
}
MK_INLINE float q4_K_scalar(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 8) * 144;
    long j = (index & 255) >> 5;
    unsigned byte = block[16 + (j >> 1) * 32 + (index & 31)];
    float scale, offset;
    q4_K_scale_and_offset(block, j, &scale, &offset);
    return scale * (float)((byte >> ((j & 1) * 4)) & 0xF) - offset;
}
MK_INLINE mk_f32x16 q4_K_vector(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 8) * 144;
    long i = index & 255;
    float scale, offset;
    q4_K_scale_and_offset(block, i >> 5, &scale, &offset);
    return mk_widened_codes(q4_K_codes(block, i), 0) * scale - offset;
}

// Super-block formats (MK_SUPER: Q4_K, Q6_K) also read a super-block's scales once
// (`<format>_prepare`) and then its elements 16 at a time (`<format>_prepared`): the same values
// as `<format>_vector`, without unpacking the 6-bit scales and widening the F16 ones per 16
// elements (one token's MoE block on Zen 4, 2 threads: Q4_K 3.1 -> 1.2 ms, Q6_K 2.5 -> 1.5).
typedef struct mk_super_scales {
    float scale[16];
    float offset[8];
} mk_super_scales;

MK_INLINE void q4_K_prepare(const unsigned char *block, mk_super_scales *s) {
    float d = mk_f16_scale(block), dmin = mk_f16_scale(block + 2);
    for (int j = 0; j < 8; j++) {
        unsigned sc, m;
        mk_k4_scale_min(block + 4, j, &sc, &m);
        s->scale[j] = d * (float)sc;
        s->offset[j] = dmin * (float)m;
    }
}
/// Elements i to i + 15 of the super-block (i a multiple of 16, under 256). With a lookup, the
/// sub-block's 16 possible values scale q - offset are computed (the same two operations) and
/// looked up.
MK_INLINE mk_f32x16 q4_K_prepared(const unsigned char *block, long i, const mk_super_scales *s) {
    long j = i >> 5;
    mk_u8x16 codes = q4_K_codes(block, i);
#if MK_HAS_LOOKUP16
    const mk_f32x16 values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return mk_lookup16(values * s->scale[j] - s->offset[j], __builtin_convertvector(codes, mk_u32x16));
#else
    return mk_widened_codes(codes, 0) * s->scale[j] - s->offset[j];
#endif
}

// Q5_K super-blocks, 176 bytes per 256 elements: Q4_K's d, dmin and scales, then 32 bytes of
// fifth bits (bit j of byte k belongs to element 32 j + k) and 128 bytes of nibbles as Q4_K's.
// The element is (d sc) q - (dmin m), as ggml computes it.
MK_INLINE long q5_K_bytes(long elements) { return elements / 256 * 176; }
MK_INLINE mk_u8x16 q5_K_codes(const unsigned char *block, long i) {
    long j = i >> 5;
    mk_u8x16 bytes = mk_load_u8x16(block + 48 + (j >> 1) * 32 + (i & 16));
    mk_u8x16 high = (mk_load_u8x16(block + 16 + (i & 16)) >> (uint8_t)j) & 1;
    return ((j & 1) == 0 ? bytes & 0xF : bytes >> 4) | high << 4;
}
MK_INLINE float q5_K_scalar(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 8) * 176;
    long i = index & 255, j = i >> 5;
    unsigned low = (block[48 + (j >> 1) * 32 + (i & 31)] >> ((j & 1) * 4)) & 0xF, high = (block[16 + (i & 31)] >> j) & 1;
    float scale, offset;
    q4_K_scale_and_offset(block, j, &scale, &offset);
    return scale * (float)(low | high << 4) - offset;
}
MK_INLINE mk_f32x16 q5_K_vector(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 8) * 176;
    long i = index & 255;
    float scale, offset;
    q4_K_scale_and_offset(block, i >> 5, &scale, &offset);
    return mk_widened_codes(q5_K_codes(block, i), 0) * scale - offset;
}
MK_INLINE void q5_K_prepare(const unsigned char *block, mk_super_scales *s) { q4_K_prepare(block, s); }
MK_INLINE mk_f32x16 q5_K_prepared(const unsigned char *block, long i, const mk_super_scales *s) {
    return mk_widened_codes(q5_K_codes(block, i), 0) * s->scale[i >> 5] - s->offset[i >> 5];
}

// Q6_K super-blocks, 210 bytes per 256 elements: 128 bytes of low nibbles, 64 of high bit
// pairs, 16 int8 scales (one per 16 elements), then F16 d. The element is (d s) (q - 32).
MK_INLINE long q6_K_bytes(long elements) { return elements / 256 * 210; }
MK_INLINE float q6_K_scale(const unsigned char *block, long i) {
    return mk_f16_at(block + 208) * (float)(int8_t)block[192 + (i >> 4)];
}
/// Where element i of a super-block (0-255) keeps its low nibble and high pair, and their shifts.
#define Q6_K_PLACES(i)                                                                             \
    long c = (i) >> 5;                                                                             \
    long low_at = (c >> 2) * 64 + (c & 1) * 32 + ((i) & 31), high_at = 128 + (c >> 2) * 32 + ((i) & 31); \
    unsigned low_shift = (unsigned)(((c & 3) >> 1) * 4), high_shift = (unsigned)((c & 3) * 2)
MK_INLINE float q6_K_scalar(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 8) * 210;
    long i = index & 255;
    Q6_K_PLACES(i);
    int low = (block[low_at] >> low_shift) & 0xF, high = (block[high_at] >> high_shift) & 3;
    return q6_K_scale(block, i) * (float)((low | high << 4) - 32);
}
/// The codes q of elements i to i + 15 of a super-block (i a multiple of 16, under 256).
MK_INLINE mk_u8x16 q6_K_codes(const unsigned char *block, long i) {
    Q6_K_PLACES(i);
    mk_u8x16 low = (mk_load_u8x16(block + low_at) >> (uint8_t)low_shift) & 0xF;
    mk_u8x16 high = (mk_load_u8x16(block + high_at) >> (uint8_t)high_shift) & 3;
    return low | high << 4;
}
MK_INLINE void q6_K_prepare(const unsigned char *block, mk_super_scales *s) {
    float d = mk_f16_scale(block + 208);
    for (int j = 0; j < 16; j++) s->scale[j] = d * (float)(int8_t)block[192 + j];
}
MK_INLINE mk_f32x16 q6_K_prepared(const unsigned char *block, long i, const mk_super_scales *s) {
    return mk_widened_codes(q6_K_codes(block, i), 32) * s->scale[i >> 4];
}
MK_INLINE mk_f32x16 q6_K_vector(const unsigned char *base, long index) {
    const unsigned char *block = base + (index >> 8) * 210;
    long i = index & 255;
    return mk_widened_codes(q6_K_codes(block, i), 32) * q6_K_scale(block, i);
}

// FP8 E4M3 ("fn"): sign, exponent e + 120 and mantissa m moved into an fp32's fields; subnormals
// (e = 0) are m 2^-9; S.1111.111 is the NaN torch widens it to (sign | 0x7FF00000). All exact. The
// block's scale multiplies it in the kernels (MK_SCALED).
MK_INLINE long f8e4m3_bytes(long elements) { return elements; }
MK_INLINE float f8e4m3_scalar(const unsigned char *base, long index) {
    uint32_t c = base[index], sign = (c & 0x80) << 24, e = (c >> 3) & 0xF, m = c & 7;
    if (e == 15 && m == 7) return mk_from_bits(sign | 0x7FF00000u);
    if (e == 0) return (float)m * mk_from_bits(0x3B000000u) * (sign == 0 ? 1.0f : -1.0f);
    return mk_from_bits(sign | (e + 120) << 23 | m << 20);
}
MK_INLINE mk_f32x16 f8e4m3_vector(const unsigned char *base, long index) {
    mk_u8x16 codes = mk_load_u8x16(base + index);
#if MK_HAS_F16C
    // With F16C, unless a lane is the NaN: E4M3's fields moved into an F16's give the value
    // 2^-8 times (subnormals included: E4M3's are F16 subnormals), which the conversion
    // instruction widens; times 2^8, exact (one token's MoE block: 6.7 ms with the integer form, 2.8).
    if (!__builtin_reduce_or((codes & 0x7F) == 0x7F)) {
        typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
        typedef _Float16 f16x16 __attribute__((ext_vector_type(16)));
        u16x16 c = __builtin_convertvector(codes, u16x16);
        u16x16 halves = ((c & 0x80) << 8) | ((c & 0x7F) << 7);
        f16x16 values;
        memcpy(&values, &halves, sizeof values);
        return __builtin_convertvector(values, mk_f32x16) * 256.0f;
    }
#endif
    mk_u32x16 c = __builtin_convertvector(codes, mk_u32x16);
    mk_u32x16 sign = (c & 0x80) << 24, e = (c >> 3) & 0xF, m = c & 7;
    mk_u32x16 nan = (mk_u32x16)((e == 15) & (m == 7)), subnormal = (mk_u32x16)(e == 0);
    mk_u32x16 normal = ((e + 120) << 23) | (m << 20);
    mk_f32x16 small = ((mk_f32x16)(m | 0x4B000000u) - 8388608.0f) * mk_from_bits(0x3B000000u);
    mk_u32x16 bits = (normal & ~nan & ~subnormal) | (0x7FF00000u & nan) | ((mk_u32x16)small & subnormal);
    return (mk_f32x16)(bits | sign);
}

// MLX's affine codes, widened exactly (the kernels then take scale q + bias: MK_AFFINE). 4 bits:
// a row's codes are one little-endian bit stream, so byte j holds code 2j (low nibble) and 2j + 1.
MK_INLINE long mlx4_bytes(long elements) { return elements / 2; }
/// Code `index` of an MLX 4-bit stream: byte j holds 2j (low nibble) and 2j + 1.
MK_INLINE unsigned mk_mlx_nibble(const unsigned char *base, long index) {
    unsigned byte = base[index >> 1];
    return (index & 1) == 0 ? byte & 0xF : byte >> 4;
}
MK_INLINE float mlx4_scalar(const unsigned char *base, long index) { return (float)mk_mlx_nibble(base, index); }
/// 16 nibbles of an MLX bit stream from element `index` on: byte j holds 2j (low) and 2j + 1.
MK_INLINE mk_u8x16 mk_mlx_nibbles(const unsigned char *base, long index) {
    typedef uint8_t u8x8 __attribute__((ext_vector_type(8)));
    u8x8 bytes;
    memcpy(&bytes, base + (index >> 1), sizeof bytes);
    u8x8 low = bytes & 0xF, high = bytes >> 4;
    return __builtin_shufflevector(low, high, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
}
MK_INLINE mk_f32x16 mlx4_vector(const unsigned char *base, long index) { return mk_widened_codes(mk_mlx_nibbles(base, index), 0); }
// Formats of 4-bit (or 2-bit) codes under a group scale also give their 16 codes and the code values
// (`<format>_codes`, `<format>_values`, MK_TABLE): the kernels then compute a group's 16 possible
// weights once and look each code's up (one token's MoE block: mlx-affine4 1.37 -> 0.87 ms,
// mlx-affine2 1.72 -> 0.99).
MK_INLINE mk_u32x16 mlx4_codes(const unsigned char *base, long index) {
    return __builtin_convertvector(mk_mlx_nibbles(base, index), mk_u32x16);
}
MK_INLINE mk_f32x16 mlx4_values(void) { return (mk_f32x16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; }

// 2 bits: byte j holds codes 4j (lowest bits) to 4j + 3.
MK_INLINE long mlx2_bytes(long elements) { return elements / 4; }
MK_INLINE float mlx2_scalar(const unsigned char *base, long index) {
    return (float)((base[index >> 2] >> ((index & 3) * 2)) & 3);
}
MK_INLINE mk_u8x16 mk_mlx2_codes(const unsigned char *base, long index) {
    typedef uint8_t u8x4 __attribute__((ext_vector_type(4)));
    u8x4 bytes;
    memcpy(&bytes, base + (index >> 2), sizeof bytes);
    mk_u8x16 spread = __builtin_shufflevector(bytes, bytes, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const mk_u8x16 shifts = {0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6};
    return (spread >> shifts) & 3;
}
MK_INLINE mk_f32x16 mlx2_vector(const unsigned char *base, long index) { return mk_widened_codes(mk_mlx2_codes(base, index), 0); }
MK_INLINE mk_u32x16 mlx2_codes(const unsigned char *base, long index) {
    return __builtin_convertvector(mk_mlx2_codes(base, index), mk_u32x16);
}
MK_INLINE mk_f32x16 mlx2_values(void) { return (mk_f32x16){0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; }

// MLX's E2M1 codes (mxfp4, nvfp4) in its nibble order; the group's scale multiplies them in the
// kernels (MK_SCALED).
MK_INLINE long e2m1_bytes(long elements) { return elements / 2; }
MK_INLINE float e2m1_scalar(const unsigned char *base, long index) { return mk_e2m1_scalar(mk_mlx_nibble(base, index)); }
MK_INLINE mk_u32x16 e2m1_codes(const unsigned char *base, long index) { return mlx4_codes(base, index); }
MK_INLINE mk_f32x16 e2m1_vector(const unsigned char *base, long index) { return mk_e2m1_vector(e2m1_codes(base, index)); }
MK_INLINE mk_f32x16 e2m1_values(void) { return (mk_f32x16)MK_E2M1_VALUES; }

MK_INLINE long mlx8_bytes(long elements) { return elements; }
MK_INLINE float mlx8_scalar(const unsigned char *base, long index) { return (float)base[index]; }
MK_INLINE mk_f32x16 mlx8_vector(const unsigned char *base, long index) { return mk_widened_codes(mk_load_u8x16(base + index), 0); }
