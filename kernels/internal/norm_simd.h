/* SIMD template for norm.c (included by norm_avx2.c / norm_avx512.c).
 * Row reductions use float vector accumulators; parameter gradients (dw, db)
 * are computed in a second, column-parallel phase so threads never share an
 * output element. */
#include <math.h>
#include "norm_args.h"

static inline vf ld(const float *p, int i, int C) { return i + CK_W <= C ? v_load(p + i) : v_load_n(p + i, C - i); }
static inline void st(float *p, int i, int C, vf v)
{
    if (i + CK_W <= C) v_store(p + i, v);
    else v_store_n(p + i, v, C - i);
}

/* ---------------- RMSNorm ---------------- */
static void rms_fwd_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    const vf off = v_set1(p->w_offset);
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * C;
        float *y = p->y + t * C;
        vf a0 = v_zero(), a1 = v_zero();
        int i = 0;
        for (; i + 2 * CK_W <= C; i += 2 * CK_W) {
            vf x0 = v_load(x + i), x1 = v_load(x + i + CK_W);
            a0 = v_fmadd(x0, x0, a0);
            a1 = v_fmadd(x1, x1, a1);
        }
        for (; i < C; i += CK_W) {
            vf x0 = ld(x, i, C);
            a0 = v_fmadd(x0, x0, a0);
        }
        float ss = v_hsum(v_add(a0, a1));
        float r = 1.0f / sqrtf(ss / C + p->eps);
        if (p->rstd) p->rstd[t] = r;
        vf rv = v_set1(r);
        for (i = 0; i < C; i += CK_W) st(y, i, C, v_mul(v_mul(ld(x, i, C), rv), v_add(ld(p->w, i, C), off)));
    }
}

void CK_FN(ck_rmsnorm_f32)(const float *x, const float *w, float *y, float *rstd, int T, int C, float eps,
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
    const vf off = v_set1(p->w_offset);
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * C, *dy = p->dy + t * C;
        float *dx = p->dx + t * C;
        const float r = p->crstd[t];
        vf acc = v_zero();
        for (int i = 0; i < C; i += CK_W)
            acc = v_fmadd(v_mul(ld(dy, i, C), v_add(ld(p->w, i, C), off)), ld(x, i, C), acc);
        const vf k = v_set1(v_hsum(acc) * r * r * r / C), rv = v_set1(r);
        for (int i = 0; i < C; i += CK_W) {
            vf g = v_mul(ld(dy, i, C), v_add(ld(p->w, i, C), off));
            st(dx, i, C, v_fnmadd(k, ld(x, i, C), v_mul(rv, g)));
        }
    }
}

static void rms_dw_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->C, 64, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t i = lo; i < hi; i += CK_W) {
        int c = (int)i;
        int lim = (int)hi; /* the tail mask is relative to this thread's end */
        vf acc = v_zero();
        for (int t = 0; t < p->T; t++) {
            const int64_t o = (int64_t)t * C;
            acc = v_fmadd(v_mul(ld(p->dy + o, c, lim), ld(p->x + o, c, lim)), v_set1(p->crstd[t]), acc);
        }
        st(p->dw, c, lim, v_add(ld(p->dw, c, lim), acc));
    }
}

void CK_FN(ck_rmsnorm_grad_f32)(const float *dy, const float *x, const float *w, const float *rstd, float *dx,
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
        vf s = v_zero();
        for (int i = 0; i < C; i += CK_W) s = v_add(s, ld(x, i, C));
        const float m = v_hsum(s) / C;
        const vf mv = v_set1(m);
        vf q = v_zero();
        for (int i = 0; i < C; i += CK_W) {
            vf d = v_sub(ld(x, i, C), mv);
            if (i + CK_W > C) d = v_blend(v_lanes(C - i), v_zero(), d); /* keep only real lanes */
            q = v_fmadd(d, d, q);
        }
        const float r = 1.0f / sqrtf(v_hsum(q) / C + p->eps);
        if (p->mean) p->mean[t] = m;
        if (p->rstd) p->rstd[t] = r;
        const vf rv = v_set1(r), off = v_set1(p->w_offset);
        for (int i = 0; i < C; i += CK_W) {
            vf yv = v_mul(v_mul(v_sub(ld(x, i, C), mv), rv), v_add(ld(p->w, i, C), off));
            if (p->b) yv = v_add(yv, ld(p->b, i, C));
            st(y, i, C, yv);
        }
    }
}

void CK_FN(ck_layernorm_f32)(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd,
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
        const vf mv = v_set1(p->cmean[t]), rv = v_set1(p->crstd[t]), off = v_set1(p->w_offset);
        vf sg = v_zero(), sgx = v_zero();
        for (int i = 0; i < C; i += CK_W) {
            vf g = v_mul(ld(dy, i, C), v_add(ld(p->w, i, C), off)); /* zero in masked lanes */
            vf xh = v_mul(v_sub(ld(x, i, C), mv), rv);
            sg = v_add(sg, g);
            sgx = v_fmadd(g, xh, sgx);
        }
        const vf mg = v_set1(v_hsum(sg) / C), mgx = v_set1(v_hsum(sgx) / C);
        for (int i = 0; i < C; i += CK_W) {
            vf g = v_mul(ld(dy, i, C), v_add(ld(p->w, i, C), off));
            vf xh = v_mul(v_sub(ld(x, i, C), mv), rv);
            st(dx, i, C, v_mul(rv, v_fnmadd(xh, mgx, v_sub(g, mg))));
        }
    }
}

static void ln_dw_task(void *arg, int ith, int nth)
{
    const nm_args *p = (const nm_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->C, 64, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t i = lo; i < hi; i += CK_W) {
        int c = (int)i, lim = (int)hi;
        vf aw = v_zero(), ab = v_zero();
        for (int t = 0; t < p->T; t++) {
            const int64_t o = (int64_t)t * C;
            vf d = ld(p->dy + o, c, lim);
            vf xh = v_mul(v_sub(ld(p->x + o, c, lim), v_set1(p->cmean[t])), v_set1(p->crstd[t]));
            aw = v_fmadd(d, xh, aw);
            ab = v_add(ab, d);
        }
        if (p->dw) st(p->dw, c, lim, v_add(ld(p->dw, c, lim), aw));
        if (p->db) st(p->db, c, lim, v_add(ld(p->db, c, lim), ab));
    }
}

void CK_FN(ck_layernorm_grad_f32)(const float *dy, const float *x, const float *w, const float *mean,
                                  const float *rstd, float *dx, float *dw, float *db, int T, int C, float w_offset,
                                  ck_pool *pool, int nth)
{
    nm_args a = {.x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .db = db, .cmean = mean, .crstd = rstd, .T = T, .C = C,
                 .w_offset = w_offset};
    if (dx) ck_pool_run(pool, ROW_THREADS(T, C, nth), ln_dx_task, &a);
    if (dw || db) ck_pool_run(pool, COL_THREADS(T, C, nth), ln_dw_task, &a);
}
