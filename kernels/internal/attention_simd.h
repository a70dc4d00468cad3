/* SIMD template for attention.c (included by attention_avx2.c / _avx512.c).
 *
 * Forward: flash-style. A task is (head h, or the heads of one GQA group, x a
 * block of tokens), AT_BQ query rows in all;
 * keys are visited in blocks of AT_BK. For each row the block's scores are
 * computed (register tiles over the packed block; dot products for one row),
 * the running max / sum are
 * updated (online softmax, one rescale of the accumulator per block), and
 * P·V is accumulated into a per-row accumulator on the stack. Scores and
 * P·V use 4-row x AT_NV-vector register tiles; the key block is packed
 * transposed once per task and block. Stack: accumulators (AT_BQ+3) x
 * CK_ATTN_MAX_HEAD_DIM + packed block CK_ATTN_MAX_HEAD_DIM x AT_BK floats
 * (about 150 KiB). Tasks are dealt round-robin to the nth threads, heaviest
 * (latest) query blocks first.
 *
 * Backward: see the comment above at_bwd_kv_task (two passes, tiled like the
 * forward). */
#include <math.h>
#include "attention_args.h"

#define AT_BQ 64
#define AT_BK 64

typedef struct {
    const float *q, *k, *v, *o, *dout, *lse_in;
    float *out, *lse, *dq, *dk, *dv;
    int T, n_past, H, KV, D, window;
    float scale, softcap;
    int hpt; /* forward: query heads per task (1, or the GQA group: K/V read once per group) */
    const void *kq, *vq; /* the fp16 / Q8_0 caches when kvt != AT_KV_F32 (k, v unused) */
    int kvt;
} at_args;

/* dst[j][0..D) = fp32 of row kb + j (j < nk) of KV head g of an fp16 / Q8_0
 * cache: the block's keys (or values) converted once per task and block. */
static void at_kv_rows(const void *base, int kvt, int kb, int nk, int ldk, int g, int D, float *dst)
{
    for (int j = 0; j < nk; j++) {
        const uint8_t *src = at_kv_row(base, kvt, kb + j, ldk, g, D);
        float *o = dst + (int64_t)j * D;
        if (kvt == AT_KV_F16) {
            const uint16_t *h = (const uint16_t *)src;
            int d = 0;
#if CK_W == 16
            for (; d + 16 <= D; d += 16)
                _mm512_storeu_ps(o + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + d))));
#else
            for (; d + 8 <= D; d += 8)
                _mm256_storeu_ps(o + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + d))));
#endif
            for (; d < D; d++) {
                uint16_t x;
                memcpy(&x, h + d, 2);
                o[d] = ck_fp16_to_fp32(x);
            }
        } else {
            const ck_block_q8_0 *b = (const ck_block_q8_0 *)src;
            for (int i = 0; i < D / CK_QK; i++) {
                const vf dd = v_set1(ck_fp16_to_fp32(b[i].d));
#if CK_W == 16
                for (int c = 0; c < 2; c++)
                    v_store(o + i * CK_QK + 16 * c, v_mul(dd, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                            _mm_loadu_si128((const __m128i *)(b[i].qs + 16 * c))))));
#else
                for (int c = 0; c < 4; c++)
                    v_store(o + i * CK_QK + 8 * c, v_mul(dd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                           _mm_loadl_epi64((const __m128i *)(b[i].qs + 8 * c))))));
#endif
            }
        }
    }
}

static inline float vdot(const float *a, const float *b, int D)
{
    vf acc = v_zero();
    int d;
    for (d = 0; d + CK_W <= D; d += CK_W) acc = v_fmadd(v_load(a + d), v_load(b + d), acc);
    if (d < D) acc = v_fmadd(v_load_n(a + d, D - d), v_load_n(b + d, D - d), acc);
    return v_hsum(acc);
}

/* s[i] = scale * q·k_i for 4 consecutive key rows (row stride ldk) */
static inline void vdot4(const float *q, const float *k, int64_t ldk, int D, float scale, float *s)
{
    vf a0 = v_zero(), a1 = v_zero(), a2 = v_zero(), a3 = v_zero();
    const float *k0 = k, *k1 = k + ldk, *k2 = k + 2 * ldk, *k3 = k + 3 * ldk;
    int d;
    for (d = 0; d + CK_W <= D; d += CK_W) {
        vf qv = v_load(q + d);
        a0 = v_fmadd(qv, v_load(k0 + d), a0);
        a1 = v_fmadd(qv, v_load(k1 + d), a1);
        a2 = v_fmadd(qv, v_load(k2 + d), a2);
        a3 = v_fmadd(qv, v_load(k3 + d), a3);
    }
    if (d < D) {
        const int r = D - d;
        vf qv = v_load_n(q + d, r);
        a0 = v_fmadd(qv, v_load_n(k0 + d, r), a0);
        a1 = v_fmadd(qv, v_load_n(k1 + d, r), a1);
        a2 = v_fmadd(qv, v_load_n(k2 + d, r), a2);
        a3 = v_fmadd(qv, v_load_n(k3 + d, r), a3);
    }
    s[0] = scale * v_hsum(a0);
    s[1] = scale * v_hsum(a1);
    s[2] = scale * v_hsum(a2);
    s[3] = scale * v_hsum(a3);
}

