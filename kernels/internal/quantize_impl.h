/* fp32 rows -> GGUF block rows (ck_quantize_rows_<variant>, ckernels.h section
 * quantize): the body every variant file compiles with its own ISA flags,
 * QZ_SFX naming the variant. See kernels/quantize.c. */
#ifndef QZ_SFX
#error "define QZ_SFX (scalar, avx2, avx512) before including quantize_impl.h"
#endif
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../include/ckernels.h"
#include "quant_common.h"
#include "quant_k.h"

/* The bit-exactness rests on every float operation being the reference's:
 * no contraction into FMA in the variants compiled with -mfma (GCC leaves ISO
 * C uncontracted; clang needs the pragma). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QMAX(a, b) ((a) > (b) ? (a) : (b))
#define QMIN(a, b) ((a) < (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f

#define FP16(f) ck_fp32_to_fp16(f)
#define F32(h) ck_fp16_to_fp32(h)

/* ---- legacy formats (blocks of 32) ---- */

static void q4_0_row(const float *x, ck_block_q4_0 *y, int64_t k) {
    const int qk = 32;
    const int64_t nb = k / qk;
    for (int64_t i = 0; i < nb; i++) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (amax < fabsf(v)) { amax = fabsf(v); max = v; }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = FP16(d);
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = x[i * qk + 0 + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            const uint8_t xi0 = QMIN(15, (int8_t)(x0 + 8.5f));
            const uint8_t xi1 = QMIN(15, (int8_t)(x1 + 8.5f));
            y[i].qs[j] = xi0;
            y[i].qs[j] |= xi1 << 4;
        }
    }
}

static void q4_1_row(const float *x, ck_block_q4_1 *y, int64_t k) {
    const int qk = 32;
    const int64_t nb = k / qk;
    for (int64_t i = 0; i < nb; i++) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = FP16(d);
        y[i].m = FP16(min);
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (x[i * qk + 0 + j] - min) * id;
            const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
            const uint8_t xi0 = QMIN(15, (int8_t)(x0 + 0.5f));
            const uint8_t xi1 = QMIN(15, (int8_t)(x1 + 0.5f));
            y[i].qs[j] = xi0;
            y[i].qs[j] |= xi1 << 4;
        }
    }
}

static void q5_0_row(const float *x, ck_block_q5_0 *y, int64_t k) {
    const int qk = 32;
    const int64_t nb = k / qk;
    for (int64_t i = 0; i < nb; i++) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (amax < fabsf(v)) { amax = fabsf(v); max = v; }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = FP16(d);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = x[i * qk + 0 + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            const uint8_t xi0 = QMIN(31, (int8_t)(x0 + 16.5f));
            const uint8_t xi1 = QMIN(31, (int8_t)(x1 + 16.5f));
            y[i].qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
            qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        memcpy(&y[i].qh, &qh, sizeof(qh));
    }
}

static void q5_1_row(const float *x, ck_block_q5_1 *y, int64_t k) {
    const int qk = 32;
    const int64_t nb = k / qk;
    for (int64_t i = 0; i < nb; i++) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = FP16(d);
        y[i].m = FP16(min);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (x[i * qk + 0 + j] - min) * id;
            const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
            const uint8_t xi0 = (uint8_t)(x0 + 0.5f);
            const uint8_t xi1 = (uint8_t)(x1 + 0.5f);
            y[i].qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
            qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        memcpy(&y[i].qh, &qh, sizeof(y[i].qh));
    }
}

