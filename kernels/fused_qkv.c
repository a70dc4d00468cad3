/* Fused attention input: RMSNorm + Q/K/V projections + RoPE (see ckernels.h,
 * section fused_qkv). Produced by the fuse-rmsnorm-qkv-rope pass.
 *
 * One kernel per variant, composed from that variant's own kernels: the norm is
 * computed once into h (the caller's [T, C] scratch, hot in cache for the three
 * GEMMs that read it), the projections run against prepacked or row-major
 * weights, and RoPE rotates q and k in place right after their GEMM, while the
 * rows are still in cache. k and v can be written straight into the KV cache
 * (the caller passes the cache rows). No SIMD code of its own, so this file is
 * compiled with baseline flags and calls the variant kernels by name. */
#include "ckernels.h"

#define CK_FUSED_QKV(V)                                                                                        \
    int ck_rmsnorm_qkv_rope_f32_##V(const float *x, const float *nw, const float *wq, const float *wk,         \
                                    const float *wv, const float *bq, const float *bk, const float *bv,        \
                                    const float *inv_freq, float *q, float *k, float *v, float *h, int T,      \
                                    int C, int heads, int kv_heads, int head_dim, int rotary_dim, int pos0,    \
                                    float theta, int style, float eps, float w_offset, int packed, void *ws,   \
                                    size_t ws_size, ck_pool *pool, int nth) {                                  \
        if (T <= 0) return CK_OK;                                                                              \
        if (C <= 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0 || heads % kv_heads) return CK_ERR_ARG;     \
        const int nq = heads * head_dim, nk = kv_heads * head_dim;                                             \
        ck_rmsnorm_f32_##V(x, nw, h, NULL, T, C, eps, w_offset, pool, nth);                                    \
        int rc;                                                                                                \
        rc = packed ? ck_gemm_packed_f32_##V(h, wq, bq, q, T, nq, C, 0, ws, ws_size, pool, nth)                \
                    : ck_gemm_f32_##V(h, wq, bq, q, T, nq, C, 0, ws, ws_size, pool, nth);                      \
        if (rc) return rc;                                                                                     \
        rc = ck_rope_f32_##V(q, q, NULL, inv_freq, T, heads, head_dim, rotary_dim, pos0, theta, style, pool,   \
                             nth);                                                                             \
        if (rc) return rc;                                                                                     \
        rc = packed ? ck_gemm_packed_f32_##V(h, wk, bk, k, T, nk, C, 0, ws, ws_size, pool, nth)                \
                    : ck_gemm_f32_##V(h, wk, bk, k, T, nk, C, 0, ws, ws_size, pool, nth);                      \
        if (rc) return rc;                                                                                     \
        rc = ck_rope_f32_##V(k, k, NULL, inv_freq, T, kv_heads, head_dim, rotary_dim, pos0, theta, style,      \
                             pool, nth);                                                                       \
        if (rc) return rc;                                                                                     \
        return packed ? ck_gemm_packed_f32_##V(h, wv, bv, v, T, nk, C, 0, ws, ws_size, pool, nth)              \
                      : ck_gemm_f32_##V(h, wv, bv, v, T, nk, C, 0, ws, ws_size, pool, nth);                    \
    }

CK_FUSED_QKV(scalar)
CK_FUSED_QKV(avx2)
CK_FUSED_QKV(avx512)
