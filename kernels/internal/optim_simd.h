/* SIMD template for optim.c (included by optim_avx2.c / optim_avx512.c). */
#include <math.h>
#include "optim_args.h"

static inline void adamw_vec(const opt_args *p, int64_t i, int r)
{
    const vf one = v_set1(1.0f);
    const vf b1c = v_set1(1.0f - p->beta1), b2 = v_set1(p->beta2), b2c = v_set1(1.0f - p->beta2);
    const vf decay = v_set1(1.0f - p->lr * p->wd);
    vf g, m, v, w;
    if (r == CK_W) g = v_load(p->grad + i), m = v_load(p->m + i), v = v_load(p->v + i), w = v_load(p->param + i);
    else g = v_load_n(p->grad + i, r), m = v_load_n(p->m + i, r), v = v_load_n(p->v + i, r), w = v_load_n(p->param + i, r);
    g = v_mul(g, v_set1(p->grad_scale));
    m = v_fmadd(b1c, v_sub(g, m), m);
    v = v_fmadd(b2c, v_mul(g, g), v_mul(b2, v));
    vf denom = v_fmadd(v_sqrt(v), v_set1(p->inv_bc2_sqrt), v_set1(p->eps));
    w = v_fnmadd(v_set1(p->step_size), v_div(m, denom), v_mul(w, decay));
    (void)one;
    if (r == CK_W) v_store(p->m + i, m), v_store(p->v + i, v), v_store(p->param + i, w);
    else v_store_n(p->m + i, m, r), v_store_n(p->v + i, v, r), v_store_n(p->param + i, w, r);
}

static void adamw_task(void *arg, int ith, int nth)
{
    const opt_args *p = (const opt_args *)arg;
    int64_t lo, hi, i;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    for (i = lo; i + CK_W <= hi; i += CK_W) adamw_vec(p, i, CK_W);
    if (i < hi) adamw_vec(p, i, (int)(hi - i));
}

static void adamw_setup(opt_args *a, int step)
{
    const double bc1 = 1.0 - pow((double)a->beta1, step), bc2 = 1.0 - pow((double)a->beta2, step);
    a->step_size = (float)(a->lr / bc1);
    a->inv_bc2_sqrt = (float)(1.0 / sqrt(bc2));
}

void CK_FN(ck_adamw_f32)(float *param, const float *grad, float *m, float *v, int64_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, int step, float grad_scale, ck_pool *pool,
                         int nth)
{
    opt_args a = {param, m, v, grad, n, lr, beta1, beta2, eps, weight_decay, grad_scale, 0, 0, {0}};
    adamw_setup(&a, step < 1 ? 1 : step);
    ck_pool_run(pool, ckk_threads_for(n, 1 << 14, nth), adamw_task, &a);
}

/* float lanes summed over blocks of 1024 elements, each block total added in double */
static void sumsq_task(void *arg, int ith, int nth)
{
    opt_args *p = (opt_args *)arg;
    int64_t lo, hi, i = 0;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    double s = 0.0;
    for (i = lo; i < hi;) {
        const int64_t end = hi - i > 1024 ? i + 1024 : hi;
        vf a0 = v_zero(), a1 = v_zero();
        for (; i + 2 * CK_W <= end; i += 2 * CK_W) {
            vf x0 = v_load(p->grad + i), x1 = v_load(p->grad + i + CK_W);
            a0 = v_fmadd(x0, x0, a0);
            a1 = v_fmadd(x1, x1, a1);
        }
        for (; i < end; i += CK_W) {
            const int r = end - i < CK_W ? (int)(end - i) : CK_W;
            vf x0 = r == CK_W ? v_load(p->grad + i) : v_load_n(p->grad + i, r);
            a0 = v_fmadd(x0, x0, a0);
        }
        s += v_hsum(v_add(a0, a1));
    }
    p->partial[ith] = s;
}

double CK_FN(ck_sumsq_f32)(const float *x, int64_t n, ck_pool *pool, int nth)
{
    opt_args a = {.grad = x, .n = n};
    const int k = ckk_threads_for(n, 1 << 15, nth < OPT_MAX_THREADS ? nth : OPT_MAX_THREADS);
    ck_pool_run(pool, k, sumsq_task, &a);
    double s = 0.0;
    for (int i = 0; i < k; i++) s += a.partial[i];
    return s;
}

float CK_FN(ck_clip_coef_f32)(double sumsq, float max_norm, float *norm_out)
{
    const double norm = sqrt(sumsq);
    if (norm_out) *norm_out = (float)norm;
    const double c = max_norm / (norm + 1e-6);
    return c < 1.0 ? (float)c : 1.0f;
}
#include "optim_flat.h"
