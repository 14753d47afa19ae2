// The register tiles of the panel products: MK_ROW_TILE weight rows x one vector of a panel's
// tokens. Row r, step i of the tile's fp32 weights is at w + r * row_stride + i * step bytes:
// rows in place or widened (step 4), or a packed [k][MK_ROW_TILE] tile (row_stride 4). Each
// weight is broadcast against the panel's token vector; y is the tile's [MK_ROW_TILE][panel]
// output, accumulated into unless `first`.
#define MK_DEFINE_TILE(name, vector)                                                                          \
    MK_INLINE void name(                                                                                      \
        const unsigned char *w, long row_stride, long step, const float *x, long k, float *y, int first) {   \
        vector c[MK_ROW_TILE];                                                                                \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < MK_ROW_TILE; r++) {                            \
            if (first) c[r] = (vector)0.0f;                                                                   \
            else memcpy(&c[r], y + r * MK_TOKEN_PANEL, sizeof(vector));                                       \
        }                                                                                                     \
        for (long i = 0; i < k; i++) {                                                                        \
            vector xa;                                                                                        \
            memcpy(&xa, x + i * MK_TOKEN_PANEL, sizeof xa);                                                   \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < MK_ROW_TILE; r++) {                        \
                vector weight = (vector)mk_load_f32(w + r * row_stride + i * step);                           \
                c[r] = __builtin_elementwise_fma(weight, xa, c[r]);                                           \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < MK_ROW_TILE; r++) {                            \
            memcpy(y + r * MK_TOKEN_PANEL, &c[r], sizeof(vector));                                            \
        }                                                                                                     \
    }

MK_DEFINE_TILE(mk_tile8, mk_f32x8)
MK_DEFINE_TILE(mk_tile16, mk_f32x16)
#if MK_TOKEN_PANEL == 32
MK_DEFINE_TILE(mk_tile32, mk_f32x32)
#endif

/// The tile for a panel with `valid` tokens: a panel of few tokens (an expert chosen by few) is
/// computed on its first 8 or 16 lanes only.
MK_INLINE void mk_tile(
    const unsigned char *w, long row_stride, long step, const float *x, long k, float *y, int first, long valid) {
#if MK_TOKEN_PANEL == 32
    if (valid > 16) {
        mk_tile32(w, row_stride, step, x, k, y, first);
        return;
    }
#endif
    if (valid > 8) {
        mk_tile16(w, row_stride, step, x, k, y, first);
    } else {
        mk_tile8(w, row_stride, step, x, k, y, first);
    }
}

MK_INLINE long mk_min(long a, long b) { return a < b ? a : b; }
