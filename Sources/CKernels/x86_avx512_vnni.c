// The AVX-512 variant with VNNI (Ice Lake, Zen 4 and later): the same source, whose integer
// products (matrix_quantized.h, `--arithmetic ggml`) then use `vpdpbusd` and `vpdpwssd`, one
// instruction where AVX2 takes two; every other kernel as the AVX-512 variant's. The same results.
#include "matrix_common.h"

#include <immintrin.h>

#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#define MK_VARIANT avx512_vnni
#include "x86_avx512_settings.h"
#define MK_HAS_VNNI 1
#include "variant.h"
#pragma clang attribute pop

const moeckpt_kernels *moeckpt_kernels_avx512_vnni(void) { return &mk_kernels_avx512_vnni; }

int moeckpt_cpu_runs_avx512_vnni_kernels(void) {
    __builtin_cpu_init();
    return moeckpt_cpu_runs_avx512_kernels() && __builtin_cpu_supports("avx512vnni");
}

#else

const moeckpt_kernels *moeckpt_kernels_avx512_vnni(void) { return NULL; }
int moeckpt_cpu_runs_avx512_vnni_kernels(void) { return 0; }

#endif
