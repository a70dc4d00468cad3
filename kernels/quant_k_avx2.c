/* K-quant GEMM / GEMV, AVX2 variant (see ckernels.h, section quant_k).
 *
 * As the AVX-512 variant with 32-byte vectors: a weight super-block unpacks to
 * 8 ymm of unsigned 8-bit quants, 8 ymm of int16 pair-lane group scales, the
 * 16 mins and two floats (16 ymm: the compiler keeps part of it on the stack,
 * in L1), then feeds up to CKQ_MT activation rows with vpmaddubsw (u8 × s8 ->
 * int16 pairs, at most 2·63·127: no saturation), vpmaddwd (× group scale) and
 * vpaddd, and one float step per super-block.
 */
#include <immintrin.h>

#include "ckernels.h"
#include "internal/quant_k.h"

#define CKQ_INLINE static inline __attribute__((always_inline))

typedef struct {
    __m256i q[8];    /* values 32k .. 32k+31, unsigned */
    __m256i sc[8];   /* int16 lane j of q[k]'s pairs: scale of group 2k + j/8 */
    __m256i mn;      /* 16 int16 group mins */
    __m256i gs;      /* 16 int16 group scales (dequantization) */
    float d, dm;
    __m256 mnf[2];   /* dm·mn as floats (pairs with the activations' bsf) */
} ckq_ub256;

/* bit j of every byte of v, moved to bit pos (others zero) */
CKQ_INLINE __m256i ckq_bit_to(__m256i v, int j, int pos) {
    const __m256i t = j > pos ? _mm256_srli_epi16(v, j - pos) : _mm256_slli_epi16(v, pos - j);
    return _mm256_and_si256(t, _mm256_set1_epi8((char)(1 << pos)));
}

/* per-16-group int16 scales -> pair-lane vectors: ymm k gets group 2k (low lane), 2k+1 (high) */
CKQ_INLINE void ckq_scales16(__m256i gs16, ckq_ub256 *u) {
    u->gs = gs16;
    const __m256i lo = _mm256_permute2x128_si256(gs16, gs16, 0x00);   /* groups 0..7 in both lanes */
    const __m256i hi = _mm256_permute2x128_si256(gs16, gs16, 0x11);   /* groups 8..15 */
    for (int k = 0; k < 8; k++) {
        const int kk = k % 4;
        const short b0 = (short)(((4 * kk + 1) << 8) | (4 * kk));
        const short b1 = (short)(((4 * kk + 3) << 8) | (4 * kk + 2));
        const __m256i ctrl = _mm256_set_m128i(_mm_set1_epi16(b1), _mm_set1_epi16(b0));
        u->sc[k] = _mm256_shuffle_epi8(k < 4 ? lo : hi, ctrl);
    }
}

CKQ_INLINE void ckq_q2bits(const uint8_t *qs, ckq_ub256 *u) {
    for (int c = 0; c < 2; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
        for (int s = 0; s < 4; s++)
            u->q[4 * c + s] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * s), _mm256_set1_epi8(3));
    }
}

CKQ_INLINE void ckq_unpack_q2_k(const ckq_q2_k *b, ckq_ub256 *u) {
    ckq_q2bits(b->qs, u);
    const __m128i s = _mm_loadu_si128((const __m128i *)b->scales);
    ckq_scales16(_mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(15))), u);
    u->mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(15)));
    u->d = ck_fp16_to_fp32(b->d);
    u->dm = -ck_fp16_to_fp32(b->dmin);
}

CKQ_INLINE void ckq_unpack_q3_k(const ckq_q3_k *b, ckq_ub256 *u) {
    ckq_q2bits(b->qs, u);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
    for (int k = 0; k < 8; k++) u->q[k] = _mm256_or_si256(u->q[k], ckq_bit_to(hm, k, 2));   /* bit 4c+s = k */
    int8_t sc[16];
    ckq_unpack_k3_scales(b->scales, sc);
    const __m256i g = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
    ckq_scales16(g, u);
    u->mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(g, 2));
    u->d = u->dm = ck_fp16_to_fp32(b->d);
}

CKQ_INLINE void ckq_k4_scales(const uint8_t *scales, uint16_t d, uint16_t dmin, ckq_ub256 *u) {
    const __m128i sm = ckq_k4_scales_sse(scales);   /* sc0..7, m0..7 */
    const __m256i s16 = _mm256_cvtepu8_epi16(sm);
    const __m256i lo = _mm256_permute2x128_si256(s16, s16, 0x00);   /* sc0..7 in both lanes */
    for (int k = 0; k < 8; k++)   /* every lane: scale k (bytes 2k, 2k+1 of the lane) */
        u->sc[k] = _mm256_shuffle_epi8(lo, _mm256_set1_epi16((short)(((2 * k + 1) << 8) | (2 * k))));
    u->mn = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));   /* m0 m0 m1 m1 .. m7 m7 */
    u->gs = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sm, sm));   /* sc0 sc0 sc1 sc1 .. */
    u->d = ck_fp16_to_fp32(d);
    u->dm = -ck_fp16_to_fp32(dmin);
}

