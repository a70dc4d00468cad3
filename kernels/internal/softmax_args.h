/* What softmax.c (scalar reference) and softmax_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_SOFTMAX_ARGS_H
#define CK_INTERNAL_SOFTMAX_ARGS_H

#include "common.h"

typedef struct {
    const float *x, *y, *dy;
    float *out;
    int T, C;
} sm_args;

#endif
