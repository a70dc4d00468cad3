/* What embedding.c (scalar reference) and embedding_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_EMBEDDING_ARGS_H
#define CK_INTERNAL_EMBEDDING_ARGS_H

#include "common.h"

typedef struct {
    const int32_t *ids;
    const float *src;
    float *dst;
    int T, vocab, C;
    float scale;
    int bad[1];
} emb_args;

#endif
