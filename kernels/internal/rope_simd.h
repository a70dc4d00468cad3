/* SIMD template for rope.c (included by rope_avx2.c / rope_avx512.c).
 * Per token, cos/sin are computed once (scalar, double) into stack tables and
 * applied to every head with vector FMAs; the interleaved style uses a
 * pair-swap permute with sign-folded sin. */
#include <math.h>

typedef struct {
    const float *x;
    float *y;
    const int32_t *pos;
    const float *inv_freq;
    int T, heads, head_dim, rotary_dim, pos0, style;
    float theta, sign;
} rope_args;

static void rope_task(void *arg, int ith, int nth)
{
    const rope_args *p = (const rope_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int half = p->rotary_dim / 2, rot = p->rotary_dim, row = p->heads * p->head_dim;
    float inv[CK_ROPE_MAX_DIM / 2];
    /* neox: cs/sn hold half entries; interleaved: cs = (c0,c0,c1,c1..), sn = (-s0,s0,-s1,s1..) */
    float cs[CK_ROPE_MAX_DIM], sn[CK_ROPE_MAX_DIM];
    for (int i = 0; i < half; i++) inv[i] = p->inv_freq ? p->inv_freq[i] : (float)pow((double)p->theta, -2.0 * i / rot);
    for (int64_t t = lo; t < hi; t++) {
        const float pos = (float)(p->pos ? p->pos[t] : p->pos0 + (int)t);
        for (int i = 0; i < half; i++) {
            const float ang = pos * inv[i];
            const float c = (float)cos((double)ang), s = p->sign * (float)sin((double)ang);
            if (p->style == CK_ROPE_NEOX) {
                cs[i] = c;
                sn[i] = s;
            } else {
                cs[2 * i] = cs[2 * i + 1] = c;
                sn[2 * i] = -s;
                sn[2 * i + 1] = s;
            }
        }
        const float *xr = p->x + t * row;
        float *yr = p->y + t * row;
        for (int h = 0; h < p->heads; h++) {
            const float *x = xr + h * p->head_dim;
            float *y = yr + h * p->head_dim;
            if (p->style == CK_ROPE_NEOX) {
                for (int i = 0; i < half; i += CK_W) {
                    const int r = half - i < CK_W ? half - i : CK_W;
                    vf x1, x2, c, s;
                    if (r == CK_W) {
                        x1 = v_load(x + i), x2 = v_load(x + half + i), c = v_load(cs + i), s = v_load(sn + i);
                        v_store(y + i, v_fnmadd(x2, s, v_mul(x1, c)));
                        v_store(y + half + i, v_fmadd(x1, s, v_mul(x2, c)));
                    } else {
                        x1 = v_load_n(x + i, r), x2 = v_load_n(x + half + i, r);
                        c = v_load_n(cs + i, r), s = v_load_n(sn + i, r);
                        v_store_n(y + i, v_fnmadd(x2, s, v_mul(x1, c)), r);
                        v_store_n(y + half + i, v_fmadd(x1, s, v_mul(x2, c)), r);
                    }
                }
            } else {
                for (int i = 0; i < rot; i += CK_W) {
                    const int r = rot - i < CK_W ? rot - i : CK_W;
                    if (r == CK_W) {
                        vf xv = v_load(x + i);
                        v_store(y + i, v_fmadd(v_swap_pairs(xv), v_load(sn + i), v_mul(xv, v_load(cs + i))));
                    } else {
                        vf xv = v_load_n(x + i, r);
                        v_store_n(y + i, v_fmadd(v_swap_pairs(xv), v_load_n(sn + i, r), v_mul(xv, v_load_n(cs + i, r))), r);
                    }
                }
            }
            if (y != x)
                for (int i = rot; i < p->head_dim; i++) y[i] = x[i];
        }
    }
}

static int rope_run(const float *x, float *y, const int32_t *pos, const float *inv_freq, int T, int heads, int head_dim, int rotary_dim,
                    int pos0, float theta, int style, float sign, ck_pool *pool, int nth)
{
    if (rotary_dim <= 0 || rotary_dim % 2 || rotary_dim > head_dim || rotary_dim > CK_ROPE_MAX_DIM ||
        (style != CK_ROPE_NEOX && style != CK_ROPE_INTERLEAVED))
        return CK_ERR_ARG;
    rope_args a = {x, y, pos, inv_freq, T, heads, head_dim, rotary_dim, pos0, style, theta, sign};
    int n = ckk_threads_for((int64_t)T * heads * head_dim, 1 << 13, nth);
    ck_pool_run(pool, n < T ? n : (T > 0 ? T : 1), rope_task, &a);
    return CK_OK;
}

int CK_FN(ck_rope_f32)(const float *x, float *y, const int32_t *pos, const float *inv_freq, int T, int heads, int head_dim,
                       int rotary_dim, int pos0, float theta, int style, ck_pool *pool, int nth)
{
    return rope_run(x, y, pos, inv_freq, T, heads, head_dim, rotary_dim, pos0, theta, style, 1.0f, pool, nth);
}

int CK_FN(ck_rope_grad_f32)(const float *dy, float *dx, const int32_t *pos, const float *inv_freq, int T, int heads, int head_dim,
                            int rotary_dim, int pos0, float theta, int style, ck_pool *pool, int nth)
{
    return rope_run(dy, dx, pos, inv_freq, T, heads, head_dim, rotary_dim, pos0, theta, style, -1.0f, pool, nth);
}

/* Positions of a batch of sequences (rows = B·S): pos0 + i mod S. Sequential:
 * a few hundred int stores, cheaper than waking the pool. */
static void seq_positions(int32_t *pos, int rows, int S, int pos0)
{
    for (int i = 0; i < rows; i++) pos[i] = pos0 + (S > 0 ? i % S : i);
}

void CK_FN(ck_seq_positions_i32)(int32_t *pos, int rows, int S, int pos0, ck_pool *pool, int nth)
{
    (void)pool, (void)nth;
    seq_positions(pos, rows, S, pos0);
}
