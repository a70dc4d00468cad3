/* The SIMD body of the quantized kernels, included by quant_avx2.c (once) and
 * quant_avx512.c (twice: with and without VNNI). Internal.
 *
 * Before including, the variant file defines:
 *   QK_SFX   name suffix token (avx2 | avx512_vnni | avx512_bw)
 *   QK_VNNI  1: per-block integer dot products with vpdpbusd, else vpmaddubsw+vpmaddwd
 *   QK_ATTR  attributes for every function here (target("avx512vnni") for the VNNI copy)
 *   QK_MR, QK_NR  the GEMM tile: QK_MR x rows by QK_NR W rows, all of K per tile
 *   QK_NR1   W rows per tile when one x row is left (decode)
 *   QK_MR_MIN  x rows per tile for Q4_1/Q5_1 (<= QK_MR)
 *   QK_R8_MR   x rows per tile of the R8 packed kernel (<= 8)
 *   QK_HMR, QK_HNR  the F16/BF16 tile (x rows <= 8, W rows <= 8)
 *
 * Per 32-element block, one ymm holds the 32 unpacked weight bytes u (unsigned
 * 0..15 / 0..31; Q8_0: w ^ 0x80 = w + 128 with VNNI, |w| with maddubs and the
 * sign moved onto x), and per (x row, W row) pair the exact integer
 * Σ (u − off)·qx arrives in 8 int32 lanes: the offset correction −off·Σqx is
 * the accumulator's initial lane 0, computed once per x block. Then one float
 * step per block: acc += float(dot) · (dw·dx) (+ m·dx·Σqx in lane 0 for
 * Q4_1/Q5_1). Lanes are summed once at the end of the row. With AVX-512 the
 * unpacked kernel takes two blocks per zmm (the odd last block in ymm).
 *
 * Three kernels: GGUF-layout rows (qk_tile_), the R8 packed layout
 * (qk_r8_tile_, 4 rows per zmm, one float step per 4 rows: about twice the
 * unpacked speed for prefill and decode), and F16/BF16 (qk_htile_, fp32 FMA).
 * Tiles cover all of K, so an output's summation order depends only on the
 * tile shape, never on the thread count. */
#include <immintrin.h>

#define QK_CAT2(a, b) a##b
#define QK_CAT(a, b) QK_CAT2(a, b)
#define QK_N(stem) QK_CAT(stem, QK_SFX)
#define QK_INL static inline __attribute__((always_inline)) QK_ATTR

/* 32 bytes: 0xff where bit i of the little-endian uint32 at p is set (llama.cpp's bytes_from_bits_32). */
QK_INL __m256i QK_N(qk_bits32_)(const uint8_t *p) {
    uint32_t x32;
    memcpy(&x32, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x32), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

/* nibbles of 16 bytes -> 32 bytes: q[i] = low nibble of qs[i], q[i+16] = high nibble */
QK_INL __m256i QK_N(qk_nibbles_)(const uint8_t *qs) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs);
    const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(15));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(15));
    return _mm256_set_m128i(hi, lo);
}

/* Unpack block p of fmt: u (the dot product's unsigned operand), w (Q8_0 without VNNI: the
 * signed weights, for the sign trick), scale d and minimum m. */
QK_INL void QK_N(qk_unpack_)(const int fmt, const uint8_t *p, __m256i *u, __m256i *w, float *d, float *m) {
    uint16_t h;
    memcpy(&h, p, 2);
    *d = _cvtsh_ss(h);
    switch (fmt) {
    case CK_QTYPE_Q8_0: {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 2));
#if QK_VNNI
        *u = _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80));
        (void)w;
#else
        *u = _mm256_sign_epi8(v, v);
        *w = v;
