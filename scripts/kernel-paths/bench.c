// scripts/bench_kernel_paths.sh: Y = W X, 1024 -> 3584 in f32, on each code path, one thread.
#include "kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
const moeckpt_kernels *muladd_kernels(void);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    long tokens = argc > 1 ? atol(argv[1]) : 512, inputs = 1024, outputs = 3584;
    float *w = malloc(4 * inputs * outputs), *x = malloc(4 * inputs * 512), *y = malloc(4 * outputs * 512);
    for (long i = 0; i < inputs * outputs; i++) w[i] = (float)(i % 7) * 0.01f;
    for (long i = 0; i < inputs * 512; i++) x[i] = (float)(i % 5) * 0.1f;
    struct { const char *name; const moeckpt_kernels *k; } v[] = {
        {"avx2 (C, target attribute)", moeckpt_kernels_avx2()},
        {"sse2 mul+add (Relaxed.multiplyAdd's code)", muladd_kernels()},
        {"generic (fmaf calls)", moeckpt_kernels_generic()}};
    for (int round = 0; round < 3; round++)
    for (int i = 0; i < 3; i++) {
        int reps = i == 2 ? 1 : 5;
        double best = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            if (tokens <= 4) v[i].k->multiply_rows(MOECKPT_WEIGHTS_F32, w, 0, outputs, inputs, x, tokens, y, outputs);
            else v[i].k->multiply(MOECKPT_WEIGHTS_F32, w, 0, outputs, inputs, x, tokens, tokens, y, outputs);
            double t = now() - t0;
            if (t < best) best = t;
        }
        printf("%-45s %ld tokens: %7.2f ms %7.1f GFLOP/s\n", v[i].name, tokens, best * 1e3, 2.0 * tokens * inputs * outputs / best / 1e9);
    }
    return 0;
}