/* Register tiles: 4 query rows x AT_NV vectors (16 accumulators on AVX-512's
 * 32 registers, 8 on AVX2's 16). */
#if CK_W == 16
#define AT_NV 4
#else
#define AT_NV 2
#endif

/* Scores of up to 4 query rows against a packed key block: kt is [D][AT_BK]
 * (keys transposed, zero-padded), S[r][0..AT_BK) = scale * q_r · k_j. */
static inline void scores_tile(const float *const q[4], const float *kt, int D, float scale, float S[][AT_BK], int nr)
{
    for (int j0 = 0; j0 < AT_BK; j0 += AT_NV * CK_W) {
        vf a[4][AT_NV];
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < AT_NV; i++) a[r][i] = v_zero();
        for (int d = 0; d < D; d++) {
            const float *kr = kt + (int64_t)d * AT_BK + j0;
            vf k[AT_NV];
            for (int i = 0; i < AT_NV; i++) k[i] = v_load(kr + i * CK_W);
            for (int r = 0; r < 4; r++) {
                const vf qb = v_set1(q[r][d]);
                for (int i = 0; i < AT_NV; i++) a[r][i] = v_fmadd(qb, k[i], a[r][i]);
            }
        }
        const vf sc = v_set1(scale);
        for (int r = 0; r < nr; r++)
            for (int i = 0; i < AT_NV; i++) v_store(S[r] + j0 + i * CK_W, v_mul(a[r][i], sc));
    }
}

/* acc[r][d] += sum_j P[r][j] * v_j[d] for up to 4 rows, n keys (row stride ldk). */
static inline void pv_tile(float *const acc[4], const float P[][AT_BK], const float *vb, int64_t ldk, int n, int D)
{
    for (int d0 = 0; d0 < D; d0 += AT_NV * CK_W) {
        int nv = (D - d0 + CK_W - 1) / CK_W;
        if (nv > AT_NV) nv = AT_NV;
        int last = D - (d0 + (nv - 1) * CK_W); /* lanes in the last vector */
        if (last > CK_W) last = CK_W;
        if (nv == AT_NV && last == CK_W) { /* full chunk: the hot path */
            vf a[4][AT_NV];
            for (int r = 0; r < 4; r++)
                for (int i = 0; i < AT_NV; i++) a[r][i] = v_load(acc[r] + d0 + i * CK_W);
            for (int j = 0; j < n; j++) {
                const float *vr = vb + (int64_t)j * ldk + d0;
                vf v[AT_NV];
                for (int i = 0; i < AT_NV; i++) v[i] = v_load(vr + i * CK_W);
                for (int r = 0; r < 4; r++) {
                    const vf pb = v_set1(P[r][j]);
                    for (int i = 0; i < AT_NV; i++) a[r][i] = v_fmadd(pb, v[i], a[r][i]);
                }
            }
            for (int r = 0; r < 4; r++)
                for (int i = 0; i < AT_NV; i++) v_store(acc[r] + d0 + i * CK_W, a[r][i]);
            continue;
        }
        for (int i = 0; i < nv; i++) { /* tail chunk: one vector at a time, masked last */
            const int dd = d0 + i * CK_W, ln = i == nv - 1 ? last : CK_W;
            vf a[4];
            for (int r = 0; r < 4; r++) a[r] = v_load_n(acc[r] + dd, ln);
            for (int j = 0; j < n; j++) {
                const vf v = v_load_n(vb + (int64_t)j * ldk + dd, ln);
                for (int r = 0; r < 4; r++) a[r] = v_fmadd(v_set1(P[r][j]), v, a[r]);
            }
            for (int r = 0; r < 4; r++) v_store_n(acc[r] + dd, a[r], ln);
        }
    }
}