#endif
        break;
    }
    case CK_QTYPE_Q4_0:
        *u = QK_N(qk_nibbles_)(p + 2);
        break;
    case CK_QTYPE_Q4_1:
        memcpy(&h, p + 2, 2);
        *m = _cvtsh_ss(h);
        *u = QK_N(qk_nibbles_)(p + 4);
        break;
    case CK_QTYPE_Q5_0:
        *u = _mm256_or_si256(QK_N(qk_nibbles_)(p + 6),
                             _mm256_and_si256(QK_N(qk_bits32_)(p + 2), _mm256_set1_epi8(16)));
        break;
    case CK_QTYPE_Q5_1:
        memcpy(&h, p + 2, 2);
        *m = _cvtsh_ss(h);
        *u = _mm256_or_si256(QK_N(qk_nibbles_)(p + 8),
                             _mm256_and_si256(QK_N(qk_bits32_)(p + 4), _mm256_set1_epi8(16)));
        break;
    }
}

/* init + Σ u·x per group of 4 bytes (int32 x 8) */
QK_INL __m256i QK_N(qk_dot_)(const int fmt, __m256i init, __m256i u, __m256i w, __m256i x) {
#if QK_VNNI
    (void)fmt; (void)w;
    return _mm256_dpbusd_epi32(init, u, x);
#else
    /* maddubs pairs stay below 32767: u <= 31 (or |w| <= 127) times |x| <= 127, twice */
    const __m256i p = _mm256_maddubs_epi16(u, fmt == CK_QTYPE_Q8_0 ? _mm256_sign_epi8(x, w) : x);
    return _mm256_add_epi32(init, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

QK_INL float QK_N(qk_hsum_)(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#ifdef __AVX512F__
/* Two blocks (kb, kb+1) per zmm. The nibble formats unpack to 128-bit lanes
 * [blk0 q0..15 | blk1 q0..15 | blk0 q16..31 | blk1 q16..31] (x is permuted to
 * match, once per x row), Q8_0 keeps [blk0 | blk1]; QK_LANEBLK(fmt) gives the
 * block of each 128-bit lane as a permute index for the per-block scales. */
#define QK_PAT_NIB _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
#define QK_PAT_Q8 _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)

/* two scalars (a, b) -> zmm with each 128-bit lane holding its block's value */
QK_INL __m512 QK_N(qk_spread2_)(const int fmt, __m128 ab) {
    return _mm512_permutexvar_ps(fmt == CK_QTYPE_Q8_0 ? QK_PAT_Q8 : QK_PAT_NIB, _mm512_castps128_ps512(ab));
}

/* 64 values of q5 high bits as a byte mask in the nibble lane order */
QK_INL __mmask64 QK_N(qk_hmask2_)(const uint8_t *h0, const uint8_t *h1) {
    uint32_t a, b;
    memcpy(&a, h0, 4);
    memcpy(&b, h1, 4);
    const uint64_t m = (uint64_t)(a & 0xffff) | (uint64_t)(b & 0xffff) << 16 | (uint64_t)(a >> 16) << 32 |
                       (uint64_t)(b >> 16) << 48;
    return _cvtu64_mask64(m);
}

QK_INL __m512i QK_N(qk_nibbles2_)(const uint8_t *q0, const uint8_t *q1) {
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q0)),
                                              _mm_loadu_si128((const __m128i *)q1), 1);
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(15));
}

/* Unpack blocks p0, p1 of one row: u (and w for Q8_0 without VNNI), d pair, m pair. */
QK_INL void QK_N(qk_unpack2_)(const int fmt, const uint8_t *p0, const uint8_t *p1, __m512i *u, __m512i *w,
                              __m128 *d, __m128 *m) {
    uint16_t a, b;
    memcpy(&a, p0, 2);
    memcpy(&b, p1, 2);
    *d = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)a | (uint32_t)b << 16)));
    if (qk_has_min(fmt)) {
        memcpy(&a, p0 + 2, 2);
        memcpy(&b, p1 + 2, 2);
        *m = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)a | (uint32_t)b << 16)));
    }
    switch (fmt) {
    case CK_QTYPE_Q8_0: {
        const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 2))),
                                             _mm256_loadu_si256((const __m256i *)(p1 + 2)), 1);
#if QK_VNNI
        *u = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
        (void)w;
#else
        *u = _mm512_abs_epi8(v);
        *w = v;
