// The AVX-512 variants' settings (x86_avx512.c, x86_avx512_vnni.c, x86_avx512_bf16.c): 8 rows x
// 32 tokens, F16C, `vpermps` as the 16-entry lookup, AVX2's integer pair products, MXCSR's
// flushes for BF16 pairs. Included under the variant's target attribute, after its MK_VARIANT.
#define MK_HAS_F16C 1
#define MK_ROW_TILE 8
#define MK_TOKEN_PANEL 32
#define MK_MAX_DOT_TOKENS 4
#define MK_HAS_LOOKUP16 1
#define MK_HAS_X86_PAIR_PRODUCTS 1
#define MK_HAS_X86_MXCSR 1
#define mk_lookup16(table, indices) ((mk_f32x16)_mm512_permutexvar_ps((__m512i)(indices), (__m512)(table)))
