/* K-quant GEMM / GEMV (Q2_K .. Q6_K weights, Q8_K activations), scalar
 * reference (GEMM, dequantization, embedding), plus the sizes every variant
 * shares (see ckernels.h, section quant_k;
 * block layouts in internal/quant_k.h). */
#include <math.h>

#include "ckernels.h"
#include "internal/quant_k.h"

size_t ck_qkgemm_workspace_size(int fmt, int M, int N, int K, int nth) {
    (void)fmt; (void)N; (void)nth;
    if (M < 0) M = 0;
    if (K < 0) K = 0;
    if (nth < 1) nth = 1;
    const size_t nb = (size_t)(K / QK_K);
    return (size_t)M * nb * sizeof(ckq_q8_k) + (size_t)((M + 15) / 16) * nb * sizeof(ckq_xt) +
           (size_t)nth * 8 * nb * sizeof(ckq_wt) + CKQ_ALIGN;
}

/* ---- one super-block as unsigned integers + scales (see quant_k.h) ---- */
typedef struct {
    uint8_t q[QK_K];
    int16_t gs[16], mn[16];
    float d, dm;
} ckq_ub;

static void ub_q2_k(const ckq_q2_k *b, ckq_ub *u) {
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++) u->q[128 * c + 32 * s + l] = (b->qs[32 * c + l] >> (2 * s)) & 3;
    for (int g = 0; g < 16; g++) {
        u->gs[g] = b->scales[g] & 15;
        u->mn[g] = b->scales[g] >> 4;
    }
    u->d = ck_fp16_to_fp32(b->d);
    u->dm = -ck_fp16_to_fp32(b->dmin);
}

static void ub_q3_k(const ckq_q3_k *b, ckq_ub *u) {
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++) {
                const int lo = (b->qs[32 * c + l] >> (2 * s)) & 3;
                const int hi = (b->hmask[l] >> (4 * c + s)) & 1;
                u->q[128 * c + 32 * s + l] = (uint8_t)(lo + 4 * hi);   /* q3 + 4 */
            }
    int8_t sc[16];
    ckq_unpack_k3_scales(b->scales, sc);
    for (int g = 0; g < 16; g++) {
        u->gs[g] = sc[g];
        u->mn[g] = (int16_t)(-4 * sc[g]);
    }
    u->d = u->dm = ck_fp16_to_fp32(b->d);
}

static void ub_k4_scales(const uint8_t *scales, uint16_t d, uint16_t dmin, ckq_ub *u) {
    uint8_t sm[16];
    ckq_unpack_k4_scales(scales, sm);
    for (int g = 0; g < 16; g++) {
        u->gs[g] = sm[g / 2];
        u->mn[g] = sm[8 + g / 2];
    }
    u->d = ck_fp16_to_fp32(d);
    u->dm = -ck_fp16_to_fp32(dmin);
}

static void ub_q4_k(const ckq_q4_k *b, ckq_ub *u) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            u->q[64 * c + l] = b->qs[32 * c + l] & 15;
            u->q[64 * c + 32 + l] = b->qs[32 * c + l] >> 4;
        }
    ub_k4_scales(b->scales, b->d, b->dmin, u);
}

static void ub_q5_k(const ckq_q5_k *b, ckq_ub *u) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            u->q[64 * c + l] = (uint8_t)((b->qs[32 * c + l] & 15) | ((b->qh[l] >> (2 * c)) & 1) << 4);
            u->q[64 * c + 32 + l] = (uint8_t)((b->qs[32 * c + l] >> 4) | ((b->qh[l] >> (2 * c + 1)) & 1) << 4);
        }
    ub_k4_scales(b->scales, b->d, b->dmin, u);
}

static void ub_q6_k(const ckq_q6_k *b, ckq_ub *u) {
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < 4; r++)
            for (int l = 0; l < 32; l++) {
                const int lo = (b->ql[64 * h + 32 * (r & 1) + l] >> (4 * (r >> 1))) & 15;
                const int hi = (b->qh[32 * h + l] >> (2 * r)) & 3;
                u->q[128 * h + 32 * r + l] = (uint8_t)(lo | hi << 4);   /* q6 + 32 */
            }
    for (int g = 0; g < 16; g++) {
        u->gs[g] = b->scales[g];
        u->mn[g] = (int16_t)(-32 * b->scales[g]);
    }
    u->d = u->dm = ck_fp16_to_fp32(b->d);
}

typedef void (*ub_fn)(const void *blk, ckq_ub *u);

static ub_fn ub_of(int fmt) {
    switch (fmt) {
    case 10: return (ub_fn)ub_q2_k;
    case 11: return (ub_fn)ub_q3_k;
    case 12: return (ub_fn)ub_q4_k;
    case 13: return (ub_fn)ub_q5_k;
    case 14: return (ub_fn)ub_q6_k;
    default: return 0;
    }
}