#endif
        break;
    }
    case CK_QTYPE_Q4_0: *u = QK_N(qk_nibbles2_)(p0 + 2, p1 + 2); break;
    case CK_QTYPE_Q4_1: *u = QK_N(qk_nibbles2_)(p0 + 4, p1 + 4); break;
    case CK_QTYPE_Q5_0:
        *u = _mm512_mask_add_epi8(QK_N(qk_nibbles2_)(p0 + 6, p1 + 6), QK_N(qk_hmask2_)(p0 + 2, p1 + 2),
                                  QK_N(qk_nibbles2_)(p0 + 6, p1 + 6), _mm512_set1_epi8(16));
        break;
    case CK_QTYPE_Q5_1:
        *u = _mm512_mask_add_epi8(QK_N(qk_nibbles2_)(p0 + 8, p1 + 8), QK_N(qk_hmask2_)(p0 + 4, p1 + 4),
                                  QK_N(qk_nibbles2_)(p0 + 8, p1 + 8), _mm512_set1_epi8(16));
        break;
    }
}

QK_INL __m512i QK_N(qk_dot2_)(const int fmt, __m512i init, __m512i u, __m512i w, __m512i x) {
#if QK_VNNI
    (void)fmt; (void)w;
    return _mm512_dpbusd_epi32(init, u, x);
#else
    /* no 512-bit vpsignb: negate x where w < 0 with a mask */
    const __m512i xs = fmt == CK_QTYPE_Q8_0
        ? _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x) : x;
    const __m512i p = _mm512_maddubs_epi16(u, xs);
    return _mm512_add_epi32(init, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
#endif
}
#endif

/* y[m0 : m0+MR, n0 : min(n0+NR, n1)] over all K; rows past n1 recompute row n1-1 (not stored). */
QK_INL void QK_N(qk_tile_)(const qk_job *j, const int fmt, const int MR, const int NR, long m0, long n0, long n1) {
    const int hasmin = qk_has_min(fmt);
    /* the integer correction per x block: −off·Σqx (Q8_0 with VNNI: −128·Σqx) */
    const int off = fmt == CK_QTYPE_Q8_0 ? (QK_VNNI ? 128 : 0) : qk_offset(fmt);
    const uint8_t *wr[8];
    long stride = 0;
    for (int r = 0; r < NR; r++) wr[r] = qk_wrow(j, n0 + r < n1 ? n0 + r : n1 - 1, &stride);
    const int8_t *xq[4];
    const float *xd[4];
    const int32_t *xs[4];
    for (int i = 0; i < MR; i++) {
        xq[i] = qk_xqs(j, m0 + i);
        xd[i] = qk_xd(j, m0 + i);
        xs[i] = qk_xs(j, m0 + i);
    }
    float part[4][8];
    long kb = 0;
#ifdef __AVX512F__
    {
        __m512 acc[4][8];
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) acc[i][r] = _mm512_setzero_ps();
        /* lane of each block's offset / minimum term: lane 0 and lane 4 (nibbles) or 8 (Q8_0) */
        const __mmask16 k1 = fmt == CK_QTYPE_Q8_0 ? 0x0100 : 0x0010;
        for (; kb + 2 <= j->nb; kb += 2) {
            __m512i u[8], w[8];
            __m512 DW[8], MW[8];
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) {
                __m128 d2, m2 = _mm_setzero_ps();
                QK_N(qk_unpack2_)(fmt, wr[r] + kb * stride, wr[r] + (kb + 1) * stride, &u[r], &w[r], &d2, &m2);
                DW[r] = QK_N(qk_spread2_)(fmt, d2);
                if (hasmin) MW[r] = QK_N(qk_spread2_)(fmt, m2);
            }
#pragma GCC unroll 4
            for (int i = 0; i < MR; i++) {
                __m512i x = _mm512_loadu_si512((const void *)(xq[i] + kb * 32));
                if (fmt != CK_QTYPE_Q8_0) x = _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(3, 1, 2, 0));
                const __m128 dx2 = _mm_castpd_ps(_mm_load_sd((const double *)(xd[i] + kb)));
                const __m512 DX = QK_N(qk_spread2_)(fmt, dx2);
                __m512i init = _mm512_setzero_si512();
                if (off) {
                    init = _mm512_maskz_set1_epi32(1, -off * xs[i][kb]);
                    init = _mm512_mask_set1_epi32(init, k1, -off * xs[i][kb + 1]);
                }
                __m512 SX = _mm512_setzero_ps();
                if (hasmin) {
                    SX = _mm512_maskz_mov_ps(1, _mm512_set1_ps(dx2[0] * (float)xs[i][kb]));
                    SX = _mm512_mask_mov_ps(SX, k1, _mm512_set1_ps(dx2[1] * (float)xs[i][kb + 1]));
                }
#pragma GCC unroll 8
                for (int r = 0; r < NR; r++) {
                    const __m512i dot = QK_N(qk_dot2_)(fmt, init, u[r], w[r], x);
                    acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(DW[r], DX), acc[i][r]);
                    if (hasmin) acc[i][r] = _mm512_fmadd_ps(MW[r], SX, acc[i][r]);
                }
            }
        }
        for (int i = 0; i < MR; i++)
            for (int r = 0; r < NR; r++) part[i][r] = _mm512_reduce_add_ps(acc[i][r]);
    }
