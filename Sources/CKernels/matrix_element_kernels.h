// The panel products (gemm_<format>) and dot products (dots_<format>) of one weight format,
// MK_ELEMENT; part of a variant (variant.h). With MK_SCALED, each element is also multiplied by
// its block's scale (`moeckpt_block_scales`) as it is widened, before any product.
#ifndef MK_SCALED
#define MK_SCALED 0
#endif
// With MK_AFFINE (and MK_SCALED), each element is its scale times it, plus the bias of the same
// block (`moeckpt_block_scales.biases`): two rounded operations, as MLX dequantizes.
#ifndef MK_AFFINE
#define MK_AFFINE 0
#endif
// With MK_PAIR, a format that also reads 32 elements at once (`<format>_pair`): the block formats
// of 32 (whole blocks), and F16 (one NaN check for 32).
#ifndef MK_PAIR
#define MK_PAIR 0
#endif
// With MK_SUPER, a format of 256-element super-blocks that reads a super-block's scales once
// (`<format>_prepare`, `<format>_prepared`).
#ifndef MK_SUPER
#define MK_SUPER 0
#endif
// With MK_TABLE (and MK_SCALED), a format of 2- or 4-bit codes (`<format>_codes`, `<format>_values`)
// whose group's 16 weights are computed once and looked up, where the variant has a lookup.
#if !defined(MK_TABLE) || !MK_HAS_LOOKUP16
#undef MK_TABLE
#define MK_TABLE 0
#endif
#if MK_AFFINE
#define E_BIAS_OF(scale_row, block) (scales->biases + ((scale_row) - scales->values))[block]
#define E_AFFINE(value, scale, bias) ((value) * (scale) + (bias))
#else
#define E_AFFINE(value, scale, bias) ((value) * (scale))
#endif
#define E_BYTES MK_GLUE(MK_ELEMENT, _bytes)
#define E_SCALAR MK_GLUE(MK_ELEMENT, _scalar)
#define E_VECTOR MK_GLUE(MK_ELEMENT, _vector)
#define E_PAIR MK_GLUE(MK_ELEMENT, _pair)
#define E_(name) MK_GLUE(name, MK_GLUE(_, MK_ELEMENT))

/// Rows [row_begin, row_end), columns [k0, k0 + count) of the weight widened to fp32, row after
/// row ([rows][count]).
static void E_(mk_widen)(
    const unsigned char *weight, const moeckpt_block_scales *scales, long ldw, long row_begin, long row_end, long k0,
    long count, float *out) {
    for (long n = row_begin; n < row_end; n++) {
        const unsigned char *row = weight + E_BYTES(n * ldw + k0);
        float *target = out + (n - row_begin) * count;
        long i = 0;
#if MK_SCALED
        // Column by column block: one scale per block, so no division per element.
        const float *scale_row = scales->values + (n / scales->rows) * scales->stride;
        for (long block = k0 / scales->columns; i < count; block++) {
            float scale = scale_row[block];
#if MK_AFFINE
            float bias = E_BIAS_OF(scale_row, block);
#else
            float bias = 0;
            (void)bias;
#endif
            long end = mk_min(count, (block + 1) * scales->columns - k0);
            for (; i + 16 <= end; i += 16) mk_store16(target + i, E_AFFINE(E_VECTOR(row, i), scale, bias));
            for (; i < end; i++) target[i] = E_AFFINE(E_SCALAR(row, i), scale, bias);
        }
#else
        (void)scales;
#if MK_PAIR
        for (; i + 32 <= count && k0 % 32 == 0; i += 32) {
            mk_f32x16 low, high;
            E_PAIR(row, i, &low, &high);
            mk_store16(target + i, low);
            mk_store16(target + i + 16, high);
        }
#endif
#if MK_SUPER
        for (; i + 256 <= count && k0 % 256 == 0; i += 256) {
            const unsigned char *block = row + E_BYTES(i);
            mk_super_scales prepared;
            MK_GLUE(MK_ELEMENT, _prepare)(block, &prepared);
            for (long j = 0; j < 256; j += 16) mk_store16(target + i + j, MK_GLUE(MK_ELEMENT, _prepared)(block, j, &prepared));
        }
#endif
        for (; i + 16 <= count; i += 16) mk_store16(target + i, E_VECTOR(row, i));
        for (; i < count; i++) target[i] = E_SCALAR(row, i);
#endif
    }
}

