/* Activations: SiLU, GELU (exact erf / tanh), softcap, SwiGLU, GeGLU; forward and backward.
 * Scalar reference; SIMD variants in activation_avx2.c / activation_avx512.c
 * (one template: internal/activation_simd.h). Shapes in include/ckernels.h. */
#include <math.h>
#include "internal/common.h"
#include "internal/activation_args.h"

#define CK_SQRT_2_OVER_PI 0.7978845608028654
#define CK_INV_SQRT_2 0.7071067811865476
#define CK_INV_SQRT_2PI 0.3989422804014327
#define CK_GELU_C 0.044715

/* The reference evaluates the transcendental parts in double (one rounding
 * at the end), so it is accurate in the tails where 1 + tanh(u) cancels. */
static inline float silu1(float x) { return (float)(x / (1.0 + exp(-(double)x))); }
static inline float silu_d(float x)
{
    double s = 1.0 / (1.0 + exp(-(double)x));
    return (float)(s * (1.0 + x * (1.0 - s)));
}
static inline float gelu1(float x, int approx)
{
    const double xd = x;
    if (approx) {
        double u = CK_SQRT_2_OVER_PI * (xd + CK_GELU_C * xd * xd * xd);
        return (float)(0.5 * xd * (1.0 + tanh(u)));
    }
    return (float)(0.5 * xd * erfc(-xd * CK_INV_SQRT_2));
}
static inline float gelu_d(float x, int approx)
{
    const double xd = x;
    if (approx) {
        double u = CK_SQRT_2_OVER_PI * (xd + CK_GELU_C * xd * xd * xd);
        double t = tanh(u);
        double du = CK_SQRT_2_OVER_PI * (1.0 + 3.0 * CK_GELU_C * xd * xd);
        return (float)(0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * du);
    }
    return (float)(0.5 * erfc(-xd * CK_INV_SQRT_2) + xd * CK_INV_SQRT_2PI * exp(-0.5 * xd * xd));
}

/* ---- unary: y = f(x), dx = dy * f'(x) over n contiguous floats ---- */