#else
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < NR; r++) part[i][r] = 0.0f;
#endif
    __m256 acc[4][8];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) acc[i][r] = _mm256_setzero_ps();
    for (; kb < j->nb; kb++) {
        __m256i u[8], w[8];
        float dw[8], mw[8];
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) QK_N(qk_unpack_)(fmt, wr[r] + kb * stride, &u[r], &w[r], &dw[r], &mw[r]);
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(xq[i] + kb * 32));
            const float dx = xd[i][kb];
            const __m256 DX = _mm256_set1_ps(dx);
            const __m256i init = off ? _mm256_setr_epi32(-off * xs[i][kb], 0, 0, 0, 0, 0, 0, 0) : _mm256_setzero_si256();
            const __m256 SX = hasmin ? _mm256_setr_ps(dx * (float)xs[i][kb], 0, 0, 0, 0, 0, 0, 0) : _mm256_setzero_ps();
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) {
                const __m256i dot = QK_N(qk_dot_)(fmt, init, u[r], w[r], x);
                acc[i][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(_mm256_set1_ps(dw[r]), DX), acc[i][r]);
                if (hasmin) acc[i][r] = _mm256_fmadd_ps(_mm256_set1_ps(mw[r]), SX, acc[i][r]);
            }
        }
    }
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < NR; r++)
            if (n0 + r < n1) qk_store(j, m0 + i, n0 + r, part[i][r] + QK_N(qk_hsum_)(acc[i][r]));
}

QK_INL void QK_N(qk_compute_fmt_)(const qk_job *j, const int fmt, long n0, long n1) {
    /* the minimum term needs 2·NR more live vectors: fewer x rows per tile */
    const int MR = qk_has_min(fmt) ? QK_MR_MIN : QK_MR;
    const long mc = qk_mchunk(j->xrow, MR);
    for (long mb = 0; mb < j->M; mb += mc) {
        const long me = mb + mc < j->M ? mb + mc : j->M;
        for (long n = n0; n < n1; n += QK_NR) {
            long m = mb;
            for (; m + MR <= me; m += MR) QK_N(qk_tile_)(j, fmt, MR, QK_NR, m, n, n1);
            for (long nn = n; m < me && nn < n + QK_NR && nn < n1; nn += QK_NR1)
                for (long mm = m; mm < me; mm++) {
                    const long e = nn + QK_NR1 < n + QK_NR ? nn + QK_NR1 : n + QK_NR;
                    QK_N(qk_tile_)(j, fmt, 1, QK_NR1, mm, nn, e < n1 ? e : n1);
                }
        }
    }
}

