/* SIMD template for embedding.c (included by embedding_avx2.c / _avx512.c). */
#include "embedding_args.h"

static void emb_fwd_task(void *arg, int ith, int nth)
{
    const emb_args *p = (const emb_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int C = p->C;
    const vf s = v_set1(p->scale);
    for (int64_t t = lo; t < hi; t++) {
        const int id = p->ids[t];
        float *y = p->dst + t * C;
        int i;
        if (id < 0 || id >= p->vocab) {
            for (i = 0; i + CK_W <= C; i += CK_W) v_store(y + i, v_zero());
            if (i < C) v_store_n(y + i, v_zero(), C - i);
            continue;
        }
        const float *row = p->src + (int64_t)id * C;
        for (i = 0; i + CK_W <= C; i += CK_W) v_store(y + i, v_mul(v_load(row + i), s));
        if (i < C) v_store_n(y + i, v_mul(v_load_n(row + i, C - i), s), C - i);
    }
}

int CK_FN(ck_embedding_f32)(const int32_t *ids, const float *table, float *out, int T, int vocab, int C,
                            float scale, ck_pool *pool, int nth)
{
    int bad = 0;
    for (int t = 0; t < T; t++) bad += ids[t] < 0 || ids[t] >= vocab;
    emb_args a = {ids, table, out, T, vocab, C, scale, {0}};
    int n = ckk_threads_for((int64_t)T * C, 1 << 14, nth);
    ck_pool_run(pool, n < T ? n : (T > 0 ? T : 1), emb_fwd_task, &a);
    return bad;
}

static void emb_bwd_task(void *arg, int ith, int nth)
{
    const emb_args *p = (const emb_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->C, 64, ith, nth, &lo, &hi);
    const int C = p->C;
    const vf s = v_set1(p->scale);
    for (int t = 0; t < p->T; t++) {
        const int id = p->ids[t];
        if (id < 0 || id >= p->vocab) continue;
        const float *d = p->src + (int64_t)t * C;
        float *g = p->dst + (int64_t)id * C;
        int64_t i;
        for (i = lo; i + CK_W <= hi; i += CK_W) v_store(g + i, v_fmadd(s, v_load(d + i), v_load(g + i)));
        if (i < hi) {
            int r = (int)(hi - i);
            v_store_n(g + i, v_fmadd(s, v_load_n(d + i, r), v_load_n(g + i, r)), r);
        }
    }
}

void CK_FN(ck_embedding_grad_f32)(const int32_t *ids, const float *dout, float *dtable, int T, int vocab, int C,
                                  float scale, ck_pool *pool, int nth)
{
    emb_args a = {ids, dout, dtable, T, vocab, C, scale, {0}};
    ck_pool_run(pool, ckk_threads_for((int64_t)T * C, 1 << 14, ckk_threads_for(C, 64, nth)), emb_bwd_task, &a);
}