static void q8_0_row(const float *x, ck_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / 32;
    for (int64_t i = 0; i < nb; i++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = QMAX(amax, fabsf(x[i * 32 + j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = FP16(d);
        for (int j = 0; j < 32; ++j) y[i].qs[j] = (int8_t)roundf(x[i * 32 + j] * id);
    }
}

/* ---- K-quant helpers (ggml-quants.c) ---- */

static inline int nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

/* The scale searches (make_qkx2_quants, make_qx_quants, make_q3_quants) run LANES groups at
 * once, one group per lane: the data transposed to xt[i][lane], every lane
 * doing exactly the scalar reference's sequence of float operations (its sums
 * in its order; branches become per-lane selects), so the compiler vectorizes
 * across lanes and the results stay bit for bit the reference's. This is what
 * makes the K-quants fast: the searches are ~95% of their time. */
#define LANES 16
_Static_assert(LANES == 16, "Q2_K and Q6_K put the 16 groups of a super-block in the lanes");

/* make_qkx2_quants for LANES groups of n values: xt, wt [n][LANES]; L [n][LANES];
 * scale and the_min per lane. */
static void qkx2_lanes(int n, int nmax, const float *xt, const float *wt, uint8_t *L, float *scale_out,
                       float *min_out, float rmin, float rdelta, int nstep, int use_mad) {
    /* every per-lane quantity is 32-bit (levels held as floats, exact for
     * 0..nmax) and every branch a select, so each loop over l is one vector op */
    float min[LANES], max[LANES], sum_w[LANES], sum_x[LANES], scale[LANES], best[LANES], iscale[LANES];
    float sl[LANES], sl2[LANES], sxl[LANES], ts[LANES], tm[LANES], cur[LANES], min0[LANES];
    int better[LANES], degen[LANES];
    float Lf[32 * LANES], Laux[32 * LANES];
    for (int l = 0; l < LANES; l++) {
        min[l] = max[l] = xt[l];
        sum_w[l] = wt[l];
        sum_x[l] = sum_w[l] * xt[l];
    }
    for (int i = 1; i < n; i++) {
        for (int l = 0; l < LANES; l++) {
            const float x = xt[i * LANES + l], w = wt[i * LANES + l];
            min[l] = x < min[l] ? x : min[l];
            max[l] = x > max[l] ? x : max[l];
            sum_w[l] += w;
            sum_x[l] += w * x;
        }
    }
    for (int l = 0; l < LANES; l++) {
        min[l] = min[l] > 0 ? 0 : min[l];
        min0[l] = min[l];
        degen[l] = max[l] == min[l];
        iscale[l] = nmax / (max[l] - min[l]);
        scale[l] = 1 / iscale[l];
        best[l] = 0;
    }
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < LANES; l++) {
            const float x = xt[i * LANES + l];
            int q = nearest_int(iscale[l] * (x - min[l]));
            q = QMAX(0, QMIN(nmax, q));
            Lf[i * LANES + l] = (float)q;
            float diff = scale[l] * (float)q + min[l] - x;
            diff = use_mad ? fabsf(diff) : diff * diff;
            best[l] += wt[i * LANES + l] * diff;
        }
    }
    for (int is = 0; is <= nstep; ++is) {
        for (int l = 0; l < LANES; l++) {
            iscale[l] = (rmin + rdelta * is + nmax) / (max[l] - min[l]);
            sl[l] = sl2[l] = sxl[l] = 0;
        }
        for (int i = 0; i < n; i++) {
            for (int l = 0; l < LANES; l++) {
                const float x = xt[i * LANES + l], w = wt[i * LANES + l];
                int q = nearest_int(iscale[l] * (x - min[l]));
                q = QMAX(0, QMIN(nmax, q));
                const float fq = (float)q;
                Laux[i * LANES + l] = fq;
                sl[l] += w * fq;
                sl2[l] += w * fq * fq;
                sxl[l] += w * fq * x;
            }
        }
        for (int l = 0; l < LANES; l++) {
            const float D = sum_w[l] * sl2[l] - sl[l] * sl[l];
            const float s0 = (sum_w[l] * sxl[l] - sum_x[l] * sl[l]) / D;
            const float m0 = (sl2[l] * sum_x[l] - sl[l] * sxl[l]) / D;
            const float s1 = sxl[l] / sl2[l];
            ts[l] = m0 > 0 ? s1 : s0;
            tm[l] = m0 > 0 ? 0.f : m0;
            cur[l] = 0;
            better[l] = D > 0;
        }
        for (int i = 0; i < n; i++) {
            for (int l = 0; l < LANES; l++) {
                float diff = ts[l] * Laux[i * LANES + l] + tm[l] - xt[i * LANES + l];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur[l] += wt[i * LANES + l] * diff;
            }
        }
        for (int l = 0; l < LANES; l++) {
            better[l] = better[l] & (cur[l] < best[l]);
            best[l] = better[l] ? cur[l] : best[l];
            scale[l] = better[l] ? ts[l] : scale[l];
            min[l] = better[l] ? tm[l] : min[l];
        }
        for (int i = 0; i < n; i++)
            for (int l = 0; l < LANES; l++)
                Lf[i * LANES + l] = better[l] ? Laux[i * LANES + l] : Lf[i * LANES + l];
    }
    for (int l = 0; l < LANES; l++) {
        /* the reference returns early for a constant group: all L 0, scale 0 */
        min_out[l] = -(degen[l] ? min0[l] : min[l]);
        scale_out[l] = degen[l] ? 0.f : scale[l];
    }
    for (int i = 0; i < n; i++)
        for (int l = 0; l < LANES; l++) L[i * LANES + l] = degen[l] ? 0 : (uint8_t)Lf[i * LANES + l];
}

/* make_qx_quants(n, nmax, x, L, rmse_type = 1, NULL) for LANES groups. */
static void qx_lanes(int n, int nmax, const float *xt, int8_t *L, float *scale_out) {
    float max[LANES], amax[LANES], iscale[LANES], slx[LANES], sl2[LANES], scale[LANES], best[LANES];
    int better[LANES];
    float Lf[16 * LANES], Laux[16 * LANES];
    for (int l = 0; l < LANES; l++) max[l] = amax[l] = 0;
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < LANES; l++) {
            const float x = xt[i * LANES + l], ax = fabsf(x);
            const int gt = ax > amax[l];
            amax[l] = gt ? ax : amax[l];
            max[l] = gt ? x : max[l];
        }
    }
    for (int l = 0; l < LANES; l++) {
        iscale[l] = -nmax / max[l];
        slx[l] = sl2[l] = 0;
    }
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < LANES; l++) {
            const float x = xt[i * LANES + l];
            int q = nearest_int(iscale[l] * x);
            q = QMAX(-nmax, QMIN(nmax - 1, q));
            const float fq = (float)q;
            Lf[i * LANES + l] = fq;
            const float w = x * x;
            slx[l] += w * x * fq;
            sl2[l] += w * fq * fq;
        }
    }
    for (int l = 0; l < LANES; l++) {
        scale[l] = sl2[l] ? slx[l] / sl2[l] : 0.0f;
        best[l] = scale[l] * slx[l];
    }
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        for (int l = 0; l < LANES; l++) {
            iscale[l] = -(nmax + 0.1f * is) / max[l];
            slx[l] = sl2[l] = 0;
        }
        for (int i = 0; i < n; i++) {
            for (int l = 0; l < LANES; l++) {
                const float x = xt[i * LANES + l];
                int q = nearest_int(iscale[l] * x);
                q = QMAX(-nmax, QMIN(nmax - 1, q));
                const float fq = (float)q;
                Laux[i * LANES + l] = fq;
                const float w = x * x;
                slx[l] += w * x * fq;
                sl2[l] += w * fq * fq;
            }
        }
        for (int l = 0; l < LANES; l++) {
            better[l] = (sl2[l] > 0) & (slx[l] * slx[l] > best[l] * sl2[l]);
            const float s = slx[l] / sl2[l];
            scale[l] = better[l] ? s : scale[l];
            best[l] = better[l] ? s * slx[l] : best[l];
        }
        for (int i = 0; i < n; i++)
            for (int l = 0; l < LANES; l++)
                Lf[i * LANES + l] = better[l] ? Laux[i * LANES + l] : Lf[i * LANES + l];
    }
    for (int l = 0; l < LANES; l++) {
        /* the reference returns early for a group under GROUP_MAX_EPS: all L 0, scale 0 */
        better[l] = amax[l] < GROUP_MAX_EPS;
        scale_out[l] = better[l] ? 0.f : scale[l];
    }
    for (int i = 0; i < n; i++)
        for (int l = 0; l < LANES; l++) L[i * LANES + l] = better[l] ? 0 : (int8_t)((int)Lf[i * LANES + l] + nmax);
}

