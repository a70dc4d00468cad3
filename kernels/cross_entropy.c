/* Fused softmax + cross-entropy (mean over non-ignored rows) with dlogits.
 * Scalar reference; SIMD variants in cross_entropy_avx2.c / _avx512.c
 * (template internal/cross_entropy_simd.h). */
#include <math.h>
#include "internal/common.h"
#include "internal/cross_entropy_args.h"

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
        if (!ce_valid(tgt, V, p->ignore_index)) {
            if (d) for (int i = 0; i < V; i++) d[i] = 0.0f;
            if (p->losses) p->losses[t] = 0.0f;
            continue;
        }
        float m = -INFINITY;
        for (int i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
        double s = 0.0;
        for (int i = 0; i < V; i++) s += expf(x[i] - m);
        const float lse = m + (float)log(s);
        const float loss = lse - x[tgt];
        if (p->losses) p->losses[t] = loss;
        sum += loss;
        if (d) {
            for (int i = 0; i < V; i++) d[i] = expf(x[i] - lse) * p->inv_count;
            d[tgt] -= p->inv_count;
        }
    }
    p->partial[ith] = sum;
}

float ck_cross_entropy_f32_scalar(const float *logits, const int32_t *targets, float *dlogits, float *losses,
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
