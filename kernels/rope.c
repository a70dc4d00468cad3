/* Rotary position embedding (RoPE), split-half "neox" and interleaved styles,
 * partial rotary, forward and backward (inverse rotation). Scalar reference;
 * SIMD variants in rope_avx2.c / rope_avx512.c (template internal/rope_simd.h).
 *
 * Angles: inv_freq[i] = (float)(theta^(-2i/rotary_dim)) (computed in double,
 * rounded once), angle = (float)pos * inv_freq[i] in float32 (as PyTorch /
 * transformers do), cos/sin of that float angle evaluated in double. */
#include <math.h>
#include "internal/common.h"

typedef struct {
    const float *x;
    float *y;
    const int32_t *pos;
    const float *inv_freq;
    int T, heads, head_dim, rotary_dim, pos0, style;
    float theta, sign; /* sign -1: inverse rotation (backward) */
} rope_args;

static void rope_task(void *arg, int ith, int nth)
{
    const rope_args *p = (const rope_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int half = p->rotary_dim / 2, row = p->heads * p->head_dim;
    float cs[CK_ROPE_MAX_DIM / 2], sn[CK_ROPE_MAX_DIM / 2];
    for (int64_t t = lo; t < hi; t++) {
        const float pos = (float)(p->pos ? p->pos[t] : p->pos0 + (int)t);
        for (int i = 0; i < half; i++) { /* per token, shared by every head */
            const float inv = p->inv_freq ? p->inv_freq[i] : (float)pow((double)p->theta, -2.0 * i / p->rotary_dim);
            const float ang = pos * inv;
            cs[i] = (float)cos((double)ang);
            sn[i] = p->sign * (float)sin((double)ang);
        }
        const float *xr = p->x + t * row;
        float *yr = p->y + t * row;
        for (int h = 0; h < p->heads; h++) {
            const float *x = xr + h * p->head_dim;
            float *y = yr + h * p->head_dim;
            for (int i = 0; i < half; i++) {
                const int i1 = p->style == CK_ROPE_NEOX ? i : 2 * i;
                const int i2 = p->style == CK_ROPE_NEOX ? i + half : 2 * i + 1;
                const float x1 = x[i1], x2 = x[i2];
                y[i1] = x1 * cs[i] - x2 * sn[i];
                y[i2] = x2 * cs[i] + x1 * sn[i];
            }
            if (y != x)
                for (int i = p->rotary_dim; i < p->head_dim; i++) y[i] = x[i];
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

int ck_rope_f32_scalar(const float *x, float *y, const int32_t *pos, const float *inv_freq, int T, int heads, int head_dim,
                       int rotary_dim, int pos0, float theta, int style, ck_pool *pool, int nth)
{
    return rope_run(x, y, pos, inv_freq, T, heads, head_dim, rotary_dim, pos0, theta, style, 1.0f, pool, nth);
}

int ck_rope_grad_f32_scalar(const float *dy, float *dx, const int32_t *pos, const float *inv_freq, int T, int heads, int head_dim,
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

void ck_seq_positions_i32_scalar(int32_t *pos, int rows, int S, int pos0, ck_pool *pool, int nth)
{
    (void)pool, (void)nth;
    seq_positions(pos, rows, S, pos0);
}