/* make_q3_quants(n, nmax, x, L, do_rmse = true) for LANES groups. The
 * reference stops its refinement passes at the first pass that changes no
 * level; a lane that stopped is left to run the remaining passes, which
 * change nothing either (a pass is a function of the state it did not change). */
static void q3_lanes(int n, int nmax, const float *xt, int8_t *L, float *scale_out) {
    float max[LANES], amax[LANES], iscale[LANES], sumlx[LANES], suml2[LANES];
    float Lf[16 * LANES];
    for (int l = 0; l < LANES; l++) max[l] = amax[l] = 0;
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < LANES; l++) {
            const float x = xt[i * LANES + l], ax = fabsf(x);
            const int gt = ax > amax[l];
            amax[l] = gt ? ax : amax[l];
            max[l] = gt ? x : max[l];
        }
    }
    for (int l = 0; l < LANES; l++) {
        iscale[l] = -nmax / max[l];
        sumlx[l] = suml2[l] = 0;
    }
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < LANES; l++) {
            const float x = xt[i * LANES + l];
            int q = nearest_int(iscale[l] * x);
            q = QMAX(-nmax, QMIN(nmax - 1, q));
            const float fq = (float)q;
            Lf[i * LANES + l] = fq;
            const float w = x * x;
            sumlx[l] += w * x * fq;
            suml2[l] += w * fq * fq;
        }
    }
    for (int itry = 0; itry < 5; ++itry) {
        for (int i = 0; i < n; i++) {
            for (int l = 0; l < LANES; l++) {
                const float x = xt[i * LANES + l], w = x * x, li = Lf[i * LANES + l];
                float slx = sumlx[l] - w * x * li;
                float sl2 = suml2[l] - w * li * li;
                int nl = nearest_int(x * sl2 / slx);
                nl = QMAX(-nmax, QMIN(nmax - 1, nl));
                const float fnl = (float)nl;
                slx += w * x * fnl;
                sl2 += w * fnl * fnl;
                const int take = (sumlx[l] - w * x * li > 0) & (fnl != li) & (sl2 > 0) &
                                 (slx * slx * suml2[l] > sumlx[l] * sumlx[l] * sl2);
                Lf[i * LANES + l] = take ? fnl : li;
                sumlx[l] = take ? slx : sumlx[l];
                suml2[l] = take ? sl2 : suml2[l];
            }
        }
    }
    for (int l = 0; l < LANES; l++) {
        const int zero = amax[l] < GROUP_MAX_EPS;   /* the reference returns early: all L 0 */
        scale_out[l] = zero ? 0.f : suml2[l] > 0.0f ? sumlx[l] / suml2[l] : 0.0f;
        iscale[l] = zero;   /* reused as the flag */
    }
    for (int i = 0; i < n; i++)
        for (int l = 0; l < LANES; l++) L[i * LANES + l] = iscale[l] != 0 ? 0 : (int8_t)((int)Lf[i * LANES + l] + nmax);
}

