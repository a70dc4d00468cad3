/* Token embedding lookup (+ optional scale) and its backward (scatter-add).
 * Scalar reference; SIMD variants in embedding_avx2.c / embedding_avx512.c
 * (template internal/embedding_simd.h). */
#include "internal/common.h"
#include "internal/embedding_args.h"

static void emb_fwd_task(void *arg, int ith, int nth)
{
    const emb_args *p = (const emb_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int64_t t = lo; t < hi; t++) {
        const int id = p->ids[t];
        float *y = p->dst + t * C;
        if (id < 0 || id >= p->vocab) {
            for (int i = 0; i < C; i++) y[i] = 0.0f;
            continue;
        }
        const float *row = p->src + (int64_t)id * C;
        for (int i = 0; i < C; i++) y[i] = row[i] * p->scale;
    }
}

int ck_embedding_f32_scalar(const int32_t *ids, const float *table, float *out, int T, int vocab, int C,
                            float scale, ck_pool *pool, int nth)
{
    int bad = 0;
    for (int t = 0; t < T; t++) bad += ids[t] < 0 || ids[t] >= vocab;
    emb_args a = {ids, table, out, T, vocab, C, scale, {0}};
    int n = ckk_threads_for((int64_t)T * C, 1 << 14, nth);
    ck_pool_run(pool, n < T ? n : (T > 0 ? T : 1), emb_fwd_task, &a);
    return bad;
}

/* column-parallel: thread ith owns columns [lo, hi) of every dtable row */
static void emb_bwd_task(void *arg, int ith, int nth)
{
    const emb_args *p = (const emb_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->C, 64, ith, nth, &lo, &hi);
    const int C = p->C;
    for (int t = 0; t < p->T; t++) {
        const int id = p->ids[t];
        if (id < 0 || id >= p->vocab) continue;
        const float *d = p->src + (int64_t)t * C;
        float *g = p->dst + (int64_t)id * C;
        for (int64_t i = lo; i < hi; i++) g[i] += p->scale * d[i];
    }
}

void ck_embedding_grad_f32_scalar(const int32_t *ids, const float *dout, float *dtable, int T, int vocab, int C,
                                  float scale, ck_pool *pool, int nth)
{
    emb_args a = {ids, dout, dtable, T, vocab, C, scale, {0}};
    ck_pool_run(pool, ckk_threads_for((int64_t)T * C, 1 << 14, ckk_threads_for(C, 64, nth)), emb_bwd_task, &a);
}
