/* Normalisation: RMSNorm (optionally Gemma's 1+w) and LayerNorm with bias,
 * forward and backward. Scalar reference; SIMD variants in norm_avx2.c /
 * norm_avx512.c (one template: internal/norm_simd.h). Shapes in
 * include/ckernels.h. Reductions here accumulate in double. */
#include <math.h>
#include "internal/common.h"
#include "internal/norm_args.h"

/* ---------------- RMSNorm ---------------- */
static void rms_fwd_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * C;
        float *y = p->y + t * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / C + p->eps));
        if (p->rstd) p->rstd[t] = r;
        for (int i = 0; i < C; i++) y[i] = x[i] * r * (p->w[i] + p->w_offset);
    }
}

void ck_rmsnorm_f32_scalar(const float *x, const float *w, float *y, float *rstd, int T, int C, float eps,
                           float w_offset, ck_pool *pool, int nth)
{
    nm_args a = {.x = x, .w = w, .y = y, .rstd = rstd, .T = T, .C = C, .eps = eps, .w_offset = w_offset};
    ck_pool_run(pool, ROW_THREADS(T, C, nth), rms_fwd_task, &a);
}

static void rms_dx_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * C, *dy = p->dy + t * C;
        float *dx = p->dx + t * C;
        const float r = p->crstd[t];
        double dot = 0.0; /* sum(dy * w' * x) */
        for (int i = 0; i < C; i++) dot += (double)dy[i] * (p->w[i] + p->w_offset) * x[i];
        const float k = (float)(dot * r * r * r / C);
        for (int i = 0; i < C; i++) dx[i] = r * dy[i] * (p->w[i] + p->w_offset) - k * x[i];
    }
}

static void rms_dw_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->C, 64, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t i = lo; i < hi; i++) {
        double acc = 0.0;
        for (int t = 0; t < p->T; t++) acc += (double)p->dy[(int64_t)t * C + i] * p->x[(int64_t)t * C + i] * p->crstd[t];
        p->dw[i] += (float)acc;
    }
}

void ck_rmsnorm_grad_f32_scalar(const float *dy, const float *x, const float *w, const float *rstd, float *dx,
                                float *dw, int T, int C, float w_offset, ck_pool *pool, int nth)
{
    nm_args a = {.x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .crstd = rstd, .T = T, .C = C, .w_offset = w_offset};
    if (dx) ck_pool_run(pool, ROW_THREADS(T, C, nth), rms_dx_task, &a);
    if (dw) ck_pool_run(pool, COL_THREADS(T, C, nth), rms_dw_task, &a);
}

/* ---------------- LayerNorm ---------------- */
static void ln_fwd_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * C;
        float *y = p->y + t * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += x[i];
        const double m = s / C;
        double v = 0.0;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        const float mf = (float)m, r = (float)(1.0 / sqrt(v / C + p->eps));
        if (p->mean) p->mean[t] = mf;
        if (p->rstd) p->rstd[t] = r;
        for (int i = 0; i < C; i++) y[i] = (x[i] - mf) * r * (p->w[i] + p->w_offset) + (p->b ? p->b[i] : 0.0f);
    }
}

void ck_layernorm_f32_scalar(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd,
                             int T, int C, float eps, float w_offset, ck_pool *pool, int nth)
{
    nm_args a = {.x = x, .w = w, .b = b, .y = y, .mean = mean, .rstd = rstd, .T = T, .C = C, .eps = eps, .w_offset = w_offset};
    ck_pool_run(pool, ROW_THREADS(T, C, nth), ln_fwd_task, &a);
}

static void ln_dx_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * C, *dy = p->dy + t * C;
        float *dx = p->dx + t * C;
        const float m = p->cmean[t], r = p->crstd[t];
        double sg = 0.0, sgx = 0.0; /* sum(g), sum(g * xhat), g = dy * w */
        for (int i = 0; i < C; i++) {
            double g = (double)dy[i] * (p->w[i] + p->w_offset);
            sg += g;
            sgx += g * ((x[i] - m) * r);
        }
        const float mg = (float)(sg / C), mgx = (float)(sgx / C);
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * r;
            dx[i] = r * (dy[i] * (p->w[i] + p->w_offset) - mg - xh * mgx);
        }
    }
}

static void ln_dw_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->C, 64, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t i = lo; i < hi; i++) {
        double aw = 0.0, ab = 0.0;
        for (int t = 0; t < p->T; t++) {
            float d = p->dy[(int64_t)t * C + i];
            aw += (double)d * ((p->x[(int64_t)t * C + i] - p->cmean[t]) * p->crstd[t]);
            ab += d;
        }
        if (p->dw) p->dw[i] += (float)aw;
        if (p->db) p->db[i] += (float)ab;
    }
}

void ck_layernorm_grad_f32_scalar(const float *dy, const float *x, const float *w, const float *mean,
                                  const float *rstd, float *dx, float *dw, float *db, int T, int C, float w_offset,
                                  ck_pool *pool, int nth)
{
    nm_args a = {.x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .db = db, .cmean = mean, .crstd = rstd, .T = T, .C = C,
                 .w_offset = w_offset};
    if (dx) ck_pool_run(pool, ROW_THREADS(T, C, nth), ln_dx_task, &a);
    if (dw || db) ck_pool_run(pool, COL_THREADS(T, C, nth), ln_dw_task, &a);
}
