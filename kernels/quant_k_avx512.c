/* K-quant GEMM / GEMV, AVX-512 variant (see ckernels.h, section quant_k).
 *
 * One weight super-block is unpacked into registers: 4 zmm of unsigned 8-bit
 * quants (values in order), 4 zmm of int16 group scales (one per pair of
 * values, the layout vpmaddwd wants), the 16 int16 mins and two floats. It
 * then feeds up to CKQ_MT activation rows, one float step per super-block:
 *  - AVX-512 VNNI: per 64 values one vpdpbusd (u8 quant × s8 activation, 4
 *    products per int32 lane: |sum| <= 4·63·127 < 2^15), two such vectors
 *    narrowed by one vpackssdw (exact) and one vpdpwssd (× group scale,
 *    accumulate): 3 multiply uops per 128 values;
 *  - AVX-512BW: per 64 values vpmaddubsw (int16 pair sums, at most 2·63·127,
 *    no saturation), vpmaddwd (× group scale) and vpaddd.
 * The row kernels are compiled twice from quant_k_avx512_rows.h: plain
 * AVX-512BW, and under #pragma GCC target("avx512vnni") (the target attribute
 * for every function of that copy), picked at run time by CK_CPU_AVX512VNNI.
 */
#include <immintrin.h>
#include <stdatomic.h>

#include "ckernels.h"
#include "internal/quant_k.h"

#define CKQ_INLINE static inline __attribute__((always_inline))

typedef struct {
    __m512i q[4];    /* values 64k .. 64k+63, unsigned */
    __m512i sc[4];   /* int16 lane j of q[k]'s pairs: scale of group 4k + j/8 */
    __m512i scp[2];  /* the same scales in the lane order of packs(dpbusd(q[2j]), dpbusd(q[2j+1])) */
    __m256i mn;      /* 16 int16 group mins (pair with Q8_K bsums) */
    float d, dm;
    __m512 mnf;      /* dm·mn as floats (pairs with the activations' bsf) */
    __m256i gs;      /* 16 int16 group scales (tiled path) */
} ckq_ub512;

/* Scale lanes for the VNNI path: vpdpbusd sums 4 values into an int32 lane
 * (group = lane / 4 of a 64-value vector); vpackssdw of two such vectors
 * (values 128j .. 128j+63 and the next 64) interleaves them per 128-bit lane
 * L as [4 lanes of the first, 4 of the second], i.e. groups 8j + L and
 * 8j + 4 + L; vpdpwssd then multiplies pairs by these per-group scales. */
static const int16_t ckq_pidx16[2][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
    {8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13, 10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15},
};
/* the same for scales per 32-group (index / 2) */
static const int16_t ckq_pidx32[2][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3},
    {4, 4, 4, 4, 6, 6, 6, 6, 4, 4, 4, 4, 6, 6, 6, 6, 5, 5, 5, 5, 7, 7, 7, 7, 5, 5, 5, 5, 7, 7, 7, 7},
};

/* scales per 16-group (gs16) -> pair-lane scale vectors (the unused set is
 * dropped by the compiler in each copy of the row kernels) */
CKQ_INLINE void ckq_scales16(__m256i gs16, ckq_ub512 *u) {
    const __m512i g = _mm512_castsi256_si512(gs16);
    u->gs = gs16;
    for (int j = 0; j < 2; j++) u->scp[j] = _mm512_permutexvar_epi16(_mm512_load_si512(ckq_pidx16[j]), g);
    const __m512i base = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2,
                                          1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int k = 0; k < 4; k++)
        u->sc[k] = _mm512_permutexvar_epi16(_mm512_add_epi16(base, _mm512_set1_epi16((short)(4 * k))), g);
}

/* scales per 32-group (Q4_K / Q5_K: s8 = 8 int16 in the low lanes) */
CKQ_INLINE void ckq_scales32(__m256i s8, ckq_ub512 *u) {
    const __m512i g = _mm512_castsi256_si512(s8);
    u->gs = _mm256_permutexvar_epi16(_mm256_set_epi16(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0), s8);
    for (int j = 0; j < 2; j++) u->scp[j] = _mm512_permutexvar_epi16(_mm512_load_si512(ckq_pidx32[j]), g);
    const __m512i base = _mm512_set_epi16(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int k = 0; k < 4; k++)
        u->sc[k] = _mm512_permutexvar_epi16(_mm512_add_epi16(base, _mm512_set1_epi16((short)(2 * k))), g);
}