/* xt[i][l] = x[l*n + i] for the LANES groups of n values at x (ng of them real,
 * the rest zero). */
static void transpose_in(const float *x, int n, int ng, float *xt) {
    for (int l = 0; l < LANES; l++)
        for (int i = 0; i < n; i++) xt[i * LANES + l] = l < ng ? x[l * n + i] : 0.f;
}

static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

/* ---- K-quants (super-blocks of 256) ---- */

static void q2_k_row(const float *x, ckq_q2_k *y, int64_t k) {
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K], Lt[16 * LANES];
    float xt[16 * LANES], wt[16 * LANES], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++) {
        /* the 16 groups of 16 of one super-block are the 16 lanes */
        transpose_in(x, 16, 16, xt);
        for (int j = 0; j < 16 * LANES; j++) wt[j] = fabsf(xt[j]);
        qkx2_lanes(16, 3, xt, wt, Lt, scales, mins, -0.5f, 0.1f, 15, 1);
        for (int j = 0; j < QK_K / 16; ++j)
            for (int l = 0; l < 16; ++l) L[16 * j + l] = Lt[l * LANES + j];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            float scale = scales[j];
            if (scale > max_scale) max_scale = scale;
            float min = mins[j];
            if (min > max_min) max_min = min;
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                int l = nearest_int(iscale * scales[j]);
                y[i].scales[j] = l;
            }
            y[i].d = FP16(max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = 0;
            y[i].d = FP16(0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) {
                int l = nearest_int(iscale * mins[j]);
                y[i].scales[j] |= (l << 4);
            }
            y[i].dmin = FP16(max_min / q4scale);
        } else {
            y[i].dmin = FP16(0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = F32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = F32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int((x[16 * j + ii] + dm) / d);
                l = QMAX(0, QMIN(3, l));
                L[16 * j + ii] = l;
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
        x += QK_K;
    }
}

