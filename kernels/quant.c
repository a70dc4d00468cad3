/* Quantized GEMM / GEMV / embedding, scalar reference (see ckernels.h, section
 * quant), plus what every variant shares: type sizes, the workspace query and
 * the R8 interleaved repacking. Plain loops computing exactly the documented
 * arithmetic: 8-bit activation blocks, an integer dot product per block, one
 * float step per block. The SIMD variants (quant_avx2.c, quant_avx512.c)
 * compute the same quantized activations and the same per-block integers. */
#include <string.h>

#include "ckernels.h"
#include "internal/quant_common.h"

int ck_qtype_block_size(int fmt) { return qk_block_elems(fmt); }
int ck_qtype_type_size(int fmt) { return qk_block_bytes(fmt); }

size_t ck_qrow_size(int fmt, int K) {
    const int be = qk_block_elems(fmt);
    if (be == 0 || K < 0 || K % be) return 0;
    return (size_t)(K / be) * qk_block_bytes(fmt);
}

/* Block formats: the quantized x rows (qk_xrow_bytes each) + 64 for aligning.
 * K-quant formats get the same (it also covers one Q8_K block of 292 bytes per
 * 256 elements). F32/F16/BF16 need none. Independent of N and nth. */
size_t ck_qgemm_workspace_size(int fmt, int M, int N, int K, int nth) {
    /* K-quants run their own driver (kernels/quant_k.c): one query for every format */
    if (fmt >= CK_QTYPE_Q2_K && fmt <= CK_QTYPE_Q6_K) return ck_qkgemm_workspace_size(fmt, M, N, K, nth);
    const int be = qk_block_elems(fmt);
    if (be <= 1 || M <= 0 || K <= 0) return 0;
    return (size_t)M * qk_xrow_bytes(K) + 64;
}

void ck_fp16_to_fp32_row(const uint16_t *h, float *f, int64_t n) {
    for (int64_t i = 0; i < n; i++) f[i] = ck_fp16_to_fp32(h[i]);
}

void ck_fp32_to_fp16_row(const float *f, uint16_t *h, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] = ck_fp32_to_fp16(f[i]);
}

/* ---- interleaved repacking ---- */
size_t ck_qpacked_size(int fmt, int N, int K) {
    const size_t rowb = ck_qrow_size(fmt, K);
    if (N <= 0 || rowb == 0 || !qk_packable(fmt)) return 0;
    return (size_t)((N + CK_QPACK_ROWS - 1) / CK_QPACK_ROWS) * CK_QPACK_ROWS * rowb;
}

typedef struct {
    int fmt;
    const uint8_t *W;
    uint8_t *Wp;
    long N, nb, bsz;
} qpack_args;

static void qpack_task(void *vp, int ith, int nth) {
    const qpack_args *a = (const qpack_args *)vp;
    const long groups = (a->N + CK_QPACK_ROWS - 1) / CK_QPACK_ROWS, rowb = a->nb * a->bsz;
    uint8_t zero[34] = {0};
    long g0, g1;
    ck_split_range(groups, 1, ith, nth, &g0, &g1);
    for (long g = g0; g < g1; g++)
        for (long kb = 0; kb < a->nb; kb++) {
            uint8_t *rb = a->Wp + g * CK_QPACK_ROWS * rowb + kb * CK_QPACK_ROWS * a->bsz;
            for (int r = 0; r < CK_QPACK_ROWS; r++) {
                const long n = g * CK_QPACK_ROWS + r;
                /* padding rows: d = 0 and q = 0, so they compute 0 (never stored) */
                qk_r8_put(a->fmt, rb, r, n < a->N ? a->W + n * rowb + kb * a->bsz : zero);
            }
        }
}

static void qpack(int fmt, const void *W, int N, int K, void *Wp, ck_pool *pool, int nth) {
    if (ck_qpacked_size(fmt, N, K) == 0) return;
    qpack_args a = {fmt, (const uint8_t *)W, (uint8_t *)Wp, N, K / 32, qk_block_bytes(fmt)};
    const long groups = (N + CK_QPACK_ROWS - 1) / CK_QPACK_ROWS;
    if (nth > groups) nth = (int)groups;
    ck_pool_run(pool, nth < 1 ? 1 : nth, qpack_task, &a);
}

#define QPACK_FN(name, FMT) \
    void ck_qpack_##name(const void *W, int N, int K, void *Wp, ck_pool *pool, int nth) { qpack(FMT, W, N, K, Wp, pool, nth); }
QPACK_FN(q8_0, CK_QTYPE_Q8_0)
QPACK_FN(q4_0, CK_QTYPE_Q4_0)
QPACK_FN(q4_1, CK_QTYPE_Q4_1)
QPACK_FN(q5_0, CK_QTYPE_Q5_0)
QPACK_FN(q5_1, CK_QTYPE_Q5_1)

/* ---- scalar compute ---- */
static void compute_scalar(const qk_job *j, long n0, long n1) {
    const int fmt = j->fmt;
    if (fmt == CK_QTYPE_F16 || fmt == CK_QTYPE_BF16) {
        for (long n = n0; n < n1; n++) {
            const uint16_t *w = (const uint16_t *)(j->W + n * j->rowb);
            for (long m = 0; m < j->M; m++) {
                const float *x = j->x + m * j->K;
                float s = 0.0f;
                for (long k = 0; k < j->K; k++)
                    s += x[k] * (fmt == CK_QTYPE_F16 ? ck_fp16_to_fp32(w[k]) : ck_bf16_to_fp32(w[k]));
                qk_store(j, m, n, s);
            }
        }
        return;
    }
    const int off = qk_offset(fmt), hasmin = qk_has_min(fmt);
    for (long n = n0; n < n1; n++) {
        long stride = 0;
        const uint8_t *wr = j->packed ? NULL : qk_wrow(j, n, &stride);
        for (long m = 0; m < j->M; m++) {
            const int8_t *xq = qk_xqs(j, m);
            const float *xd = qk_xd(j, m);
            const int32_t *xs = qk_xs(j, m);
            float acc = 0.0f;
            for (long kb = 0; kb < j->nb; kb++) {
                int q[32];
                float d, mn;
                if (j->packed) {
                    uint8_t blk[34];
                    qk_r8_get(fmt, qk_r8_block(j, n / CK_QPACK_ROWS, kb), (int)(n % CK_QPACK_ROWS), blk);
                    qk_decode_block(fmt, blk, q, &d, &mn);
                } else {
                    qk_decode_block(fmt, wr + kb * stride, q, &d, &mn);
                }
                int32_t dot = 0;
                for (int i = 0; i < 32; i++) dot += q[i] * xq[kb * 32 + i];
                if (hasmin)
                    acc += d * xd[kb] * (float)dot + mn * (xd[kb] * (float)xs[kb]);
                else
                    acc += d * xd[kb] * (float)(dot - off * xs[kb]);
            }
            qk_store(j, m, n, acc);
        }
    }
}

static void quant_scalar(const float *x, long K, uint8_t *dst) { qk_quant_row_scalar(x, K, dst); }

#define ENTRIES(name, FMT)                                                                   \
    QK_ENTRY(ck_qgemm_##name##_scalar, FMT, scalar, 0, quant_scalar, compute_scalar)         \
    QK_EMB_ENTRY(ck_qembedding_##name##_scalar, FMT)
#define PACKED_ENTRY(name, FMT) \
    QK_ENTRY(ck_qgemm_packed_##name##_scalar, FMT, scalar, 1, quant_scalar, compute_scalar)

QK_FORMATS(ENTRIES)
QK_PACKED_FORMATS(PACKED_ENTRY)
