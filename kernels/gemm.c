/* GEMM / GEMV for Linear, scalar reference (see ckernels.h, section gemm).
 * Plain loops, parallel over output columns; no workspace needed. The SIMD
 * variants (gemm_avx2.c, gemm_avx512.c) share the blocked driver in
 * gemm_driver.h. */
#include <string.h>

#include "ckernels.h"
#include "gemm_internal.h"

size_t ck_gemm_workspace_size(int M, int N, int K, int nth) {
    (void)M; (void)N; (void)K;
    if (nth < 1) nth = 1;
    return CKG_WS_A + (size_t)nth * CKG_WS_B + CKG_ALIGN;
}

/* ---- forward ---- */
typedef struct {
    const float *x, *W, *b;
    float *y;
    int M, N, K, acc;
} fwd_args;

static void fwd_task(void *vp, int ith, int nth) {
    const fwd_args *a = (const fwd_args *)vp;
    long n0, n1;
    ck_split_range(a->N, 1, ith, nth, &n0, &n1);
    for (long m = 0; m < a->M; m++) {
        const float *xr = a->x + m * (long)a->K;
        float *yr = a->y + m * (long)a->N;
        for (long n = n0; n < n1; n++) {
            const float *wr = a->W + n * (long)a->K;
            float s = 0.0f;
            for (long k = 0; k < a->K; k++) s += xr[k] * wr[k];
            if (a->b) s += a->b[n];
            yr[n] = a->acc ? yr[n] + s : s;
        }
    }
}

int ck_gemm_f32_scalar(const float *x, const float *W, const float *b, float *y,
                       int M, int N, int K, int accumulate,
                       void *ws, size_t ws_size, ck_pool *pool, int nth) {
    (void)ws; (void)ws_size;
    if (M <= 0 || N <= 0) return CK_OK;
    fwd_args a = {x, W, b, y, M, N, K, accumulate};
    if (nth > N) nth = N;
    ck_pool_run(pool, nth, fwd_task, &a);
    return CK_OK;
}

void ck_gemv_f32_scalar(const float *x, const float *W, const float *b, float *y,
                        int N, int K, int accumulate, ck_pool *pool, int nth) {
    ck_gemm_f32_scalar(x, W, b, y, 1, N, K, accumulate, NULL, 0, pool, nth);
}

/* ---- prepacked weights ---- */
size_t ck_gemm_packed_size(int N, int K) {
    if (N <= 0 || K <= 0) return 0;
    return (size_t)((N + CKG_PW - 1) / CKG_PW) * CKG_PW * (size_t)K * sizeof(float);
}

typedef struct {
    const float *W;
    float *Wp;
    long N, K;
} pack_args;

static void pack_task(void *vp, int ith, int nth) {
    const pack_args *a = (const pack_args *)vp;
    const long K = a->K, panels = (a->N + CKG_PW - 1) / CKG_PW;
    long q0, q1;
    ck_split_range(panels, 1, ith, nth, &q0, &q1);
    for (long q = q0; q < q1; q++) {
        float *dst = a->Wp + q * K * CKG_PW;
        /* 16 k at a time: each W row segment read is one cache line */
        for (long k0 = 0; k0 < K; k0 += 16) {
            const long k1 = k0 + 16 < K ? k0 + 16 : K;
            for (long jj = 0; jj < CKG_PW; jj++) {
                const long n = q * CKG_PW + jj;
                const float *src = n < a->N ? a->W + n * K : NULL;
                for (long k = k0; k < k1; k++) dst[k * CKG_PW + jj] = src ? src[k] : 0.0f;
            }
        }
    }
}

void ck_gemm_pack_f32(const float *W, int N, int K, float *Wp, ck_pool *pool, int nth) {
    if (N <= 0 || K <= 0) return;
    pack_args a = {W, Wp, N, K};
    const long panels = (N + CKG_PW - 1) / CKG_PW;
    if (nth > panels) nth = (int)panels;
    ck_pool_run(pool, nth < 1 ? 1 : nth, pack_task, &a);
}

typedef struct {
    const float *x, *Wp, *b;
    float *y;
    long M, N, K;
    int acc;
} packed_args;