/* bytes of a 32-byte vector in both halves of a zmm */
CKQ_INLINE __m512i ckq_dup256(const void *p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

/* 2-bit fields: zmm k = values 64k.., from qs[32·(k/2)] shifted by 2·s, s = 2(k%2) (+1 upper half) */
CKQ_INLINE void ckq_q2bits(const uint8_t *qs, ckq_ub512 *u) {
    for (int k = 0; k < 4; k++) {
        const __m512i v = ckq_dup256(qs + 32 * (k / 2));
        const short s0 = (short)(4 * (k % 2));
        const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(s0), _mm256_set1_epi16((short)(s0 + 2)), 1);
        u->q[k] = _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(3));
    }
}

CKQ_INLINE void ckq_unpack_q2_k(const ckq_q2_k *b, ckq_ub512 *u) {
    ckq_q2bits(b->qs, u);
    const __m128i s = _mm_loadu_si128((const __m128i *)b->scales);
    const __m128i lo = _mm_and_si128(s, _mm_set1_epi8(15));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(15));
    ckq_scales16(_mm256_cvtepu8_epi16(lo), u);
    u->mn = _mm256_cvtepu8_epi16(hi);
    u->d = ck_fp16_to_fp32(b->d);
    u->dm = -ck_fp16_to_fp32(b->dmin);
}

CKQ_INLINE void ckq_unpack_q3_k(const ckq_q3_k *b, ckq_ub512 *u) {
    ckq_q2bits(b->qs, u);
    const __m512i hm = ckq_dup256(b->hmask);
    for (int k = 0; k < 4; k++) {
        const int bit = 4 * (k / 2) + 2 * (k % 2);
        const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << bit)),
                                               _mm256_set1_epi8((char)(1 << (bit + 1))), 1);
        const __mmask64 h = _mm512_test_epi8_mask(hm, sel);
        u->q[k] = _mm512_or_si512(u->q[k], _mm512_maskz_mov_epi8(h, _mm512_set1_epi8(4)));
    }
    int8_t sc[16];
    ckq_unpack_k3_scales(b->scales, sc);
    const __m256i g = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
    ckq_scales16(g, u);
    u->mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(g, 2));
    u->d = u->dm = ck_fp16_to_fp32(b->d);
}

CKQ_INLINE void ckq_k4_scales(const uint8_t *scales, uint16_t d, uint16_t dmin, ckq_ub512 *u) {
    const __m256i s = _mm256_cvtepu8_epi16(ckq_k4_scales_sse(scales));   /* sc0..7, m0..7 */
    ckq_scales32(s, u);
    const __m256i idx = _mm256_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    u->mn = _mm256_permutexvar_epi16(idx, s);
    u->d = ck_fp16_to_fp32(d);
    u->dm = -ck_fp16_to_fp32(dmin);
}

CKQ_INLINE void ckq_nibbles(const uint8_t *qs, ckq_ub512 *u) {
    for (int c = 0; c < 4; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
        u->q[c] = _mm512_and_si512(z, _mm512_set1_epi8(15));
    }
}

CKQ_INLINE void ckq_unpack_q4_k(const ckq_q4_k *b, ckq_ub512 *u) {
    ckq_nibbles(b->qs, u);
    ckq_k4_scales(b->scales, b->d, b->dmin, u);
}

CKQ_INLINE void ckq_unpack_q5_k(const ckq_q5_k *b, ckq_ub512 *u) {
    ckq_nibbles(b->qs, u);
    const __m512i qh = ckq_dup256(b->qh);
    for (int c = 0; c < 4; c++) {
        const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
                                               _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
        const __mmask64 h = _mm512_test_epi8_mask(qh, sel);
        u->q[c] = _mm512_or_si512(u->q[c], _mm512_maskz_mov_epi8(h, _mm512_set1_epi8(16)));
    }
    ckq_k4_scales(b->scales, b->d, b->dmin, u);
}

