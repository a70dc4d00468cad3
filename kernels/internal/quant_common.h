/* Private helpers of the quantized kernels (quant*.c; the K-quant files may use
 * them too): fp16/bf16 <-> fp32, block geometry, the scalar block decoders,
 * the 8-bit activation rows and the threaded driver shared by every variant.
 * Block layouts are documented in ckernels.h, section quant. */
#ifndef CK_INTERNAL_QUANT_COMMON_H
#define CK_INTERNAL_QUANT_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../include/ckernels.h"

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---- fp16 / bf16 ---- */

/* IEEE half -> float, exact (subnormals, inf, nan included). */
static inline float ck_fp16_to_fp32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#elif defined(__AVX512F__)
    /* the avx512 files are not built with -mf16c: AVX-512F's vcvtph2ps */
    return _mm512_cvtss_f32(_mm512_cvtph_ps(_mm256_castsi128_si256(_mm_cvtsi32_si128(h))));
#else
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);            /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);    /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;                                        /* ±0 */
    } else {                                                /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

/* float -> IEEE half, round to nearest even (as numpy's astype(float16)). */
static inline uint16_t ck_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);   /* inf / nan */
    if (ax >= 0x477ff000u) return sign | 0x7c00;                                     /* overflows */
    if (ax < 0x38800000u) {                                                          /* subnormal half */
        if (ax < 0x33000000u) return sign;                                           /* < half the smallest */
        const uint32_t e = ax >> 23, man = (ax & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;                                              /* 14..24 */
        uint32_t q = man >> shift;
        const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t q = ((ax >> 13) - (112u << 10));
    const uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return sign | (uint16_t)q;
}

static inline float ck_bf16_to_fp32(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- the formats ---- */

/* X(name, FMT) for each format with ck_qgemm_<name>_<v> and ck_qembedding_<name>_<v>
 * entry points, and for each with an R8-packed ck_qgemm_packed_<name>_<v>: every
 * variant file instantiates its entries from these lists. */
#define QK_FORMATS(X)                                                                         \
    X(q8_0, CK_QTYPE_Q8_0) X(q4_0, CK_QTYPE_Q4_0) X(q4_1, CK_QTYPE_Q4_1) X(q5_0, CK_QTYPE_Q5_0) \
    X(q5_1, CK_QTYPE_Q5_1) X(f16, CK_QTYPE_F16) X(bf16, CK_QTYPE_BF16)
#define QK_PACKED_FORMATS(X)                                                                  \
    X(q8_0, CK_QTYPE_Q8_0) X(q4_0, CK_QTYPE_Q4_0) X(q4_1, CK_QTYPE_Q4_1) X(q5_0, CK_QTYPE_Q5_0) \
    X(q5_1, CK_QTYPE_Q5_1)

/* ---- block geometry ---- */

static inline int qk_block_elems(int fmt) {
    switch (fmt) {
    case CK_QTYPE_F32: case CK_QTYPE_F16: case CK_QTYPE_BF16: return 1;
    case CK_QTYPE_Q4_0: case CK_QTYPE_Q4_1: case CK_QTYPE_Q5_0: case CK_QTYPE_Q5_1:
    case CK_QTYPE_Q8_0: case CK_QTYPE_Q8_1: return 32;
    case CK_QTYPE_Q2_K: case CK_QTYPE_Q3_K: case CK_QTYPE_Q4_K: case CK_QTYPE_Q5_K:
    case CK_QTYPE_Q6_K: case CK_QTYPE_Q8_K: return 256;
    default: return 0;
    }
}

static inline int qk_block_bytes(int fmt) {
    switch (fmt) {
    case CK_QTYPE_F32: return 4;
    case CK_QTYPE_F16: case CK_QTYPE_BF16: return 2;
    case CK_QTYPE_Q4_0: return 18;
    case CK_QTYPE_Q4_1: return 20;
    case CK_QTYPE_Q5_0: return 22;
    case CK_QTYPE_Q5_1: return 24;
    case CK_QTYPE_Q8_0: return 34;
    case CK_QTYPE_Q8_1: return 40;
    case CK_QTYPE_Q2_K: return 84;
    case CK_QTYPE_Q3_K: return 110;
    case CK_QTYPE_Q4_K: return 144;
    case CK_QTYPE_Q5_K: return 176;
    case CK_QTYPE_Q6_K: return 210;
    case CK_QTYPE_Q8_K: return 292;
    default: return 0;
    }
}

/* Integer offset subtracted from the stored q (w = d·(q − off)); 0 for the
 * formats with a minimum (w = d·q + m) and for Q8_0 (signed q). */
static inline int qk_offset(int fmt) {
    return fmt == CK_QTYPE_Q4_0 ? 8 : fmt == CK_QTYPE_Q5_0 ? 16 : 0;
}
static inline int qk_has_min(int fmt) { return fmt == CK_QTYPE_Q4_1 || fmt == CK_QTYPE_Q5_1; }
static inline int qk_is_block_fmt(int fmt) {
    return fmt == CK_QTYPE_Q8_0 || fmt == CK_QTYPE_Q4_0 || fmt == CK_QTYPE_Q4_1 || fmt == CK_QTYPE_Q5_0 ||
           fmt == CK_QTYPE_Q5_1;
}


/* Scalar decode of one block of a legacy format: q[32] (unsigned 0..15 / 0..31,
 * or signed for Q8_0), scale d and minimum m (0 if none). */
static inline void qk_decode_block(int fmt, const uint8_t *blk, int q[32], float *d, float *m) {
    uint16_t h;
    memcpy(&h, blk, 2);
    *d = ck_fp16_to_fp32(h);
    *m = 0.0f;
    const uint8_t *qs;
    uint32_t qh = 0;
    switch (fmt) {
    case CK_QTYPE_Q8_0:
        for (int i = 0; i < 32; i++) q[i] = (int8_t)blk[2 + i];
        return;
    case CK_QTYPE_Q4_0: qs = blk + 2; break;
    case CK_QTYPE_Q4_1: memcpy(&h, blk + 2, 2); *m = ck_fp16_to_fp32(h); qs = blk + 4; break;
    case CK_QTYPE_Q5_0: memcpy(&qh, blk + 2, 4); qs = blk + 6; break;
    case CK_QTYPE_Q5_1: memcpy(&h, blk + 2, 2); *m = ck_fp16_to_fp32(h); memcpy(&qh, blk + 4, 4); qs = blk + 8; break;
    default: return;
    }
    for (int i = 0; i < 16; i++) {
        q[i] = qs[i] & 15;
        q[i + 16] = qs[i] >> 4;
    }
    if (fmt == CK_QTYPE_Q5_0 || fmt == CK_QTYPE_Q5_1)
        for (int i = 0; i < 32; i++) q[i] |= (int)((qh >> i) & 1) << 4;
}

/* out[0:C) = scale · dequant(row) for a row of C elements of fmt (legacy, F16, BF16).
 * Computed as gguf's dequantize: d·(q − off) or d·q + m in fp32 (no FMA contraction:
 * the library is compiled as ISO C, -ffp-contract=off). */
static inline void qk_dequant_row(int fmt, const uint8_t *row, float *out, long C, float scale) {
    if (fmt == CK_QTYPE_F16 || fmt == CK_QTYPE_BF16) {
        for (long k = 0; k < C; k++) {
            uint16_t h;
            memcpy(&h, row + 2 * k, 2);
            out[k] = scale * (fmt == CK_QTYPE_F16 ? ck_fp16_to_fp32(h) : ck_bf16_to_fp32(h));
        }
        return;
    }
    const int bsz = qk_block_bytes(fmt), off = qk_offset(fmt);
    for (long b = 0; b < C / 32; b++) {
        int q[32];
        float d, m;
        qk_decode_block(fmt, row + b * bsz, q, &d, &m);
        for (int i = 0; i < 32; i++) {
            float w = d * (float)(q[i] - off);
            if (qk_has_min(fmt)) w = w + m;
            out[b * 32 + i] = scale * w;
        }
    }
}

/* ---- 8-bit activation rows ----
 * One x row of K (multiple of 32) floats quantized in the workspace as
 *   int8 qs[K] | float d[K/32] | int32 s[K/32]        (padded to 64 bytes)
 * d = amax/127 of the block, qs = nearbyint(x·(1/d)) (ties to even, so the SIMD
 * rounding instructions give the same bits), s = Σ qs of the block. */
static inline size_t qk_xrow_bytes(long K) {
    return ((size_t)K + (size_t)(K / 32) * 8 + 63) & ~(size_t)63;
}

static inline void qk_quant_row_scalar(const float *x, long K, uint8_t *dst) {
    int8_t *qs = (int8_t *)dst;
    float *dd = (float *)(dst + K);
    int32_t *ss = (int32_t *)(dst + K + 4 * (K / 32));
    for (long b = 0; b < K / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t s = 0;
        for (int i = 0; i < 32; i++) {
            int v = (int)nearbyintf(xb[i] * id);
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            qs[b * 32 + i] = (int8_t)v;
            s += v;
        }
        dd[b] = d;
        ss[b] = s;
    }
}

/* ---- the driver ---- */
typedef struct qk_job qk_job;
struct qk_job {
    int fmt, packed, acc;
    const float *x;
    const uint8_t *W;
    const float *b;
    float *y;
    long M, N, K, nb;           /* nb = blocks per row (block formats) */
    long bsz;                   /* bytes per block (F16/BF16: 2 per element) */
    size_t rowb;                /* bytes per W row */
    uint8_t *xq;                /* quantized x rows (block formats) */
    size_t xrow;
    void (*quant)(const float *x, long K, uint8_t *dst);
    void (*compute)(const qk_job *j, long n0, long n1);   /* y[:, n0:n1) */
};

static inline const int8_t *qk_xqs(const qk_job *j, long m) { return (const int8_t *)(j->xq + m * j->xrow); }
static inline const float *qk_xd(const qk_job *j, long m) { return (const float *)(j->xq + m * j->xrow + j->K); }
static inline const int32_t *qk_xs(const qk_job *j, long m) {
    return (const int32_t *)(j->xq + m * j->xrow + j->K + 4 * j->nb);
}
/* Row n of unpacked W: its first block and the stride between its blocks. */
static inline const uint8_t *qk_wrow(const qk_job *j, long n, long *stride) {
    *stride = j->bsz;
    return j->W + n * j->rowb;
}

/* ---- R8 packed layout (ckernels.h): groups of 8 rows, one R8 block per block column ---- */
static inline int qk_packable(int fmt) { return qk_is_block_fmt(fmt); }
/* R8 block: d[8] fp16 | m[8] (Q4_1, Q5_1) | qh[8] uint32 (Q5_0, Q5_1) | quants */
static inline long qk_r8_moff(void) { return 16; }
static inline long qk_r8_hoff(int fmt) { return qk_has_min(fmt) ? 32 : 16; }
static inline int qk_has_qh(int fmt) { return fmt == CK_QTYPE_Q5_0 || fmt == CK_QTYPE_Q5_1; }
/* byte offset of the quants of rows 0-3 / 4-7 in an R8 block */
static inline long qk_r8_qoff(int fmt) { return qk_r8_hoff(fmt) + (qk_has_qh(fmt) ? 32 : 0); }
/* bytes of one half (4 rows) of the quants: 64 for nibbles, 128 for Q8_0 (lo 64 | hi 64) */
static inline long qk_r8_half(int fmt) { return fmt == CK_QTYPE_Q8_0 ? 128 : 64; }

/* GGUF block of row r (< 8) <-> R8 block rb (copy = 0: rb -> blk, 1: blk -> rb) */
static inline void qk_r8_copy(int fmt, uint8_t *rb, int r, uint8_t *blk, int to_r8) {
#define QK_MV(r8p, bp, n) (to_r8 ? memcpy((r8p), (bp), (n)) : memcpy((bp), (r8p), (n)))
    QK_MV(rb + 2 * r, blk, 2);
    uint8_t *q = rb + qk_r8_qoff(fmt) + (r / 4) * qk_r8_half(fmt) + (r % 4) * 16;
    long b = 2;
    if (qk_has_min(fmt)) {
        QK_MV(rb + qk_r8_moff() + 2 * r, blk + b, 2);
        b += 2;
    }
    if (qk_has_qh(fmt)) {
        QK_MV(rb + qk_r8_hoff(fmt) + 4 * r, blk + b, 4);
        b += 4;
    }
    QK_MV(q, blk + b, 16);
    if (fmt == CK_QTYPE_Q8_0) QK_MV(q + 64, blk + b + 16, 16);
#undef QK_MV
}
static inline void qk_r8_get(int fmt, const uint8_t *rb, int r, uint8_t *blk) {
    qk_r8_copy(fmt, (uint8_t *)rb, r, blk, 0);
}
static inline void qk_r8_put(int fmt, uint8_t *rb, int r, const uint8_t *blk) {
    qk_r8_copy(fmt, rb, r, (uint8_t *)blk, 1);
}
/* R8 block of group g, block column kb */
static inline const uint8_t *qk_r8_block(const qk_job *j, long g, long kb) {
    return j->W + g * CK_QPACK_ROWS * j->rowb + kb * CK_QPACK_ROWS * j->bsz;
}
static inline void qk_store(const qk_job *j, long m, long n, float v) {
    float *y = j->y + m * j->N + n;
    if (j->b) v += j->b[n];
    *y = j->acc ? *y + v : v;
}

/* x rows per pass over the thread's W rows: each tile re-reads its x rows, so
 * they are taken in chunks of about 256 KiB (stay in L2) and W is swept once
 * per chunk. A multiple of mr (the tile height), at least mr. */
static inline long qk_mchunk(size_t xrow_bytes, long mr) {
    long c = (long)((256u << 10) / (xrow_bytes ? xrow_bytes : 1)) / mr * mr;
    return c > mr ? c : mr;
}


static inline void qk_quant_task(void *vp, int ith, int nth) {
    const qk_job *j = (const qk_job *)vp;
    long m0, m1;
    ck_split_range(j->M, 1, ith, nth, &m0, &m1);
    for (long m = m0; m < m1; m++) j->quant(j->x + m * j->K, j->K, j->xq + m * j->xrow);
}

static inline void qk_compute_task(void *vp, int ith, int nth) {
    const qk_job *j = (const qk_job *)vp;
    long n0, n1;
    ck_split_range(j->N, CK_QPACK_ROWS, ith, nth, &n0, &n1);
    if (n1 > n0) j->compute(j, n0, n1);
}

/* Checks, quantizes x, runs compute over N split in multiples of 8 rows. */
static inline int qk_run(qk_job *j, void *ws, size_t ws_size, ck_pool *pool, int nth) {
    const int be = qk_block_elems(j->fmt);
    if (!(qk_is_block_fmt(j->fmt) || j->fmt == CK_QTYPE_F16 || j->fmt == CK_QTYPE_BF16)) return CK_ERR_ARG;
    if (j->M < 0 || j->N < 0 || j->K < 0 || j->K % be || (j->packed && !qk_packable(j->fmt))) return CK_ERR_ARG;
    if (ws_size < ck_qgemm_workspace_size(j->fmt, (int)j->M, (int)j->N, (int)j->K, nth) ||
        (!ws && qk_is_block_fmt(j->fmt)))
        return CK_ERR_WORKSPACE;
    if (j->M == 0 || j->N == 0) return CK_OK;
    j->bsz = qk_block_bytes(j->fmt);
    j->nb = j->K / be;
    j->rowb = (size_t)j->nb * j->bsz;
    if (nth < 1) nth = 1;
    if (qk_is_block_fmt(j->fmt)) {
        j->xq = (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
        j->xrow = qk_xrow_bytes(j->K);
        const int qn = j->M < nth ? (int)j->M : nth;
        ck_pool_run(pool, j->M * j->K >= 16384 ? qn : 1, qk_quant_task, j);
    }
    const long groups = (j->N + CK_QPACK_ROWS - 1) / CK_QPACK_ROWS;
    ck_pool_run(pool, nth > groups ? (int)groups : nth, qk_compute_task, j);
    return CK_OK;
}

/* Public entry points of one variant: ck_qgemm_<fmt>_<v>, ck_qgemm_packed_<fmt>_<v>,
 * ck_qembedding_<fmt>_<v>, given the variant's quant_row and compute functions. */
#define QK_ENTRY(fname, FMT, V, PACKED, QUANT, COMPUTE)                                      \
    int fname(const float *x, const void *W, const float *b, float *y, int M, int N, int K,  \
              int accumulate, void *ws, size_t ws_size, ck_pool *pool, int nth) {            \
        qk_job j;                                                                            \
        memset(&j, 0, sizeof j);                                                             \
        j.fmt = FMT; j.packed = PACKED; j.acc = accumulate;                                  \
        j.x = x; j.W = (const uint8_t *)W; j.b = b; j.y = y;                                 \
        j.M = M; j.N = N; j.K = K;                                                           \
        j.quant = QUANT; j.compute = COMPUTE;                                                \
        return qk_run(&j, ws, ws_size, pool, nth);                                           \
    }

/* Embedding rows: `row` dequantizes one table row of C values times scale
 * (qk_dequant_row here; the K-quant variants pass their own). */
typedef void (*qk_row_fn)(int fmt, const uint8_t *row, float *out, long C, float scale);
typedef struct {
    int fmt;
    const int32_t *ids;
    const uint8_t *table;
    float *out;
    long T, vocab, C;
    float scale;
    qk_row_fn row;
} qk_emb_job;

static inline void qk_emb_task(void *vp, int ith, int nth) {
    const qk_emb_job *e = (const qk_emb_job *)vp;
    long t0, t1;
    ck_split_range(e->T, 1, ith, nth, &t0, &t1);
    const size_t rowb = ck_qrow_size(e->fmt, (int)e->C);
    for (long t = t0; t < t1; t++) {
        const long id = e->ids[t];
        float *o = e->out + t * e->C;
        if (id < 0 || id >= e->vocab) {
            memset(o, 0, sizeof(float) * e->C);
            continue;
        }
        e->row(e->fmt, e->table + id * rowb, o, e->C, e->scale);
    }
}

#define QK_EMB_ENTRY(fname, FMT)                                                             \
    int fname(const int32_t *ids, const void *table, float *out, int T, int vocab, int C,    \
              float scale, ck_pool *pool, int nth) {                                         \
        if (C < 0 || T < 0 || C % qk_block_elems(FMT)) return CK_ERR_ARG;                    \
        qk_emb_job e = {FMT, ids, (const uint8_t *)table, out, T, vocab, C, scale,           \
                        qk_dequant_row};                                                     \
        int bad = 0;                                                                         \
        for (long t = 0; t < T; t++) bad += ids[t] < 0 || ids[t] >= vocab;                   \
        const int n = T < nth ? T : nth;                                                     \
        ck_pool_run(pool, (long)T * C >= 8192 ? n : 1, qk_emb_task, &e);                     \
        return bad;                                                                          \
    }

#endif
