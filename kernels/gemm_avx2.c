/* GEMM / GEMV, AVX2 + FMA variant: 6x16 register tile (12 ymm accumulators,
 * FMA with broadcast A), packed operands, blocked driver in gemm_driver.h. */
#include <immintrin.h>

#include "gemm_internal.h"

#define CKG_MR 6
#define CKG_NR 16
#define CKG_SFX avx2

#define CKG_INLINE static inline __attribute__((always_inline))

/* c[6,16] (+)= a-panel[kc][6] · b-panel[kc][16] (+ bias[16]); b rows ldb floats apart
 * (NR packed per call, CKG_PW prepacked) */
static void ckg_ukr(long kc, const float *restrict a, const float *restrict b, long ldb, float *restrict c, long ldc,
                    int load_c, const float *restrict bias) {
    __m256 acc[CKG_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < CKG_MR; i++) {
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);   /* read after the k loop */
    }
    for (long k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        _mm_prefetch((const char *)(b + 8 * ldb), _MM_HINT_T0);
#pragma GCC unroll 6
        for (int i = 0; i < CKG_MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += CKG_MR;
        b += ldb;
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

CKG_INLINE __m256i ckg_mask8(long n);

/* Few rows against prepacked W (decode): y[i][32p + j] (+)= x[i] · Wp[p][:, j] (+ bias), i < R,
 * p < NP panels side by side (independent weight streams for a memory-bound GEMV),
 * j < ncols - 32p. Whole K in one pass; R * NP * 4 accumulators. */
CKG_INLINE void ckg_pgemv_t(const int R, const int NP, long K, const float *restrict x, long ldx,
                            const float *restrict wp, long ldq, float *restrict y, long ldy, long ncols,
                            int load_c, const float *restrict bias) {
    __m256 acc[3][2][4];
    for (int i = 0; i < R; i++)
        for (int p = 0; p < NP; p++)
            for (int h = 0; h < 4; h++) acc[i][p][h] = _mm256_setzero_ps();
    for (long k = 0; k < K; k++) {
        __m256 xi[3];
        for (int i = 0; i < R; i++) xi[i] = _mm256_broadcast_ss(x + i * ldx + k);
        for (int p = 0; p < NP; p++)
            for (int h = 0; h < 4; h++) {
                const __m256 w = _mm256_load_ps(wp + p * ldq + k * CKG_PW + 8 * h);
                for (int i = 0; i < R; i++) acc[i][p][h] = _mm256_fmadd_ps(xi[i], w, acc[i][p][h]);
            }
    }
    for (int p = 0; p < NP; p++)
        for (int h = 0; h < 4; h++) {
            const long c0 = 32L * p + 8L * h, left = ncols - c0;
            if (left <= 0) continue;
            const __m256i m = ckg_mask8(left >= 8 ? 8 : left);
            const __m256 bv = bias ? _mm256_maskload_ps(bias + c0, m) : _mm256_setzero_ps();
            for (int i = 0; i < R; i++) {
                float *yi = y + i * ldy + c0;
                __m256 v = _mm256_add_ps(acc[i][p][h], bv);
                if (load_c) v = _mm256_add_ps(v, _mm256_maskload_ps(yi, m));
                _mm256_maskstore_ps(yi, m, v);
            }
        }
}

#define CKG_HAVE_PGEMV 1
#define CKG_PGEMV_MAX_ROWS 3
/* rows mr <= 3 of x against the prepacked panels holding columns [n0, n1) (n0 a multiple of 32) */
static void ckg_pgemv(long mr, long K, const float *x, long ldx, const float *Wp, long n0, long n1,
                      float *y, long ldy, int load_c, const float *bias) {
    const long ldq = K * CKG_PW;
    for (long n = n0; n < n1;) {
        const float *wp = Wp + (n / CKG_PW) * ldq;
        const long left = n1 - n;
        const float *bn = bias ? bias + n : NULL;
        float *yn = y + n;
        if (mr == 1 && left > 32) {   /* 2 panels: 8 accumulators */
            ckg_pgemv_t(1, 2, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn);
            n += 2 * CKG_PW;
            continue;
        }
        switch (mr) {
        case 1: ckg_pgemv_t(1, 1, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
        case 2: ckg_pgemv_t(2, 1, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
        default: ckg_pgemv_t(3, 1, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
        }
        n += CKG_PW;
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

/* A micro-panel from row-major rows: dst[k*6 + i] = src[i*ld + k] for i < mr (zero for
 * mr <= i < 6), k < kc: 8 k at a time, in-register transpose, 6-lane masked stores */
#define CKG_HAVE_PACK_A_ROWS 1
static void ckg_pack_a_rows(const float *src, long ld, long mr, long kc, float *restrict dst) {
    const __m256i m6 = ckg_mask8(CKG_MR);
    for (long k = 0; k < kc; k += 8) {
        const long kr = kc - k < 8 ? kc - k : 8;
        __m256 r[8];
        if (kr == 8) {
            for (int i = 0; i < 8; i++) r[i] = i < mr ? _mm256_loadu_ps(src + i * ld + k) : _mm256_setzero_ps();
        } else {
            const __m256i m = ckg_mask8(kr);
            for (int i = 0; i < 8; i++) r[i] = i < mr ? _mm256_maskload_ps(src + i * ld + k, m) : _mm256_setzero_ps();
        }
        ckg_tr8(r);
        for (long kk = 0; kk < kr; kk++) _mm256_maskstore_ps(dst + (k + kk) * CKG_MR, m6, r[kk]);
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
