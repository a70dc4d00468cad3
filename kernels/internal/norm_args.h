/* What norm.c (scalar reference) and norm_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_NORM_ARGS_H
#define CK_INTERNAL_NORM_ARGS_H

#include "common.h"

typedef struct {
    const float *x, *w, *b, *dy;
    float *y, *mean, *rstd, *dx, *dw, *db;
    const float *cmean, *crstd;
    int T, C;
    float eps, w_offset;
} nm_args;

#endif