static void E_(widen_rows)(
    const void *weight, const moeckpt_block_scales *scales, long row_begin, long row_end, long columns, float *out) {
    E_(mk_widen)(weight, scales, columns, row_begin, row_end, 0, columns, out);
}

/// Rows [row_begin, row_end) (at most a tile), columns [k0, k0 + count) of the weight, widened to
/// fp32, as one row tile [count][MK_ROW_TILE]; rows past the end are zero.
static void E_(mk_pack_tile)(
    const unsigned char *weight, const moeckpt_block_scales *scales, long ldw, long row_begin, long row_end, long k0,
    long count, float *tile) {
    for (long r = 0; r < MK_ROW_TILE; r++) {
        long n = row_begin + r;
        if (n >= row_end) {
            for (long i = 0; i < count; i++) tile[i * MK_ROW_TILE + r] = 0;
            continue;
        }
        float row_values[count];
        E_(mk_widen)(weight, scales, ldw, n, n + 1, k0, count, row_values);
        for (long i = 0; i < count; i++) tile[i * MK_ROW_TILE + r] = row_values[i];
    }
}

/// Loop order: for each block of k, each block of weight rows (which then stays in L2) is swept
/// by every token panel's k-block. Weights other than F32 are widened into an L2-sized block of
/// fp32 rows first: a broadcast of a BF16 scalar costs four instructions (measured: 512-token
/// block 227 -> 134 ms, 32 tokens 25 -> 21). The last rows, when they do not fill a tile, are
/// packed once, zero-padded (packing every tile, GotoBLAS's way, measured no faster here).
static void E_(gemm)(
    const void *weight_bytes, const moeckpt_block_scales *scales, long row_begin, long row_end, long inputs,
    const float *x, long tokens, long valid_tokens, float *y, long outputs) {
    // k per block: a token panel's block streams from L2; longer blocks load and store the
    // partial sums less often (Zen 3, one core, 512 tokens 1024 -> 3584: 256 83 GFLOP/s, 1024 91.6).
    enum { k_block = 1024, row_block = 8 * MK_ROW_TILE };
    const unsigned char *weight = weight_bytes;
    const int widens = E_BYTES(16) != 64;  // every format but F32, the one 4-byte element
    float *packed = malloc(sizeof(float) * MK_ROW_TILE * k_block);
    float *widened = widens ? malloc(sizeof(float) * row_block * k_block) : NULL;
    if (!packed || (widens && !widened)) abort();  // 24 and 192 KiB; as Swift's allocate would
    float edge[MK_ROW_TILE * MK_TOKEN_PANEL];
    long k0 = 0;
    do {  // runs once when inputs == 0: the tiles store zeros
        long count = mk_min(inputs, k0 + k_block) - k0;
        int first = k0 == 0;
        for (long n0 = row_begin; n0 < row_end;) {
            long n1 = mk_min(row_end, n0 + row_block);
            long partial = (n1 - n0) % MK_ROW_TILE;
            if (partial > 0) E_(mk_pack_tile)(weight, scales, inputs, n1 - partial, n1, k0, count, packed);
            if (widens) E_(mk_widen)(weight, scales, inputs, n0, n1 - partial, k0, count, widened);
            for (long panel = 0; panel < tokens / MK_TOKEN_PANEL; panel++) {
                long valid = mk_min(MK_TOKEN_PANEL, valid_tokens - panel * MK_TOKEN_PANEL);
                const float *x_panel = x + (panel * inputs + k0) * MK_TOKEN_PANEL;
                for (long n = n0; n < n1; n += MK_ROW_TILE) {
                    float *target = y + (panel * outputs + n) * MK_TOKEN_PANEL;
                    if (n1 - n >= MK_ROW_TILE && widens) {
                        const unsigned char *rows = (const unsigned char *)(widened + (n - n0) * count);
                        mk_tile(rows, count * 4, 4, x_panel, count, target, first, valid);
                    } else if (n1 - n >= MK_ROW_TILE) {
                        mk_tile(weight + E_BYTES(n * inputs + k0), E_BYTES(inputs), 4, x_panel, count, target, first, valid);
                    } else {
                        // The same tile on the packed rows and a copy of their outputs.
                        long rows = n1 - n;
                        memset(edge, 0, sizeof edge);
                        if (!first) memcpy(edge, target, sizeof(float) * rows * MK_TOKEN_PANEL);
                        mk_tile((const unsigned char *)packed, 4, 4 * MK_ROW_TILE, x_panel, count, edge, first, valid);
                        memcpy(target, edge, sizeof(float) * rows * MK_TOKEN_PANEL);
                    }
                }
            }
            n0 = n1;
        }
        k0 += count;
    } while (k0 < inputs);
    free(widened);
    free(packed);
}