static void at_fwd_task(void *arg, int ith, int nth)
{
    const at_args *p = (const at_args *)arg;
    const int D = p->D, H = p->H, group = p->H / p->KV, ldq = p->H * p->D, ldk = p->KV * p->D;
    const int hpt = p->hpt, tpb = AT_BQ / hpt, nhg = H / hpt; /* rows = tpb tokens x hpt heads */
    const int nqb = (p->T + tpb - 1) / tpb;
    const int64_t ntask = (int64_t)nqb * nhg;
    float acc[AT_BQ + 3][CK_ATTN_MAX_HEAD_DIM]; /* +3: scratch rows for partial tiles */
    float S[AT_BQ + 3][AT_BK];
    float kt[CK_ATTN_MAX_HEAD_DIM * AT_BK];
    float kvb[2][AT_BK * CK_ATTN_MAX_HEAD_DIM]; /* an fp16 / Q8_0 cache's key and value block in fp32 */
    float m[AT_BQ], l[AT_BQ];
    for (int r = AT_BQ; r < AT_BQ + 3; r++)
        for (int d = 0; d < D; d++) acc[r][d] = 0.0f;
    for (int64_t u = ith; u < ntask; u += nth) {
        const int qb = nqb - 1 - (int)(u / nhg), h0 = (int)(u % nhg) * hpt, g = h0 / group;
        const int t0 = qb * tpb, t1 = t0 + tpb < p->T ? t0 + tpb : p->T, nr = (t1 - t0) * hpt;
        const int conv = p->kvt != AT_KV_F32;
        const float *kg = conv ? NULL : p->k + g * D, *vg = conv ? NULL : p->v + g * D;
        const float *qrow[AT_BQ];
        for (int r = 0; r < nr; r++) {
            m[r] = -INFINITY;
            l[r] = 0.0f;
            for (int d = 0; d < D; d++) acc[r][d] = 0.0f;
            qrow[r] = p->q + (int64_t)(t0 + r / hpt) * ldq + (h0 + r % hpt) * D;
        }
        const int jlo = key_lo(p->n_past + t0, p->window), jhi = p->n_past + t1; /* keys [jlo, jhi) */
        for (int kb = jlo; kb < jhi; kb += AT_BK) {
            const int nk = kb + AT_BK < jhi ? AT_BK : jhi - kb;
            int64_t lk = ldk; /* key/value row stride: the cache's, or D in the converted block */
            const float *kbp;
            if (conv) {
                at_kv_rows(p->kq, p->kvt, kb, nk, ldk, g, D, kvb[0]);
                kbp = kvb[0];
                lk = D;
            } else {
                kbp = kg + (int64_t)kb * ldk;
            }
            /* 1. raw scores S[r][0..nk) */
            if (nr >= 2) {
                for (int j = 0; j < nk; j++) {
                    const float *kj = kbp + (int64_t)j * lk;
                    for (int d = 0; d < D; d++) kt[(int64_t)d * AT_BK + j] = kj[d];
                }
                if (nk < AT_BK)
                    for (int d = 0; d < D; d++)
                        for (int j = nk; j < AT_BK; j++) kt[(int64_t)d * AT_BK + j] = 0.0f;
                for (int r0 = 0; r0 < nr; r0 += 4) {
                    const int rn = nr - r0 < 4 ? nr - r0 : 4;
                    const float *qs[4];
                    for (int i = 0; i < 4; i++) qs[i] = qrow[r0 + (i < rn ? i : 0)];
                    scores_tile(qs, kt, D, p->scale, S + r0, rn);
                }
            } else {
                int j = 0;
                for (; j + 4 <= nk; j += 4) vdot4(qrow[0], kbp + (int64_t)j * lk, lk, D, p->scale, S[0] + j);
                for (; j < nk; j++) S[0][j] = p->scale * vdot(qrow[0], kbp + (int64_t)j * lk, D);
            }
            /* 2. per row: cap, mask, online softmax update; S becomes P */
            for (int r = 0; r < nr; r++) {
                float *sr = S[r];
                const int P = p->n_past + t0 + r / hpt;
                const int lo = key_lo(P, p->window);
                const int a = lo > kb ? lo - kb : 0, b = P + 1 - kb < nk ? P + 1 - kb : nk; /* visible [a, b) */
                int j;
                if (a >= b) {
                    for (j = 0; j < nk; j++) sr[j] = 0.0f;
                    continue;
                }
                if (p->softcap > 0.0f) {
                    const vf cap = v_set1(p->softcap), icap = v_set1(1.0f / p->softcap);
                    for (j = a; j < b; j += CK_W) {
                        const int rr = b - j < CK_W ? b - j : CK_W;
                        v_store_n(sr + j, v_mul(cap, v_tanh(v_mul(v_load_n(sr + j, rr), icap))), rr);
                    }
                }
                vf mv = v_set1(-INFINITY);
                for (j = a; j + CK_W <= b; j += CK_W) mv = v_max(mv, v_load(sr + j));
                if (j < b) mv = v_max(mv, v_load_nf(sr + j, b - j, -INFINITY));
                const float mb = v_hmax(mv);
                if (mb > m[r]) {
                    const float c = expf(m[r] - mb);
                    l[r] *= c;
                    if (c != 1.0f) {
                        const vf cv = v_set1(c);
                        int d;
                        for (d = 0; d + CK_W <= D; d += CK_W) v_store(acc[r] + d, v_mul(v_load(acc[r] + d), cv));
                        if (d < D) v_store_n(acc[r] + d, v_mul(v_load_n(acc[r] + d, D - d), cv), D - d);
                    }
                    m[r] = mb;
                }
                for (j = 0; j < a; j++) sr[j] = 0.0f;
                for (j = b; j < nk; j++) sr[j] = 0.0f;
                const vf mr = v_set1(m[r]);
                vf sum = v_zero();
                for (j = a; j + CK_W <= b; j += CK_W) {
                    vf e = v_exp(v_sub(v_load(sr + j), mr));
                    v_store(sr + j, e);
                    sum = v_add(sum, e);
                }
                if (j < b) {
                    vf e = v_exp(v_sub(v_load_nf(sr + j, b - j, -INFINITY), mr));
                    v_store_n(sr + j, e, b - j);
                    sum = v_add(sum, e);
                }
                l[r] += v_hsum(sum);
            }
            /* 3. acc += P · V_block, four rows at a time (extra rows hit scratch) */
            const float *vb;
            if (conv) {
                at_kv_rows(p->vq, p->kvt, kb, nk, ldk, g, D, kvb[1]);
                vb = kvb[1];
            } else {
                vb = vg + (int64_t)kb * ldk;
            }
            for (int r0 = 0; r0 < nr; r0 += 4) {
                const int rn = nr - r0 < 4 ? nr - r0 : 4;
                float *as[4];
                for (int i = 0; i < 4; i++) as[i] = acc[i < rn ? r0 + i : AT_BQ + (i - rn < 3 ? i - rn : 2)];
                for (int i = rn; i < 4; i++)
                    for (int j = 0; j < nk; j++) S[r0 + i][j] = 0.0f;
                pv_tile(as, (const float(*)[AT_BK])(S + r0), vb, lk, nk, D);
            }
        }
        for (int r = 0; r < nr; r++) {
            const int t = t0 + r / hpt, h = h0 + r % hpt;
            float *o = p->out + (int64_t)t * ldq + h * D;
            const vf inv = v_set1(1.0f / l[r]);
            int d;
            for (d = 0; d + CK_W <= D; d += CK_W) v_store(o + d, v_mul(v_load(acc[r] + d), inv));
            if (d < D) v_store_n(o + d, v_mul(v_load_n(acc[r] + d, D - d), inv), D - d);
            if (p->lse) p->lse[(int64_t)t * H + h] = m[r] + logf(l[r]);
        }
    }
}