static void q3_k_row(const float *x, ckq_q3_k *y, int64_t k) {
    const int64_t nb = k / QK_K;
    int8_t L[QK_K], Lt[16 * LANES];
    float scales[QK_K / 16], xt[16 * LANES];
    for (int64_t i = 0; i < nb; i++) {
        /* the 16 groups of 16 of one super-block are the 16 lanes */
        transpose_in(x, 16, 16, xt);
        q3_lanes(16, 4, xt, Lt, scales);
        for (int j = 0; j < QK_K / 16; ++j)
            for (int l = 0; l < 16; ++l) L[16 * j + l] = Lt[l * LANES + j];
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            float scale = fabsf(scales[j]);
            if (scale > amax) { amax = scale; max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                int8_t l = nearest_int(iscale * scales[j]);
                l = QMAX(-32, QMIN(31, l)) + 32;
                if (j < 8) y[i].scales[j] = l & 0xF;
                else y[i].scales[j - 8] |= ((l & 0xF) << 4);
                l >>= 4;
                y[i].scales[j % 4 + 8] |= (l << (2 * (j / 4)));
            }
            y[i].d = FP16(1 / iscale);
        } else {
            y[i].d = FP16(0.f);
        }
        int8_t sc;
        for (int j = 0; j < QK_K / 16; ++j) {
            sc = j < 8 ? y[i].scales[j] & 0xF : y[i].scales[j - 8] >> 4;
            sc = (sc | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            float d = F32(y[i].d) * sc;
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                l = QMAX(-4, QMIN(3, l));
                L[16 * j + ii] = l + 4;
            }
        }
        /* high bit of value j -> bit j/32 of hmask[j%32] (the reference's loop,
         * without its data-dependent branch) */
        memset(y[i].hmask, 0, QK_K / 8);
        for (int j = 0; j < QK_K; ++j) {
            const int hi = L[j] > 3;
            y[i].hmask[j & 31] |= (uint8_t)(hi << (j >> 5));
            L[j] -= (int8_t)(4 * hi);
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
        x += QK_K;
    }
}

/* Q4_K and Q5_K share everything but the bit width and the search range:
 * quantize_row_q4_K_ref / quantize_row_q5_K_ref. */