CKQ_INLINE void ckq_unpack_q6_k(const ckq_q6_k *b, ckq_ub512 *u) {
    for (int k = 0; k < 4; k++) {
        const int h = k / 2;
        const __m512i L = _mm512_loadu_si512((const void *)(b->ql + 64 * h));
        const __m512i lo = _mm512_and_si512(k % 2 ? _mm512_srli_epi16(L, 4) : L, _mm512_set1_epi8(15));
        const __m512i qh = ckq_dup256(b->qh + 32 * h);
        /* bits 2r, 2r+1 of qh -> bits 4, 5: r = 0, 1 (k even) shift left 4, 2; r = 2, 3: right 0, 2 */
        const __m512i hb = k % 2 ? _mm512_srlv_epi16(qh, _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1))
                                 : _mm512_sllv_epi16(qh, _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1));
        u->q[k] = _mm512_or_si512(lo, _mm512_and_si512(hb, _mm512_set1_epi8(0x30)));
    }
    const __m256i g = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
    ckq_scales16(g, u);
    u->mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(g, 5));
    u->d = u->dm = ck_fp16_to_fp32(b->d);
}

#define CKQ_MT 8   /* at most 8: the row kernels have cases 1..8 */

/* row kernels: AVX-512BW copy, then the VNNI copy */
#define CKQ_R_SFX bw
#define CKQ_DPWSSD(acc, a, b) _mm512_add_epi32((acc), _mm512_madd_epi16((a), (b)))
#include "internal/quant_k_avx512_rows.h"
#undef CKQ_R_SFX
#undef CKQ_DPWSSD

#pragma GCC push_options
#pragma GCC target("avx512vnni")
#define CKQ_R_SFX vnni
#define CKQ_DPBUSD 1
#include "internal/quant_k_avx512_rows.h"
#undef CKQ_R_SFX
#undef CKQ_DPBUSD
#pragma GCC pop_options

static ckq_rows_fn ckq_rows_bw(int fmt) {
    switch (fmt) {
    case 10: return ckq_rows_q2_k_bw;
    case 11: return ckq_rows_q3_k_bw;
    case 12: return ckq_rows_q4_k_bw;
    case 13: return ckq_rows_q5_k_bw;
    default: return ckq_rows_q6_k_bw;
    }
}

static int ckq_vnni(void) {
    /* cpuid traps to the hypervisor in a VM: ask once (every thread gets the same answer) */
    static atomic_int vnni = -1;
    int v = atomic_load_explicit(&vnni, memory_order_relaxed);
    if (v < 0) {
        v = (ck_cpu_features() & CK_CPU_AVX512VNNI) != 0;
        atomic_store_explicit(&vnni, v, memory_order_relaxed);
    }
    return v;
}

static ckq_rows_fn ckq_rows(int fmt) {
    if (!ckq_vnni()) return ckq_rows_bw(fmt);
    switch (fmt) {
    case 10: return ckq_rows_q2_k_vnni;
    case 11: return ckq_rows_q3_k_vnni;
    case 12: return ckq_rows_q4_k_vnni;
    case 13: return ckq_rows_q5_k_vnni;
    default: return ckq_rows_q6_k_vnni;
    }
}

/* ---- activation quantizer: 16 zmm of floats -> 256 int8, bit for bit the scalar one ---- */
static void ckq_quantize_block(const float *x, ckq_q8_k *q) {
    __m512 v[16];
    __m512 amax = _mm512_setzero_ps();
    for (int i = 0; i < 16; i++) {
        v[i] = _mm512_loadu_ps(x + 16 * i);
        amax = _mm512_max_ps(amax, _mm512_abs_ps(v[i]));
    }
    const float m = _mm512_reduce_max_ps(amax);
    if (m == 0.0f) {
        memset(q, 0, sizeof(*q));
        return;
    }
    const __m512 id = _mm512_set1_ps(127.0f / m);
    int sums[16];
    for (int i = 0; i < 16; i++) {
        /* round half to even (MXCSR default), as nearbyintf; |x·id| <= 127 (+ rounding) */
        __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(v[i], id));
        r = _mm512_max_epi32(_mm512_min_epi32(r, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
        _mm_store_si128((__m128i *)(q->qs + 16 * i), _mm512_cvtepi32_epi8(r));
        sums[i] = _mm512_reduce_add_epi32(r);
    }
    for (int i = 0; i < 16; i++) q->bsums[i] = (int16_t)sums[i];
    q->d = m / 127.0f;
    const __m512i b32 = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)q->bsums));
    _mm512_store_ps(q->bsf, _mm512_mul_ps(_mm512_set1_ps(q->d), _mm512_cvtepi32_ps(b32)));
}


