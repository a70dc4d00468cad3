/* The blocked GEMM driver shared by the SIMD variants (included by
 * gemm_avx2.c and gemm_avx512.c, compiled once per ISA). Internal.
 *
 * Computes C[M,N] (+)= A[M,K] · B[K,N] (+ bias[N]) for A and B given by
 * arbitrary (row, column) strides, so one driver serves the forward pass
 * (A = x, B = Wᵀ), dx (A = dy, B = W) and dW (A = dyᵀ, B = x).
 *
 * Blocking (constants in gemm_internal.h), per thread:
 *   for pc over K in KC blocks:
 *     pack A rows [m0,m1) x KC into MR-row micro-panels   (A block, reused over all N)
 *     for jc over its columns in NC blocks:
 *       pack B KC x NC into NR-column micro-panels        (B block, stays in L2)
 *       for each MR-row micro-panel of A  (kept in L1):
 *         for each NR-column micro-panel of B: micro-kernel MR x NR, FMA over kc
 * Packed panels are zero-padded, so edge tiles run the full micro-kernel into a
 * small buffer and copy the valid part out.
 *
 * Before including, the variant file defines:
 *   CKG_MR, CKG_NR, CKG_SFX (token: avx2 | avx512)
 *   ckg_ukr(kc, a, b, c, ldc, load_c, bias): full MR x NR tile, c (+)= a·b + bias
 *   optionally CKG_HAVE_EDGE_UKR and ckg_ukr_edge(kc, a, b, c, ldc, mr, nr, load_c, bias):
 *       an mr x nr edge tile in place (else the full tile goes through a buffer)
 *   ckg_pack_b_kmajor(src, ld, kc, nr, dst): dst[k*NR + j] = src[j*ld + k], j < nr,
 *       zero for nr <= j < NR  (B with unit stride along k: the forward's Wᵀ)
 *   ckg_dot_rows(x, ldx, mr, W, K, n0, n1, b, y, ldy, acc): y[i][n] (+)= x[i]·W[n] + b[n]
 *       for i < mr <= 4, n in [n0, n1)  (small-M path: streams W, no packing)
 *   optionally CKG_HAVE_PACK_A_ROWS and ckg_pack_a_rows(src, ld, mr, kc, dst): an A
 *       micro-panel from row-major rows (dst[k*MR + i] = src[i*ld + k], zero rows to MR)
 *   optionally CKG_HAVE_PGEMV, CKG_PGEMV_MAX_ROWS and ckg_pgemv(...): up to that many
 *       rows against prepacked W (decode), several weight panels streamed side by side
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "ckernels.h"
#include "gemm_internal.h"

#define CKG_CAT2(a, b) a##b
#define CKG_CAT(a, b) CKG_CAT2(a, b)
#define CKG_NAME(stem) CKG_CAT(stem, CKG_SFX)

#if CKG_MC % CKG_MR != 0 || CKG_NC % CKG_NR != 0
#error "CKG_MC / CKG_NC must be multiples of the micro-tile"
#endif

/* Rows of x below which the forward streams W with dot products instead of packing it. */
#ifndef CKG_SMALL_M
#define CKG_SMALL_M 8
#endif

typedef struct {
    const float *A;
    long rsa, csa;
    const float *B;              /* B by strides, packed per chunk; or NULL with Bp */
    long rsb, csb;
    const float *Bp;             /* prepacked B (ck_gemm_pack_f32 layout): Bp[q][k][PW] */
    float *C;
    long ldc;
    const float *bias;
    long M, N, K;
    int load_c;
    char *ws;
    /* the step being run: A rows [mb, mb+mc), k block [pc, pc+kc) (shared-A mode) */
    long mb, mc, pc, kc;
    long cw, n_chunks, rgroup, n_rgroups;   /* items: n_rgroups x n_chunks, column chunks cw wide */
    int nth;
    atomic_long next;            /* next item to claim (dynamic schedule) */
} ckg_job;

static float *ckg_shared_a(const ckg_job *j) { return (float *)j->ws; }
static float *ckg_thread_b(const ckg_job *j, int ith) {
    return (float *)(j->ws + CKG_WS_A + (size_t)ith * CKG_WS_B);
}