static void q45_k_blocks(const float *x, uint8_t *out, int64_t k, int q5) {
    const int64_t nb = k / QK_K;
    const int nmax = q5 ? 31 : 15, nstep = q5 ? 15 : 20;
    const float rmin = q5 ? -0.5f : -1.f;
    const size_t bsize = q5 ? sizeof(ckq_q5_k) : sizeof(ckq_q4_k);
    float xt[32 * LANES], wt[32 * LANES], sc_all[LANES], mn_all[LANES], sum_x2[LANES], av_x[LANES];
    uint8_t Lt[32 * LANES], L[QK_K];
    for (int64_t i0 = 0; i0 < nb; i0 += LANES / 8) {
        /* the 8 sub-blocks of 32 of LANES/8 super-blocks are the lanes */
        const int nsb = nb - i0 >= LANES / 8 ? LANES / 8 : (int)(nb - i0);
        transpose_in(x + i0 * QK_K, 32, 8 * nsb, xt);
        for (int l = 0; l < LANES; l++) sum_x2[l] = 0;
        for (int i = 0; i < 32; i++)
            for (int l = 0; l < LANES; l++) sum_x2[l] += xt[i * LANES + l] * xt[i * LANES + l];
        for (int l = 0; l < LANES; l++) av_x[l] = sqrtf(sum_x2[l] / 32);
        for (int i = 0; i < 32; i++)
            for (int l = 0; l < LANES; l++) wt[i * LANES + l] = av_x[l] + fabsf(xt[i * LANES + l]);
        qkx2_lanes(32, nmax, xt, wt, Lt, sc_all, mn_all, rmin, 0.1f, nstep, 0);
        for (int s = 0; s < nsb; s++) {
            const float *xb = x + (i0 + s) * QK_K;
            const float *scales = sc_all + 8 * s, *mins = mn_all + 8 * s;
            /* the fp16 fields sit at the same offsets in both formats */
            ckq_q4_k *y = (ckq_q4_k *)(out + (size_t)(i0 + s) * bsize);
            for (int j = 0; j < 8; ++j)
                for (int ii = 0; ii < 32; ++ii) L[32 * j + ii] = Lt[ii * LANES + 8 * s + j];
            float max_scale = 0, max_min = 0;
            for (int j = 0; j < QK_K / 32; ++j) {
                float scale = scales[j];
                if (scale > max_scale) max_scale = scale;
                float min = mins[j];
                if (min > max_min) max_min = min;
            }
            uint8_t sc12[12];
            float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
            float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
            for (int j = 0; j < QK_K / 32; ++j) {
                uint8_t ls = nearest_int(inv_scale * scales[j]);
                uint8_t lm = nearest_int(inv_min * mins[j]);
                ls = QMIN(63, ls);
                lm = QMIN(63, lm);
                if (j < 4) {
                    sc12[j] = ls;
                    sc12[j + 4] = lm;
                } else {
                    sc12[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                    sc12[j - 4] |= ((ls >> 4) << 6);
                    sc12[j - 0] |= ((lm >> 4) << 6);
                }
            }
            const uint16_t d16 = FP16(max_scale / 63.f), dmin16 = FP16(max_min / 63.f);
            uint8_t sc, m;
            for (int j = 0; j < QK_K / 32; ++j) {
                get_scale_min_k4(j, sc12, &sc, &m);
                const float d = F32(d16) * sc;
                if (!d) continue;
                const float dm = F32(dmin16) * m;
                for (int ii = 0; ii < 32; ++ii) {
                    int l = nearest_int((xb[32 * j + ii] + dm) / d);
                    l = QMAX(0, QMIN(nmax, l));
                    L[32 * j + ii] = l;
                }
            }
            if (!q5) {
                y->d = d16;
                y->dmin = dmin16;
                memcpy(y->scales, sc12, 12);
                uint8_t *q = y->qs;
                for (int j = 0; j < QK_K; j += 64) {
                    for (int l = 0; l < 32; ++l) q[l] = L[j + l] | (L[j + l + 32] << 4);
                    q += 32;
                }
            } else {
                ckq_q5_k *y5 = (ckq_q5_k *)y;
                y5->d = d16;
                y5->dmin = dmin16;
                memcpy(y5->scales, sc12, 12);
                uint8_t *qh = y5->qh, *ql = y5->qs;
                memset(qh, 0, QK_K / 8);
                uint8_t m1 = 1, m2 = 2;
                for (int n = 0; n < QK_K; n += 64) {
                    for (int j = 0; j < 32; ++j) {
                        const int l1 = L[n + j], l2 = L[n + j + 32];
                        qh[j] |= (uint8_t)((l1 > 15 ? m1 : 0) | (l2 > 15 ? m2 : 0));
                        ql[j] = (uint8_t)((l1 & 15) | ((l2 & 15) << 4));
                    }
                    m1 <<= 2;
                    m2 <<= 2;
                    ql += 32;
                }
            }
        }
    }
}

static void q6_k_row(const float *x, ckq_q6_k *y, int64_t k) {
    const int64_t nb = k / QK_K;
    int8_t L[QK_K], Lt[16 * LANES];
    float scales[QK_K / 16], xt[16 * LANES];
    for (int64_t i = 0; i < nb; i++) {
        /* the 16 groups of 16 of one super-block are the 16 lanes */
        transpose_in(x, 16, 16, xt);
        qx_lanes(16, 32, xt, Lt, scales);
        for (int ib = 0; ib < QK_K / 16; ++ib)
            for (int l = 0; l < 16; ++l) L[16 * ib + l] = Lt[l * LANES + ib];
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float scale = scales[ib];
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(ckq_q6_k));
            y[i].d = FP16(0.f);
            x += QK_K;
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = FP16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = QMIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; ++j) {
            float d = F32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                l = QMAX(-32, QMIN(31, l));
                L[16 * j + ii] = l + 32;
            }
        }
        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF;
                const uint8_t q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF;
                const uint8_t q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = q1 | (q3 << 4);
                ql[l + 32] = q2 | (q4 << 4);
                qh[l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                        ((L[j + l + 96] >> 4) << 6);
            }
            ql += 64;
            qh += 32;
        }
        x += QK_K;
    }
}