CKQ_INLINE void ckq_nibbles(const uint8_t *qs, ckq_ub256 *u) {
    for (int c = 0; c < 4; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
        u->q[2 * c] = _mm256_and_si256(v, _mm256_set1_epi8(15));
        u->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15));
    }
}

CKQ_INLINE void ckq_unpack_q4_k(const ckq_q4_k *b, ckq_ub256 *u) {
    ckq_nibbles(b->qs, u);
    ckq_k4_scales(b->scales, b->d, b->dmin, u);
}

CKQ_INLINE void ckq_unpack_q5_k(const ckq_q5_k *b, ckq_ub256 *u) {
    ckq_nibbles(b->qs, u);
    const __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
    for (int j = 0; j < 8; j++) u->q[j] = _mm256_or_si256(u->q[j], ckq_bit_to(qh, j, 4));
    ckq_k4_scales(b->scales, b->d, b->dmin, u);
}

CKQ_INLINE void ckq_unpack_q6_k(const ckq_q6_k *b, ckq_ub256 *u) {
    for (int h = 0; h < 2; h++) {
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        for (int r = 0; r < 4; r++) {
            const __m256i L = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (r & 1)));
            const __m256i lo = _mm256_and_si256(r >> 1 ? _mm256_srli_epi16(L, 4) : L, _mm256_set1_epi8(15));
            const int sh = 4 - 2 * r;   /* bits 2r, 2r+1 -> 4, 5 */
            const __m256i t = sh >= 0 ? _mm256_slli_epi16(qh, sh) : _mm256_srli_epi16(qh, -sh);
            u->q[4 * h + r] = _mm256_or_si256(lo, _mm256_and_si256(t, _mm256_set1_epi8(0x30)));
        }
    }
    const __m256i g = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
    ckq_scales16(g, u);
    u->mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(g, 5));
    u->d = u->dm = ck_fp16_to_fp32(b->d);
}

CKQ_INLINE float ckq_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define CKQ_MT 4

/* Software prefetch 2 KiB ahead in the weight stream (see quant_k_avx512_rows.h). */
CKQ_INLINE void ckq_prefetch_block(const void *blk, size_t bytes) {
    const char *p = (const char *)blk + 2048;
    _mm_prefetch(p, _MM_HINT_T0);
    _mm_prefetch(p + 64, _MM_HINT_T0);
    if (bytes > 128) _mm_prefetch(p + 128, _MM_HINT_T0);
    if (bytes > 192) _mm_prefetch(p + 192, _MM_HINT_T0);
}

CKQ_INLINE void ckq_min_floats(ckq_ub256 *u) {
    const __m256 dm = _mm256_set1_ps(u->dm);
    u->mnf[0] = _mm256_mul_ps(dm, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(u->mn))));
    u->mnf[1] = _mm256_mul_ps(dm, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(u->mn, 1))));
}

CKQ_INLINE void ckq_tile(const ckq_ub256 *u, const ckq_q8_k *xq, long nb, long b, int mt, __m256 *acc,
                         __m256 *accm) {
#pragma GCC unroll 8
    for (int i = 0; i < mt; i++) {
        const ckq_q8_k *x = xq + i * nb + b;
        __m256i s = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            const __m256i p = _mm256_maddubs_epi16(u->q[k], _mm256_load_si256((const __m256i *)(x->qs + 32 * k)));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p, u->sc[k]));
        }
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(u->d * x->d), acc[i]);
        accm[i] = _mm256_fmadd_ps(u->mnf[0], _mm256_load_ps(x->bsf), accm[i]);
        accm[i] = _mm256_fmadd_ps(u->mnf[1], _mm256_load_ps(x->bsf + 8), accm[i]);
    }
}

#define CKQ_ROWS(fmtname, blk_t)                                                                           \
    CKQ_INLINE void ckq_rows_mt_##fmtname(const void *w, const ckq_q8_k *xq, long nb, int mt, float *out) { \
        __m256 acc[CKQ_MT], accm[CKQ_MT];                                                                  \
        _Pragma("GCC unroll 8") for (int i = 0; i < mt; i++) acc[i] = accm[i] = _mm256_setzero_ps();     \
        const blk_t *wb = (const blk_t *)w;                                                                \
        for (long b = 0; b < nb; b++) {                                                                    \
            ckq_prefetch_block(wb + b, sizeof(blk_t));                                                     \
            ckq_ub256 u;                                                                                   \
            ckq_unpack_##fmtname(wb + b, &u);                                                              \
            ckq_min_floats(&u);                                                                            \
            ckq_tile(&u, xq, nb, b, mt, acc, accm);                                                        \
        }                                                                                                  \
        _Pragma("GCC unroll 8") for (int i = 0; i < mt; i++) out[i] = ckq_hsum(_mm256_add_ps(acc[i], accm[i]));                   \
    }                                                                                                      \
    static void ckq_rows_##fmtname(const void *w, const ckq_q8_k *xq, long nb, int mt, float *out) {      \
        switch (mt) {                                                                                      \
        case 1: ckq_rows_mt_##fmtname(w, xq, nb, 1, out); break;                                          \
        case 2: ckq_rows_mt_##fmtname(w, xq, nb, 2, out); break;                                          \
        case 3: ckq_rows_mt_##fmtname(w, xq, nb, 3, out); break;                                          \
        default: ckq_rows_mt_##fmtname(w, xq, nb, CKQ_MT, out); break;                                    \
        }                                                                                                  \
    }
