/* Optimizer kernels: AdamW (decoupled weight decay, bias correction) and the
 * two phases of global-norm gradient clipping (sum of squares, coefficient).
 * Scalar reference; SIMD variants in optim_avx2.c / optim_avx512.c
 * (template internal/optim_simd.h). */
#include <math.h>
#include "internal/common.h"
#include "internal/optim_args.h"

static void adamw_task(void *arg, int ith, int nth)
{
    const opt_args *p = (const opt_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    const float decay = 1.0f - p->lr * p->wd;
    for (int64_t i = lo; i < hi; i++) {
        const float g = p->grad[i] * p->grad_scale;
        float m = p->m[i], v = p->v[i];
        m = m + (1.0f - p->beta1) * (g - m);
        v = p->beta2 * v + (1.0f - p->beta2) * g * g;
        p->m[i] = m;
        p->v[i] = v;
        const float denom = sqrtf(v) * p->inv_bc2_sqrt + p->eps;
        p->param[i] = p->param[i] * decay - p->step_size * (m / denom);
    }
}

/* The scalar bias-correction terms, shared by every variant (double, like torch). */
static void adamw_setup(opt_args *a, int step)
{
    const double bc1 = 1.0 - pow((double)a->beta1, step), bc2 = 1.0 - pow((double)a->beta2, step);
    a->step_size = (float)(a->lr / bc1);
    a->inv_bc2_sqrt = (float)(1.0 / sqrt(bc2));
}

void ck_adamw_f32_scalar(float *param, const float *grad, float *m, float *v, int64_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, int step, float grad_scale, ck_pool *pool,
                         int nth)
{
    opt_args a = {param, m, v, grad, n, lr, beta1, beta2, eps, weight_decay, grad_scale, 0, 0, {0}};
    adamw_setup(&a, step < 1 ? 1 : step);
    ck_pool_run(pool, ckk_threads_for(n, 1 << 14, nth), adamw_task, &a);
}

static void sumsq_task(void *arg, int ith, int nth)
{
    opt_args *p = (opt_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    double s = 0.0;
    for (int64_t i = lo; i < hi; i++) s += (double)p->grad[i] * p->grad[i];
    p->partial[ith] = s;
}

double ck_sumsq_f32_scalar(const float *x, int64_t n, ck_pool *pool, int nth)
{
    opt_args a = {.grad = x, .n = n};
    const int k = ckk_threads_for(n, 1 << 15, nth < OPT_MAX_THREADS ? nth : OPT_MAX_THREADS);
    ck_pool_run(pool, k, sumsq_task, &a);
    double s = 0.0;
    for (int i = 0; i < k; i++) s += a.partial[i];
    return s;
}

float ck_clip_coef_f32_scalar(double sumsq, float max_norm, float *norm_out)
{
    const double norm = sqrt(sumsq);
    if (norm_out) *norm_out = (float)norm;
    const double c = max_norm / (norm + 1e-6);
    return c < 1.0 ? (float)c : 1.0f;
}

/* ck_clip_norm_f32, ck_adamw_coef_f32, ck_zero_f32 (scalar) */
#define CK_FN(name) name##_scalar
#include "internal/optim_flat.h"
