/* What attention.c (scalar reference) and attention_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_ATTENTION_ARGS_H
#define CK_INTERNAL_ATTENTION_ARGS_H

#include "common.h"
#include "quant_common.h"

static inline int key_lo(int P, int window) { return window > 0 && P - window + 1 > 0 ? P - window + 1 : 0; }

/* KV caches in fp16 / Q8_0 (ck_attention_kvf16 / _kvq8_0): the format code
 * (ck_qtype's numbers), where row j of KV head g starts, and its conversion to
 * fp32 (exact: an fp16 value, or d·q with an 11-bit d and |q| <= 127). */
enum { AT_KV_F32 = 0, AT_KV_F16 = CK_QTYPE_F16, AT_KV_Q8_0 = CK_QTYPE_Q8_0 };

static inline const uint8_t *at_kv_row(const void *base, int kvt, int64_t j, int ldk, int g, int D)
{
    const int64_t e = j * ldk + (int64_t)g * D; /* element index; a multiple of 32 for Q8_0 */
    return (const uint8_t *)base + (kvt == AT_KV_F16 ? e * 2 : e / CK_QK * (int64_t)sizeof(ck_block_q8_0));
}

static inline void at_kv_row_scalar(const uint8_t *src, int kvt, float *dst, int D)
{
    if (kvt == AT_KV_F16) {
        for (int d = 0; d < D; d++) {
            uint16_t h;
            memcpy(&h, src + 2 * d, 2);
            dst[d] = ck_fp16_to_fp32(h);
        }
        return;
    }
    for (int b = 0; b < D / CK_QK; b++) {
        const ck_block_q8_0 *blk = (const ck_block_q8_0 *)src + b;
        const float dd = ck_fp16_to_fp32(blk->d);
        for (int i = 0; i < CK_QK; i++) dst[b * CK_QK + i] = dd * (float)blk->qs[i];
    }
}

/* Checks of the kv* entry points beyond at_check's: Q8_0 heads are whole blocks. */
static inline int at_kv_check(int kvt, int D) { return kvt == AT_KV_Q8_0 && D % CK_QK ? CK_ERR_ARG : CK_OK; }

#endif