CKQ_ROWS(q2_k, ckq_q2_k)
CKQ_ROWS(q3_k, ckq_q3_k)
CKQ_ROWS(q4_k, ckq_q4_k)
CKQ_ROWS(q5_k, ckq_q5_k)
CKQ_ROWS(q6_k, ckq_q6_k)

static ckq_rows_fn ckq_rows(int fmt) {
    switch (fmt) {
    case 10: return ckq_rows_q2_k;
    case 11: return ckq_rows_q3_k;
    case 12: return ckq_rows_q4_k;
    case 13: return ckq_rows_q5_k;
    default: return ckq_rows_q6_k;
    }
}

/* ---- activation quantizer, bit for bit the scalar one ---- */
static void ckq_quantize_block(const float *x, ckq_q8_k *q) {
    __m256 amax = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int i = 0; i < 32; i++) amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(x + 8 * i), absmask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float m = _mm_cvtss_f32(m4);
    if (m == 0.0f) {
        memset(q, 0, sizeof(*q));
        return;
    }
    const __m256 id = _mm256_set1_ps(127.0f / m);
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
    for (int g = 0; g < 16; g++) {
        __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g), id));
        __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g + 8), id));
        a = _mm256_max_epi32(_mm256_min_epi32(a, lim), nlim);
        c = _mm256_max_epi32(_mm256_min_epi32(c, lim), nlim);
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, c), 0xD8);   /* 16 int16 in order */
        _mm_store_si128((__m128i *)(q->qs + 16 * g),
                        _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
        const __m256i s8 = _mm256_add_epi32(a, c);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
        q->bsums[g] = (int16_t)_mm_cvtsi128_si32(s);
    }
    q->d = m / 127.0f;
    const __m256 d = _mm256_set1_ps(q->d);
    const __m256i b16 = _mm256_loadu_si256((const __m256i *)q->bsums);
    _mm256_store_ps(q->bsf, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(b16)))));
    _mm256_store_ps(q->bsf + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(b16, 1)))));
}

/* ---- dequantization (embedding): (d·gs)·q − dmin·m in gguf-py's order, mul and sub unfused ---- */
#define CKQ_DQ(fmtname, blk_t, off, has_min)                                                      \
    static void ckq_dq_##fmtname(const void *blk, float *y) {                                       \
        ckq_ub256 u;                                                                             \
        ckq_unpack_##fmtname((const blk_t *)blk, &u);                                            \
        int16_t gs[16], mn[16];                                                                  \
        _mm256_storeu_si256((__m256i *)gs, u.gs);                                                \
        _mm256_storeu_si256((__m256i *)mn, u.mn);                                                \
        for (int k = 0; k < 8; k++)                                                              \
            for (int p = 0; p < 4; p++) {                                                        \
                const int g = 2 * k + p / 2;                                                     \
                const __m128i b8 = p < 2 ? _mm256_castsi256_si128(u.q[k]) : _mm256_extracti128_si256(u.q[k], 1); \
                const __m256i qi = _mm256_sub_epi32(_mm256_cvtepu8_epi32(p % 2 ? _mm_srli_si128(b8, 8) : b8), \
                                                    _mm256_set1_epi32(off));                    \
                __m256 w = _mm256_mul_ps(_mm256_set1_ps(u.d * (float)gs[g]), _mm256_cvtepi32_ps(qi)); \
                if (has_min) w = _mm256_sub_ps(w, _mm256_set1_ps(-u.dm * (float)mn[g]));       \
                _mm256_storeu_ps(y + 32 * k + 8 * p, w);                                         \
            }                                                                                    \
    }
CKQ_DQ(q2_k, ckq_q2_k, 0, 1)
CKQ_DQ(q3_k, ckq_q3_k, 4, 0)
CKQ_DQ(q4_k, ckq_q4_k, 0, 1)
CKQ_DQ(q5_k, ckq_q5_k, 0, 1)
CKQ_DQ(q6_k, ckq_q6_k, 32, 0)

CKQ_DEQUANT_BLOCK_OF_DQ

#define CKQ_SFX avx2
#include "internal/quant_k_driver.h"
