/* SIMD template for kv_cache.c (included by kv_cache_avx2.c / _avx512.c):
 * fp32 K/V rows -> fp16 (vcvtps2ph, round to nearest even) or Q8_0 blocks
 * (vector amax, one IEEE multiply, vcvtps2dq under the default
 * round-to-nearest-even mode): the same bytes as the scalar reference. */
#include "kv_cache_args.h"

static void kv_f16_task(void *arg, int ith, int nth)
{
    const kv_args *p = (const kv_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *x = p->x + t * p->C;
        uint16_t *h = (uint16_t *)p->cache + t * p->C;
        int c = 0;
#if CK_W == 16
        for (; c + 16 <= p->C; c += 16)
            _mm256_storeu_si256((__m256i *)(h + c),
                                _mm512_cvtps_ph(_mm512_loadu_ps(x + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
        for (; c + 8 <= p->C; c += 8)
            _mm_storeu_si128((__m128i *)(h + c),
                             _mm256_cvtps_ph(_mm256_loadu_ps(x + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
        for (; c < p->C; c++) h[c] = ck_fp32_to_fp16(x[c]);
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
            vf v[CK_QK / CK_W];
            vf mx = v_zero();
            for (int i = 0; i < CK_QK / CK_W; i++) {
                v[i] = v_load(xb + i * CK_W);
                mx = v_max(mx, v_abs(v[i]));
            }
            const float amax = v_hmax(mx);
            const vf id = v_set1(amax != 0.0f ? 127.0f / amax : 0.0f);
            y[b].d = ck_fp32_to_fp16(amax / 127.0f);
#if CK_W == 16
            for (int i = 0; i < 2; i++)
                _mm_storeu_si128((__m128i *)(y[b].qs + 16 * i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v_mul(v[i], id))));
#else
            for (int i = 0; i < 4; i++) {
                int32_t q[8];
                _mm256_storeu_si256((__m256i *)q, _mm256_cvtps_epi32(v_mul(v[i], id)));
                for (int k = 0; k < 8; k++) y[b].qs[8 * i + k] = (int8_t)q[k];
            }
#endif
        }
    }
}

int CK_FN(ck_kv_write_f16)(const float *x, void *cache, int T, int C, ck_pool *pool, int nth)
{
    return kv_run(x, cache, T, C, 0, kv_f16_task, pool, nth);
}

int CK_FN(ck_kv_write_q8_0)(const float *x, void *cache, int T, int C, ck_pool *pool, int nth)
{
    return kv_run(x, cache, T, C, 1, kv_q8_0_task, pool, nth);
}
