/* Private vector layer shared by the *_avx2.c and *_avx512.c kernel files.
 *
 * A SIMD kernel file defines exactly one of CK_SIMD_AVX2 / CK_SIMD_AVX512, then
 * includes this header and the family's template (internal/<family>_simd.h),
 * so both variants are the same source at two widths:
 *   vf          one vector of CK_W floats (8 or 16)
 *   vmask       a lane predicate
 *   CK_FN(op)   op##_avx2 / op##_avx512 (the exported symbol name)
 * Tails are handled with masked loads/stores (v_load_n / v_store_n), so a tail
 * goes through the same arithmetic as the body.
 *
 * Math (float32, lane-wise):
 *   v_exp   Cody-Waite range reduction + Cephes degree-6 polynomial, ~1-2 ulp on
 *           [-87.3, 88]; returns 0 below -87.33 (no subnormals) and +inf above
 *           88.72. v_exp_hl(hi, lo) evaluates exp(hi + lo) for a double-float
 *           argument (lo tiny), used where the argument itself carries error.
 *   v_erfc  erfc(x), relative error <= 1.1e-7 for x >= 0 (Numerical Recipes'
 *           Chebyshev fit, argument -z^2 + P(t) evaluated in double-float);
 *           erfc(-z) = 2 - erfc(z).
 *   v_sigmoid 1/(1 + exp(-x));  v_tanh  Taylor polynomial below |x| = 0.3,
 *           1 - 2/(exp(2|x|) + 1) above (relative error < 4e-7).
 * Not part of the public API; nothing here allocates or keeps state.
 */
#ifndef CK_INTERNAL_SIMD_H
#define CK_INTERNAL_SIMD_H

#include <immintrin.h>
#include <stdint.h>
#include <math.h>
#include "common.h"

#if defined(CK_SIMD_AVX512)
#define CK_W 16
#define CK_FN(name) name##_avx512
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vmask;

static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_set1(float x) { return _mm512_set1_ps(x); }
static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline __mmask16 v_tail(int n) { return (__mmask16)((1u << n) - 1u); }
static inline vmask v_lanes(int n) { return v_tail(n); } /* first n lanes */
/* first n lanes from p, the rest = fill */
static inline vf v_load_nf(const float *p, int n, float fill) { return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), v_tail(n), p); }
static inline vf v_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(v_tail(n), p); }
static inline void v_store_n(float *p, vf v, int n) { _mm512_mask_storeu_ps(p, v_tail(n), v); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf v_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf v_abs(vf a) { return _mm512_abs_ps(a); }
/* a*b + c, c - a*b */
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
/* a*b - c */
static inline vf v_fmsub(vf a, vf b, vf c) { return _mm512_fmsub_ps(a, b, c); }
static inline float v_hsum(vf a) { return _mm512_reduce_add_ps(a); }
static inline float v_hmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline vmask v_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vmask v_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
/* where m: b, else a */
static inline vf v_blend(vmask m, vf a, vf b) { return _mm512_mask_blend_ps(m, a, b); }
static inline vi v_cvt_i(vf a) { return _mm512_cvtps_epi32(a); }
static inline vf v_cvt_f(vi a) { return _mm512_cvtepi32_ps(a); }
static inline vf v_pow2i(vi n) /* 2^n for n in [-126, 127] */
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
}
/* swap adjacent pairs: (x0,x1,x2,x3,..) -> (x1,x0,x3,x2,..) */
static inline vf v_swap_pairs(vf a) { return _mm512_permute_ps(a, 0xB1); }

#elif defined(CK_SIMD_AVX2)
#define CK_W 8
#define CK_FN(name) name##_avx2
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vmask;

