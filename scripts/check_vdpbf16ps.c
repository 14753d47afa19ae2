// What `vdpbf16ps` computes, checked on the CPU that runs it (docs/PERFORMANCE.md, "BF16 pairs"):
// the definition matrix_bf16_pairs.h emulates, lane by lane, against the instruction.
//
//     clang -O2 -o /tmp/check_vdpbf16ps scripts/check_vdpbf16ps.c -lm && /tmp/check_vdpbf16ps
//
// Needs a CPU with AVX512-BF16 (Zen 4, Sapphire Rapids). For each of two kinds of lanes (random
// BF16s of any exponent; products and sums near 2^-126), it counts the lanes where the
// instruction differs from:
// - the model: each step flush(daz(acc) + daz(w) x), flushed where the result rounded to 24 bits
//   with an unbounded exponent is below 2^-126 (0 expected);
// - the same without DAZ on the accumulator, and with a flush after an ordinary fused
//   multiply-add (both nonzero: the model's choices are what the instruction does);
// - two fused multiply-adds under MXCSR's FTZ and DAZ (0 expected: the emulation of the x86
//   variants without the instruction).
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static float from_bits(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static uint32_t bits_of(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }
static float flushed(float f) { return (bits_of(f) & 0x7F800000) == 0 ? from_bits(bits_of(f) & 0x80000000) : f; }
static float bf16(uint16_t h) { return from_bits((uint32_t)h << 16); }

enum { MODEL, NO_DAZ_ON_ACC, PLAIN_FLUSH, MXCSR, KINDS };
static const char *names[KINDS] = {"model", "no DAZ on the accumulator", "flush after rounding with subnormals", "FMA under MXCSR FTZ+DAZ"};

static float step(int kind, float acc, uint16_t w, uint16_t x) {
    float a = flushed(bf16(w)), b = flushed(bf16(x)), c = kind == NO_DAZ_ON_ACC ? acc : flushed(acc);
    float r = fmaf(a, b, c);
    if (kind == MODEL && fabsf(r) == 0x1p-126f && fabs((double)a * b + c) < 0x1.ffffffp-127) return copysignf(0, r);
    return flushed(r);
}

__attribute__((target("avx512f,avx512bf16,fma"), noinline)) static void under_mxcsr(const uint16_t *w, const uint16_t *x, const float *acc, float *out) {
    __m512i vw = _mm512_loadu_si512(w), vx = _mm512_loadu_si512(x), high = _mm512_set1_epi32((int)0xFFFF0000);
    __m512 r = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(vw, high)), _mm512_castsi512_ps(_mm512_and_si512(vx, high)), _mm512_loadu_ps(acc));
    r = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(vw, 16)), _mm512_castsi512_ps(_mm512_slli_epi32(vx, 16)), r);
    _mm512_storeu_ps(out, r);
}

static uint64_t state = 88172645463325252ull;
static uint32_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (uint32_t)state; }

__attribute__((target("avx512f,avx512bf16,fma"))) int main(void) {
    if (!__builtin_cpu_supports("avx512bf16")) { fprintf(stderr, "this CPU has no AVX512-BF16\n"); return 2; }
    for (int boundary = 0; boundary < 2; boundary++) {
        long differ[KINDS] = {0}, lanes = 0;
        for (int round = 0; round < 2000000; round++) {
            uint16_t w[32], x[32];
            float acc[16], hw[16], mxcsr[16];
            for (int i = 0; i < 32; i++) {
                if (boundary) {  // products near 2^-126, accumulators from 0 to 2^-124
                    int product = -152 + (int)(next() % 30), e = -76 + (int)(next() % 40);
                    w[i] = (uint16_t)((next() & 1) << 15 | (e + 127) << 7 | (next() % 4 == 0 ? 0 : next() & 0x7F));
                    x[i] = (uint16_t)((next() & 1) << 15 | ((product - e + 127) & 0xFF) << 7 | (next() % 4 == 0 ? 0 : next() & 0x7F));
                } else {  // any finite BF16
                    w[i] = (uint16_t)next(), x[i] = (uint16_t)next();
                    if ((w[i] & 0x7F80) == 0x7F80) w[i] &= 0xBFFF;
                    if ((x[i] & 0x7F80) == 0x7F80) x[i] &= 0xBFFF;
                }
            }
            for (int j = 0; j < 16; j++) {
                acc[j] = boundary ? from_bits((next() & 1) << 31 | (next() % 4) << 23 | (next() & 0x7FFFFF)) : from_bits(next() & 0xBFFFFFFF);
            }
            __m512bh vw, vx;
            memcpy(&vw, w, 64);
            memcpy(&vx, x, 64);
            _mm512_storeu_ps(hw, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), vw, vx));
            unsigned csr = _mm_getcsr();
            _mm_setcsr(csr | 0x8040);
            under_mxcsr(w, x, acc, mxcsr);
            _mm_setcsr(csr);
            for (int j = 0; j < 16; j++, lanes++) {
                for (int kind = 0; kind < KINDS; kind++) {
                    float r = kind == MXCSR ? mxcsr[j] : step(kind, step(kind, acc[j], w[2 * j + 1], x[2 * j + 1]), w[2 * j], x[2 * j]);
                    if (bits_of(r) != bits_of(hw[j]) && !(isnan(r) && isnan(hw[j]))) differ[kind]++;
                }
            }
        }
        printf("%s lanes: %ld\n", boundary ? "near 2^-126" : "random", lanes);
        for (int kind = 0; kind < KINDS; kind++) printf("  differ from the instruction, %s: %ld\n", names[kind], differ[kind]);
    }
    return 0;
}