/* ---- tiled path (VNNI, M >= CKQ_TILED_MIN_M): 8 weight rows × 16 tokens per micro-tile ----
 * The row kernels re-read each activation block per weight row; here 16
 * tokens sit in the lanes of one zmm (transposed: 4 consecutive values of a
 * token per int32 lane) and one weight row's 4 quants are broadcast, so one
 * vpdpbusd does 64 multiply-adds for 16 outputs, with no packing or pair
 * shuffles. Per 16-value group: 4 vpdpbusd per row, then the group scale and
 * min in fp32 (d·gs·isum + dm·mn·bsum, one vcvtdq2ps and two FMAs per row),
 * and the token scales dx once per super-block. Weights are unpacked once per
 * call per 8-row group (the thread's ckq_wt buffer), activations transposed
 * once per call. */
typedef void (*ckq_wt_fn)(const void *blk, ckq_wt *out);
#define CKQ_WT(fmtname, blk_t)                                                                  \
    static void ckq_wt_##fmtname(const void *blk, ckq_wt *o) {                                    \
        ckq_ub512 u;                                                                           \
        ckq_unpack_##fmtname((const blk_t *)blk, &u);                                          \
        for (int k = 0; k < 4; k++) _mm512_store_si512((void *)(o->q + 64 * k), u.q[k]);      \
        _mm512_store_ps(o->gsf, _mm512_mul_ps(_mm512_set1_ps(u.d),                             \
                                              _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(u.gs)))); \
        _mm512_store_ps(o->mnf, _mm512_mul_ps(_mm512_set1_ps(u.dm),                            \
                                              _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(u.mn)))); \
    }
CKQ_WT(q2_k, ckq_q2_k)
CKQ_WT(q3_k, ckq_q3_k)
CKQ_WT(q4_k, ckq_q4_k)
CKQ_WT(q5_k, ckq_q5_k)
CKQ_WT(q6_k, ckq_q6_k)

static ckq_wt_fn ckq_wt_of(int fmt) {
    switch (fmt) {
    case 10: return ckq_wt_q2_k;
    case 11: return ckq_wt_q3_k;
    case 12: return ckq_wt_q4_k;
    case 13: return ckq_wt_q5_k;
    default: return ckq_wt_q6_k;
    }
}

typedef struct {
    int fmt;
    const ckq_q8_k *xq;
    ckq_xt *xt;
    ckq_wt *wt;          /* nth buffers of 8·nb */
    const char *W;
    size_t row_bytes, bb;
    const float *b;
    float *y;
    long M, N, nb, tiles;
    int acc;
    atomic_long next;    /* next 8-row group to claim */
} ckq_tjob;

static void ckq_transpose_task(void *vp, int ith, int nth) {
    const ckq_tjob *j = (const ckq_tjob *)vp;
    long i0, i1;
    ck_split_range(j->tiles * j->nb, 1, ith, nth, &i0, &i1);
    for (long i = i0; i < i1; i++) {
        const long T = i / j->nb, b = i % j->nb;
        ckq_xt *o = j->xt + i;
        for (int t = 0; t < 16; t++) {
            const long m = 16 * T + t;
            if (m >= j->M) {
                for (int k4 = 0; k4 < 64; k4++) memset(o->q[k4][t], 0, 4);
                o->dx[t] = 0.0f;
                for (int g = 0; g < 16; g++) o->bsum[g][t] = 0.0f;
                continue;
            }
            const ckq_q8_k *src = j->xq + m * j->nb + b;
            for (int k4 = 0; k4 < 64; k4++) memcpy(o->q[k4][t], src->qs + 4 * k4, 4);
            o->dx[t] = src->d;
            for (int g = 0; g < 16; g++) o->bsum[g][t] = (float)src->bsums[g];
        }
    }
}

/* 8 weight rows (wt[r·nb + b]) × one 16-token tile over all super-blocks -> out[r] (lanes = tokens).
 * SUB = values per scale group: 16, or 32 for Q4_K / Q5_K (one float step per 32 values). */