static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_set1(float x) { return _mm256_set1_ps(x); }
static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline __m256i v_tail(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vmask v_lanes(int n) { return _mm256_castsi256_ps(v_tail(n)); } /* first n lanes */
static inline vf v_load_nf(const float *p, int n, float fill)
{
    __m256i m = v_tail(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline vf v_load_n(const float *p, int n) { return _mm256_maskload_ps(p, v_tail(n)); }
static inline void v_store_n(float *p, vf v, int n) { _mm256_maskstore_ps(p, v_tail(n), v); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf v_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf v_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf v_fmsub(vf a, vf b, vf c) { return _mm256_fmsub_ps(a, b, c); }
static inline float v_hsum(vf a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float v_hmax(vf a)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline vmask v_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vmask v_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vf v_blend(vmask m, vf a, vf b) { return _mm256_blendv_ps(a, b, m); }
static inline vi v_cvt_i(vf a) { return _mm256_cvtps_epi32(a); }
static inline vf v_cvt_f(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vf v_pow2i(vi n)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}
static inline vf v_swap_pairs(vf a) { return _mm256_permute_ps(a, 0xB1); }

#else
#error "define CK_SIMD_AVX2 or CK_SIMD_AVX512 before including internal/simd.h"
#endif

/* exp(hi + lo), |lo| << 1 ulp-scale of hi (lo = 0 for plain exp). */
static inline vf v_exp_hl(vf x, vf lo)
{
    const vf xmax = v_set1(88.0f), xmin = v_set1(-87.33f);
    vf xc = v_min(v_max(x, xmin), xmax);
    vi n = v_cvt_i(v_mul(xc, v_set1(1.44269504088896341f))); /* round to nearest */
    vf fn = v_cvt_f(n);
    vf r = v_fnmadd(fn, v_set1(0.693359375f), xc);   /* exact (Cody-Waite) */
    r = v_fnmadd(fn, v_set1(-2.12194440e-4f), r);
    r = v_add(r, lo);
    vf p = v_set1(1.9875691500e-4f);
    p = v_fmadd(p, r, v_set1(1.3981999507e-3f));
    p = v_fmadd(p, r, v_set1(8.3334519073e-3f));
    p = v_fmadd(p, r, v_set1(4.1665795894e-2f));
    p = v_fmadd(p, r, v_set1(1.6666665459e-1f));
    p = v_fmadd(p, r, v_set1(5.0000001201e-1f));
    vf y = v_add(v_fmadd(p, v_mul(r, r), r), v_set1(1.0f));
    y = v_mul(y, v_pow2i(n));
    y = v_blend(v_lt(x, xmin), y, v_zero());
    y = v_blend(v_gt(x, v_set1(88.72283f)), y, v_set1(INFINITY));
    return y;
}
static inline vf v_exp(vf x) { return v_exp_hl(x, v_zero()); }

/* 1 / (1 + exp(-x)) */
static inline vf v_sigmoid(vf x)
{
    vf one = v_set1(1.0f);
    return v_div(one, v_add(one, v_exp(v_sub(v_zero(), x))));
}

/* erfc(z) for z >= 0: t = 1/(1+z/2), erfc = t * exp(-z^2 + P(t)). */
static inline vf v_erfc_pos(vf z)
{
    vf one = v_set1(1.0f);
    vf t = v_div(one, v_fmadd(v_set1(0.5f), z, one));
    vf p = v_set1(0.17087277f);
    p = v_fmadd(p, t, v_set1(-0.82215223f));
    p = v_fmadd(p, t, v_set1(1.48851587f));
    p = v_fmadd(p, t, v_set1(-1.13520398f));
    p = v_fmadd(p, t, v_set1(0.27886807f));
    p = v_fmadd(p, t, v_set1(-0.18628806f));
    p = v_fmadd(p, t, v_set1(0.09678418f));
    p = v_fmadd(p, t, v_set1(0.37409196f));
    p = v_fmadd(p, t, v_set1(1.00002368f));
    p = v_fmadd(p, t, v_set1(-1.26551223f));
    /* -z^2 + p as hi + lo: s + e == z*z exactly, then TwoSum(p, -s). */
    vf s = v_mul(z, z);
    vf e = v_fmsub(z, z, s);
    vf ns = v_sub(v_zero(), s);
    vf hi = v_add(p, ns);
    vf bb = v_sub(hi, p);
    vf lo = v_add(v_sub(p, v_sub(hi, bb)), v_sub(ns, bb));
    lo = v_sub(lo, e);
    return v_mul(t, v_exp_hl(hi, lo));
}

/* erfc(x) for any x: erfc(-z) = 2 - erfc(z). */
static inline vf v_erfc(vf x)
{
    vf r = v_erfc_pos(v_abs(x));
    return v_blend(v_lt(x, v_zero()), r, v_sub(v_set1(2.0f), r));
}

/* tanh(x): odd Taylor polynomial (to x^11) for |x| < 0.3 (relative error
 * < 1e-8 there), 1 - 2/(exp(2|x|) + 1) with the sign restored above
 * (absolute error ~1e-7, relative < 4e-7). */
static inline vf v_tanh(vf x)
{
    const vf one = v_set1(1.0f);
    vf ax = v_abs(x);
    vf big = v_sub(one, v_div(v_set1(2.0f), v_add(v_exp(v_add(ax, ax)), one)));
    big = v_blend(v_lt(x, v_zero()), big, v_sub(v_zero(), big));
    vf z2 = v_mul(x, x);
    vf p = v_set1(-1382.0f / 155925.0f);
    p = v_fmadd(p, z2, v_set1(62.0f / 2835.0f));
    p = v_fmadd(p, z2, v_set1(-17.0f / 315.0f));
    p = v_fmadd(p, z2, v_set1(2.0f / 15.0f));
    p = v_fmadd(p, z2, v_set1(-1.0f / 3.0f));
    vf small = v_fmadd(v_mul(p, z2), x, x);
    return v_blend(v_lt(ax, v_set1(0.3f)), big, small);
}

#endif
