/* The quantized GEMM driver shared by the quant_k variants (included once by
 * quant_k.c, quant_k_avx2.c and quant_k_avx512.c, compiled per ISA). Internal.
 *
 *   1. x[M,K] -> Q8_K blocks in the workspace (parallel over blocks);
 *   2. threads claim chunks of CKQ_NCHUNK weight rows dynamically; for each
 *      chunk all M rows of x pass in tiles of up to CKQ_MT:
 *      the chunk's weight rows (a few KiB per row) stay in L1/L2 while every
 *      activation tile passes over them, and one weight super-block unpacked to
 *      integers feeds the whole tile.
 * Each y[m,n] is one row-kernel call's result plus b[n]: the same bits for
 * any thread count.
 *
 * Before including, the variant file defines:
 *   CKQ_SFX                      token: scalar | avx2 | avx512
 *   CKQ_MT                       most activation rows per row-kernel call
 *   ckq_quantize_block(x, q)     256 floats -> one Q8_K block (the bytes every variant gives)
 *   optionally CKQ_HAVE_TILED, ckq_tiled_ok(fmt, fn, M) and ckq_tiled_gemm(...): a tiled
 *       path for larger M (its workspace follows the Q8_K rows, see quant_k.h)
 *   ckq_dequant_block(fmt, blk, out)  one super-block -> 256 floats, gguf-py's expression order
 *   ckq_rows_fn ckq_rows(fmt)    the row kernel of a K-quant format:
 *       rows(w, xq, nb, mt, out): out[i] = Σ_b dot(weight block w[b], xq[i·nb + b]), i < mt
 */
#include <stdatomic.h>

#include "quant_k.h"

#define CKQ_CAT2(a, b) a##b
#define CKQ_CAT(a, b) CKQ_CAT2(a, b)
#define CKQ_NAME(stem) CKQ_CAT(stem, CKQ_SFX)

#ifndef CKQ_NCHUNK
#define CKQ_NCHUNK 8
#endif


typedef struct {
    const float *x;
    ckq_q8_k *q;
    long nblocks, nb, K;
} ckq_quant_job;

static void ckq_quant_task(void *vp, int ith, int nth) {
    const ckq_quant_job *j = (const ckq_quant_job *)vp;
    long b0, b1;
    ck_split_range(j->nblocks, 1, ith, nth, &b0, &b1);
    for (long i = b0; i < b1; i++) {
        const long m = i / j->nb, b = i % j->nb;
        ckq_quantize_block(j->x + m * j->K + b * QK_K, j->q + i);
    }
}

static void ckq_quantize(const float *x, ckq_q8_k *q, long M, long K, ck_pool *pool, int nth) {
    ckq_quant_job j = {x, q, M * (K / QK_K), K / QK_K, K};
    if (j.nblocks <= 0) return;
    /* at least 16 blocks (16 KiB of x) per thread: smaller parts cost more to hand out */
    long most = j.nblocks / 16;
    if (most < 1) most = 1;
    if (nth > most) nth = (int)most;
    ck_pool_run(pool, nth < 1 ? 1 : nth, ckq_quant_task, &j);
}

int CKQ_NAME(ck_quantize_q8_k_)(const float *x, void *q, int M, int K, ck_pool *pool, int nth) {
    if (M < 0 || K < 0 || K % QK_K != 0) return CK_ERR_ARG;
    ckq_quantize(x, (ckq_q8_k *)q, M, K, pool, nth);
    return CK_OK;
}

typedef struct {
    ckq_rows_fn fn;
    const char *W;
    size_t row_bytes;
    const float *b;
    float *y;
    const ckq_q8_k *xq;
    long M, N, nb;
    int acc;
    atomic_long next;   /* next chunk of CKQ_NCHUNK rows to claim */
} ckq_job;

/* Threads claim chunks of CKQ_NCHUNK weight rows dynamically (a thread slowed
 * down by the machine takes fewer); every output is still computed by one
 * row-kernel call, so the bits do not depend on who computes it. */
static void ckq_task(void *vp, int ith, int nth) {
    (void)ith; (void)nth;
    ckq_job *j = (ckq_job *)vp;
    float out[CKQ_MT];
    for (;;) {
        const long nc = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed) * CKQ_NCHUNK;
        if (nc >= j->N) break;
        const long ne = nc + CKQ_NCHUNK < j->N ? nc + CKQ_NCHUNK : j->N;
        for (long m0 = 0; m0 < j->M; m0 += CKQ_MT) {
            const int mt = (int)(j->M - m0 < CKQ_MT ? j->M - m0 : CKQ_MT);
            for (long n = nc; n < ne; n++) {
                j->fn(j->W + n * j->row_bytes, j->xq + m0 * j->nb, j->nb, mt, out);
                const float bias = j->b ? j->b[n] : 0.0f;
                for (int i = 0; i < mt; i++) {
                    float *yp = j->y + (m0 + i) * j->N + n;
                    const float v = out[i] + bias;
                    *yp = j->acc ? *yp + v : v;
                }
            }
        }
    }
}