#define CKQ_TILE_FN(SUB)                                                                                       \
    __attribute__((target("avx512vnni"))) static void ckq_tile8x16_##SUB(const ckq_wt *wt, const ckq_xt *xt,   \
                                                                           long nb, __m512 *out) {             \
        __m512 accf[8];                                                                                        \
        _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) accf[r] = _mm512_setzero_ps();                     \
        for (long b = 0; b < nb; b++) {                                                                        \
            const ckq_xt *x = xt + b;                                                                          \
            const ckq_wt *w = wt + b;                                                                          \
            __m512 bacc[8];                                                                                    \
            _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) bacc[r] = _mm512_setzero_ps();                 \
            for (int g = 0; g < 256 / (SUB); g++) {                                                            \
                __m512i isum[8];                                                                               \
                _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) isum[r] = _mm512_setzero_si512();          \
                _Pragma("GCC unroll 8") for (int kk = 0; kk < (SUB) / 4; kk++) {                               \
                    const int k4 = (SUB) / 4 * g + kk;                                                         \
                    const __m512i xv = _mm512_load_si512((const void *)x->q[k4]);                              \
                    _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) {                                      \
                        int32_t wq;                                                                            \
                        memcpy(&wq, w[r * nb].q + 4 * k4, 4);                                                  \
                        isum[r] = _mm512_dpbusd_epi32(isum[r], _mm512_set1_epi32(wq), xv);                     \
                    }                                                                                          \
                }                                                                                              \
                const int g16 = (SUB) / 16 * g;                                                                \
                _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) bacc[r] =                                  \
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_set1_ps(w[r * nb].gsf[g16]), bacc[r]); \
                _Pragma("GCC unroll 2") for (int h = g16; h < g16 + (SUB) / 16; h++) {                         \
                    const __m512 bs = _mm512_load_ps(x->bsum[h]);                                              \
                    _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) bacc[r] =                              \
                        _mm512_fmadd_ps(_mm512_set1_ps(w[r * nb].mnf[h]), bs, bacc[r]);                        \
                }                                                                                              \
            }                                                                                                  \
            const __m512 dx = _mm512_load_ps(x->dx);                                                           \
            _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) accf[r] = _mm512_fmadd_ps(bacc[r], dx, accf[r]); \
        }                                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) out[r] = accf[r];                                  \
    }
CKQ_TILE_FN(16)
CKQ_TILE_FN(32)

/* 8-row groups claimed dynamically (as ckq_task): each output is one tile's lane */
static void ckq_tiled_task(void *vp, int ith, int nth) {
    (void)nth;
    ckq_tjob *j = (ckq_tjob *)vp;
    ckq_wt *wt = j->wt + (size_t)ith * 8 * j->nb;
    const ckq_wt_fn unpack = ckq_wt_of(j->fmt);
    for (;;) {
        const long ng = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed) * 8;
        if (ng >= j->N) break;
        const int nr = (int)(j->N - ng < 8 ? j->N - ng : 8);
        for (int r = 0; r < 8; r++) {   /* rows past the end repeat the group's last row (not stored) */
            const char *row = j->W + (ng + (r < nr ? r : nr - 1)) * j->row_bytes;
            for (long b = 0; b < j->nb; b++) unpack(row + b * j->bb, wt + r * j->nb + b);
        }
        for (long T = 0; T < j->tiles; T++) {
            __m512 acc[8];
            if (j->fmt == 12 || j->fmt == 13)   /* Q4_K / Q5_K: one scale per 32 values */
                ckq_tile8x16_32(wt, j->xt + T * j->nb, j->nb, acc);
            else
                ckq_tile8x16_16(wt, j->xt + T * j->nb, j->nb, acc);
            const int nt = (int)(j->M - 16 * T < 16 ? j->M - 16 * T : 16);
            for (int r = 0; r < nr; r++) {
                float v[16] __attribute__((aligned(64)));
                _mm512_store_ps(v, acc[r]);
                const float bias = j->b ? j->b[ng + r] : 0.0f;
                for (int t = 0; t < nt; t++) {
                    float *yp = j->y + (16 * T + t) * j->N + ng + r;
                    const float val = v[t] + bias;
                    *yp = j->acc ? *yp + val : val;
                }
            }
        }
    }
}

static int ckq_vnni(void);
static ckq_rows_fn ckq_rows(int fmt);

