/* SIMD template for activation.c (included by activation_avx2.c / _avx512.c).
 * GELU-tanh uses the identity 0.5*(1 + tanh(u)) = sigmoid(2u); GELU-erf uses
 * v_erfc (relative error ~1e-7 on the whole line, so the negative tail stays
 * accurate). */
#include "activation_args.h"
#define CK_SQRT_2_OVER_PI 0.7978845608028654f
#define CK_INV_SQRT_2 0.7071067811865476f
#define CK_INV_SQRT_2PI 0.3989422804014327f
#define CK_GELU_C 0.044715f

static inline vf vsilu(vf x) { return v_mul(x, v_sigmoid(x)); }
static inline vf vsilu_d(vf x)
{
    vf one = v_set1(1.0f);
    vf s = v_sigmoid(x);
    return v_mul(s, v_fmadd(x, v_sub(one, s), one));
}
/* gelu(x) and, if d != NULL, gelu'(x) */
static inline vf vgelu(vf x, int approx, vf *d)
{
    vf one = v_set1(1.0f);
    if (approx) {
        vf x2 = v_mul(x, x);
        vf u = v_mul(v_mul(v_set1(CK_SQRT_2_OVER_PI), x), v_fmadd(v_set1(CK_GELU_C), x2, one));
        vf s = v_sigmoid(v_add(u, u));
        if (d) {
            vf du = v_mul(v_set1(CK_SQRT_2_OVER_PI), v_fmadd(v_set1(3.0f * CK_GELU_C), x2, one));
            vf ss = v_mul(v_mul(s, v_sub(one, s)), v_set1(2.0f));
            *d = v_fmadd(v_mul(x, ss), du, s);
        }
        return v_mul(x, s);
    }
    vf cdf = v_mul(v_set1(0.5f), v_erfc(v_mul(x, v_set1(-CK_INV_SQRT_2))));
    if (d) {
        vf pdf = v_mul(v_set1(CK_INV_SQRT_2PI), v_exp(v_mul(v_set1(-0.5f), v_mul(x, x))));
        *d = v_fmadd(x, pdf, cdf);
    }
    return v_mul(x, cdf);
}

/* ---- unary ---- */

static inline vf un_apply(const un_args *p, vf x, vf dy, int bwd)
{
    if (p->kind == 0) return bwd ? v_mul(dy, vsilu_d(x)) : vsilu(x);
    if (p->kind == 2) {
        const vf t = v_tanh(v_mul(x, v_set1(1.0f / p->cap)));
        return bwd ? v_mul(dy, v_fnmadd(t, t, v_set1(1.0f))) : v_mul(v_set1(p->cap), t);
    }
    if (bwd) {
        vf d;
        vgelu(x, p->approx, &d);
        return v_mul(dy, d);
    }
    return vgelu(x, p->approx, NULL);
}

static void un_fwd_task(void *arg, int ith, int nth)
{
    const un_args *p = (const un_args *)arg;
    int64_t lo, hi, i;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    for (i = lo; i + CK_W <= hi; i += CK_W) v_store(p->y + i, un_apply(p, v_load(p->x + i), v_zero(), 0));
    if (i < hi) {
        int r = (int)(hi - i);
        v_store_n(p->y + i, un_apply(p, v_load_n(p->x + i, r), v_zero(), 0), r);
    }
}

static void un_bwd_task(void *arg, int ith, int nth)
{
    const un_args *p = (const un_args *)arg;
    int64_t lo, hi, i;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    for (i = lo; i + CK_W <= hi; i += CK_W)
        v_store(p->y + i, un_apply(p, v_load(p->x + i), v_load(p->dy + i), 1));
    if (i < hi) {
        int r = (int)(hi - i);
        v_store_n(p->y + i, un_apply(p, v_load_n(p->x + i, r), v_load_n(p->dy + i, r), 1), r);
    }
}

#define UN_THREADS(n, nth) ckk_threads_for((n), 1 << 13, (nth))

void CK_FN(ck_silu_f32)(const float *x, float *y, int64_t n, ck_pool *pool, int nth)
{
    un_args a = {x, NULL, y, n, 0, 0, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_fwd_task, &a);
}

void CK_FN(ck_silu_grad_f32)(const float *x, const float *dy, float *dx, int64_t n, ck_pool *pool, int nth)
{
    un_args a = {x, dy, dx, n, 0, 0, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_bwd_task, &a);
}

void CK_FN(ck_gelu_f32)(const float *x, float *y, int64_t n, int approx, ck_pool *pool, int nth)
{
    un_args a = {x, NULL, y, n, 1, approx, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_fwd_task, &a);
}