/* ---- 16-bit formats ---- */

/* ggml_compute_fp32_to_bf16 (= gguf-py's BF16.quantize_blocks): NaN made
 * quiet, otherwise round to nearest even on the high half. */
static void bf16_row(const float *x, uint16_t *y, int64_t k) {
    for (int64_t i = 0; i < k; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) y[i] = (uint16_t)((u >> 16) | 64);
        else y[i] = (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
    }
}

static void f16_row(const float *x, uint16_t *y, int64_t k) {
    for (int64_t i = 0; i < k; i++) y[i] = ck_fp32_to_fp16(x[i]);
}

#define QZ_CAT2(a, b) a##_##b
#define QZ_CAT(a, b) QZ_CAT2(a, b)

int64_t QZ_CAT(ck_quantize_rows, QZ_SFX)(int fmt, const float *x, void *out, int64_t rows, int64_t K) {
    const int be = qk_block_elems(fmt);
    if (!x || !out || rows < 0 || K <= 0 || be == 0 || K % be || fmt == CK_QTYPE_Q8_1 || fmt == CK_QTYPE_Q8_K)
        return CK_ERR_ARG;
    const int64_t rb = K / be * qk_block_bytes(fmt);
    /* K-quant rows are whole super-blocks back to back on both sides: one flat
     * run fills every lane even for K = 256 */
    switch (fmt) {
    case CK_QTYPE_Q2_K: q2_k_row(x, out, rows * K); return rows * rb;
    case CK_QTYPE_Q3_K: q3_k_row(x, out, rows * K); return rows * rb;
    case CK_QTYPE_Q4_K: q45_k_blocks(x, out, rows * K, 0); return rows * rb;
    case CK_QTYPE_Q5_K: q45_k_blocks(x, out, rows * K, 1); return rows * rb;
    case CK_QTYPE_Q6_K: q6_k_row(x, out, rows * K); return rows * rb;
    default: break;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * K;
        void *yr = (uint8_t *)out + r * rb;
        switch (fmt) {
        case CK_QTYPE_F32: memcpy(yr, xr, (size_t)K * 4); break;
        case CK_QTYPE_F16: f16_row(xr, yr, K); break;
        case CK_QTYPE_BF16: bf16_row(xr, yr, K); break;
        case CK_QTYPE_Q4_0: q4_0_row(xr, yr, K); break;
        case CK_QTYPE_Q4_1: q4_1_row(xr, yr, K); break;
        case CK_QTYPE_Q5_0: q5_0_row(xr, yr, K); break;
        case CK_QTYPE_Q5_1: q5_1_row(xr, yr, K); break;
        case CK_QTYPE_Q8_0: q8_0_row(xr, yr, K); break;
        default: return CK_ERR_ARG;
        }
    }
    return rows * rb;
}
