/* GEMM / GEMV, AVX-512 variant: 12x32 register tile (24 zmm accumulators,
 * FMA with broadcast A), packed operands, blocked driver in gemm_driver.h. */
#include <immintrin.h>

#include "gemm_internal.h"

#define CKG_MR 12
#define CKG_NR 32
#define CKG_SFX avx512

#define CKG_INLINE static inline __attribute__((always_inline))

/* c[mr, :nr] (+)= a-panel[kc][12] · b-panel[kc][32] (+ bias[:nr]), for mr <= 12 rows
 * (a compile-time constant after inlining) and nr <= 32 columns (store masks). */
CKG_INLINE void ckg_ukr_t(const int mr, long kc, const float *restrict a, const float *restrict b, long ldb,
                          float *restrict c, long ldc, int load_c, const float *restrict bias,
                          __mmask16 m0, __mmask16 m1) {
    __m512 acc[CKG_MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        /* the C tile is written (maybe read) after the k loop: fetch it for writing now */
        __builtin_prefetch(c + i * ldc, 1, 3);
        __builtin_prefetch(c + i * ldc + 16, 1, 3);
    }
#pragma GCC unroll 4
    for (long k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        _mm_prefetch((const char *)(b + 8 * ldb), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 8 * ldb + 16), _MM_HINT_T0);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += CKG_MR;
        b += ldb;
    }
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, bias);
        bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        __m512 v0 = _mm512_add_ps(acc[i][0], bias0), v1 = _mm512_add_ps(acc[i][1], bias1);
        if (load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

/* full 12 x 32 tile; b rows ldb floats apart (NR packed per call, CKG_PW prepacked) */
static void ckg_ukr(long kc, const float *restrict a, const float *restrict b, long ldb, float *restrict c, long ldc,
                    int load_c, const float *restrict bias) {
    ckg_ukr_t(CKG_MR, kc, a, b, ldb, c, ldc, load_c, bias, 0xFFFF, 0xFFFF);
}

/* edge tile: mr < 12 rows and/or nr < 32 columns, written in place (no buffer) */
#define CKG_HAVE_EDGE_UKR 1
static void ckg_ukr_edge(long kc, const float *a, const float *b, long ldb, float *c, long ldc, long mr, long nr,
                         int load_c, const float *bias) {
    const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1);
    const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr <= 16 ? 0u : (1u << (nr - 16)) - 1);
    switch (mr) {
#define CKG_CASE(R) case R: ckg_ukr_t(R, kc, a, b, ldb, c, ldc, load_c, bias, m0, m1); break;
        CKG_CASE(1) CKG_CASE(2) CKG_CASE(3) CKG_CASE(4) CKG_CASE(5) CKG_CASE(6)
        CKG_CASE(7) CKG_CASE(8) CKG_CASE(9) CKG_CASE(10) CKG_CASE(11)
        default: ckg_ukr_t(CKG_MR, kc, a, b, ldb, c, ldc, load_c, bias, m0, m1); break;
#undef CKG_CASE
    }
}

/* Few rows against prepacked W (decode): y[i][32p + j] (+)= x[i] · Wp[p][:, j] (+ bias), i < R,
 * p < NP panels side by side (NP independent weight streams keep enough loads in
 * flight for a memory-bound GEMV), j < ncols - 32p. Whole K in one pass. */
CKG_INLINE void ckg_pgemv_t(const int R, const int NP, long K, const float *restrict x, long ldx,
                            const float *restrict wp, long ldq, float *restrict y, long ldy, long ncols,
                            int load_c, const float *restrict bias) {
    __m512 acc[4][4][2];
    for (int i = 0; i < R; i++)
        for (int p = 0; p < NP; p++) acc[i][p][0] = acc[i][p][1] = _mm512_setzero_ps();
    for (long k = 0; k < K; k++) {
        __m512 w[4][2];
        for (int p = 0; p < NP; p++) {
            w[p][0] = _mm512_load_ps(wp + p * ldq + k * CKG_PW);
            w[p][1] = _mm512_load_ps(wp + p * ldq + k * CKG_PW + 16);
        }
        for (int i = 0; i < R; i++) {
            const __m512 xi = _mm512_set1_ps(x[i * ldx + k]);
            for (int p = 0; p < NP; p++) {
                acc[i][p][0] = _mm512_fmadd_ps(xi, w[p][0], acc[i][p][0]);
                acc[i][p][1] = _mm512_fmadd_ps(xi, w[p][1], acc[i][p][1]);
            }
        }
    }
    for (int p = 0; p < NP; p++)
        for (int h = 0; h < 2; h++) {
            const long c0 = 32L * p + 16L * h, left = ncols - c0;
            if (left <= 0) continue;
            const __mmask16 m = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
            const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + c0) : _mm512_setzero_ps();
            for (int i = 0; i < R; i++) {
                float *yi = y + i * ldy + c0;
                __m512 v = _mm512_add_ps(acc[i][p][h], bv);
                if (load_c) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, yi));
                _mm512_mask_storeu_ps(yi, m, v);
            }
        }
}