void CK_FN(ck_gelu_grad_f32)(const float *x, const float *dy, float *dx, int64_t n, int approx, ck_pool *pool,
                             int nth)
{
    un_args a = {x, dy, dx, n, 1, approx, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_bwd_task, &a);
}

void CK_FN(ck_softcap_f32)(const float *x, float *y, int64_t n, float cap, ck_pool *pool, int nth)
{
    un_args a = {x, NULL, y, n, 2, 0, cap};
    ck_pool_run(pool, UN_THREADS(n, nth), un_fwd_task, &a);
}

void CK_FN(ck_softcap_grad_f32)(const float *x, const float *dy, float *dx, int64_t n, float cap, ck_pool *pool,
                                int nth)
{
    un_args a = {x, dy, dx, n, 2, 0, cap};
    ck_pool_run(pool, UN_THREADS(n, nth), un_bwd_task, &a);
}

/* ---- gated ---- */
typedef struct {
    const float *gate, *up, *dy;
    float *y, *dgate, *dup;
    int T, F, ld_in, ld_out;
    int kind;
    int approx;
} gl_args;

static inline vf gl_act(const gl_args *p, vf g, vf *d)
{
    if (p->kind == 0) {
        if (d) *d = vsilu_d(g);
        return vsilu(g);
    }
    return vgelu(g, p->approx, d);
}

static void gl_fwd_task(void *arg, int ith, int nth)
{
    const gl_args *p = (const gl_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *g = p->gate + t * p->ld_in, *u = p->up + t * p->ld_in;
        float *y = p->y + t * p->ld_out;
        int i = 0;
        for (; i + CK_W <= p->F; i += CK_W) v_store(y + i, v_mul(gl_act(p, v_load(g + i), NULL), v_load(u + i)));
        if (i < p->F) {
            int r = p->F - i;
            v_store_n(y + i, v_mul(gl_act(p, v_load_n(g + i, r), NULL), v_load_n(u + i, r)), r);
        }
    }
}

static void gl_bwd_task(void *arg, int ith, int nth)
{
    const gl_args *p = (const gl_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *g = p->gate + t * p->ld_in, *u = p->up + t * p->ld_in;
        const float *dy = p->dy + t * p->ld_out;
        float *dg = p->dgate + t * p->ld_in, *du = p->dup + t * p->ld_in;
        for (int i = 0; i < p->F; i += CK_W) {
            int r = p->F - i < CK_W ? p->F - i : CK_W;
            vf gv = r == CK_W ? v_load(g + i) : v_load_n(g + i, r);
            vf uv = r == CK_W ? v_load(u + i) : v_load_n(u + i, r);
            vf dv = r == CK_W ? v_load(dy + i) : v_load_n(dy + i, r);
            vf da;
            vf a = gl_act(p, gv, &da);
            vf rg = v_mul(v_mul(dv, uv), da), ru = v_mul(dv, a);
            if (r == CK_W) {
                v_store(dg + i, rg);
                v_store(du + i, ru);
            } else {
                v_store_n(dg + i, rg, r);
                v_store_n(du + i, ru, r);
            }
        }
    }
}

#define GL_THREADS(T, F, nth) ckk_threads_for((int64_t)(T) * (F), 1 << 13, (nth)) < (T) ? ckk_threads_for((int64_t)(T) * (F), 1 << 13, (nth)) : (T)

void CK_FN(ck_swiglu_f32)(const float *gate, const float *up, float *y, int T, int F, int ld_in, int ld_out,
                          ck_pool *pool, int nth)
{
    gl_args a = {gate, up, NULL, y, NULL, NULL, T, F, ld_in, ld_out, 0, 0};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_fwd_task, &a);
}

void CK_FN(ck_swiglu_grad_f32)(const float *gate, const float *up, const float *dy, float *dgate, float *dup,
                               int T, int F, int ld_in, int ld_out, ck_pool *pool, int nth)
{
    gl_args a = {gate, up, dy, NULL, dgate, dup, T, F, ld_in, ld_out, 0, 0};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_bwd_task, &a);
}

void CK_FN(ck_geglu_f32)(const float *gate, const float *up, float *y, int T, int F, int ld_in, int ld_out,
                         int approx, ck_pool *pool, int nth)
{
    gl_args a = {gate, up, NULL, y, NULL, NULL, T, F, ld_in, ld_out, 1, approx};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_fwd_task, &a);
}

void CK_FN(ck_geglu_grad_f32)(const float *gate, const float *up, const float *dy, float *dgate, float *dup,
                              int T, int F, int ld_in, int ld_out, int approx, ck_pool *pool, int nth)
{
    gl_args a = {gate, up, dy, NULL, dgate, dup, T, F, ld_in, ld_out, 1, approx};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_bwd_task, &a);
}