/* ---- F16 / BF16: W converted to fp32, fp32 FMA, x not quantized ---- */
#ifdef __AVX512F__
#define QK_VL 16
typedef __m512 qk_vf;
#define qk_vf_zero _mm512_setzero_ps
#define qk_vf_load _mm512_loadu_ps
#define qk_vf_fmadd _mm512_fmadd_ps
#define qk_vf_hsum _mm512_reduce_add_ps
#define qk_vf_f16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define qk_vf_bf16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#else
#define QK_VL 8
typedef __m256 qk_vf;
#define qk_vf_zero _mm256_setzero_ps
#define qk_vf_load _mm256_loadu_ps
#define qk_vf_fmadd _mm256_fmadd_ps
#define qk_vf_hsum QK_N(qk_hsum_)
#define qk_vf_f16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define qk_vf_bf16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#endif

QK_INL void QK_N(qk_htile_)(const qk_job *j, const int fmt, const int MR, const int NR, long m0, long n0, long n1) {
    const uint16_t *wr[8];
    const float *xr[8];
    for (int r = 0; r < NR; r++) wr[r] = (const uint16_t *)(j->W + (n0 + r < n1 ? n0 + r : n1 - 1) * j->rowb);
    for (int i = 0; i < MR; i++) xr[i] = j->x + (m0 + i) * j->K;
    qk_vf acc[8][8];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) acc[i][r] = qk_vf_zero();
    const long K = j->K, kv = K / QK_VL * QK_VL;
    for (long k = 0; k < kv; k += QK_VL) {
        qk_vf wv[8];
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) wv[r] = fmt == CK_QTYPE_F16 ? qk_vf_f16(wr[r] + k) : qk_vf_bf16(wr[r] + k);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const qk_vf xv = qk_vf_load(xr[i] + k);
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) acc[i][r] = qk_vf_fmadd(xv, wv[r], acc[i][r]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < NR; r++) {
            float s = qk_vf_hsum(acc[i][r]);
            for (long k = kv; k < K; k++)
                s += xr[i][k] * (fmt == CK_QTYPE_F16 ? _cvtsh_ss(wr[r][k]) : ck_bf16_to_fp32(wr[r][k]));
            if (n0 + r < n1) qk_store(j, m0 + i, n0 + r, s);
        }
}

QK_INL void QK_N(qk_hcompute_fmt_)(const qk_job *j, const int fmt, long n0, long n1) {
    const long mc = qk_mchunk((size_t)j->K * 4, QK_HMR);
    for (long mb = 0; mb < j->M; mb += mc) {
        const long me = mb + mc < j->M ? mb + mc : j->M;
        for (long n = n0; n < n1; n += QK_HNR) {
            long m = mb;
            for (; m + QK_HMR <= me; m += QK_HMR) QK_N(qk_htile_)(j, fmt, QK_HMR, QK_HNR, m, n, n1);
            for (; m < me; m++) QK_N(qk_htile_)(j, fmt, 1, QK_HNR, m, n, n1);
        }
    }
}

/* ---- R8 packed layout (ckernels.h): one vector = 16 bytes of each of RPV rows ----
 * (zmm: 4 rows, ymm: 2 rows). The activation block's 16-byte halves are
 * broadcast to every 128-bit lane, two dot steps (q[0:16], q[16:32]) chain in
 * the int32 lanes, then one float step serves the vector's rows: lane group of
 * row r holds dw_r (spread from the 8 scales of the R8 block). */
#ifdef __AVX512F__
#define R8_RPV 4
typedef __m512i qk_r8i;
typedef __m512 qk_r8f;
#define r8_load(p) _mm512_loadu_si512((const void *)(p))
#define r8_bcast16(p) _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(p)))
#define r8_nib_lo(v) _mm512_and_si512(v, _mm512_set1_epi8(15))
#define r8_nib_hi(v) _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(15))
#define r8_xor80(v) _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80))
#define r8_abs(v) _mm512_abs_epi8(v)
#define r8_dot QK_N(qk_dot2_)
#define r8_cvt _mm512_cvtepi32_ps
#define r8_fmadd _mm512_fmadd_ps
#define r8_mul _mm512_mul_ps
#define r8_set1f _mm512_set1_ps
#define r8_zerof _mm512_setzero_ps
#define r8_zeroi _mm512_setzero_si512
#define r8_lane0i(c) _mm512_maskz_set1_epi32(0x1111, c)
#define r8_spread(d8, v) _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_set1_epi32(4 * (v))), _mm512_castps256_ps512(d8))
#define r8_spread0(d8, v) _mm512_maskz_permutexvar_ps(0x1111, _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_set1_epi32(4 * (v))), _mm512_castps256_ps512(d8))
#define r8_store _mm512_storeu_ps
/* Q5 high bits of the 4 rows of vector v (qh: 8 uint32 of the R8 block): +16 where set */
#define r8_qh(lo, hi, qh, v)                                                                       \
    do {                                                                                           \
        const __m128i h4 = _mm_loadu_si128((const __m128i *)((qh) + 16 * (v)));                    \
        const __m128i t = _mm_shuffle_epi8(h4, _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15)); \
        lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64((uint64_t)_mm_cvtsi128_si64(t)), lo, _mm512_set1_epi8(16)); \
        hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64((uint64_t)_mm_extract_epi64(t, 1)), hi, _mm512_set1_epi8(16)); \
    } while (0)