/* Ap[p][k][i] = A[m0 + p*MR + i, k0 + k] (zero beyond mc), for panels [p0, p1) */
static void ckg_pack_a(const ckg_job *j, long m0, long mc, long k0, long kc, long p0, long p1,
                       float *restrict ap) {
    const long rsa = j->rsa, csa = j->csa;
    for (long p = p0 * CKG_MR; p < mc && p < p1 * CKG_MR; p += CKG_MR) {
        const long mr = mc - p < CKG_MR ? mc - p : CKG_MR;
        const float *src = j->A + (m0 + p) * rsa + k0 * csa;
        float *dst = ap + p * kc;
        if (rsa == 1 && mr == CKG_MR) {   /* A transposed (dW = dyᵀ·x): MR contiguous floats per k */
            for (long k = 0; k < kc; k++) memcpy(dst + k * CKG_MR, src + k * csa, sizeof(float) * CKG_MR);
        } else if (rsa == 1) {
            for (long k = 0; k < kc; k++) {
                const float *s = src + k * csa;
                float *d = dst + k * CKG_MR;
                long i = 0;
                for (; i < mr; i++) d[i] = s[i];
                for (; i < CKG_MR; i++) d[i] = 0.0f;
            }
        } else {
#ifdef CKG_HAVE_PACK_A_ROWS
            if (csa == 1) {
                ckg_pack_a_rows(src, rsa, mr, kc, dst);
                continue;
            }
#endif
            for (long i = 0; i < mr; i++) {
                const float *s = src + i * rsa;
                for (long k = 0; k < kc; k++) dst[k * CKG_MR + i] = s[k * csa];
            }
            for (long i = mr; i < CKG_MR; i++)
                for (long k = 0; k < kc; k++) dst[k * CKG_MR + i] = 0.0f;
        }
    }
}

/* Bp[p][k][j] = B[k0 + k, n0 + p*NR + j] (zero beyond nc) */
static void ckg_pack_b(const ckg_job *j, long n0, long nc, long k0, long kc, float *restrict bp) {
    const long rsb = j->rsb, csb = j->csb;
    for (long p = 0; p < nc; p += CKG_NR) {
        const long nr = nc - p < CKG_NR ? nc - p : CKG_NR;
        const float *src = j->B + k0 * rsb + (n0 + p) * csb;
        if (rsb == 1) {
            ckg_pack_b_kmajor(src, csb, kc, nr, bp);
        } else if (csb == 1) {
            for (long k = 0; k < kc; k++) {
                const float *s = src + k * rsb;
                float *d = bp + k * CKG_NR;
                if (nr == CKG_NR) {
                    memcpy(d, s, sizeof(float) * CKG_NR);
                } else {
                    long jj = 0;
                    for (; jj < nr; jj++) d[jj] = s[jj];
                    for (; jj < CKG_NR; jj++) d[jj] = 0.0f;
                }
            }
        } else {
            for (long k = 0; k < kc; k++)
                for (long jj = 0; jj < CKG_NR; jj++)
                    bp[k * CKG_NR + jj] = jj < nr ? src[k * rsb + jj * csb] : 0.0f;
        }
        bp += kc * CKG_NR;
    }
}

#ifdef CKG_HAVE_EDGE_UKR
#define ckg_edge ckg_ukr_edge
#else
static void ckg_edge(long kc, const float *ap, const float *bp, long ldb, float *c, long ldc, long mr, long nr,
                     int load_c, const float *bias) {
    float tmp[CKG_MR * CKG_NR] __attribute__((aligned(64)));
    ckg_ukr(kc, ap, bp, ldb, tmp, CKG_NR, 0, NULL);
    for (long i = 0; i < mr; i++)
        for (long jj = 0; jj < nr; jj++) {
            float v = tmp[i * CKG_NR + jj];
            if (bias) v += bias[jj];
            c[i * ldc + jj] = load_c ? c[i * ldc + jj] + v : v;
        }
}
#endif

/* C[rows [r0, r1) of the A block, columns [n0, n1)] (+)= A block · B[k block], A packed at ap
 * (panel p of the block at ap + p*MR*kc); B packed here into bpack unless prepacked. */
