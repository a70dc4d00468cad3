/* SIMD template for attention.c (included by attention_avx2.c / _avx512.c).
 *
 * Forward: flash-style. A task is (head h, block of up to AT_BQ query rows);
 * keys are visited in blocks of AT_BK. For each row the block's scores are
 * computed (vector dot products over head_dim), the running max / sum are
 * updated (online softmax, one rescale of the accumulator per block), and
 * P·V is accumulated into a per-row accumulator on the stack
 * (AT_BQ * CK_ATTN_MAX_HEAD_DIM floats = 16 KiB). Tasks are dealt round-robin
 * to the nth threads, heaviest (latest) query blocks first.
 *
 * Backward: one task per KV head, which owns the dK/dV rows of that head and
 * the dQ rows of every query head in its group (the GQA reduction happens in
 * place, no atomics, no scratch); probabilities are recomputed from the
 * forward's log-sum-exp. */
#include <math.h>

#define AT_BQ 64
#define AT_BK 64

typedef struct {
    const float *q, *k, *v, *o, *dout, *lse_in;
    float *out, *lse, *dq, *dk, *dv;
    int T, n_past, H, KV, D, window;
    float scale, softcap;
} at_args;

static inline int key_lo(int P, int window) { return window > 0 && P - window + 1 > 0 ? P - window + 1 : 0; }

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
    const int nqb = (p->T + AT_BQ - 1) / AT_BQ;
    const int64_t ntask = (int64_t)nqb * H;
    float acc[AT_BQ + 3][CK_ATTN_MAX_HEAD_DIM]; /* +3: scratch rows for partial tiles */
    float S[AT_BQ + 3][AT_BK];
    float kt[CK_ATTN_MAX_HEAD_DIM * AT_BK];
    float m[AT_BQ], l[AT_BQ];
    for (int r = AT_BQ; r < AT_BQ + 3; r++)
        for (int d = 0; d < D; d++) acc[r][d] = 0.0f;
    for (int64_t u = ith; u < ntask; u += nth) {
        const int qb = nqb - 1 - (int)(u / H), h = (int)(u % H), g = h / group;
        const int t0 = qb * AT_BQ, t1 = t0 + AT_BQ < p->T ? t0 + AT_BQ : p->T, nr = t1 - t0;
        const float *kg = p->k + g * D, *vg = p->v + g * D;
        const float *qrow[AT_BQ];
        for (int r = 0; r < nr; r++) {
            m[r] = -INFINITY;
            l[r] = 0.0f;
            for (int d = 0; d < D; d++) acc[r][d] = 0.0f;
            qrow[r] = p->q + (int64_t)(t0 + r) * ldq + h * D;
        }
        const int jlo = key_lo(p->n_past + t0, p->window), jhi = p->n_past + t1; /* keys [jlo, jhi) */
        for (int kb = jlo; kb < jhi; kb += AT_BK) {
            const int nk = kb + AT_BK < jhi ? AT_BK : jhi - kb;
            const float *kbp = kg + (int64_t)kb * ldk;
            /* 1. raw scores S[r][0..nk) */
            if (nr >= 2) {
                for (int j = 0; j < nk; j++) {
                    const float *kj = kbp + (int64_t)j * ldk;
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
                for (; j + 4 <= nk; j += 4) vdot4(qrow[0], kbp + (int64_t)j * ldk, ldk, D, p->scale, S[0] + j);
                for (; j < nk; j++) S[0][j] = p->scale * vdot(qrow[0], kbp + (int64_t)j * ldk, D);
            }
            /* 2. per row: cap, mask, online softmax update; S becomes P */
            for (int r = 0; r < nr; r++) {
                float *sr = S[r];
                const int P = p->n_past + t0 + r;
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
            const float *vb = vg + (int64_t)kb * ldk;
            for (int r0 = 0; r0 < nr; r0 += 4) {
                const int rn = nr - r0 < 4 ? nr - r0 : 4;
                float *as[4];
                for (int i = 0; i < 4; i++) as[i] = acc[i < rn ? r0 + i : AT_BQ + (i - rn < 3 ? i - rn : 2)];
                for (int i = rn; i < 4; i++)
                    for (int j = 0; j < nk; j++) S[r0 + i][j] = 0.0f;
                pv_tile(as, (const float(*)[AT_BK])(S + r0), vb, ldk, nk, D);
            }
        }
        for (int r = 0; r < nr; r++) {
            float *o = p->out + (int64_t)(t0 + r) * ldq + h * D;
            const vf inv = v_set1(1.0f / l[r]);
            int d;
            for (d = 0; d + CK_W <= D; d += CK_W) v_store(o + d, v_mul(v_load(acc[r] + d), inv));
            if (d < D) v_store_n(o + d, v_mul(v_load_n(acc[r] + d, D - d), inv), D - d);
            if (p->lse) p->lse[(int64_t)(t0 + r) * H + h] = m[r] + logf(l[r]);
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
    const int64_t ntask = (int64_t)((T + AT_BQ - 1) / AT_BQ) * H;
    if (nth < 1) nth = 1;
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

static void at_bwd_task(void *arg, int ith, int nth)
{
    const at_args *p = (const at_args *)arg;
    int64_t lo, hi;
    ckk_split_range(p->KV, ith, nth, &lo, &hi);
    const int D = p->D, H = p->H, group = p->H / p->KV, ldq = p->H * p->D, ldk = p->KV * p->D;
    const int nk = p->n_past + p->T;
    float dqa[CK_ATTN_MAX_HEAD_DIM];
    for (int64_t g = lo; g < hi; g++) {
        for (int j = 0; j < nk; j++) {
            float *dk = p->dk + (int64_t)j * ldk + g * D, *dv = p->dv + (int64_t)j * ldk + g * D;
            int d;
            for (d = 0; d + CK_W <= D; d += CK_W) v_store(dk + d, v_zero()), v_store(dv + d, v_zero());
            if (d < D) v_store_n(dk + d, v_zero(), D - d), v_store_n(dv + d, v_zero(), D - d);
        }
        for (int h = (int)g * group; h < (int)(g + 1) * group; h++)
            for (int t = 0; t < p->T; t++) {
                const int P = p->n_past + t;
                const int64_t qo = (int64_t)t * ldq + h * D;
                const float *q = p->q + qo, *dO = p->dout + qo;
                const float lse = p->lse_in[(int64_t)t * H + h];
                const float delta = vdot(dO, p->o + qo, D);
                for (int d = 0; d < D; d++) dqa[d] = 0.0f;
                for (int j = key_lo(P, p->window); j <= P; j++) {
                    const int64_t ko = (int64_t)j * ldk + g * D;
                    const float *k = p->k + ko, *v = p->v + ko;
                    float *dk = p->dk + ko, *dv = p->dv + ko;
                    /* the two dot products share one pass over head_dim */
                    vf aqk = v_zero(), adv = v_zero();
                    int d;
                    for (d = 0; d + CK_W <= D; d += CK_W) {
                        aqk = v_fmadd(v_load(q + d), v_load(k + d), aqk);
                        adv = v_fmadd(v_load(dO + d), v_load(v + d), adv);
                    }
                    if (d < D) {
                        const int r = D - d;
                        aqk = v_fmadd(v_load_n(q + d, r), v_load_n(k + d, r), aqk);
                        adv = v_fmadd(v_load_n(dO + d, r), v_load_n(v + d, r), adv);
                    }
                    float sc = p->scale * v_hsum(aqk), dcap = 1.0f;
                    if (p->softcap > 0.0f) {
                        const float th = tanhf(sc / p->softcap);
                        sc = p->softcap * th;
                        dcap = 1.0f - th * th;
                    }
                    const float pr = expf(sc - lse);
                    const float ds = pr * (v_hsum(adv) - delta) * dcap * p->scale;
                    const vf pv = v_set1(pr), dsv = v_set1(ds);
                    for (d = 0; d + CK_W <= D; d += CK_W) {
                        v_store(dv + d, v_fmadd(pv, v_load(dO + d), v_load(dv + d)));
                        v_store(dqa + d, v_fmadd(dsv, v_load(k + d), v_load(dqa + d)));
                        v_store(dk + d, v_fmadd(dsv, v_load(q + d), v_load(dk + d)));
                    }
                    if (d < D) {
                        const int r = D - d;
                        v_store_n(dv + d, v_fmadd(pv, v_load_n(dO + d, r), v_load_n(dv + d, r)), r);
                        v_store_n(dqa + d, v_fmadd(dsv, v_load_n(k + d, r), v_load_n(dqa + d, r)), r);
                        v_store_n(dk + d, v_fmadd(dsv, v_load_n(q + d, r), v_load_n(dk + d, r)), r);
                    }
                }
                float *dq = p->dq + qo;
                for (int d = 0; d < D; d++) dq[d] = dqa[d];
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
    ck_pool_run(pool, KV < nth ? KV : (nth > 0 ? nth : 1), at_bwd_task, &a);
    return CK_OK;
}