#else
#define R8_RPV 2
typedef __m256i qk_r8i;
typedef __m256 qk_r8f;
#define r8_load(p) _mm256_loadu_si256((const __m256i *)(p))
#define r8_bcast16(p) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p)))
#define r8_nib_lo(v) _mm256_and_si256(v, _mm256_set1_epi8(15))
#define r8_nib_hi(v) _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15))
#define r8_xor80(v) _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80))
#define r8_abs(v) _mm256_abs_epi8(v)
#define r8_dot QK_N(qk_dot_)
#define r8_cvt _mm256_cvtepi32_ps
#define r8_fmadd _mm256_fmadd_ps
#define r8_mul _mm256_mul_ps
#define r8_set1f _mm256_set1_ps
#define r8_zerof _mm256_setzero_ps
#define r8_zeroi _mm256_setzero_si256
#define r8_lane0i(c) _mm256_setr_epi32(c, 0, 0, 0, c, 0, 0, 0)
#define r8_spread(d8, v) _mm256_permutevar8x32_ps(d8, _mm256_add_epi32(_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_set1_epi32(2 * (v))))
#define r8_spread0(d8, v) _mm256_blend_ps(_mm256_setzero_ps(), r8_spread(d8, v), 0x11)
#define r8_store _mm256_storeu_ps
#define r8_qh(lo, hi, qh, v)                                                                       \
    do {                                                                                           \
        uint32_t a_, b_;                                                                           \
        memcpy(&a_, (qh) + 8 * (v), 4);                                                            \
        memcpy(&b_, (qh) + 8 * (v) + 4, 4);                                                        \
        const uint32_t l_ = (a_ & 0xffff) | (b_ << 16), h_ = (a_ >> 16) | (b_ & 0xffff0000u);      \
        lo = _mm256_or_si256(lo, _mm256_and_si256(QK_N(qk_bits32_)((const uint8_t *)&l_), _mm256_set1_epi8(16))); \
        hi = _mm256_or_si256(hi, _mm256_and_si256(QK_N(qk_bits32_)((const uint8_t *)&h_), _mm256_set1_epi8(16))); \
    } while (0)
#endif
#define R8_NV (CK_QPACK_ROWS / R8_RPV)   /* vectors per 8 rows */
#define R8_LANES (4 * R8_RPV)

/* y[m0 : m0+MR, rows of group g below n1] over all K */
QK_INL void QK_N(qk_r8_tile_)(const qk_job *j, const int fmt, const int MR, long m0, long g, long n1) {
    const int hasmin = qk_has_min(fmt);
    const int off = fmt == CK_QTYPE_Q8_0 ? (QK_VNNI ? 128 : 0) : qk_offset(fmt);
    const long qoff = qk_r8_qoff(fmt), half = qk_r8_half(fmt);
    const int8_t *xq[8];
    const float *xd[8];
    const int32_t *xs[8];
    for (int i = 0; i < MR; i++) {
        xq[i] = qk_xqs(j, m0 + i);
        xd[i] = qk_xd(j, m0 + i);
        xs[i] = qk_xs(j, m0 + i);
    }
    qk_r8f acc[8][R8_NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < R8_NV; v++) acc[i][v] = r8_zerof();
    for (long kb = 0; kb < j->nb; kb++) {
        const uint8_t *rb = qk_r8_block(j, g, kb);
        const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)rb));
        const __m256 m8 = hasmin ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rb + qk_r8_moff()))) : _mm256_setzero_ps();
        qk_r8i lo[R8_NV], hi[R8_NV], wlo[R8_NV], whi[R8_NV];
        qk_r8f DW[R8_NV], MW[R8_NV];
