/* The flat-block optimizer entry points (ckernels.h: ck_clip_norm_f32,
 * ck_adamw_coef_f32, ck_zero_f32), written once on top of each variant's
 * ck_sumsq_f32 / ck_adamw_f32 (CK_FN gives the variant's suffix). Included
 * at the end of optim.c and internal/optim_simd.h. */
#include <string.h>

void CK_FN(ck_clip_norm_f32)(const float *g, int64_t n, float max_norm, float *norm, float *coef, ck_pool *pool,
                             int nth)
{
    const double s = CK_FN(ck_sumsq_f32)(g, n, pool, nth);
    float nv = (float)sqrt(s), c = 1.0f;
    if (max_norm > 0) c = CK_FN(ck_clip_coef_f32)(s, max_norm, &nv);
    if (norm) norm[0] = nv;
    if (coef) coef[0] = c;
}

void CK_FN(ck_adamw_coef_f32)(float *param, const float *grad, float *m, float *v, const float *coef, int64_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay, int step,
                              ck_pool *pool, int nth)
{
    CK_FN(ck_adamw_f32)(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, step, coef ? coef[0] : 1.0f, pool,
                        nth);
}

typedef struct {
    float *x;
    int64_t n;
} zero_args;

static void zero_task(void *arg, int ith, int nth)
{
    const zero_args *p = (const zero_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->n, 16, ith, nth, &lo, &hi);
    if (hi > lo) memset(p->x + lo, 0, (size_t)(hi - lo) * sizeof(float));
}

void CK_FN(ck_zero_f32)(float *x, int64_t n, ck_pool *pool, int nth)
{
    zero_args a = {x, n};
    ck_pool_run(pool, ckk_threads_for(n, 1 << 16, nth), zero_task, &a);
}
