// BF16 weights in ggml's arithmetic (`--arithmetic ggml`): what llama.cpp computes on them where
// the CPU has AVX512-BF16, whose `vdpbf16ps` does 32 products per instruction (an fp32 fused
// multiply-add, 16). Part of a variant (variant.h), compiled under its target attribute.
//
// - Activations: each token's rounded to BF16 as ggml's GGML_FP32_TO_BF16 (round to nearest even,
//   a NaN kept quiet), subnormal results flushed to a signed zero (`vdpbf16ps` reads them as zero
//   anyway), the row zero-padded to whole chunks of 32.
// - Weight row times activation row: 16 lanes; lane j takes, for each chunk of 32 in order, the
//   pair 2j + 1 then the pair 2j, each as lane = flush(lane + daz(w) x) with one rounding (the
//   product of two BF16s is exact in fp32): `vdpbf16ps`'s definition, with subnormal inputs read
//   as zero and a result flushed where, rounded to 24 bits with an unbounded exponent, it is below
//   2^-126 (scripts/check_vdpbf16ps.c checks this against the instruction). A last partial chunk
//   reads zeros. Then the lanes are folded in halves: l_j + l_j+8, then 4, 2, 1 (`mk_fold16`).
// With MK_HAS_BF16_PAIRS, one `vdpbf16ps` per 16 pairs; the other x86 variants (MK_HAS_X86_MXCSR)
// take two fused multiply-adds with MXCSR's flushes set, and the generic variant writes the
// flushes out: the same bits.