static int ckq_tiled_ok(int fmt, ckq_rows_fn fn, long M) {
    return M >= CKQ_TILED_MIN_M && ckq_vnni() && fn == ckq_rows(fmt);
}

static void ckq_tiled_gemm(int fmt, const ckq_q8_k *xq, const void *W, const float *b, float *y, long M, long N,
                           long K, int acc, ck_pool *pool, int nth) {
    const long nb = K / QK_K, tiles = (M + 15) / 16;
    ckq_xt *xt = (ckq_xt *)(xq + M * nb);
    ckq_wt *wt = (ckq_wt *)(xt + tiles * nb);
    ckq_tjob j = {fmt, xq, xt, wt, (const char *)W, ck_qrow_size(fmt, (int)K), (size_t)qk_block_bytes(fmt),
                  b, y, M, N, nb, tiles, acc, 0};
    atomic_store_explicit(&j.next, 0, memory_order_relaxed);
    long most = tiles * nb / 4;
    if (most < 1) most = 1;
    ck_pool_run(pool, nth > most ? (int)most : nth, ckq_transpose_task, &j);
    const long parts = (N + 7) / 8;
    ck_pool_run(pool, nth > parts ? (int)parts : nth, ckq_tiled_task, &j);
}
#define CKQ_HAVE_TILED 1

/* ---- dequantization (embedding): (d·gs)·q − dmin·m in gguf-py's order, mul and sub unfused ---- */
#define CKQ_DQ(fmtname, blk_t, off, has_min)                                                      \
    static void ckq_dq_##fmtname(const void *blk, float *y) {                                       \
        ckq_ub512 u;                                                                             \
        ckq_unpack_##fmtname((const blk_t *)blk, &u);                                            \
        int16_t gs[16], mn[16];                                                                  \
        _mm256_storeu_si256((__m256i *)gs, u.gs);                                                \
        _mm256_storeu_si256((__m256i *)mn, u.mn);                                                \
        for (int k = 0; k < 4; k++) {                                                            \
            /* through memory: extracti32x4 needs a constant lane, which -O2 does not unroll to */ \
            uint8_t qb[64];                                                                      \
            _mm512_storeu_si512((void *)qb, u.q[k]);                                              \
            for (int p = 0; p < 4; p++) {                                                        \
                const int g = 4 * k + p;                                                         \
                const __m512i qi = _mm512_sub_epi32(                                             \
                    _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qb + 16 * p))),     \
                    _mm512_set1_epi32(off));                                                     \
                __m512 w = _mm512_mul_ps(_mm512_set1_ps(u.d * (float)gs[g]), _mm512_cvtepi32_ps(qi)); \
                if (has_min) w = _mm512_sub_ps(w, _mm512_set1_ps(-u.dm * (float)mn[g]));       \
                _mm512_storeu_ps(y + 16 * g, w);                                                 \
            }                                                                                    \
        }                                                                                        \
    }
CKQ_DQ(q2_k, ckq_q2_k, 0, 1)
CKQ_DQ(q3_k, ckq_q3_k, 4, 0)
CKQ_DQ(q4_k, ckq_q4_k, 0, 1)
CKQ_DQ(q5_k, ckq_q5_k, 0, 1)
CKQ_DQ(q6_k, ckq_q6_k, 32, 0)

CKQ_DEQUANT_BLOCK_OF_DQ

#define CKQ_SFX avx512
#include "internal/quant_k_driver.h"

/* The AVX-512BW path, whatever the CPU has (tests reach it on a VNNI machine). */
#define CKQ_DEFINE_BW(fmtname, fmtnum)                                                                 \
    int ck_qgemm_##fmtname##_avx512bw(const float *x, const void *W, const float *b, float *y, int M,   \
                                      int N, int K, int accumulate, void *ws, size_t ws_size,           \
                                      ck_pool *pool, int nth) {                                         \
        return ckq_gemm_with(ckq_rows_bw(fmtnum), fmtnum, x, W, b, y, M, N, K, accumulate, ws, ws_size, \
                             pool, nth);                                                                \
    }
CKQ_DEFINE_BW(q2_k, 10)
CKQ_DEFINE_BW(q3_k, 11)
CKQ_DEFINE_BW(q4_k, 12)
CKQ_DEFINE_BW(q5_k, 13)
CKQ_DEFINE_BW(q6_k, 14)