static void ckg_block(const ckg_job *j, long mb, long mc, long pc, long kc, const float *ap,
                      long r0, long r1, long n0, long n1, float *bpack) {
    const int load_c = j->load_c || pc > 0;
    const float *bias_blk = pc == 0 ? j->bias : NULL;
    const float *bp0 = NULL;
    long ldb = CKG_NR;
    if (!j->Bp) {
        ckg_pack_b(j, n0, n1 - n0, pc, kc, bpack);
        bp0 = bpack;
    } else {
        ldb = CKG_PW;
    }
    (void)mc;
    for (long ir = r0; ir < r1; ir += CKG_MR) {
        const long mr = r1 - ir < CKG_MR ? r1 - ir : CKG_MR;
        const float *a = ap + ir * kc;
        float *crow = j->C + (mb + ir) * j->ldc;
        for (long n = n0; n < n1; n += CKG_NR) {
            const long nr = n1 - n < CKG_NR ? n1 - n : CKG_NR;
            const float *b = j->Bp ? j->Bp + (n / CKG_PW) * j->K * CKG_PW + pc * CKG_PW + n % CKG_PW
                                   : bp0 + (n - n0) * kc;
            const float *bias = bias_blk ? bias_blk + n : NULL;
            if (mr == CKG_MR && nr == CKG_NR)
                ckg_ukr(kc, a, b, ldb, crow + n, j->ldc, load_c, bias);
            else
                ckg_edge(kc, a, b, ldb, crow + n, j->ldc, mr, nr, load_c, bias);
        }
    }
}

/* item -> (rows [r0, r1) of the current A block, columns [n0, n1)) */
static void ckg_item(const ckg_job *j, long item, long *r0, long *r1, long *n0, long *n1) {
    const long g = item / j->n_chunks, c = item % j->n_chunks;
    *n0 = c * j->cw;
    *n1 = *n0 + j->cw < j->N ? *n0 + j->cw : j->N;
    *r0 = g * j->rgroup;
    *r1 = *r0 + j->rgroup < j->mc ? *r0 + j->rgroup : j->mc;
}

static long ckg_claim(ckg_job *j) { return atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed); }

/* shared-A mode, step (mb, pc): the threads pack the A block's panels together ... */
static void ckg_pack_a_task(void *vp, int ith, int nth) {
    const ckg_job *j = (const ckg_job *)vp;
    long p0, p1;
    ck_split_range((j->mc + CKG_MR - 1) / CKG_MR, 1, ith, nth, &p0, &p1);
    ckg_pack_a(j, j->mb, j->mc, j->pc, j->kc, p0, p1, ckg_shared_a(j));
}

/* ... then claim (row group, column chunk) items until none is left */
static void ckg_compute_task(void *vp, int ith, int nth) {
    (void)nth;
    ckg_job *j = (ckg_job *)vp;
    const long n_items = j->n_rgroups * j->n_chunks;
    for (long item; (item = ckg_claim(j)) < n_items;) {
        long r0, r1, n0, n1;
        ckg_item(j, item, &r0, &r1, &n0, &n1);
        if (r0 < r1 && n0 < n1)
            ckg_block(j, j->mb, j->mc, j->pc, j->kc, ckg_shared_a(j), r0, r1, n0, n1, ckg_thread_b(j, ith));
    }
}

/* private-A mode (few rows of A, prepacked B): each item runs every k block of its
 * column chunk, packing the few A rows itself; one pool run for the whole GEMM */
static void ckg_private_task(void *vp, int ith, int nth) {
    (void)nth;
    ckg_job *j = (ckg_job *)vp;
    float *ap = ckg_thread_b(j, ith);
    for (long item; (item = ckg_claim(j)) < j->n_chunks;) {
        const long n0 = item * j->cw, n1 = n0 + j->cw < j->N ? n0 + j->cw : j->N;
#ifdef CKG_HAVE_PGEMV
        if (j->M <= CKG_PGEMV_MAX_ROWS) {
            ckg_pgemv(j->M, j->K, j->A, j->rsa, j->Bp, n0, n1, j->C, j->ldc, j->load_c, j->bias);
            continue;
        }
#endif
        for (long pc = 0; pc < j->K; pc += CKG_KC) {
            const long kc = j->K - pc < CKG_KC ? j->K - pc : CKG_KC;
            ckg_pack_a(j, 0, j->M, pc, kc, 0, (j->M + CKG_MR - 1) / CKG_MR, ap);
            ckg_block(j, 0, j->M, pc, kc, ap, 0, j->M, n0, n1, NULL);
        }
    }
}

static void ckg_k0_task(void *vp, int ith, int nth) {   /* K == 0: C (+)= bias */
    const ckg_job *j = (const ckg_job *)vp;
    long m0, m1;
    ck_split_range(j->M, 1, ith, nth, &m0, &m1);
    for (long m = m0; m < m1; m++)
        for (long n = 0; n < j->N; n++) {
            const float v = j->bias ? j->bias[n] : 0.0f;
            float *c = j->C + m * j->ldc + n;
            *c = j->load_c ? *c + v : v;
        }
}