/// ggml's BF16 of 16 floats' bits (in the low halves), subnormals flushed.
MK_INLINE mk_u32x16 mk_bf16_rounded(mk_u32x16 bits) {
    mk_u32x16 nan = (mk_u32x16)((bits & 0x7FFFFFFFu) > 0x7F800000u);
    mk_u32x16 h = ((((bits >> 16) & 0xFFFF) | 64) & nan) | (((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16) & ~nan);
    mk_u32x16 subnormal = (mk_u32x16)((h & 0x7F80) == 0);
    return h & ~(subnormal & 0x7FFF);
}

/// One token's k activations as BF16, MK_BF16_CHUNKS(k) * 32 of them (zeros after k).
static void mk_round_bf16(const float *x, long k, uint16_t *out) {
    typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
    long i = 0;
    for (; i + 16 <= k; i += 16) {
        mk_u32x16 bits;
        memcpy(&bits, x + i, sizeof bits);
        u16x16 h = __builtin_convertvector(mk_bf16_rounded(bits), u16x16);
        memcpy(out + i, &h, sizeof h);
    }
    if (i < k) {
        float rest[16] = {0};
        memcpy(rest, x + i, sizeof(float) * (size_t)(k - i));
        mk_u32x16 bits;
        memcpy(&bits, rest, sizeof bits);
        u16x16 h = __builtin_convertvector(mk_bf16_rounded(bits), u16x16);
        memcpy(out + i, &h, sizeof(uint16_t) * (size_t)(k - i));
    }
    for (i = k; i < MK_BF16_CHUNKS(k) * 32; i++) out[i] = 0;
}

#if MK_HAS_BF16_PAIRS
/// acc plus 16 pairs of BF16 products, lane j taking w[2j + 1] x[2j + 1], then w[2j] x[2j].
MK_INLINE mk_f32x16 mk_bf16_pairs(mk_f32x16 acc, mk_u32x16 w, mk_u32x16 x) {
    return (mk_f32x16)_mm512_dpbf16_ps((__m512)acc, (__m512bh)w, (__m512bh)x);
}
MK_INLINE unsigned mk_bf16_chains_begin(void) { return 0; }
MK_INLINE void mk_bf16_chains_end(unsigned state, void *chains) { (void)state, (void)chains; }

#elif MK_HAS_X86_MXCSR
// With MXCSR's DAZ and FTZ set, a fused multiply-add is one step of `vdpbf16ps`, the flush
// included (x86 decides tininess after rounding, with an unbounded exponent; checked on Zen 4
// against the instruction: 64 M lanes, half of them at 2^-126). Set around the chains only: the
// fold's additions keep subnormals. The barriers keep the compiler from moving the chains' loads
// before the setting, or the fold's reads of `chains` before it is restored.
MK_INLINE mk_f32x16 mk_bf16_pairs(mk_f32x16 acc, mk_u32x16 w, mk_u32x16 x) {
    acc = __builtin_elementwise_fma((mk_f32x16)(w & 0xFFFF0000u), (mk_f32x16)(x & 0xFFFF0000u), acc);
    return __builtin_elementwise_fma((mk_f32x16)(w << 16), (mk_f32x16)(x << 16), acc);
}
MK_INLINE unsigned mk_bf16_chains_begin(void) {
    unsigned state = _mm_getcsr();
    // FTZ and DAZ, round to nearest even and every exception masked, as `vdpbf16ps` whatever the
    // caller's setting.
    _mm_setcsr((state & ~0x6000u) | 0x1F80u | 0x8040u);
    __asm__ volatile("" ::: "memory");
    return state;
}
MK_INLINE void mk_bf16_chains_end(unsigned state, void *chains) {
    __asm__ volatile("" : : "r"(chains) : "memory");
    _mm_setcsr(state);
    __asm__ volatile("" : : "r"(chains) : "memory");
}

#else
// Elsewhere (the generic variant: any CPU), each step is a fused multiply-add with the flushes
// written out.

/// v with its subnormal lanes as signed zeros.
MK_INLINE mk_f32x16 mk_flush_subnormals(mk_f32x16 v) {
    mk_u32x16 bits = (mk_u32x16)v;
    mk_u32x16 subnormal = (mk_u32x16)((bits & 0x7F800000u) == 0);
    return (mk_f32x16)(bits & ~(subnormal & 0x7FFFFFFFu));
}

/// One step of `vdpbf16ps` on every lane: flush(acc + w x), w and x BF16 values widened, x never
/// subnormal (flushed when rounded), acc never subnormal (a flushed result).
MK_INLINE mk_f32x16 mk_bf16_step(mk_f32x16 acc, mk_f32x16 w, mk_f32x16 x) {
    w = mk_flush_subnormals(w);
    mk_f32x16 r = __builtin_elementwise_fma(w, x, acc);
    mk_u32x16 magnitude = (mk_u32x16)r & 0x7FFFFFFFu;
    if (__builtin_reduce_or((mk_u32x16)(magnitude == 0x00800000u))) {
        // 2^-126 after rounding with subnormals: the unbounded rounding decides (the exact sum, in
        // double, is below 2^-126 - 2^-151 exactly where it gives 2^-126 - 2^-150: flushed).
        float lanes[16], ws[16], xs[16], as[16];
        memcpy(lanes, &r, sizeof lanes);
        memcpy(ws, &w, sizeof ws);
        memcpy(xs, &x, sizeof xs);
        memcpy(as, &acc, sizeof as);
        for (int j = 0; j < 16; j++) {
            double exact = (double)ws[j] * (double)xs[j] + (double)as[j];
            if (fabs(lanes[j]) == 0x1p-126f && fabs(exact) < 0x1.ffffffp-127) lanes[j] = copysignf(0.0f, lanes[j]);
        }
        memcpy(&r, lanes, sizeof r);
    }
    return mk_flush_subnormals(r);
}

/// acc plus 16 pairs of BF16 products, lane j taking w[2j + 1] x[2j + 1], then w[2j] x[2j].
MK_INLINE mk_f32x16 mk_bf16_pairs(mk_f32x16 acc, mk_u32x16 w, mk_u32x16 x) {
    acc = mk_bf16_step(acc, (mk_f32x16)(w & 0xFFFF0000u), (mk_f32x16)(x & 0xFFFF0000u));
    return mk_bf16_step(acc, (mk_f32x16)(w << 16), (mk_f32x16)(x << 16));
}
MK_INLINE unsigned mk_bf16_chains_begin(void) { return 0; }
MK_INLINE void mk_bf16_chains_end(unsigned state, void *chains) { (void)state, (void)chains; }
#endif

/// The lanes folded in halves: 8 sums l_j + l_j+8, then 4, 2, 1.
MK_INLINE float mk_fold16(mk_f32x16 v) {
    mk_f32x8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    typedef float f32x4 __attribute__((ext_vector_type(4)));
    f32x4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/// The same fold of 16 vectors at once, lane i of the result that of v[i]: each level adds the
/// same pairs, two outputs' halves side by side (15 additions where 16 folds take 64).
MK_INLINE mk_f32x16 mk_fold16x16(const mk_f32x16 v[16]) {
    mk_f32x16 eights[8], fours[4], twos[2];
    for (int i = 0; i < 8; i++) {
        mk_f32x16 a = v[2 * i], b = v[2 * i + 1];
        eights[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
            + __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    }
    for (int i = 0; i < 4; i++) {
        mk_f32x16 a = eights[2 * i], b = eights[2 * i + 1];
        fours[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
            + __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    }
    for (int i = 0; i < 2; i++) {
        mk_f32x16 a = fours[2 * i], b = fours[2 * i + 1];
        twos[i] = __builtin_shufflevector(a, b, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29)
            + __builtin_shufflevector(a, b, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    }
    return __builtin_shufflevector(twos[0], twos[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
        + __builtin_shufflevector(twos[0], twos[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/// The last, partial chunk of a weight row of k BF16s (k not a multiple of 32): zeros past k.
MK_INLINE mk_u32x16 mk_bf16_last_chunk(const unsigned char *row, long k) {
    mk_u32x16 chunk = 0;
    memcpy(&chunk, row + 64 * (k / 32), (size_t)(2 * (k % 32)));
    return chunk;
}

/// Chunk c of `group` (1-4) tokens' activations (`stride` apart) times one weight chunk.
MK_INLINE void mk_bf16_row_step(mk_f32x16 acc[4], mk_u32x16 w, const uint16_t *x, long stride, long c, int group) {
    for (int g = 0; g < group; g++) {
        mk_u32x16 a;
        memcpy(&a, x + g * stride + 32 * c, sizeof a);
        acc[g] = mk_bf16_pairs(acc[g], w, a);
    }
}

/// One weight row times `group` (1-4) tokens' BF16 activations (`stride` apart), into y (`ldy`
/// apart): one chain per token (`group` a constant where inlined, so the chains stay in registers).
MK_INLINE void mk_bf16_row_dots_of(const unsigned char *row, long k, const uint16_t *x, long stride, float *y, long ldy, int group) {
    mk_f32x16 acc[4] = {0, 0, 0, 0};
    unsigned state = mk_bf16_chains_begin();
    long c = 0;
    for (; c < k / 32; c++) {
        mk_u32x16 w;
        memcpy(&w, row + 64 * c, sizeof w);
        mk_bf16_row_step(acc, w, x, stride, c, group);
    }
    if (k % 32 != 0) mk_bf16_row_step(acc, mk_bf16_last_chunk(row, k), x, stride, c, group);
    mk_bf16_chains_end(state, acc);
    for (int g = 0; g < group; g++) y[g * ldy] = mk_fold16(acc[g]);
}

static void mk_bf16_row_dots(const unsigned char *row, long k, const uint16_t *x, long stride, float *y, long ldy, int group) {
    switch (group) {
    case 1: mk_bf16_row_dots_of(row, k, x, stride, y, ldy, 1); break;
    case 2: mk_bf16_row_dots_of(row, k, x, stride, y, ldy, 2); break;
    case 3: mk_bf16_row_dots_of(row, k, x, stride, y, ldy, 3); break;
    default: mk_bf16_row_dots_of(row, k, x, stride, y, ldy, 4); break;
    }
}

/// Chunk c of 4 tokens' activations times 4 weight rows' chunks: acc[4 t + r].
MK_INLINE void mk_bf16_tile_step(mk_f32x16 acc[16], const mk_u32x16 rows[4], const uint16_t *x, long stride, long c) {
    for (int t = 0; t < 4; t++) {
        mk_u32x16 a;
        memcpy(&a, x + t * stride + 32 * c, sizeof a);
        for (int r = 0; r < 4; r++) acc[4 * t + r] = mk_bf16_pairs(acc[4 * t + r], rows[r], a);
    }
}

/// 4 weight rows (`row_bytes` apart) times 4 tokens: 16 chains, folded together.
MK_INLINE void mk_bf16_tile4x4(const unsigned char *w, long row_bytes, long k, const uint16_t *x, long stride, float *y, long ldy) {
    mk_f32x16 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = (mk_f32x16)0;
    mk_u32x16 rows[4];
    unsigned state = mk_bf16_chains_begin();
    long c = 0;
    for (; c < k / 32; c++) {
        for (int r = 0; r < 4; r++) memcpy(&rows[r], w + r * row_bytes + 64 * c, sizeof rows[r]);
        mk_bf16_tile_step(acc, rows, x, stride, c);
    }
    if (k % 32 != 0) {
        for (int r = 0; r < 4; r++) rows[r] = mk_bf16_last_chunk(w + r * row_bytes, k);
        mk_bf16_tile_step(acc, rows, x, stride, c);
    }
    mk_bf16_chains_end(state, acc);
    mk_f32x16 folded = mk_fold16x16(acc);
    for (int t = 0; t < 4; t++) {
        for (int r = 0; r < 4; r++) y[t * ldy + r] = folded[4 * t + r];
    }
}

/// Rows [row_begin, row_end) of BF16 weights times `tokens` rows of BF16 activations
/// (`mk_round_bf16`), y [tokens, outputs]. Up to 3 tokens, each row streams once (one row at a
/// time reads fastest from a file mapping); more go 4 rows by 4 tokens, in blocks of tokens whose
/// activations stay in L2.
static void mk_multiply_rows_bf16(
    const unsigned char *weight, long row_begin, long row_end, long k, const uint16_t *x, long tokens, float *y,
    long outputs) {
    long stride = MK_BF16_CHUNKS(k) * 32, row_bytes = 2 * k;
    long fit = (262144 / (2 * stride)) / 4 * 4, token_block = mk_min(tokens, fit > 4 ? fit : 4);
    for (long t0 = 0; t0 < tokens; t0 += token_block) {
        long t1 = mk_min(tokens, t0 + token_block), whole = t0 + (t1 - t0) / 4 * 4, n = row_begin;
        for (; n + 4 <= row_end && whole > t0; n += 4) {
            for (long t = t0; t < whole; t += 4) {
                mk_bf16_tile4x4(weight + n * row_bytes, row_bytes, k, x + t * stride, stride, y + t * outputs + n, outputs);
            }
            for (int r = 0; r < 4 && whole < t1; r++) {
                mk_bf16_row_dots(weight + (n + r) * row_bytes, k, x + whole * stride, stride, y + whole * outputs + n + r, outputs, (int)(t1 - whole));
            }
        }
        for (; n < row_end; n++) {
            for (long t = t0; t < t1; t += 4) {
                mk_bf16_row_dots(weight + n * row_bytes, k, x + t * stride, stride, y + t * outputs + n, outputs, (int)mk_min(4, t1 - t));
            }
        }
    }
}