static int at_check(int T, int n_past, int H, int KV, int D)
{
    if (T < 0 || n_past < 0 || H <= 0 || KV <= 0 || H % KV || D <= 0 || D > CK_ATTN_MAX_HEAD_DIM) return CK_ERR_ARG;
    return CK_OK;
}

int CK_FN(ck_attention_f32)(const float *q, const float *k, const float *v, float *out, float *lse, int T,
                            int n_past, int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    if (at_check(T, n_past, H, KV, D)) return CK_ERR_ARG;
    at_args a = {.q = q, .k = k, .v = v, .out = out, .lse = lse, .T = T, .n_past = n_past, .H = H, .KV = KV,
                 .D = D, .window = window, .scale = scale,
                 .softcap = softcap};
    if (nth < 1) nth = 1;
    /* GQA: one task handles the heads of a group together (K/V loaded once),
     * unless that leaves too few tasks (decode with few KV heads). */
    const int group = H / KV;
    a.hpt = group > 1 && group <= 16 && (T > 1 || KV >= 2 * nth) ? group : 1;
    const int tpb = AT_BQ / a.hpt;
    const int64_t ntask = (int64_t)((T + tpb - 1) / tpb) * (H / a.hpt);
    ck_pool_run(pool, ntask < nth ? (int)(ntask > 0 ? ntask : 1) : nth, at_fwd_task, &a);
    return CK_OK;
}