#define CKG_HAVE_PGEMV 1
#define CKG_PGEMV_MAX_ROWS 4
/* rows mr <= 4 of x against the prepacked panels holding columns [n0, n1) (n0 a multiple of 32) */
static void ckg_pgemv(long mr, long K, const float *x, long ldx, const float *Wp, long n0, long n1,
                      float *y, long ldy, int load_c, const float *bias) {
    const long ldq = K * CKG_PW;
    for (long n = n0; n < n1;) {
        const float *wp = Wp + (n / CKG_PW) * ldq;
        const long left = n1 - n;
        const float *bn = bias ? bias + n : NULL;
        float *yn = y + n;
        /* a group reads only panels holding columns < n1: the last chunk's last
         * panel is the end of Wp, so one more would read past the weight */
        if (mr <= 2 && left > 96) {   /* 4 panels: 8 (R=1) or 16 (R=2) accumulators */
            if (mr == 1) ckg_pgemv_t(1, 4, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn);
            else ckg_pgemv_t(2, 4, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn);
            n += 4 * CKG_PW;
        } else if (mr <= 2 && left > 64) {   /* exactly 3 panels left */
            if (mr == 1) ckg_pgemv_t(1, 3, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn);
            else ckg_pgemv_t(2, 3, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn);
            n += 3 * CKG_PW;
        } else if (left > 32) {       /* 2 panels: up to 16 accumulators */
            switch (mr) {
            case 1: ckg_pgemv_t(1, 2, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            case 2: ckg_pgemv_t(2, 2, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            case 3: ckg_pgemv_t(3, 2, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            default: ckg_pgemv_t(4, 2, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            }
            n += 2 * CKG_PW;
        } else {
            switch (mr) {
            case 1: ckg_pgemv_t(1, 1, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            case 2: ckg_pgemv_t(2, 1, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            case 3: ckg_pgemv_t(3, 1, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            default: ckg_pgemv_t(4, 1, K, x, ldx, wp, ldq, yn, ldy, left, load_c, bn); break;
            }
            n += CKG_PW;
        }
    }
}

/* In-register transpose of 16 rows of 16 floats. */
CKG_INLINE void ckg_tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        const __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    /* r[4g + c], 128-bit lane L, holds rows 4g..4g+3 of column 4L + c */
    __m512 o[16];
    for (int c = 0; c < 4; c++) {
        const __m512 s0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        const __m512 s1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        const __m512 s2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        const __m512 s3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        o[c + 0] = _mm512_shuffle_f32x4(s0, s2, 0x88);
        o[c + 8] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
        o[c + 4] = _mm512_shuffle_f32x4(s1, s3, 0x88);
        o[c + 12] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = o[i];
}

/* A micro-panel from row-major rows: dst[k*12 + i] = src[i*ld + k] for i < mr (zero for
 * mr <= i < 12), k < kc: 16 k at a time, in-register transpose, 12-lane masked stores */
#define CKG_HAVE_PACK_A_ROWS 1
static void ckg_pack_a_rows(const float *src, long ld, long mr, long kc, float *restrict dst) {
    for (long k = 0; k < kc; k += 16) {
        const long kr = kc - k < 16 ? kc - k : 16;
        const __mmask16 m = (__mmask16)(kr == 16 ? 0xFFFFu : ((1u << kr) - 1));
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_maskz_loadu_ps(m, src + i * ld + k) : _mm512_setzero_ps();
        ckg_tr16(r);
        for (long kk = 0; kk < kr; kk++) _mm512_mask_storeu_ps(dst + (k + kk) * CKG_MR, 0x0FFF, r[kk]);
    }
}

/* dst[k*32 + j] = src[j*ld + k] for j < nr (zero for nr <= j < 32), k < kc */
static void ckg_pack_b_kmajor(const float *src, long ld, long kc, long nr, float *restrict dst) {
    for (int h = 0; h < 2; h++) {
        const long j0 = 16 * h;
        long nrow = nr - j0;
        if (nrow < 0) nrow = 0;
        if (nrow > 16) nrow = 16;
        for (long k = 0; k < kc; k += 16) {
            const long kr = kc - k < 16 ? kc - k : 16;
            const __mmask16 m = (__mmask16)(kr == 16 ? 0xFFFFu : ((1u << kr) - 1));
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nrow ? _mm512_maskz_loadu_ps(m, src + (j0 + i) * ld + k) : _mm512_setzero_ps();
            ckg_tr16(r);
            for (long kk = 0; kk < kr; kk++) _mm512_store_ps(dst + (k + kk) * CKG_NR + j0, r[kk]);
        }
    }
}

/* out[i][q] = x[i] · w[q] over K, for i < R rows of x and q < NW rows of W */
CKG_INLINE void ckg_dot_tile(const int R, const int NW, const float *x, long ldx, const float *w, long K,
                             float out[4][4]) {
    __m512 acc[4][4];
    for (int i = 0; i < R; i++)
        for (int q = 0; q < NW; q++) acc[i][q] = _mm512_setzero_ps();
    long k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 wv[4];
        for (int q = 0; q < NW; q++) wv[q] = _mm512_loadu_ps(w + q * K + k);
        for (int i = 0; i < R; i++) {
            const __m512 xv = _mm512_loadu_ps(x + i * ldx + k);
            for (int q = 0; q < NW; q++) acc[i][q] = _mm512_fmadd_ps(xv, wv[q], acc[i][q]);
        }
    }
    if (k < K) {
        const __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 wv[4];
        for (int q = 0; q < NW; q++) wv[q] = _mm512_maskz_loadu_ps(m, w + q * K + k);
        for (int i = 0; i < R; i++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + i * ldx + k);
            for (int q = 0; q < NW; q++) acc[i][q] = _mm512_fmadd_ps(xv, wv[q], acc[i][q]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int q = 0; q < NW; q++) out[i][q] = _mm512_reduce_add_ps(acc[i][q]);
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
