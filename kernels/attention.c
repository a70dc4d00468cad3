/* Causal attention with GQA and optional sliding window: prefill (continuing a
 * cache from n_past), single-token decode against a KV cache, and backward
 * (dQ, dK, dV with the GQA reduction, recomputed from q, k, v and the
 * forward's per-row log-sum-exp). Scalar reference: a streaming (one key at a
 * time) online softmax; SIMD variants in attention_avx2.c / _avx512.c
 * (template internal/attention_simd.h) use key blocks, flash style. */
#include <math.h>
#include "internal/common.h"
#include "internal/attention_args.h"

typedef struct {
    const float *q, *k, *v, *o, *dout, *lse_in;
    float *out, *lse, *dq, *dk, *dv;
    int T, n_past, H, KV, D, window;
    float scale, softcap;
    const void *kq, *vq; /* the fp16 / Q8_0 caches when kvt != AT_KV_F32 (k, v unused) */
    int kvt;
} at_args;

static inline float dotf(const float *a, const float *b, int D)
{
    float s = 0.0f;
    for (int d = 0; d < D; d++) s += a[d] * b[d];
    return s;
}

/* first visible key of the query at position P */

static void at_fwd_task(void *arg, int ith, int nth)
{
    const at_args *p = (const at_args *)arg;
    int64_t lo, hi;
    ckk_split_range((int64_t)p->T * p->H, ith, nth, &lo, &hi);
    const int D = p->D, H = p->H, group = p->H / p->KV, ldq = p->H * p->D, ldk = p->KV * p->D;
    float acc[CK_ATTN_MAX_HEAD_DIM], kbuf[CK_ATTN_MAX_HEAD_DIM], vbuf[CK_ATTN_MAX_HEAD_DIM];
    for (int64_t u = lo; u < hi; u++) {
        const int t = (int)(u / H), h = (int)(u % H), g = h / group;
        const int P = p->n_past + t;
        const float *q = p->q + (int64_t)t * ldq + h * D;
        float m = -INFINITY, l = 0.0f;
        for (int d = 0; d < D; d++) acc[d] = 0.0f;
        for (int j = key_lo(P, p->window); j <= P; j++) {
            const float *k = p->k + (int64_t)j * ldk + g * D, *v = p->v + (int64_t)j * ldk + g * D;
            if (p->kvt != AT_KV_F32) {
                at_kv_row_scalar(at_kv_row(p->kq, p->kvt, j, ldk, g, D), p->kvt, kbuf, D);
                at_kv_row_scalar(at_kv_row(p->vq, p->kvt, j, ldk, g, D), p->kvt, vbuf, D);
                k = kbuf;
                v = vbuf;
            }
            float s = p->scale * dotf(q, k, D);
            if (p->softcap > 0.0f) s = (float)(p->softcap * tanh((double)s / p->softcap));
            if (s > m) {
                const float c = expf(m - s);
                l *= c;
                for (int d = 0; d < D; d++) acc[d] *= c;
                m = s;
            }
            const float e = expf(s - m);
            l += e;
            for (int d = 0; d < D; d++) acc[d] += e * v[d];
        }
        float *o = p->out + (int64_t)t * ldq + h * D;
        for (int d = 0; d < D; d++) o[d] = acc[d] / l;
        if (p->lse) p->lse[(int64_t)t * H + h] = m + logf(l);
    }
}

static int at_check(int T, int n_past, int H, int KV, int D)
{
    if (T < 0 || n_past < 0 || H <= 0 || KV <= 0 || H % KV || D <= 0 || D > CK_ATTN_MAX_HEAD_DIM) return CK_ERR_ARG;
    return CK_OK;
}

int ck_attention_f32_scalar(const float *q, const float *k, const float *v, float *out, float *lse, int T,
                            int n_past, int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    if (at_check(T, n_past, H, KV, D)) return CK_ERR_ARG;
    at_args a = {.q = q, .k = k, .v = v, .out = out, .lse = lse, .T = T, .n_past = n_past, .H = H, .KV = KV,
                 .D = D, .window = window, .scale = scale,
                 .softcap = softcap};
    const int64_t rows = (int64_t)T * H;
    ck_pool_run(pool, rows < nth ? (int)(rows > 0 ? rows : 1) : nth, at_fwd_task, &a);
    return CK_OK;
}

int ck_attention_decode_f32_scalar(const float *q, const float *k_cache, const float *v_cache, float *out,
                                   int n_past, int H, int KV, int D, int window, float scale, float softcap,
                                   ck_pool *pool, int nth)
{
    return ck_attention_f32_scalar(q, k_cache, v_cache, out, NULL, 1, n_past, H, KV, D, window, scale, softcap,
                                   pool, nth);
}

static int at_fwd_kv(const float *q, const void *k, const void *v, float *out, int kvt, int T, int n_past, int H,
                     int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    if (at_check(T, n_past, H, KV, D) || at_kv_check(kvt, D)) return CK_ERR_ARG;
    at_args a = {.q = q, .kq = k, .vq = v, .kvt = kvt, .out = out, .T = T, .n_past = n_past, .H = H, .KV = KV,
                 .D = D, .window = window, .scale = scale, .softcap = softcap};
    const int64_t rows = (int64_t)T * H;
    ck_pool_run(pool, rows < nth ? (int)(rows > 0 ? rows : 1) : nth, at_fwd_task, &a);
    return CK_OK;
}

int ck_attention_kvf16_scalar(const float *q, const void *k, const void *v, float *out, int T, int n_past,
                              int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k, v, out, AT_KV_F16, T, n_past, H, KV, D, window, scale, softcap, pool, nth);
}