/* Column chunks: one NC-wide chunk per step on one thread; with more threads,
 * about three chunks per thread (dynamic schedule: a thread slowed down by the
 * machine takes fewer), at least 128 wide so an A micro-panel loaded into L1
 * serves several micro-tiles. Narrow outputs also split the A block's rows. */
static void ckg_plan(ckg_job *j, long mc, int nth) {
    long cw = CKG_NC;
    if (nth > 1) {
        cw = (j->N + 3L * nth - 1) / (3L * nth);
        cw = (cw + CKG_PW - 1) / CKG_PW * CKG_PW;
        if (cw < 128) cw = 128;
        if (cw > CKG_NC) cw = CKG_NC;
    }
    j->cw = cw;
    j->n_chunks = (j->N + cw - 1) / cw;
    j->n_rgroups = 1;
    j->rgroup = mc;
    const long panels = (mc + CKG_MR - 1) / CKG_MR;
    if (nth > 1 && j->n_chunks < 2L * nth && panels > 1) {
        long g = (2L * nth + j->n_chunks - 1) / j->n_chunks;
        if (g > panels) g = panels;
        j->rgroup = (panels + g - 1) / g * CKG_MR;
        j->n_rgroups = (mc + j->rgroup - 1) / j->rgroup;
    }
}

static int ckg_gemm(ckg_job *j, void *ws, size_t ws_size, ck_pool *pool, int nth) {
    if (j->M <= 0 || j->N <= 0) return CK_OK;
    if (nth < 1) nth = 1;
    if (!ws || ws_size < ck_gemm_workspace_size((int)j->M, (int)j->N, (int)j->K, nth)) return CK_ERR_WORKSPACE;
    j->ws = (char *)(((uintptr_t)ws + CKG_ALIGN - 1) & ~(uintptr_t)(CKG_ALIGN - 1));
    if (j->K == 0) {
        ck_pool_run(pool, nth > j->M ? (int)j->M : nth, ckg_k0_task, j);
        return CK_OK;
    }
    if (j->Bp && j->M < 2 * CKG_MR) {
        ckg_plan(j, j->M, nth);
        const int t = nth > j->n_chunks ? (int)j->n_chunks : nth;
        atomic_store_explicit(&j->next, 0, memory_order_relaxed);
        ck_pool_run(pool, t, ckg_private_task, j);
        return CK_OK;
    }
    for (long mb = 0; mb < j->M; mb += CKG_MC) {
        const long mc = j->M - mb < CKG_MC ? j->M - mb : CKG_MC;
        ckg_plan(j, mc, nth);
        const long panels = (mc + CKG_MR - 1) / CKG_MR, n_items = j->n_rgroups * j->n_chunks;
        for (long pc = 0; pc < j->K; pc += CKG_KC) {
            j->mb = mb;
            j->mc = mc;
            j->pc = pc;
            j->kc = j->K - pc < CKG_KC ? j->K - pc : CKG_KC;
            ck_pool_run(pool, nth > panels ? (int)panels : nth, ckg_pack_a_task, j);
            atomic_store_explicit(&j->next, 0, memory_order_relaxed);
            ck_pool_run(pool, nth > n_items ? (int)n_items : nth, ckg_compute_task, j);
        }
    }
    return CK_OK;
}

/* ---- small M / GEMV: stream W, dot products over K ---- */
typedef struct {
    const float *x, *W, *b;
    float *y;
    long M, N, K;
    int acc;
} ckg_dot_job;

static void ckg_dot_task(void *vp, int ith, int nth) {
    const ckg_dot_job *j = (const ckg_dot_job *)vp;
    long n0, n1;
    ck_split_range(j->N, 16, ith, nth, &n0, &n1);
    if (n0 >= n1) return;
    for (long m = 0; m < j->M; m += 4) {
        const int mr = (int)(j->M - m < 4 ? j->M - m : 4);
        ckg_dot_rows(j->x + m * j->K, j->K, mr, j->W, j->K, n0, n1, j->b, j->y + m * j->N, j->N, j->acc);
    }
}

static void ckg_dot(const float *x, const float *W, const float *b, float *y, long M, long N, long K,
                    int acc, ck_pool *pool, int nth) {
    if (M <= 0 || N <= 0) return;
    ckg_dot_job j = {x, W, b, y, M, N, K, acc};
    const long parts = (N + 15) / 16;
    if (nth > parts) nth = (int)parts;
    if (nth < 1) nth = 1;
    ck_pool_run(pool, nth, ckg_dot_task, &j);
}