/* ---- dequantization: the float expression order of gguf-py's dequantize_blocks ---- */
static void dq_block(int fmt, const void *blk, float *y) {
    ckq_ub u;
    ub_of(fmt)(blk, &u);
    /* offset of q (Q3_K: 4, Q6_K: 32) and the min term dmin·m of Q2_K / Q4_K / Q5_K */
    const int off = fmt == 11 ? 4 : fmt == 14 ? 32 : 0;
    const int has_min = fmt == 10 || fmt == 12 || fmt == 13;
    for (int v = 0; v < QK_K; v++) {
        const int g = v / 16;
        const float dl = u.d * (float)u.gs[g];
        const float q = (float)((int)u.q[v] - off);
        y[v] = has_min ? dl * q - (-u.dm) * (float)u.mn[g] : dl * q;
    }
}

static int dequant(int fmt, const void *src, float *dst, int64_t n) {
    if (n < 0 || n % QK_K != 0) return CK_ERR_ARG;
    const size_t bb = (size_t)qk_block_bytes(fmt);
    for (int64_t i = 0; i < n / QK_K; i++) dq_block(fmt, (const char *)src + i * bb, dst + i * QK_K);
    return CK_OK;
}

int ck_qdequant_q2_k(const void *src, float *dst, int64_t n) { return dequant(10, src, dst, n); }
int ck_qdequant_q3_k(const void *src, float *dst, int64_t n) { return dequant(11, src, dst, n); }
int ck_qdequant_q4_k(const void *src, float *dst, int64_t n) { return dequant(12, src, dst, n); }
int ck_qdequant_q5_k(const void *src, float *dst, int64_t n) { return dequant(13, src, dst, n); }
int ck_qdequant_q6_k(const void *src, float *dst, int64_t n) { return dequant(14, src, dst, n); }

static void ckq_dequant_block(int fmt, const void *blk, float *y) { dq_block(fmt, blk, y); }

/* ---- scalar GEMM: activation quantizer and row kernels ---- */
static void ckq_quantize_block(const float *x, ckq_q8_k *q) {
    float amax = 0.0f;
    for (int v = 0; v < QK_K; v++) amax = fmaxf(amax, fabsf(x[v]));
    if (amax == 0.0f) {
        memset(q, 0, sizeof(*q));
        return;
    }
    const float id = 127.0f / amax;
    for (int v = 0; v < QK_K; v++) {
        int r = (int)nearbyintf(x[v] * id);
        q->qs[v] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += q->qs[16 * g + l];
        q->bsums[g] = (int16_t)s;
    }
    q->d = amax / 127.0f;
    for (int g = 0; g < 16; g++) q->bsf[g] = q->d * (float)q->bsums[g];
}

#define CKQ_MT 16

static void rows_generic(int fmt, const void *w, const ckq_q8_k *xq, long nb, int mt, float *out) {
    const size_t bb = (size_t)qk_block_bytes(fmt);
    const ub_fn unpack = ub_of(fmt);
    for (int i = 0; i < mt; i++) out[i] = 0.0f;
    for (long b = 0; b < nb; b++) {
        ckq_ub u;
        unpack((const char *)w + b * bb, &u);
        for (int i = 0; i < mt; i++) {
            const ckq_q8_k *x = xq + i * nb + b;
            int32_t isum = 0, msum = 0;
            for (int g = 0; g < 16; g++) {
                int32_t s = 0;
                for (int l = 0; l < 16; l++) s += (int32_t)u.q[16 * g + l] * x->qs[16 * g + l];
                isum += s * u.gs[g];
                msum += (int32_t)u.mn[g] * x->bsums[g];
            }
            out[i] += (u.d * x->d) * (float)isum + (u.dm * x->d) * (float)msum;
        }
    }
}

static void rows_q2_k(const void *w, const ckq_q8_k *x, long nb, int mt, float *o) { rows_generic(10, w, x, nb, mt, o); }
static void rows_q3_k(const void *w, const ckq_q8_k *x, long nb, int mt, float *o) { rows_generic(11, w, x, nb, mt, o); }
static void rows_q4_k(const void *w, const ckq_q8_k *x, long nb, int mt, float *o) { rows_generic(12, w, x, nb, mt, o); }
static void rows_q5_k(const void *w, const ckq_q8_k *x, long nb, int mt, float *o) { rows_generic(13, w, x, nb, mt, o); }
static void rows_q6_k(const void *w, const ckq_q8_k *x, long nb, int mt, float *o) { rows_generic(14, w, x, nb, mt, o); }

static ckq_rows_fn ckq_rows(int fmt) {
    switch (fmt) {
    case 10: return rows_q2_k;
    case 11: return rows_q3_k;
    case 12: return rows_q4_k;
    case 13: return rows_q5_k;
    default: return rows_q6_k;
    }
}

#define CKQ_SFX scalar
#include "internal/quant_k_driver.h"