int CK_FN(ck_attention_decode_f32)(const float *q, const float *k_cache, const float *v_cache, float *out,
                                   int n_past, int H, int KV, int D, int window, float scale, float softcap,
                                   ck_pool *pool, int nth)
{
    return CK_FN(ck_attention_f32)(q, k_cache, v_cache, out, NULL, 1, n_past, H, KV, D, window, scale, softcap,
                                   pool, nth);
}

static int at_fwd_kv(const float *q, const void *k, const void *v, float *out, int kvt, int T, int n_past, int H,
                     int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    if (at_check(T, n_past, H, KV, D) || at_kv_check(kvt, D)) return CK_ERR_ARG;
    at_args a = {.q = q, .kq = k, .vq = v, .kvt = kvt, .out = out, .T = T, .n_past = n_past, .H = H, .KV = KV,
                 .D = D, .window = window, .scale = scale, .softcap = softcap};
    if (nth < 1) nth = 1;
    /* A GQA group in one task converts its K/V blocks once; unlike ck_attention_f32
     * the choice does not depend on nth, so neither do the results (decode with
     * one KV head: one task per query head, to keep the threads busy). */
    const int group = H / KV;
    a.hpt = group > 1 && group <= 16 && (T > 1 || KV >= 2) ? group : 1;
    const int tpb = AT_BQ / a.hpt;
    const int64_t ntask = (int64_t)((T + tpb - 1) / tpb) * (H / a.hpt);
    ck_pool_run(pool, ntask < nth ? (int)(ntask > 0 ? ntask : 1) : nth, at_fwd_task, &a);
    return CK_OK;
}

int CK_FN(ck_attention_kvf16)(const float *q, const void *k, const void *v, float *out, int T, int n_past,
                              int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k, v, out, AT_KV_F16, T, n_past, H, KV, D, window, scale, softcap, pool, nth);
}

int CK_FN(ck_attention_decode_kvf16)(const float *q, const void *k_cache, const void *v_cache, float *out,
                                     int n_past, int H, int KV, int D, int window, float scale, float softcap,
                                     ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k_cache, v_cache, out, AT_KV_F16, 1, n_past, H, KV, D, window, scale, softcap, pool, nth);
}

int CK_FN(ck_attention_kvq8_0)(const float *q, const void *k, const void *v, float *out, int T, int n_past, int H,
                               int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k, v, out, AT_KV_Q8_0, T, n_past, H, KV, D, window, scale, softcap, pool, nth);
}

int CK_FN(ck_attention_decode_kvq8_0)(const float *q, const void *k_cache, const void *v_cache, float *out,
                                      int n_past, int H, int KV, int D, int window, float scale, float softcap,
                                      ck_pool *pool, int nth)
{
    return at_fwd_kv(q, k_cache, v_cache, out, AT_KV_Q8_0, 1, n_past, H, KV, D, window, scale, softcap, pool,
                     nth);
}

/* ---------------- backward ----------------
 * Two passes, no atomics, no scratch memory (stack only, about 170 KiB):
 *   A. task = (KV head g, key block): owns dK, dV of those keys; loops over the
 *      query heads of the group and the query rows that see the block, in tiles
 *      of AB_BQ rows: dV += Pᵀ·dO, dK += dSᵀ·Q.
 *   B. task = (query head h, block of AT_BQ rows): owns dQ of those rows;
 *      loops over visible key blocks: dQ += dS·K.
 * Both recompute P = exp(cap(scale·q·k) − lse) and dS = P∘(dO·vᵀ − δ)·cap'·scale,
 * δ = rowsum(dO∘O), from packed (transposed) K and V blocks, with the same
 * register tiles as the forward. */
#define AB_BQ 16

/* kt/vt [D][AT_BK] <- transposed rows [kb, kb+nk) of K/V (row stride ldk), zero padded */
static void pack_t(const float *src, int64_t ldk, int nk, int D, float *dst)
{
    for (int j = 0; j < nk; j++) {
        const float *r = src + (int64_t)j * ldk;
        for (int d = 0; d < D; d++) dst[(int64_t)d * AT_BK + j] = r[d];
    }
    if (nk < AT_BK)
        for (int d = 0; d < D; d++)
            for (int j = nk; j < AT_BK; j++) dst[(int64_t)d * AT_BK + j] = 0.0f;
}

/* For nr query rows (pointers qr/dor, positions P0 + r, lse, delta) and keys
 * [kb, kb+nk): Pm[r][j] = probability, dS[r][j] = d(loss)/d(q·k) (scale
 * folded in); both 0 where masked. */