int ck_attention_decode_kvf16_scalar(const float *q, const void *k_cache, const void *v_cache, float *out,
                                     int n_past, int H, int KV, int D, int window, float scale, float softcap,
                                     ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k_cache, v_cache, out, AT_KV_F16, 1, n_past, H, KV, D, window, scale, softcap, pool, nth);
}

int ck_attention_kvq8_0_scalar(const float *q, const void *k, const void *v, float *out, int T, int n_past, int H,
                               int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k, v, out, AT_KV_Q8_0, T, n_past, H, KV, D, window, scale, softcap, pool, nth);
}

int ck_attention_decode_kvq8_0_scalar(const float *q, const void *k_cache, const void *v_cache, float *out,
                                      int n_past, int H, int KV, int D, int window, float scale, float softcap,
                                      ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k_cache, v_cache, out, AT_KV_Q8_0, 1, n_past, H, KV, D, window, scale, softcap, pool,
                     nth);
}

/* One task per KV head g: it owns dK/dV rows of g and dQ of the heads in g. */
static void at_bwd_task(void *arg, int ith, int nth)
{
    const at_args *p = (const at_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->KV, ith, nth, &lo, &hi);
    const int D = p->D, H = p->H, group = p->H / p->KV, ldq = p->H * p->D, ldk = p->KV * p->D;
    const int nk = p->n_past + p->T;
    for (int64_t g = lo; g < hi; g++) {
        for (int j = 0; j < nk; j++)
            for (int d = 0; d < D; d++) {
                p->dk[(int64_t)j * ldk + g * D + d] = 0.0f;
                p->dv[(int64_t)j * ldk + g * D + d] = 0.0f;
            }
        for (int h = (int)g * group; h < (int)(g + 1) * group; h++)
            for (int t = 0; t < p->T; t++) {
                const int P = p->n_past + t;
                const int64_t qo = (int64_t)t * ldq + h * D;
                const float *q = p->q + qo, *o = p->o + qo, *dO = p->dout + qo;
                float *dq = p->dq + qo;
                const float lse = p->lse_in[(int64_t)t * H + h];
                const float delta = dotf(dO, o, D);
                for (int d = 0; d < D; d++) dq[d] = 0.0f;
                for (int j = key_lo(P, p->window); j <= P; j++) {
                    const int64_t ko = (int64_t)j * ldk + g * D;
                    const float *k = p->k + ko, *v = p->v + ko;
                    float *dk = p->dk + ko, *dv = p->dv + ko;
                    float sc = p->scale * dotf(q, k, D), dcap = 1.0f; /* dcap: d(capped)/d(raw) */
                    if (p->softcap > 0.0f) {
                        const double th = tanh((double)sc / p->softcap);
                        sc = (float)(p->softcap * th);
                        dcap = (float)(1.0 - th * th);
                    }
                    const float pr = expf(sc - lse);
                    const float dp = dotf(dO, v, D);
                    const float ds = pr * (dp - delta) * dcap * p->scale;
                    for (int d = 0; d < D; d++) {
                        dv[d] += pr * dO[d];
                        dq[d] += ds * k[d];
                        dk[d] += ds * q[d];
                    }
                }
            }
    }
}

int ck_attention_grad_f32_scalar(const float *q, const float *k, const float *v, const float *out,
                                 const float *dout, const float *lse, float *dq, float *dk, float *dv, int T,
                                 int n_past, int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    if (at_check(T, n_past, H, KV, D)) return CK_ERR_ARG;
    at_args a = {.q = q, .k = k, .v = v, .o = out, .dout = dout, .lse_in = lse, .dq = dq, .dk = dk, .dv = dv,
                 .T = T, .n_past = n_past, .H = H, .KV = KV, .D = D, .window = window, .scale = scale,
                 .softcap = softcap};
    ck_pool_run(pool, KV < nth ? KV : nth, at_bwd_task, &a);
    return CK_OK;
}

/* ---- batches of sequences (rows = B·S): one call per sequence ---- */
int ck_attention_seq_f32_scalar(const float *q, const float *k, const float *v, float *out, float *lse, int rows,
                                int S, int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool,
                                int nth)
{
    if (S <= 0 || rows < 0 || rows % S || at_check(S, 0, H, KV, D)) return CK_ERR_ARG;
    const int64_t ldq = (int64_t)H * D, ldk = (int64_t)KV * D;
    for (int64_t r = 0; r < rows; r += S)
        ck_attention_f32_scalar(q + r * ldq, k + r * ldk, v + r * ldk, out + r * ldq, lse ? lse + r * H : NULL, S, 0,
                                H, KV, D, window, scale, softcap, pool, nth);
    return CK_OK;
}

int ck_attention_grad_seq_f32_scalar(const float *q, const float *k, const float *v, const float *out,
                                     const float *dout, const float *lse, float *dq, float *dk, float *dv, int rows,
                                     int S, int H, int KV, int D, int window, float scale, float softcap,
                                     ck_pool *pool, int nth)
{
    if (S <= 0 || rows < 0 || rows % S || at_check(S, 0, H, KV, D)) return CK_ERR_ARG;
    const int64_t ldq = (int64_t)H * D, ldk = (int64_t)KV * D;
    for (int64_t r = 0; r < rows; r += S)
        ck_attention_grad_f32_scalar(q + r * ldq, k + r * ldk, v + r * ldk, out + r * ldq, dout + r * ldq,
                                     lse + r * H, dq + r * ldq, dk + r * ldk, dv + r * ldk, S, 0, H, KV, D, window,
                                     scale, softcap, pool, nth);
    return CK_OK;
}
