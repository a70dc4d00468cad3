/* KV cache append in fp16 / Q8_0 (ckc --kv-type): fp32 K/V rows converted to
 * the cache's format at row pos. Scalar reference; SIMD variants in
 * kv_cache_avx2.c / _avx512.c (template internal/kv_cache_simd.h). Rounding
 * (ckernels.h, section attention): fp16 round to nearest even; Q8_0 as
 * ggml-cpu's quantize_row_q8_0 (d = fp16(amax/127), q = rint(x·127/amax)). */
#include <math.h>
#include "internal/kv_cache_args.h"

static void kv_f16_task(void *arg, int ith, int nth)
{
    const kv_args *p = (const kv_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * p->C;
        uint16_t *h = (uint16_t *)p->cache + t * p->C;
        for (int c = 0; c < p->C; c++) h[c] = ck_fp32_to_fp16(x[c]);
    }
}

static void kv_q8_0_task(void *arg, int ith, int nth)
{
    const kv_args *p = (const kv_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    const int nb = p->C / CK_QK;
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * p->C;
        ck_block_q8_0 *y = (ck_block_q8_0 *)p->cache + t * nb;
        for (int b = 0; b < nb; b++) {
            const float *xb = x + b * CK_QK;
            float amax = 0.0f;
            for (int i = 0; i < CK_QK; i++) amax = fmaxf(amax, fabsf(xb[i]));
            const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            y[b].d = ck_fp32_to_fp16(amax / 127.0f);
            for (int i = 0; i < CK_QK; i++) y[b].qs[i] = (int8_t)nearbyintf(xb[i] * id);
        }
    }
}

int ck_kv_write_f16_scalar(const float *x, void *cache, int T, int C, ck_pool *pool, int nth)
{
    return kv_run(x, cache, T, C, 0, kv_f16_task, pool, nth);
}

int ck_kv_write_q8_0_scalar(const float *x, void *cache, int T, int C, ck_pool *pool, int nth)
{
    return kv_run(x, cache, T, C, 1, kv_q8_0_task, pool, nth);
}
