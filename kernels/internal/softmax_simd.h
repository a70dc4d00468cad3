/* SIMD template for softmax.c (included by softmax_avx2.c / softmax_avx512.c). */
#include <math.h>
#include "softmax_args.h"

/* y[0..C) = exp(x - max) / sum; returns nothing. Masked tail lanes read -inf. */
static inline void softmax_row(const float *x, float *y, int C)
{
    vf mv = v_set1(-INFINITY);
    int i;
    for (i = 0; i + CK_W <= C; i += CK_W) mv = v_max(mv, v_load(x + i));
    if (i < C) mv = v_max(mv, v_load_nf(x + i, C - i, -INFINITY));
    const vf m = v_set1(v_hmax(mv));
    vf s = v_zero();
    for (i = 0; i + CK_W <= C; i += CK_W) {
        vf e = v_exp(v_sub(v_load(x + i), m));
        v_store(y + i, e);
        s = v_add(s, e);
    }
    if (i < C) {
        vf e = v_exp(v_sub(v_load_nf(x + i, C - i, -INFINITY), m));
        v_store_n(y + i, e, C - i);
        s = v_add(s, e);
    }
    const vf inv = v_set1(1.0f / v_hsum(s));
    for (i = 0; i + CK_W <= C; i += CK_W) v_store(y + i, v_mul(v_load(y + i), inv));
    if (i < C) v_store_n(y + i, v_mul(v_load_n(y + i, C - i), inv), C - i);
}

static void sm_fwd_task(void *arg, int ith, int nth)
{
    const sm_args *p = (const sm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) softmax_row(p->x + t * p->C, p->out + t * p->C, p->C);
}

void CK_FN(ck_softmax_f32)(const float *x, float *y, int T, int C, ck_pool *pool, int nth)
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
        vf acc = v_zero();
        int i;
        for (i = 0; i + CK_W <= C; i += CK_W) acc = v_fmadd(v_load(y + i), v_load(dy + i), acc);
        if (i < C) acc = v_fmadd(v_load_n(y + i, C - i), v_load_n(dy + i, C - i), acc);
        const vf s = v_set1(v_hsum(acc));
        for (i = 0; i + CK_W <= C; i += CK_W) v_store(dx + i, v_mul(v_load(y + i), v_sub(v_load(dy + i), s)));
        if (i < C) v_store_n(dx + i, v_mul(v_load_n(y + i, C - i), v_sub(v_load_n(dy + i, C - i), s)), C - i);
    }
}

void CK_FN(ck_softmax_grad_f32)(const float *y, const float *dy, float *dx, int T, int C, ck_pool *pool, int nth)
{
    sm_args a = {NULL, y, dy, dx, T, C};
    ck_pool_run(pool, ROW_THREADS(T, C, nth), sm_bwd_task, &a);
}
