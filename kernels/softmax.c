/* Stable row softmax, forward and backward. Scalar reference; SIMD variants
 * in softmax_avx2.c / softmax_avx512.c (template internal/softmax_simd.h). */
#include <math.h>
#include "internal/common.h"
#include "internal/softmax_args.h"

static void sm_fwd_task(void *arg, int ith, int nth)
{
    const sm_args *p = (const sm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * C;
        float *y = p->out + t * C;
        float m = -INFINITY;
        for (int i = 0; i < C; i++) m = x[i] > m ? x[i] : m;
        double s = 0.0;
        for (int i = 0; i < C; i++) {
            y[i] = expf(x[i] - m);
            s += y[i];
        }
        const float inv = (float)(1.0 / s);
        for (int i = 0; i < C; i++) y[i] *= inv;
    }
}

void ck_softmax_f32_scalar(const float *x, float *y, int T, int C, ck_pool *pool, int nth)
{
    sm_args a = {x, NULL, NULL, y, T, C};
    ck_pool_run(pool, ROW_THREADS(T, C, nth), sm_fwd_task, &a);
}

static void sm_bwd_task(void *arg, int ith, int nth)
{
    const sm_args *p = (const sm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t t = lo; t < hi; t++) {
        const float *y = p->y + t * C, *dy = p->dy + t * C;
        float *dx = p->out + t * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += (double)y[i] * dy[i];
        const float sf = (float)s;
        for (int i = 0; i < C; i++) dx[i] = y[i] * (dy[i] - sf);
    }
}

void ck_softmax_grad_f32_scalar(const float *y, const float *dy, float *dx, int T, int C, ck_pool *pool, int nth)
{
    sm_args a = {NULL, y, dy, dx, T, C};
    ck_pool_run(pool, ROW_THREADS(T, C, nth), sm_bwd_task, &a);
}
