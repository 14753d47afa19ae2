#ifndef MOECKPT_CPU_FEATURES_H
#define MOECKPT_CPU_FEATURES_H

/// 1 when the CPU and the operating system support every instruction set that code built with
/// `-target-cpu znver4` may use (AVX-512 F/BW/CD/DQ/VL/BF16/VBMI/VNNI..., GFNI, VAES), else 0.
int moeckpt_cpu_has_znver4_features(void);

/// 1 when the CPU has what `-target-cpu haswell` code uses (AVX2, FMA, F16C, BMI1/2, MOVBE), else 0.
int moeckpt_cpu_has_haswell_features(void);

/// Asks for the cache line at `address` ahead of its use (no effect on results). Inlined into
/// Swift callers by the clang importer.
static inline void moeckpt_prefetch(const void *address) { __builtin_prefetch(address, 0, 0); }

#endif