static void bwd_block(const at_args *p, const float *const *qr, const float *const *dor, int P0, const float *lse,
                      const float *delta, int nr, int kb, int nk, const float *kt, const float *vt,
                      float Pm[][AT_BK], float dS[][AT_BK])
{
    const int D = p->D;
    for (int r0 = 0; r0 < nr; r0 += 4) {
        const int rn = nr - r0 < 4 ? nr - r0 : 4;
        const float *qs[4], *ds[4];
        for (int i = 0; i < 4; i++) qs[i] = qr[r0 + (i < rn ? i : 0)], ds[i] = dor[r0 + (i < rn ? i : 0)];
        scores_tile(qs, kt, D, p->scale, Pm + r0, rn);
        scores_tile(ds, vt, D, 1.0f, dS + r0, rn); /* dP = dO · vᵀ */
    }
    const vf one = v_set1(1.0f), scale = v_set1(p->scale);
    for (int r = 0; r < nr; r++) {
        float *pr = Pm[r], *dr = dS[r];
        const int P = P0 + r, lo = key_lo(P, p->window);
        const int a = lo > kb ? lo - kb : 0, b = P + 1 - kb < nk ? P + 1 - kb : nk;
        int j;
        for (j = 0; j < (a < nk ? a : nk); j++) pr[j] = dr[j] = 0.0f;
        for (j = b > 0 ? b : 0; j < nk; j++) pr[j] = dr[j] = 0.0f;
        if (a >= b) continue;
        const vf l = v_set1(lse[r]), dl = v_set1(delta[r]);
        const vf cap = v_set1(p->softcap), icap = v_set1(p->softcap > 0.0f ? 1.0f / p->softcap : 0.0f);
        for (j = a; j < b; j += CK_W) {
            const int n = b - j < CK_W ? b - j : CK_W;
            vf sv = v_load_n(pr + j, n), dcap = one;
            if (p->softcap > 0.0f) {
                const vf th = v_tanh(v_mul(sv, icap));
                sv = v_mul(cap, th);
                dcap = v_fnmadd(th, th, one);
            }
            const vf pv = v_exp(v_sub(sv, l));
            const vf dsv = v_mul(v_mul(pv, v_sub(v_load_n(dr + j, n), dl)), v_mul(dcap, scale));
            v_store_n(pr + j, pv, n);
            v_store_n(dr + j, dsv, n);
        }
    }
}

/* rows[j] (key j of the block, row stride ld) += sum_r C[r][j] * X_r for nk keys, nr rows. */
static void tpv_tile(float *base, int64_t ld, int nk, const float C[][AT_BK], const float *const *X, int nr, int D,
                     float *scratch /* [3][CK_ATTN_MAX_HEAD_DIM] */)
{
    for (int j0 = 0; j0 < nk; j0 += 4) {
        const int jn = nk - j0 < 4 ? nk - j0 : 4;
        float *acc[4];
        for (int i = 0; i < 4; i++)
            acc[i] = i < jn ? base + (int64_t)(j0 + i) * ld : scratch + (i - jn) * CK_ATTN_MAX_HEAD_DIM;
        for (int d0 = 0; d0 < D; d0 += AT_NV * CK_W) {
            int nv = (D - d0 + CK_W - 1) / CK_W;
            if (nv > AT_NV) nv = AT_NV;
            int last = D - (d0 + (nv - 1) * CK_W);
            if (last > CK_W) last = CK_W;
            if (nv == AT_NV && last == CK_W) {
                vf a[4][AT_NV];
                for (int i = 0; i < 4; i++)
                    for (int v = 0; v < AT_NV; v++) a[i][v] = v_load(acc[i] + d0 + v * CK_W);
                for (int r = 0; r < nr; r++) {
                    vf x[AT_NV];
                    for (int v = 0; v < AT_NV; v++) x[v] = v_load(X[r] + d0 + v * CK_W);
                    for (int i = 0; i < 4; i++) {
                        const vf c = v_set1(C[r][j0 + i]);
                        for (int v = 0; v < AT_NV; v++) a[i][v] = v_fmadd(c, x[v], a[i][v]);
                    }
                }
                for (int i = 0; i < 4; i++)
                    for (int v = 0; v < AT_NV; v++) v_store(acc[i] + d0 + v * CK_W, a[i][v]);
                continue;
            }
            for (int v = 0; v < nv; v++) {
                const int dd = d0 + v * CK_W, ln = v == nv - 1 ? last : CK_W;
                vf a[4];
                for (int i = 0; i < 4; i++) a[i] = v_load_n(acc[i] + dd, ln);
                for (int r = 0; r < nr; r++) {
                    const vf x = v_load_n(X[r] + dd, ln);
                    for (int i = 0; i < 4; i++) a[i] = v_fmadd(v_set1(C[r][j0 + i]), x, a[i]);
                }
                for (int i = 0; i < 4; i++) v_store_n(acc[i] + dd, a[i], ln);
            }
        }
    }
}

