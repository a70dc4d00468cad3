/* SIMD template for cross_entropy.c (included by cross_entropy_avx2.c / _avx512.c). */
#include <math.h>
#include "cross_entropy_args.h"

static void ce_task(void *arg, int ith, int nth)
{
    ce_args *p = (ce_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int V = p->V;
    double sum = 0.0;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->logits + t * V;
        const int tgt = p->targets[t];
        float *d = p->dlogits ? p->dlogits + t * V : NULL;
        int i;
        if (!ce_valid(tgt, V, p->ignore_index)) {
            if (d) {
                for (i = 0; i + CK_W <= V; i += CK_W) v_store(d + i, v_zero());
                if (i < V) v_store_n(d + i, v_zero(), V - i);
            }
            if (p->losses) p->losses[t] = 0.0f;
            continue;
        }
        vf mv = v_set1(-INFINITY);
        for (i = 0; i + CK_W <= V; i += CK_W) mv = v_max(mv, v_load(x + i));
        if (i < V) mv = v_max(mv, v_load_nf(x + i, V - i, -INFINITY));
        const float m = v_hmax(mv);
        const vf mb = v_set1(m);
        vf s0 = v_zero(), s1 = v_zero();
        for (i = 0; i + 2 * CK_W <= V; i += 2 * CK_W) {
            s0 = v_add(s0, v_exp(v_sub(v_load(x + i), mb)));
            s1 = v_add(s1, v_exp(v_sub(v_load(x + i + CK_W), mb)));
        }
        for (; i + CK_W <= V; i += CK_W) s0 = v_add(s0, v_exp(v_sub(v_load(x + i), mb)));
        if (i < V) s0 = v_add(s0, v_exp(v_sub(v_load_nf(x + i, V - i, -INFINITY), mb)));
        const float lse = m + logf(v_hsum(v_add(s0, s1)));
        const float loss = lse - x[tgt];
        if (p->losses) p->losses[t] = loss;
        sum += loss;
        if (d) {
            const vf lb = v_set1(lse), ic = v_set1(p->inv_count);
            for (i = 0; i + CK_W <= V; i += CK_W) v_store(d + i, v_mul(v_exp(v_sub(v_load(x + i), lb)), ic));
            if (i < V) v_store_n(d + i, v_mul(v_exp(v_sub(v_load_n(x + i, V - i), lb)), ic), V - i);
            d[tgt] -= p->inv_count;
        }
    }
    p->partial[ith] = sum;
}

float CK_FN(ck_cross_entropy_f32)(const float *logits, const int32_t *targets, float *dlogits, float *losses,
                                  int T, int V, int ignore_index, float grad_scale, ck_pool *pool,
                                  int nth)
{
    int count = 0;
    for (int t = 0; t < T; t++) count += ce_valid(targets[t], V, ignore_index);
    ce_args a = {logits, targets, dlogits, losses, T, V, ignore_index, count ? grad_scale / count : 0.0f, {0}};
    int n = ckk_threads_for((int64_t)T * V, 1 << 14, nth < CE_MAX_THREADS ? nth : CE_MAX_THREADS);
    if (n > T) n = T > 0 ? T : 1;
    ck_pool_run(pool, n, ce_task, &a);
    double total = 0.0;
    for (int i = 0; i < n; i++) total += a.partial[i];
    return count ? (float)(total / count) : 0.0f;
}
