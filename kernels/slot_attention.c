/* Slot-batched decode (tensorop kv_scatter / slot_attention): the rows of one
 * call belong to different sequences, each with its own KV-cache slot and
 * position. The caches are [slots, context, KV*D] (slot s starts at row
 * s*context). No new arithmetic: each run of consecutive rows of one slot at
 * consecutive positions (a decode row, or a prefill chunk) is one call of the
 * ck_attention_f32 variant of the same name, so a slot's rows give bit for bit
 * what a single-sequence call on that slot gives. One file for every variant:
 * it only dispatches (compiled without SIMD flags; the attention variants it
 * calls carry their own). */
#include <string.h>
#include "internal/common.h"

/* All ids valid: 0 <= slots[t] < nslots, 0 <= pos[t] < context. */
static int sa_check(const int32_t *slots, const int32_t *pos, int T, int nslots, int context)
{
    if (T < 0 || nslots <= 0 || context <= 0 || (T > 0 && (!slots || !pos))) return CK_ERR_ARG;
    for (int t = 0; t < T; t++)
        if (slots[t] < 0 || slots[t] >= nslots || pos[t] < 0 || pos[t] >= context) return CK_ERR_ARG;
    return CK_OK;
}

#define CK_SLOT_VARIANT(V)                                                                                         \
    int ck_kv_scatter_f32_##V(const float *x, float *cache, const int32_t *slots, const int32_t *pos, int T, int W, \
                              int nslots, int context, ck_pool *pool, int nth)                                      \
    {                                                                                                               \
        (void)pool, (void)nth; /* T rows of W floats: a memcpy each, not worth waking threads */                    \
        if (W <= 0 || sa_check(slots, pos, T, nslots, context)) return CK_ERR_ARG;                                  \
        for (int t = 0; t < T; t++)                                                                                 \
            memcpy(cache + ((int64_t)slots[t] * context + pos[t]) * W, x + (int64_t)t * W, sizeof(float) * W);      \
        return CK_OK;                                                                                               \
    }                                                                                                               \
    int ck_slot_attention_f32_##V(const float *q, const float *k_cache, const float *v_cache, float *out,           \
                                  const int32_t *slots, const int32_t *pos, int T, int nslots, int context, int H,  \
                                  int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)    \
    {                                                                                                               \
        if (sa_check(slots, pos, T, nslots, context) || H <= 0 || KV <= 0 || H % KV || D <= 0) return CK_ERR_ARG;   \
        const int64_t ldq = (int64_t)H * D, slot_elems = (int64_t)context * KV * D;                                 \
        for (int t0 = 0; t0 < T;) {                                                                                 \
            int t1 = t0 + 1;                                                                                        \
            while (t1 < T && slots[t1] == slots[t0] && pos[t1] == pos[t0] + (t1 - t0)) t1++;                        \
            const int64_t base = (int64_t)slots[t0] * slot_elems;                                                   \
            int rc = ck_attention_f32_##V(q + t0 * ldq, k_cache + base, v_cache + base, out + t0 * ldq, NULL,       \
                                          t1 - t0, pos[t0], H, KV, D, window, scale, softcap, pool, nth);           \
            if (rc) return rc;                                                                                      \
            t0 = t1;                                                                                                \
        }                                                                                                           \
        return CK_OK;                                                                                               \
    }

CK_SLOT_VARIANT(scalar)
CK_SLOT_VARIANT(avx2)
CK_SLOT_VARIANT(avx512)