#if MK_SCALED
/// The scale of element (n, i) (the k that do not fill a chunk), and its bias (affine formats).
#define E_SCALE_AT(n, i) (scales->values[((n) / scales->rows) * scales->stride + (i) / scales->columns])
#define E_BIAS_AT(n, i) (scales->biases[((n) / scales->rows) * scales->stride + (i) / scales->columns])
#define E_SCALE_ROW(n) (scales->values + ((n) / scales->rows) * scales->stride)
#else
#define E_SCALE_AT(n, i) 1.0f
#define E_SCALE_ROW(n) NULL
#endif

/// The lane sum, then the k that do not fill a chunk (scaled elements are the widened value
/// times the scale, rounded, as in the vector part).
MK_INLINE float E_(mk_finish)(
    mk_f32x16 acc, const unsigned char *w, const moeckpt_block_scales *scales, long n, const float *x, long start,
    long k) {
    float sum = mk_lane_sum(acc);
#if MK_AFFINE
    for (long i = start; i < k; i++) sum = __builtin_fmaf(E_SCALAR(w, i) * E_SCALE_AT(n, i) + E_BIAS_AT(n, i), x[i], sum);
#elif MK_SCALED
    for (long i = start; i < k; i++) sum = __builtin_fmaf(E_SCALAR(w, i) * E_SCALE_AT(n, i), x[i], sum);
#else
    (void)scales, (void)n;
    for (long i = start; i < k; i++) sum = __builtin_fmaf(E_SCALAR(w, i), x[i], sum);
#endif
    return sum;
}

/// Runs its body for each whole 16-element chunk of k, [0, k16), with `i` the chunk's first
/// column; scaled formats go a column block at a time, `block` its index, so that a chunk's scale
/// is one load per block rather than a division per chunk.
#if MK_SCALED
#define E_CHUNKS(k16, ...)                                                                         \
    for (long block = 0, i = 0; i < (k16); block++) {                                              \
        long block_end = mk_min((k16), (block + 1) * scales->columns);                             \
        for (; i < block_end; i += 16) { __VA_ARGS__ }                                             \
    }
/// Chunk i of row w widened, times its block's scale (plus its bias: MK_AFFINE; inside E_CHUNKS).
#if MK_AFFINE
#define E_SCALED_VECTOR(w, i, scale_row) (E_VECTOR(w, i) * (scale_row)[block] + E_BIAS_OF(scale_row, block))
#else
#define E_SCALED_VECTOR(w, i, scale_row) (E_VECTOR(w, i) * (scale_row)[block])
#endif
#else
#define E_CHUNKS(k16, ...) \
    for (long i = 0; i < (k16); i += 16) { __VA_ARGS__ }
#define E_SCALED_VECTOR(w, i, scale_row) E_VECTOR(w, i)
#endif

/// Chunk i (a multiple of 16) of a row times x, into the even chunks' chains or the odd ones'.
#define E_ACCUMULATE(v, x_chunk, i, even, odd)                                            \
    do {                                                                                   \
        if (((i) & 16) == 0) even = __builtin_elementwise_fma((v), mk_load16(x_chunk), even); \
        else odd = __builtin_elementwise_fma((v), mk_load16(x_chunk), odd);                 \
    } while (0)

/// One weight row n, `group` tokens (rows of x `k` apart, of y `ldy` apart) sharing each weight
/// vector; `group` is a constant at every call, so the loops unroll.
MK_INLINE void E_(mk_dots_tokens)(
    const unsigned char *w, const moeckpt_block_scales *scales, long n, long k, const float *x, float *y, long ldy,
    const int group) {
    // Two sets of chains, the even 16-element chunks into a, the odd into b: two fused
    // multiply-adds in flight per row where one would wait 4 cycles for the last.
    mk_f32x16 a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
    long k16 = k & ~15L;
    const float *scale_row = E_SCALE_ROW(n);
    (void)scale_row;
#if MK_PAIR
    // Rows of a block format hold whole blocks (k16 is k, a multiple of 32); F16's may end in 16.
    long i = 0;
    for (; i + 32 <= k16; i += 32) {
        mk_f32x16 low, high;
        E_PAIR(w, i, &low, &high);
        _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {
            a[g] = __builtin_elementwise_fma(low, mk_load16(x + g * k + i), a[g]);
            b[g] = __builtin_elementwise_fma(high, mk_load16(x + g * k + i + 16), b[g]);
        }
    }
    if (i < k16) {
        mk_f32x16 v = E_VECTOR(w, i);
        _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) E_ACCUMULATE(v, x + g * k + i, i, a[g], b[g]);
    }
