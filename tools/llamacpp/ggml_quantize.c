/* ggml's own quantizer as a filter, the reference test/py/test_quantize.py holds
 * ckc's (kernels/quantize.c) to:
 *
 *     ggml_quantize TYPE ROWS K [-t] < rows·K fp32 > rows·row_size bytes
 *
 * -t prints the seconds ggml_quantize_chunk took to stderr (bench/quantize.py).
 * TYPE is a ggml_type number. It calls ggml_quantize_chunk without an
 * importance matrix: what llama_model_quantize (llama-quantize) runs for
 * each tensor. Linked against llama.cpp's static ggml (ckc/llamacpp.py builds it). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>

#include "ggml.h"

int main(int argc, char **argv) {
    const int timed = argc == 5 && strcmp(argv[4], "-t") == 0;
    if (argc != 4 && !timed) {
        fprintf(stderr, "usage: ggml_quantize TYPE ROWS K [-t]\n");
        return 2;
    }
    const enum ggml_type type = (enum ggml_type)atoi(argv[1]);
    const long long rows = atoll(argv[2]), k = atoll(argv[3]);
    float *x = malloc((size_t)(rows * k) * sizeof(float));
    const size_t rs = ggml_row_size(type, k);
    void *y = malloc(rs * (size_t)rows);
    if (!x || !y) return 1;
    if (fread(x, sizeof(float), (size_t)(rows * k), stdin) != (size_t)(rows * k)) {
        fprintf(stderr, "ggml_quantize: short input\n");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const size_t n = ggml_quantize_chunk(type, x, y, 0, rows, k, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (timed) fprintf(stderr, "%.9f\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    if (n != rs * (size_t)rows || fwrite(y, 1, n, stdout) != n) return 1;
    free(x);
    free(y);
    return 0;
}