static void un_fwd_task(void *arg, int ith, int nth)
{
    const un_args *p = (const un_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    if (p->kind == 0)
        for (int64_t i = lo; i < hi; i++) p->y[i] = silu1(p->x[i]);
    else if (p->kind == 2)
        for (int64_t i = lo; i < hi; i++) p->y[i] = (float)(p->cap * tanh((double)p->x[i] / p->cap));
    else
        for (int64_t i = lo; i < hi; i++) p->y[i] = gelu1(p->x[i], p->approx);
}

static void un_bwd_task(void *arg, int ith, int nth)
{
    const un_args *p = (const un_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    if (p->kind == 0)
        for (int64_t i = lo; i < hi; i++) p->y[i] = p->dy[i] * silu_d(p->x[i]);
    else if (p->kind == 2)
        for (int64_t i = lo; i < hi; i++) {
            const double t = tanh((double)p->x[i] / p->cap);
            p->y[i] = (float)(p->dy[i] * (1.0 - t * t));
        }
    else
        for (int64_t i = lo; i < hi; i++) p->y[i] = p->dy[i] * gelu_d(p->x[i], p->approx);
}

#define UN_THREADS(n, nth) ckk_threads_for((n), 1 << 13, (nth))

void ck_silu_f32_scalar(const float *x, float *y, int64_t n, ck_pool *pool, int nth)
{
    un_args a = {x, NULL, y, n, 0, 0, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_fwd_task, &a);
}

void ck_silu_grad_f32_scalar(const float *x, const float *dy, float *dx, int64_t n, ck_pool *pool, int nth)
{
    un_args a = {x, dy, dx, n, 0, 0, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_bwd_task, &a);
}

void ck_gelu_f32_scalar(const float *x, float *y, int64_t n, int approx, ck_pool *pool, int nth)
{
    un_args a = {x, NULL, y, n, 1, approx, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_fwd_task, &a);
}

void ck_gelu_grad_f32_scalar(const float *x, const float *dy, float *dx, int64_t n, int approx,
                             ck_pool *pool, int nth)
{
    un_args a = {x, dy, dx, n, 1, approx, 0.0f};
    ck_pool_run(pool, UN_THREADS(n, nth), un_bwd_task, &a);
}

void ck_softcap_f32_scalar(const float *x, float *y, int64_t n, float cap, ck_pool *pool, int nth)
{
    un_args a = {x, NULL, y, n, 2, 0, cap};
    ck_pool_run(pool, UN_THREADS(n, nth), un_fwd_task, &a);
}

void ck_softcap_grad_f32_scalar(const float *x, const float *dy, float *dx, int64_t n, float cap, ck_pool *pool,
                                int nth)
{
    un_args a = {x, dy, dx, n, 2, 0, cap};
    ck_pool_run(pool, UN_THREADS(n, nth), un_bwd_task, &a);
}

/* ---- gated: y = act(gate) * up over [T, F] with row strides ---- */
typedef struct {
    const float *gate, *up, *dy;
    float *y, *dgate, *dup;
    int T, F, ld_in, ld_out;
    int kind; /* 0 swiglu (silu), 1 geglu (gelu) */
    int approx;
} gl_args;

static void gl_fwd_task(void *arg, int ith, int nth)
{
    const gl_args *p = (const gl_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *g = p->gate + t * p->ld_in, *u = p->up + t * p->ld_in;
        float *y = p->y + t * p->ld_out;
        if (p->kind == 0)
            for (int i = 0; i < p->F; i++) y[i] = silu1(g[i]) * u[i];
        else
            for (int i = 0; i < p->F; i++) y[i] = gelu1(g[i], p->approx) * u[i];
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
        for (int i = 0; i < p->F; i++) {
            float gi = g[i], ui = u[i], d = dy[i];
            float a = p->kind == 0 ? silu1(gi) : gelu1(gi, p->approx);
            float da = p->kind == 0 ? silu_d(gi) : gelu_d(gi, p->approx);
            dg[i] = d * ui * da;
            du[i] = d * a;
        }
    }
}

#define GL_THREADS(T, F, nth) ckk_threads_for((int64_t)(T) * (F), 1 << 13, (nth)) < (T) ? ckk_threads_for((int64_t)(T) * (F), 1 << 13, (nth)) : (T)

void ck_swiglu_f32_scalar(const float *gate, const float *up, float *y, int T, int F, int ld_in, int ld_out,
                          ck_pool *pool, int nth)
{
    gl_args a = {gate, up, NULL, y, NULL, NULL, T, F, ld_in, ld_out, 0, 0};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_fwd_task, &a);
}

void ck_swiglu_grad_f32_scalar(const float *gate, const float *up, const float *dy, float *dgate, float *dup,
                               int T, int F, int ld_in, int ld_out, ck_pool *pool, int nth)
{
    gl_args a = {gate, up, dy, NULL, dgate, dup, T, F, ld_in, ld_out, 0, 0};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_bwd_task, &a);
}

void ck_geglu_f32_scalar(const float *gate, const float *up, float *y, int T, int F, int ld_in, int ld_out,
                         int approx, ck_pool *pool, int nth)
{
    gl_args a = {gate, up, NULL, y, NULL, NULL, T, F, ld_in, ld_out, 1, approx};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_fwd_task, &a);
}

void ck_geglu_grad_f32_scalar(const float *gate, const float *up, const float *dy, float *dgate, float *dup,
                              int T, int F, int ld_in, int ld_out, int approx, ck_pool *pool, int nth)
{
    gl_args a = {gate, up, dy, NULL, dgate, dup, T, F, ld_in, ld_out, 1, approx};
    ck_pool_run(pool, GL_THREADS(T, F, nth), gl_bwd_task, &a);
}