static void packed_task(void *vp, int ith, int nth) {
    const packed_args *a = (const packed_args *)vp;
    long n0, n1;
    ck_split_range(a->N, 1, ith, nth, &n0, &n1);
    for (long m = 0; m < a->M; m++) {
        const float *xr = a->x + m * a->K;
        float *yr = a->y + m * a->N;
        for (long n = n0; n < n1; n++) {
            const float *w = a->Wp + (n / CKG_PW) * a->K * CKG_PW + n % CKG_PW;
            float s = 0.0f;
            for (long k = 0; k < a->K; k++) s += xr[k] * w[k * CKG_PW];
            if (a->b) s += a->b[n];
            yr[n] = a->acc ? yr[n] + s : s;
        }
    }
}

int ck_gemm_packed_f32_scalar(const float *x, const float *Wp, const float *b, float *y,
                              int M, int N, int K, int accumulate,
                              void *ws, size_t ws_size, ck_pool *pool, int nth) {
    (void)ws; (void)ws_size;
    if (M <= 0 || N <= 0) return CK_OK;
    packed_args a = {x, Wp, b, y, M, N, K, accumulate};
    if (nth > N) nth = N;
    ck_pool_run(pool, nth < 1 ? 1 : nth, packed_task, &a);
    return CK_OK;
}

/* ---- backward ---- */
typedef struct {
    const float *dy, *x, *W;
    float *dx, *dW, *db;
    int M, N, K, flags;
} bwd_args;

/* dx[m, k0:k1] = sum_n dy[m,n] W[n, k0:k1] */
static void dx_task(void *vp, int ith, int nth) {
    const bwd_args *a = (const bwd_args *)vp;
    long k0, k1;
    ck_split_range(a->K, 1, ith, nth, &k0, &k1);
    for (long m = 0; m < a->M; m++) {
        float *dxr = a->dx + m * (long)a->K;
        if (!(a->flags & CK_GEMM_ACC_DX))
            for (long k = k0; k < k1; k++) dxr[k] = 0.0f;
        for (long n = 0; n < a->N; n++) {
            const float g = a->dy[m * (long)a->N + n];
            const float *wr = a->W + n * (long)a->K;
            for (long k = k0; k < k1; k++) dxr[k] += g * wr[k];
        }
    }
}

/* dW[n0:n1, :] = sum_m dy[m, n] x[m, :];  db[n0:n1] = sum_m dy[m, n] */
static void dw_task(void *vp, int ith, int nth) {
    const bwd_args *a = (const bwd_args *)vp;
    long n0, n1;
    ck_split_range(a->N, 1, ith, nth, &n0, &n1);
    for (long n = n0; n < n1; n++) {
        if (a->dW) {
            float *dwr = a->dW + n * (long)a->K;
            if (!(a->flags & CK_GEMM_ACC_DW))
                for (long k = 0; k < a->K; k++) dwr[k] = 0.0f;
            for (long m = 0; m < a->M; m++) {
                const float g = a->dy[m * (long)a->N + n];
                const float *xr = a->x + m * (long)a->K;
                for (long k = 0; k < a->K; k++) dwr[k] += g * xr[k];
            }
        }
        if (a->db) {
            float s = 0.0f;
            for (long m = 0; m < a->M; m++) s += a->dy[m * (long)a->N + n];
            a->db[n] = (a->flags & CK_GEMM_ACC_DB) ? a->db[n] + s : s;
        }
    }
}

int ck_gemm_grad_f32_scalar(const float *dy, const float *x, const float *W,
                            float *dx, float *dW, float *db,
                            int M, int N, int K, int flags,
                            void *ws, size_t ws_size, ck_pool *pool, int nth) {
    (void)ws; (void)ws_size;
    if (M < 0 || N <= 0 || K < 0) return CK_OK;
    bwd_args a = {dy, x, W, dx, dW, db, M, N, K, flags};
    if (dx && K > 0) ck_pool_run(pool, nth > K ? K : nth, dx_task, &a);
    if (dW || db) ck_pool_run(pool, nth > N ? N : nth, dw_task, &a);
    return CK_OK;
}