#pragma GCC unroll 4
        for (int v = 0; v < R8_NV; v++) {
            const int row0 = v * R8_RPV;
            const uint8_t *q = rb + qoff + (row0 / 4) * half + (row0 % 4) * 16;
            if (fmt == CK_QTYPE_Q8_0) {
                wlo[v] = r8_load(q);
                whi[v] = r8_load(q + 64);
#if QK_VNNI
                lo[v] = r8_xor80(wlo[v]);
                hi[v] = r8_xor80(whi[v]);
#else
                lo[v] = r8_abs(wlo[v]);
                hi[v] = r8_abs(whi[v]);
#endif
            } else {
                const qk_r8i raw = r8_load(q);
                lo[v] = r8_nib_lo(raw);
                hi[v] = r8_nib_hi(raw);
                if (qk_has_qh(fmt)) r8_qh(lo[v], hi[v], rb + qk_r8_hoff(fmt), v);
                wlo[v] = whi[v] = lo[v];   /* unused */
            }
            DW[v] = r8_spread(d8, v);
            if (hasmin) MW[v] = r8_spread0(m8, v);
        }
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const qk_r8i xlo = r8_bcast16(xq[i] + kb * 32), xhi = r8_bcast16(xq[i] + kb * 32 + 16);
            const float dx = xd[i][kb];
            const qk_r8f DX = r8_set1f(dx);
            const qk_r8i init = off ? r8_lane0i(-off * xs[i][kb]) : r8_zeroi();
            const qk_r8f SX = r8_set1f(hasmin ? dx * (float)xs[i][kb] : 0.0f);
#pragma GCC unroll 4
            for (int v = 0; v < R8_NV; v++) {
                qk_r8i dot = r8_dot(fmt, init, lo[v], wlo[v], xlo);
                dot = r8_dot(fmt, dot, hi[v], whi[v], xhi);
                acc[i][v] = r8_fmadd(r8_cvt(dot), r8_mul(DW[v], DX), acc[i][v]);
                if (hasmin) acc[i][v] = r8_fmadd(MW[v], SX, acc[i][v]);
            }
        }
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < R8_NV; v++) {
            float t[R8_LANES];
            r8_store(t, acc[i][v]);
            for (int rr = 0; rr < R8_RPV; rr++) {
                const long n = g * CK_QPACK_ROWS + v * R8_RPV + rr;
                if (n < n1) qk_store(j, m0 + i, n, (t[4 * rr] + t[4 * rr + 1]) + (t[4 * rr + 2] + t[4 * rr + 3]));
            }
        }
}

QK_INL void QK_N(qk_r8_compute_fmt_)(const qk_job *j, const int fmt, long n0, long n1) {
    const long mc = qk_mchunk(j->xrow, QK_R8_MR);
    for (long mb = 0; mb < j->M; mb += mc) {
        const long me = mb + mc < j->M ? mb + mc : j->M;
        for (long g = n0 / CK_QPACK_ROWS; g * CK_QPACK_ROWS < n1; g++) {
            long m = mb;
            for (; m + QK_R8_MR <= me; m += QK_R8_MR) QK_N(qk_r8_tile_)(j, fmt, QK_R8_MR, m, g, n1);
            for (; m < me; m++) QK_N(qk_r8_tile_)(j, fmt, 1, m, g, n1);
        }
    }
}

#undef R8_RPV
#undef r8_load
#undef r8_bcast16
#undef r8_nib_lo
#undef r8_nib_hi
#undef r8_xor80
#undef r8_abs
#undef r8_dot
#undef r8_cvt
#undef r8_fmadd
#undef r8_mul
#undef r8_set1f
#undef r8_zerof
#undef r8_zeroi
#undef r8_lane0i
#undef r8_spread
#undef r8_spread0
#undef r8_store
#undef r8_qh
#undef R8_NV
#undef R8_LANES

