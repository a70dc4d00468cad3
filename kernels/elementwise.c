/* Elementwise arithmetic: residual add, product, scale, gradient accumulate (axpy).
 * Scalar reference; SIMD variants in elementwise_avx2.c / elementwise_avx512.c
 * (one template: internal/elementwise_simd.h). Shapes in include/ckernels.h. */
#include "internal/common.h"

typedef struct {
    const float *a, *b;
    float *y;
    int64_t n;
    float s;
    int op; /* 0 add, 1 scale, 2 axpy, 3 mul */
} ew_args;

static void ew_task(void *arg, int ith, int nth)
{
    const ew_args *p = (const ew_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    const float *a = p->a, *b = p->b;
    float *y = p->y;
    const float s = p->s;
    switch (p->op) {
    case 0: for (int64_t i = lo; i < hi; i++) y[i] = a[i] + b[i]; break;
    case 1: for (int64_t i = lo; i < hi; i++) y[i] = s * a[i]; break;
    case 3: for (int64_t i = lo; i < hi; i++) y[i] = a[i] * b[i]; break;
    default: for (int64_t i = lo; i < hi; i++) y[i] += s * a[i]; break;
    }
}

static void ew_run(ew_args *args, ck_pool *pool, int nth)
{
    ck_pool_run(pool, ckk_threads_for(args->n, 1 << 15, nth), ew_task, args);
}

void ck_add_f32_scalar(const float *a, const float *b, float *y, int64_t n, ck_pool *pool, int nth)
{
    ew_args args = {a, b, y, n, 0.0f, 0};
    ew_run(&args, pool, nth);
}

void ck_scale_f32_scalar(const float *x, float *y, int64_t n, float s, ck_pool *pool, int nth)
{
    ew_args args = {x, NULL, y, n, s, 1};
    ew_run(&args, pool, nth);
}

void ck_axpy_f32_scalar(float *y, const float *x, int64_t n, float a, ck_pool *pool, int nth)
{
    ew_args args = {x, NULL, y, n, a, 2};
    ew_run(&args, pool, nth);
}

void ck_mul_f32_scalar(const float *a, const float *b, float *y, int64_t n, ck_pool *pool, int nth)
{
    ew_args args = {a, b, y, n, 0.0f, 3};
    ew_run(&args, pool, nth);
}