static int ckq_gemm_with(ckq_rows_fn fn, int fmt, const float *x, const void *W, const float *b, float *y, int M, int N, int K,
                    int accumulate, void *ws, size_t ws_size, ck_pool *pool, int nth) {
    const int rc = ckq_check(fmt, M, N, K, ws, ws_size, nth);
    if (rc != CK_OK || M == 0 || N == 0) return rc;
    if (nth < 1) nth = 1;
    ckq_q8_k *xq = ckq_ws_rows(ws);
    ckq_quantize(x, xq, M, K, pool, nth);
#ifdef CKQ_HAVE_TILED
    if (ckq_tiled_ok(fmt, fn, M)) {
        ckq_tiled_gemm(fmt, xq, W, b, y, M, N, K, accumulate, pool, nth);
        return CK_OK;
    }
#endif
    ckq_job j = {fn, (const char *)W, ck_qrow_size(fmt, K), b, y, xq, M, N, K / QK_K, accumulate, 0};
    atomic_store_explicit(&j.next, 0, memory_order_relaxed);
    const long parts = (N + CKQ_NCHUNK - 1) / CKQ_NCHUNK;
    ck_pool_run(pool, nth > parts ? (int)parts : nth, ckq_task, &j);
    return CK_OK;
}

#define CKQ_DEFINE_GEMM(fmtname, fmtnum)                                                                  \
    int CKQ_NAME(CKQ_CAT(CKQ_CAT(ck_qgemm_, fmtname), _))(const float *x, const void *W, const float *b,      \
                                                          float *y, int M, int N, int K, int accumulate,    \
                                                          void *ws, size_t ws_size, ck_pool *pool, int nth) { \
        return ckq_gemm_with(ckq_rows(fmtnum), fmtnum, x, W, b, y, M, N, K, accumulate, ws, ws_size, pool, nth);                 \
    }
CKQ_DEFINE_GEMM(q2_k, 10)
CKQ_DEFINE_GEMM(q3_k, 11)
CKQ_DEFINE_GEMM(q4_k, 12)
CKQ_DEFINE_GEMM(q5_k, 13)
CKQ_DEFINE_GEMM(q6_k, 14)

/* ---- embedding: rows dequantized by the variant's ckq_dequant_block(fmt, blk, out) ---- */
/* One table row (C / 256 blocks) through the variant's block dequantizer, then
 * the scale (gguf-py's values bit for bit when scale == 1). */
static void ckq_dequant_row(int fmt, const uint8_t *row, float *o, long C, float scale) {
    const size_t bb = (size_t)qk_block_bytes(fmt);
    for (long b = 0; b < C / QK_K; b++) ckq_dequant_block(fmt, (const char *)row + b * bb, o + b * QK_K);
    if (scale != 1.0f)
        for (long c = 0; c < C; c++) o[c] *= scale;
}

static int ckq_embedding(int fmt, const int32_t *ids, const void *table, float *out, int T, int vocab, int C,
                         float scale, ck_pool *pool, int nth) {
    if (C <= 0 || C % QK_K != 0) return CK_ERR_ARG;
    if (T <= 0) return 0;
    qk_emb_job j = {fmt, ids, (const uint8_t *)table, out, T, vocab, C, scale, ckq_dequant_row};
    if (nth > T) nth = T;
    ck_pool_run(pool, nth < 1 ? 1 : nth, qk_emb_task, &j);
    int bad = 0;
    for (int t = 0; t < T; t++) bad += ids[t] < 0 || ids[t] >= vocab;
    return bad;
}

#define CKQ_DEFINE_EMB(fmtname, fmtnum)                                                                      \
    int CKQ_NAME(CKQ_CAT(CKQ_CAT(ck_qembedding_, fmtname), _))(const int32_t *ids, const void *table,         \
                                                               float *out, int T, int vocab, int C,          \
                                                               float scale, ck_pool *pool, int nth) {        \
        return ckq_embedding(fmtnum, ids, table, out, T, vocab, C, scale, pool, nth);                        \
    }
CKQ_DEFINE_EMB(q2_k, 10)
CKQ_DEFINE_EMB(q3_k, 11)
CKQ_DEFINE_EMB(q4_k, 12)
CKQ_DEFINE_EMB(q5_k, 13)
CKQ_DEFINE_EMB(q6_k, 14)