#elif MK_SUPER
    // Rows of a super-block format hold whole super-blocks: k16 is k, a multiple of 256.
    for (long i = 0; i < k16; i += 256) {
        const unsigned char *block = w + E_BYTES(i);
        mk_super_scales prepared;
        MK_GLUE(MK_ELEMENT, _prepare)(block, &prepared);
        for (long j = 0; j < 256; j += 32) {
            mk_f32x16 even = MK_GLUE(MK_ELEMENT, _prepared)(block, j, &prepared);
            mk_f32x16 odd = MK_GLUE(MK_ELEMENT, _prepared)(block, j + 16, &prepared);
            _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {
                a[g] = __builtin_elementwise_fma(even, mk_load16(x + g * k + i + j), a[g]);
                b[g] = __builtin_elementwise_fma(odd, mk_load16(x + g * k + i + j + 16), b[g]);
            }
        }
    }
#elif MK_TABLE
    // The group's 16 possible weights, each the same operations as on its own element.
    for (long block = 0, i = 0; i < k16; block++) {
#if MK_AFFINE
        mk_f32x16 table = E_AFFINE(MK_GLUE(MK_ELEMENT, _values)(), scale_row[block], E_BIAS_OF(scale_row, block));
#else
        mk_f32x16 table = E_AFFINE(MK_GLUE(MK_ELEMENT, _values)(), scale_row[block], 0);
#endif
        long block_end = mk_min(k16, (block + 1) * scales->columns);
        for (; i < block_end; i += 16) {
            mk_f32x16 v = mk_lookup16(table, MK_GLUE(MK_ELEMENT, _codes)(w, i));
            _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {
                E_ACCUMULATE(v, x + g * k + i, i, a[g], b[g]);
            }
        }
    }
#else
    E_CHUNKS(k16, {
        mk_f32x16 v = E_SCALED_VECTOR(w, i, scale_row);
        _Pragma("clang loop unroll(full)") for (int g = 0; g < group; g++) {
            E_ACCUMULATE(v, x + g * k + i, i, a[g], b[g]);
        }
    })
#endif
    for (int g = 0; g < group; g++) y[g * ldy] = E_(mk_finish)(a[g] + b[g], w, scales, n, x + g * k, k16, k);
}

/// Dot products for a few tokens: each weight vector is loaded once (16 elements, widened in
/// registers) and multiplied into every token's accumulator. Rows go one after the other, so that
/// each thread reads its weights as one sequential stream: interleaving rows is slower on a file
/// mapping (one token's BF16 forward on one Zen 4 core: four rows at a time 10.4 GB/s, two rows
/// of Q4_0 slower than one, row by row 19 GB/s; docs/PERFORMANCE.md).
static void E_(dots)(
    const void *weight_bytes, const moeckpt_block_scales *scales, long row_begin, long row_end, long k,
    const float *x, long tokens, float *y, long outputs) {
    const unsigned char *weight = weight_bytes;
    long stride = E_BYTES(k), n = row_begin;
    for (; n < row_end; n++) {
        const unsigned char *w = weight + n * stride;
        long t = 0;
        for (; t + 4 <= tokens; t += 4) E_(mk_dots_tokens)(w, scales, n, k, x + t * k, y + t * outputs + n, outputs, 4);
        for (; t + 2 <= tokens; t += 2) E_(mk_dots_tokens)(w, scales, n, k, x + t * k, y + t * outputs + n, outputs, 2);
        if (t < tokens) E_(mk_dots_tokens)(w, scales, n, k, x + t * k, y + t * outputs + n, outputs, 1);
    }
}

#undef E_SCALE_AT
#undef E_BIAS_AT
#undef E_BIAS_OF
#undef E_AFFINE
#undef MK_AFFINE
#undef E_SCALE_ROW
#undef E_CHUNKS
#undef E_ACCUMULATE
#undef E_SCALED_VECTOR
#undef MK_SCALED
#undef E_BYTES
#undef E_SCALAR
#undef E_VECTOR
#undef E_PAIR
#undef MK_PAIR
#undef MK_TABLE
#undef MK_SUPER
#undef E_