static inline void zero_rows(float *base, int64_t ld, int n, int D)
{
    for (int j = 0; j < n; j++) {
        float *r = base + (int64_t)j * ld;
        int d;
        for (d = 0; d + CK_W <= D; d += CK_W) v_store(r + d, v_zero());
        if (d < D) v_store_n(r + d, v_zero(), D - d);
    }
}

/* pass A: dK, dV */
static void at_bwd_kv_task(void *arg, int ith, int nth)
{
    const at_args *p = (const at_args *)arg;
    const int D = p->D, H = p->H, group = p->H / p->KV, ldq = p->H * p->D, ldk = p->KV * p->D;
    const int S = p->n_past + p->T, nkb = (S + AT_BK - 1) / AT_BK;
    float kt[CK_ATTN_MAX_HEAD_DIM * AT_BK], vt[CK_ATTN_MAX_HEAD_DIM * AT_BK];
    float Pm[AB_BQ][AT_BK], dS[AB_BQ][AT_BK];
    float scratch[3 * CK_ATTN_MAX_HEAD_DIM] = {0};
    float lse[AB_BQ], delta[AB_BQ];
    const float *qr[AB_BQ], *dor[AB_BQ];
    for (int64_t u = ith; u < (int64_t)nkb * p->KV; u += nth) {
        const int kbi = (int)(u / p->KV), g = (int)(u % p->KV);
        const int kb = kbi * AT_BK, nk = kb + AT_BK < S ? AT_BK : S - kb;
        float *dkb = p->dk + (int64_t)kb * ldk + g * D, *dvb = p->dv + (int64_t)kb * ldk + g * D;
        zero_rows(dkb, ldk, nk, D);
        zero_rows(dvb, ldk, nk, D);
        int t_lo = kb - p->n_past > 0 ? kb - p->n_past : 0;
        int t_hi = p->T;
        if (p->window > 0 && kb + nk - 1 + p->window - p->n_past < t_hi) t_hi = kb + nk - 1 + p->window - p->n_past;
        if (t_lo >= t_hi) continue;
        pack_t(p->k + (int64_t)kb * ldk + g * D, ldk, nk, D, kt);
        pack_t(p->v + (int64_t)kb * ldk + g * D, ldk, nk, D, vt);
        for (int h = g * group; h < (g + 1) * group; h++)
            for (int t0 = t_lo; t0 < t_hi; t0 += AB_BQ) {
                const int nr = t_hi - t0 < AB_BQ ? t_hi - t0 : AB_BQ;
                for (int r = 0; r < nr; r++) {
                    const int64_t o = (int64_t)(t0 + r) * ldq + h * D;
                    qr[r] = p->q + o;
                    dor[r] = p->dout + o;
                    lse[r] = p->lse_in[(int64_t)(t0 + r) * H + h];
                    delta[r] = vdot(p->dout + o, p->o + o, D);
                }
                bwd_block(p, qr, dor, p->n_past + t0, lse, delta, nr, kb, nk, kt, vt, Pm, dS);
                tpv_tile(dvb, ldk, nk, (const float(*)[AT_BK])Pm, dor, nr, D, scratch);
                tpv_tile(dkb, ldk, nk, (const float(*)[AT_BK])dS, qr, nr, D, scratch);
            }
    }
}

