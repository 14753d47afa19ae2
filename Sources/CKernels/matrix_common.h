// Types and includes shared by every variant; included before a variant's target attribute is
// pushed, so that library declarations do not receive it.
#ifndef MOECKPT_MATRIX_COMMON_H
#define MOECKPT_MATRIX_COMMON_H

#include "kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef float mk_f32x8 __attribute__((ext_vector_type(8)));
typedef float mk_f32x16 __attribute__((ext_vector_type(16)));
typedef float mk_f32x32 __attribute__((ext_vector_type(32)));
typedef uint32_t mk_u32x16 __attribute__((ext_vector_type(16)));
typedef uint8_t mk_u8x16 __attribute__((ext_vector_type(16)));

/// Chunks of 32 in a row of k BF16 activations (matrix_bf16_pairs.h), the last zero-padded.
#define MK_BF16_CHUNKS(k) (((k) + 31) / 32)

/// Quantized activations (matrix_quantized.h): ggml's Q8_K with the sums of its codes per 32. (Q8_0
/// rows are three arrays: the codes, each block's scale, each block's sum.)
typedef struct mk_q8_K_activations {
    float d;
    int16_t sums[8];
    int8_t q[256];
} mk_q8_K_activations;

// Elements are defined as exact sequences of operations: no contraction of a * b + c into a
// fused multiply-add unless written so.
#pragma clang fp contract(off)
// Vectors passed between static always-inline functions of one variant: no ABI is involved.
#pragma clang diagnostic ignored "-Wpsabi"

#define MK_GLUE2(a, b) a##b
#define MK_GLUE(a, b) MK_GLUE2(a, b)

#endif
