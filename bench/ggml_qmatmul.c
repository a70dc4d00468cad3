/* llama.cpp's peer for bench/kernels_quant_k.py: time ggml's mul_mat of a
 * K-quant weight W[N,K] (GGUF type `fmt`) with fp32 activations x[M,K] on
 * the CPU backend (ggml quantizes x to Q8_K inside, as ckc does), nth threads.
 *
 *   ggml_qmatmul FMT M N K NTH LAYERS REPS   ->  prints the best seconds per call
 *
 * LAYERS distinct weight matrices are cycled (so a decode GEMV reads memory,
 * as ckc's bench does); blocks are random bytes with finite fp16 scales
 * (offsets as GGUF's block layouts). Plain ggml_graph_compute on context
 * memory: ggml's vec_dot kernels, without the CPU_REPACK buffer type
 * llama.cpp may use for Q4_K prefill. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s FMT M N K NTH LAYERS REPS\n", argv[0]);
        return 1;
    }
    const int fmt = atoi(argv[1]), M = atoi(argv[2]), N = atoi(argv[3]), K = atoi(argv[4]);
    const int nth = atoi(argv[5]), L = atoi(argv[6]), reps = atoi(argv[7]);
    int bb, h0, h1;   /* block bytes, fp16 field offsets (-1: none) */
    switch (fmt) {
    case 10: bb = 84; h0 = 80; h1 = 82; break;
    case 11: bb = 110; h0 = 108; h1 = -1; break;
    case 12: bb = 144; h0 = 0; h1 = 2; break;
    case 13: bb = 176; h0 = 0; h1 = 2; break;
    case 14: bb = 210; h0 = 208; h1 = -1; break;
    default: fprintf(stderr, "unknown fmt %d\n", fmt); return 1;
    }
    ggml_cpu_init();
    const size_t wbytes = (size_t)N * (K / 256) * bb;
    struct ggml_init_params ip = {(size_t)L * (wbytes + 4096) + (size_t)M * K * 4 + (size_t)L * M * N * 4 +
                                      (size_t)L * 1024 * 1024, NULL, false};
    struct ggml_context *ctx = ggml_init(ip);
    if (!ctx) return 1;
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, M);
    srand(1);
    for (long i = 0; i < (long)M * K; i++) ((float *)x->data)[i] = (float)rand() / RAND_MAX - 0.5f;
    struct ggml_cgraph **g = malloc(sizeof(*g) * L);
    const uint16_t half = 0x211f;   /* about 0.01 */
    for (int l = 0; l < L; l++) {
        struct ggml_tensor *W = ggml_new_tensor_2d(ctx, (enum ggml_type)fmt, K, N);
        uint8_t *p = (uint8_t *)W->data;
        static uint64_t st = 88172645463325252ull;   /* xorshift64: fast random bytes */
        for (size_t i = 0; i < wbytes; i += 8) {
            st ^= st << 13; st ^= st >> 7; st ^= st << 17;
            memcpy(p + i, &st, wbytes - i < 8 ? wbytes - i : 8);
        }
        for (size_t b = 0; b < wbytes / bb; b++) {
            memcpy(p + b * bb + h0, &half, 2);
            if (h1 >= 0) memcpy(p + b * bb + h1, &half, 2);
        }
        g[l] = ggml_new_graph(ctx);
        ggml_build_forward_expand(g[l], ggml_mul_mat(ctx, W, x));
    }
    /* one plan and work buffer for all layers (same shapes): nothing allocated while timing */
    struct ggml_cplan plan = ggml_graph_plan(g[0], nth, NULL);
    void *work = malloc(plan.work_size + 64);
    plan.work_data = (uint8_t *)work;
    for (int l = 0; l < L; l++) ggml_graph_compute(g[l], &plan);   /* warm up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int l = 0; l < L; l++) ggml_graph_compute(g[l], &plan);
        const double t = (now() - t0) / L;
        if (t < best) best = t;
    }
    printf("%.9f\n", best);
    ggml_free(ctx);
    free(work);
    free(g);
    return 0;
}