/* pass B: dQ */
static void at_bwd_q_task(void *arg, int ith, int nth)
{
    const at_args *p = (const at_args *)arg;
    const int D = p->D, H = p->H, group = p->H / p->KV, ldq = p->H * p->D, ldk = p->KV * p->D;
    const int nqb = (p->T + AT_BQ - 1) / AT_BQ;
    float kt[CK_ATTN_MAX_HEAD_DIM * AT_BK], vt[CK_ATTN_MAX_HEAD_DIM * AT_BK];
    float Pm[AT_BQ + 3][AT_BK], dS[AT_BQ + 3][AT_BK];
    float scratch[3 * CK_ATTN_MAX_HEAD_DIM] = {0};
    float lse[AT_BQ], delta[AT_BQ];
    const float *qr[AT_BQ], *dor[AT_BQ];
    for (int64_t u = ith; u < (int64_t)nqb * H; u += nth) {
        const int qb = nqb - 1 - (int)(u / H), h = (int)(u % H), g = h / group;
        const int t0 = qb * AT_BQ, nr = t0 + AT_BQ < p->T ? AT_BQ : p->T - t0;
        float *dqb = p->dq + (int64_t)t0 * ldq + h * D;
        zero_rows(dqb, ldq, nr, D);
        for (int r = 0; r < nr; r++) {
            const int64_t o = (int64_t)(t0 + r) * ldq + h * D;
            qr[r] = p->q + o;
            dor[r] = p->dout + o;
            lse[r] = p->lse_in[(int64_t)(t0 + r) * H + h];
            delta[r] = vdot(p->dout + o, p->o + o, D);
        }
        const int jlo = key_lo(p->n_past + t0, p->window), jhi = p->n_past + t0 + nr;
        for (int kb = jlo; kb < jhi; kb += AT_BK) {
            const int nk = kb + AT_BK < jhi ? AT_BK : jhi - kb;
            const float *kbp = p->k + (int64_t)kb * ldk + g * D;
            pack_t(kbp, ldk, nk, D, kt);
            pack_t(p->v + (int64_t)kb * ldk + g * D, ldk, nk, D, vt);
            bwd_block(p, qr, dor, p->n_past + t0, lse, delta, nr, kb, nk, kt, vt, Pm, dS);
            for (int r0 = 0; r0 < nr; r0 += 4) {
                const int rn = nr - r0 < 4 ? nr - r0 : 4;
                float *as[4];
                for (int i = 0; i < 4; i++)
                    as[i] = i < rn ? dqb + (int64_t)(r0 + i) * ldq : scratch + (i - rn) * CK_ATTN_MAX_HEAD_DIM;
                for (int i = rn; i < 4; i++)
                    for (int j = 0; j < nk; j++) dS[r0 + i][j] = 0.0f;
                pv_tile(as, (const float(*)[AT_BK])(dS + r0), kbp, ldk, nk, D);
            }
        }
    }
}

int CK_FN(ck_attention_grad_f32)(const float *q, const float *k, const float *v, const float *out,
                                 const float *dout, const float *lse, float *dq, float *dk, float *dv, int T,
                                 int n_past, int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth)
{
    if (at_check(T, n_past, H, KV, D)) return CK_ERR_ARG;
    at_args a = {.q = q, .k = k, .v = v, .o = out, .dout = dout, .lse_in = lse, .dq = dq, .dk = dk, .dv = dv,
                 .T = T, .n_past = n_past, .H = H, .KV = KV, .D = D, .window = window, .scale = scale,
                 .softcap = softcap};
    if (nth < 1) nth = 1;
    const int64_t nkv = (int64_t)((n_past + T + AT_BK - 1) / AT_BK) * KV, nq = (int64_t)((T + AT_BQ - 1) / AT_BQ) * H;
    ck_pool_run(pool, nkv < nth ? (int)(nkv > 0 ? nkv : 1) : nth, at_bwd_kv_task, &a);
    ck_pool_run(pool, nq < nth ? (int)(nq > 0 ? nq : 1) : nth, at_bwd_q_task, &a);
    return CK_OK;
}

/* ---- batches of sequences (rows = B·S): one call per sequence ---- */
int CK_FN(ck_attention_seq_f32)(const float *q, const float *k, const float *v, float *out, float *lse, int rows,
                                int S, int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool,
                                int nth)
{
    if (S <= 0 || rows < 0 || rows % S || at_check(S, 0, H, KV, D)) return CK_ERR_ARG;
    const int64_t ldq = (int64_t)H * D, ldk = (int64_t)KV * D;
    for (int64_t r = 0; r < rows; r += S)
        CK_FN(ck_attention_f32)(q + r * ldq, k + r * ldk, v + r * ldk, out + r * ldq, lse ? lse + r * H : NULL, S, 0,
                                H, KV, D, window, scale, softcap, pool, nth);
    return CK_OK;
}

int CK_FN(ck_attention_grad_seq_f32)(const float *q, const float *k, const float *v, const float *out,
                                     const float *dout, const float *lse, float *dq, float *dk, float *dv, int rows,
                                     int S, int H, int KV, int D, int window, float scale, float softcap,
                                     ck_pool *pool, int nth)
{
    if (S <= 0 || rows < 0 || rows % S || at_check(S, 0, H, KV, D)) return CK_ERR_ARG;
    const int64_t ldq = (int64_t)H * D, ldk = (int64_t)KV * D;
    for (int64_t r = 0; r < rows; r += S)
        CK_FN(ck_attention_grad_f32)(q + r * ldq, k + r * ldk, v + r * ldk, out + r * ldq, dout + r * ldq,
                                     lse + r * H, dq + r * ldq, dk + r * ldk, dv + r * ldk, S, 0, H, KV, D, window,
                                     scale, softcap, pool, nth);
    return CK_OK;
}