static QK_ATTR void QK_N(qk_compute_)(const qk_job *j, long n0, long n1) {
    if (j->packed) {
        switch (j->fmt) {
        case CK_QTYPE_Q8_0: QK_N(qk_r8_compute_fmt_)(j, CK_QTYPE_Q8_0, n0, n1); break;
        case CK_QTYPE_Q4_0: QK_N(qk_r8_compute_fmt_)(j, CK_QTYPE_Q4_0, n0, n1); break;
        case CK_QTYPE_Q4_1: QK_N(qk_r8_compute_fmt_)(j, CK_QTYPE_Q4_1, n0, n1); break;
        case CK_QTYPE_Q5_0: QK_N(qk_r8_compute_fmt_)(j, CK_QTYPE_Q5_0, n0, n1); break;
        case CK_QTYPE_Q5_1: QK_N(qk_r8_compute_fmt_)(j, CK_QTYPE_Q5_1, n0, n1); break;
        }
        return;
    }
    switch (j->fmt) {
    case CK_QTYPE_Q8_0: QK_N(qk_compute_fmt_)(j, CK_QTYPE_Q8_0, n0, n1); break;
    case CK_QTYPE_Q4_0: QK_N(qk_compute_fmt_)(j, CK_QTYPE_Q4_0, n0, n1); break;
    case CK_QTYPE_Q4_1: QK_N(qk_compute_fmt_)(j, CK_QTYPE_Q4_1, n0, n1); break;
    case CK_QTYPE_Q5_0: QK_N(qk_compute_fmt_)(j, CK_QTYPE_Q5_0, n0, n1); break;
    case CK_QTYPE_Q5_1: QK_N(qk_compute_fmt_)(j, CK_QTYPE_Q5_1, n0, n1); break;
    case CK_QTYPE_F16: QK_N(qk_hcompute_fmt_)(j, CK_QTYPE_F16, n0, n1); break;
    case CK_QTYPE_BF16: QK_N(qk_hcompute_fmt_)(j, CK_QTYPE_BF16, n0, n1); break;
    }
}

#undef qk_vf_zero
#undef qk_vf_load
#undef qk_vf_fmadd
#undef qk_vf_hsum
#undef qk_vf_f16
#undef qk_vf_bf16
#undef QK_VL

#ifndef QK_SIMD_ONCE
#define QK_SIMD_ONCE
/* One x row -> 8-bit blocks (layout in quant_common.h), the same bits as
 * qk_quant_row_scalar: d = amax/127 and 1/d in scalar fp32, x·(1/d) rounded to
 * nearest even by vcvtps2dq (default rounding mode). */
static void qk_quant_row_simd(const float *x, long K, uint8_t *dst) {
    int8_t *qs = (int8_t *)dst;
    float *dd = (float *)(dst + K);
    int32_t *ss = (int32_t *)(dst + K + 4 * (K / 32));
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (long b = 0; b < K / 32; b++) {
        const float *xb = x + b * 32;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signbit, v0), _mm256_andnot_ps(signbit, v1)),
                                  _mm256_max_ps(_mm256_andnot_ps(signbit, v2), _mm256_andnot_ps(signbit, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m256 ID = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, ID)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, ID));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, ID)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, ID));
        const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
        i0 = _mm256_max_epi32(_mm256_min_epi32(i0, lim), nlim);
        i1 = _mm256_max_epi32(_mm256_min_epi32(i1, lim), nlim);
        i2 = _mm256_max_epi32(_mm256_min_epi32(i2, lim), nlim);
        i3 = _mm256_max_epi32(_mm256_min_epi32(i3, lim), nlim);
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        /* packs work within 128-bit lanes: restore the order with one cross-lane permute */
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(qs + b * 32),
                            _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        dd[b] = d;
        ss[b] = _mm_cvtsi128_si32(s4);
    }
}
#endif
