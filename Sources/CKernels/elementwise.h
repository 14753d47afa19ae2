// The vector exp and the activations built on it; part of a variant (variant.h).

/// e^x for 16 lanes: x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes' degree-6 polynomial, scaled
/// by 2^n through the exponent bits. Within 2 ulp of expf over the float range; inputs above 88
/// give ~1.7e38; below -87 (where expf turns subnormal), 0, so that exp(-inf) is 0 as softmax's
/// masked entries need; NaN gives NaN. Selects are integer masks (the comparisons' lanes).
MK_INLINE mk_f32x16 mk_exp16(mk_f32x16 x) {
    typedef int32_t i32x16 __attribute__((ext_vector_type(16)));
    mk_u32x16 high = (mk_u32x16)(x > 88.0f), low = (mk_u32x16)(x < -87.0f);
    mk_f32x16 clamped = (mk_f32x16)(((mk_u32x16)x & ~high & ~low) | ((mk_u32x16)(mk_f32x16)88.0f & high)
                                    | ((mk_u32x16)(mk_f32x16)-87.0f & low));
    mk_f32x16 t = clamped * 1.44269504f + 0.5f;
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    mk_f32x16 nearest = (t + magic) - magic;
    mk_u32x16 above = (mk_u32x16)(nearest > t);
    mk_f32x16 n = (mk_f32x16)(((mk_u32x16)(nearest - 1.0f) & above) | ((mk_u32x16)nearest & ~above));
    mk_f32x16 r = clamped - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    mk_f32x16 p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    mk_f32x16 e = p * r * r + r + 1.0f;
    i32x16 integer = (i32x16)(n + magic) - 0x4B400000;
    mk_f32x16 scale = (mk_f32x16)((integer + 127) << 23);
    return (mk_f32x16)((mk_u32x16)(e * scale) & ~low);
}

static void mk_silu_multiply(float *gate, const float *up, long count) {
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        mk_f32x16 g = mk_load16(gate + i);
        mk_store16(gate + i, g / (1.0f + mk_exp16(-g)) * mk_load16(up + i));
    }
    for (; i < count; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static float mk_exp_shifted_sum(float *p, long count, float shift) {
    mk_f32x16 lanes = 0;
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        mk_f32x16 e = mk_exp16(mk_load16(p + i) - shift);
        mk_store16(p + i, e);
        lanes += e;
    }
    float sum = mk_lane_sum(lanes);
    for (; i < count; i++) {
        p[i] = expf(p[i] - shift);
        sum += p[i];
    }
    return sum;
}

static void mk_exp(const float *x, float *y, long count) {
    long i = 0;
    for (; i + 16 <= count; i += 16) mk_store16(y + i, mk_exp16(mk_load16(x + i)));
    for (; i < count; i++) y[i] = expf(x[i]);
}
