/* What activation.c (scalar reference) and activation_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_ACTIVATION_ARGS_H
#define CK_INTERNAL_ACTIVATION_ARGS_H

#include "common.h"

typedef struct {
    const float *x, *dy;
    float *y;
    int64_t n;
    int kind; /* 0 silu, 1 gelu, 2 softcap */
    int approx;
    float cap;
} un_args;

#endif
