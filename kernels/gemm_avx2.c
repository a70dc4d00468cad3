/* GEMM / GEMV, AVX2 + FMA variant: 6x16 register tile (12 ymm accumulators,
 * FMA with broadcast A), packed operands, blocked driver in gemm_driver.h. */
#include <immintrin.h>

#define CKG_MR 6
#define CKG_NR 16
#define CKG_SFX avx2

#define CKG_INLINE static inline __attribute__((always_inline))

/* c[6,16] (+)= a-panel[kc][6] · b-panel[kc][16] (+ bias[16]) */
static void ckg_ukr(long kc, const float *restrict a, const float *restrict b, float *restrict c, long ldc,
                    int load_c, const float *restrict bias) {
    __m256 acc[CKG_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < CKG_MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (long k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        _mm_prefetch((const char *)(b + 8 * CKG_NR), _MM_HINT_T0);
#pragma GCC unroll 6
        for (int i = 0; i < CKG_MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += CKG_MR;
        b += CKG_NR;
    }
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (bias) {
        bias0 = _mm256_loadu_ps(bias);
        bias1 = _mm256_loadu_ps(bias + 8);
    }
#pragma GCC unroll 6
    for (int i = 0; i < CKG_MR; i++) {
        float *ci = c + i * ldc;
        __m256 v0 = _mm256_add_ps(acc[i][0], bias0), v1 = _mm256_add_ps(acc[i][1], bias1);
        if (load_c) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, v0);
        _mm256_storeu_ps(ci + 8, v1);
    }
}

/* In-register transpose of 8 rows of 8 floats. */
CKG_INLINE void ckg_tr8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        s[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
    }
}

CKG_INLINE __m256i ckg_mask8(long n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

/* dst[k*16 + j] = src[j*ld + k] for j < nr (zero for nr <= j < 16), k < kc */
static void ckg_pack_b_kmajor(const float *src, long ld, long kc, long nr, float *restrict dst) {
    for (int h = 0; h < 2; h++) {
        const long j0 = 8 * h;
        long nrow = nr - j0;
        if (nrow < 0) nrow = 0;
        if (nrow > 8) nrow = 8;
        for (long k = 0; k < kc; k += 8) {
            const long kr = kc - k < 8 ? kc - k : 8;
            __m256 r[8];
            if (kr == 8) {
                for (int i = 0; i < 8; i++)
                    r[i] = i < nrow ? _mm256_loadu_ps(src + (j0 + i) * ld + k) : _mm256_setzero_ps();
            } else {
                const __m256i m = ckg_mask8(kr);
                for (int i = 0; i < 8; i++)
                    r[i] = i < nrow ? _mm256_maskload_ps(src + (j0 + i) * ld + k, m) : _mm256_setzero_ps();
            }
            ckg_tr8(r);
            for (long kk = 0; kk < kr; kk++) _mm256_store_ps(dst + (k + kk) * CKG_NR + j0, r[kk]);
        }
    }
}

CKG_INLINE float ckg_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* out[i][q] = x[i] · w[q] over K, for i < R rows of x and q < NW rows of W */
CKG_INLINE void ckg_dot_tile(const int R, const int NW, const float *x, long ldx, const float *w, long K,
                             float out[4][4]) {
    __m256 acc[4][4];
    for (int i = 0; i < R; i++)
        for (int q = 0; q < NW; q++) acc[i][q] = _mm256_setzero_ps();
    long k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[4];
        for (int q = 0; q < NW; q++) wv[q] = _mm256_loadu_ps(w + q * K + k);
        for (int i = 0; i < R; i++) {
            const __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
            for (int q = 0; q < NW; q++) acc[i][q] = _mm256_fmadd_ps(xv, wv[q], acc[i][q]);
        }
    }
    if (k < K) {
        const __m256i m = ckg_mask8(K - k);
        __m256 wv[4];
        for (int q = 0; q < NW; q++) wv[q] = _mm256_maskload_ps(w + q * K + k, m);
        for (int i = 0; i < R; i++) {
            const __m256 xv = _mm256_maskload_ps(x + i * ldx + k, m);
            for (int q = 0; q < NW; q++) acc[i][q] = _mm256_fmadd_ps(xv, wv[q], acc[i][q]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int q = 0; q < NW; q++) out[i][q] = ckg_hsum8(acc[i][q]);
}

#define CKG_DOT_CASES(NW)                                                     \
    switch (mr) {                                                             \
    case 1: ckg_dot_tile(1, NW, x, ldx, W + n * K, K, out); break;            \
    case 2: ckg_dot_tile(2, NW, x, ldx, W + n * K, K, out); break;            \
    case 3: ckg_dot_tile(3, NW, x, ldx, W + n * K, K, out); break;            \
    default: ckg_dot_tile(4, NW, x, ldx, W + n * K, K, out); break;           \
    }

static void ckg_dot_rows(const float *x, long ldx, int mr, const float *W, long K, long n0, long n1,
                         const float *b, float *y, long ldy, int acc) {
    float out[4][4];
    long n = n0;
    for (; n + 4 <= n1; n += 4) {
        CKG_DOT_CASES(4)
        for (int i = 0; i < mr; i++)
            for (int q = 0; q < 4; q++) {
                float v = out[i][q] + (b ? b[n + q] : 0.0f);
                y[i * ldy + n + q] = acc ? y[i * ldy + n + q] + v : v;
            }
    }
    for (; n < n1; n++) {
        CKG_DOT_CASES(1)
        for (int i = 0; i < mr; i++) {
            float v = out[i][0] + (b ? b[n] : 0.0f);
            y[i * ldy + n] = acc ? y[i * ldy + n] + v : v;
        }
    }
}

#include "gemm_driver.h"