/* ---- public entry points ---- */

void CKG_NAME(ck_gemv_f32_)(const float *x, const float *W, const float *b, float *y,
                            int N, int K, int accumulate, ck_pool *pool, int nth) {
    ckg_dot(x, W, b, y, 1, N, K, accumulate, pool, nth);
}

int CKG_NAME(ck_gemm_f32_)(const float *x, const float *W, const float *b, float *y,
                           int M, int N, int K, int accumulate,
                           void *ws, size_t ws_size, ck_pool *pool, int nth) {
    if (M <= 0 || N <= 0) return CK_OK;
    if (!ws || ws_size < ck_gemm_workspace_size(M, N, K, nth < 1 ? 1 : nth)) return CK_ERR_WORKSPACE;
    if (M < CKG_SMALL_M) {
        ckg_dot(x, W, b, y, M, N, K, accumulate, pool, nth);
        return CK_OK;
    }
    ckg_job j = {.A = x, .rsa = K, .csa = 1, .B = W, .rsb = 1, .csb = K, .C = y, .ldc = N,
                 .bias = b, .M = M, .N = N, .K = K, .load_c = accumulate};
    return ckg_gemm(&j, ws, ws_size, pool, nth);
}

int CKG_NAME(ck_gemm_packed_f32_)(const float *x, const float *Wp, const float *b, float *y,
                                  int M, int N, int K, int accumulate,
                                  void *ws, size_t ws_size, ck_pool *pool, int nth) {
    if (M <= 0 || N <= 0) return CK_OK;
    ckg_job j = {.A = x, .rsa = K, .csa = 1, .Bp = Wp, .C = y, .ldc = N,
                 .bias = b, .M = M, .N = N, .K = K, .load_c = accumulate};
    return ckg_gemm(&j, ws, ws_size, pool, nth);
}

typedef struct {
    const float *dy;
    float *db;
    long M, N;
    int acc;
} ckg_db_job;

static void ckg_db_task(void *vp, int ith, int nth) {
    const ckg_db_job *j = (const ckg_db_job *)vp;
    long n0, n1;
    ck_split_range(j->N, 16, ith, nth, &n0, &n1);
    float *restrict db = j->db;
    if (!j->acc)
        for (long n = n0; n < n1; n++) db[n] = 0.0f;
    for (long m = 0; m < j->M; m++) {
        const float *restrict row = j->dy + m * j->N;
        for (long n = n0; n < n1; n++) db[n] += row[n];
    }
}

int CKG_NAME(ck_gemm_grad_f32_)(const float *dy, const float *x, const float *W,
                                float *dx, float *dW, float *db,
                                int M, int N, int K, int flags,
                                void *ws, size_t ws_size, ck_pool *pool, int nth) {
    if (M < 0 || N <= 0 || K < 0) return CK_OK;
    if (!ws || ws_size < ck_gemm_workspace_size(M, N, K, nth < 1 ? 1 : nth)) return CK_ERR_WORKSPACE;
    int rc = CK_OK;
    if (dx && M > 0 && K > 0) {
        /* dx[M,K] = dy[M,N] · W[N,K] */
        ckg_job j = {.A = dy, .rsa = N, .csa = 1, .B = W, .rsb = K, .csb = 1, .C = dx, .ldc = K,
                     .bias = NULL, .M = M, .N = K, .K = N, .load_c = (flags & CK_GEMM_ACC_DX) != 0};
        rc = ckg_gemm(&j, ws, ws_size, pool, nth);
        if (rc) return rc;
    }
    if (dW && K > 0) {
        /* dW[N,K] = dyᵀ[N,M] · x[M,K] */
        ckg_job j = {.A = dy, .rsa = 1, .csa = N, .B = x, .rsb = K, .csb = 1, .C = dW, .ldc = K,
                     .bias = NULL, .M = N, .N = K, .K = M, .load_c = (flags & CK_GEMM_ACC_DW) != 0};
        rc = ckg_gemm(&j, ws, ws_size, pool, nth);
        if (rc) return rc;
    }
    if (db) {
        ckg_db_job j = {dy, db, M, N, (flags & CK_GEMM_ACC_DB) != 0};
        const long parts = (N + 15) / 16;
        int t = nth < 1 ? 1 : nth;
        if (t > parts) t = (int)parts;
        ck_pool_run(pool, t, ckg_db_task, &j);
    }
    return rc;
}
