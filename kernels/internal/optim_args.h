/* What optim.c (scalar reference) and optim_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_OPTIM_ARGS_H
#define CK_INTERNAL_OPTIM_ARGS_H

#include "common.h"

#define OPT_MAX_THREADS 256

typedef struct {
    float *param, *m, *v;
    const float *grad;
    int64_t n;
    float lr, beta1, beta2, eps, wd, grad_scale, step_size, inv_bc2_sqrt;
    double partial[OPT_MAX_THREADS];
} opt_args;

#endif
