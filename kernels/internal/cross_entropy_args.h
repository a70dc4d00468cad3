/* What cross_entropy.c (scalar reference) and cross_entropy_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_CROSS_ENTROPY_ARGS_H
#define CK_INTERNAL_CROSS_ENTROPY_ARGS_H

#include "common.h"

#define CE_MAX_THREADS 256

typedef struct {
    const float *logits;
    const int32_t *targets;
    float *dlogits, *losses;
    int T, V, ignore_index;
    float inv_count;
    double partial[CE_MAX_THREADS];
} ce_args;

static inline int ce_valid(int tgt, int V, int ignore_index) { return tgt != ignore_index && tgt >= 0 && tgt < V; }

#endif
