/* K-quant block layouts (GGUF / ggml, QK_K = 256 values per super-block) and
 * the pieces every quant_k variant shares. Internal: not part of ckernels.h.
 *
 * The byte layouts are exactly GGUF's (gguf-py quants.py is the reference:
 * Q2_K.dequantize_blocks ... Q6_K.dequantize_blocks); value index v in
 * [0, 256) of a super-block, fp16 fields little-endian IEEE half.
 *
 * Q2_K, 84 bytes:  uint8 scales[16]; uint8 qs[64]; fp16 d; fp16 dmin
 *   16 groups of 16 values, group g = v / 16 has scale scales[g] & 15 and
 *   min scales[g] >> 4.  v = 128c + 32s + l  (c < 2, s < 4, l < 32):
 *   q = (qs[32c + l] >> 2s) & 3;   w = d·(scales[g] & 15)·q − dmin·(scales[g] >> 4)
 *
 * Q3_K, 110 bytes: uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d
 *   16 groups of 16; v = 128c + 32s + l as Q2_K:
 *   q = ((qs[32c + l] >> 2s) & 3) − (bit (4c + s) of hmask[l] ? 0 : 4)   in [−4, 3]
 *   6-bit scales, sc[g] − 32 in [−32, 31]:
 *     low 4 bits:  g < 8: scales[g] & 15,  g >= 8: scales[g − 8] >> 4
 *     high 2 bits: (scales[8 + g % 4] >> 2·(g / 4)) & 3
 *   w = d·(sc[g] − 32)·q
 *
 * Q4_K, 144 bytes: fp16 d; fp16 dmin; uint8 scales[12]; uint8 qs[128]
 *   8 sub-blocks of 32, j = v / 32, 6-bit scale sc[j] and min m[j]:
 *     j < 4:  sc = scales[j] & 63,                        m = scales[j + 4] & 63
 *     j >= 4: sc = (scales[j + 4] & 15) | (scales[j − 4] >> 6) << 4,
 *             m  = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4
 *   v = 64c + 32h + l:  q = (qs[32c + l] >> 4h) & 15   (h = 0: low nibbles)
 *   w = d·sc[j]·q − dmin·m[j]
 *
 * Q5_K, 176 bytes: fp16 d; fp16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]
 *   as Q4_K with a fifth bit: q = ((qs[32c + l] >> 4h) & 15) | ((qh[l] >> j) & 1) << 4
 *
 * Q6_K, 210 bytes: uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d
 *   16 groups of 16 (scale scales[v / 16]); v = 128h + 32r + l (h < 2, r < 4):
 *   low 4 bits  ql[64h + 32(r & 1) + l] >> 4(r >> 1) & 15
 *   high 2 bits (qh[32h + l] >> 2r) & 3
 *   w = d·scales[g]·(q − 32)
 *
 * Every format is evaluated the same way (llama.cpp's approach): a super-block
 * becomes unsigned integers q[256] (0..63), a per-16-group int16 scale gs[16],
 * an int16 "min" mn[16] and two floats d, dm with
 *   w[v] = d·gs[v/16]·q[v] + dm·mn[v/16]
 *   (Q2_K: gs = scales&15, mn = scales>>4, dm = −dmin;  Q3_K: q = q3 + 4, gs = sc−32,
 *    mn = −4·gs, dm = d;  Q4_K/Q5_K: gs = sc[g/2], mn = m[g/2], dm = −dmin;
 *    Q6_K: gs = scales, mn = −32·gs, dm = d)
 * and an activation block (Q8_K: xq[256] int8, scale dx, bsum[16] = the group sums)
 * contributes dx·(d·Σ_g gs[g]·Σ_{v∈g} q[v]·xq[v] + dm·Σ_g mn[g]·bsum[g]): two exact
 * int32 sums (|each| < 2^29) and one float step per super-block (the SIMD
 * variants take the second as Σ_g (dm·mn[g])·bsf[g] in fp32, one FMA).
 */
#ifndef CK_INTERNAL_QUANT_K_H
#define CK_INTERNAL_QUANT_K_H

#include <stdint.h>
#include <string.h>

#include "../include/ckernels.h"
#include "quant_common.h"   /* ck_fp16_to_fp32, qk_block_bytes */

#define QK_K 256

typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } ckq_q2_k;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } ckq_q3_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } ckq_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } ckq_q5_k;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } ckq_q6_k;

_Static_assert(sizeof(ckq_q2_k) == 84, "Q2_K block is 84 bytes");
_Static_assert(sizeof(ckq_q3_k) == 110, "Q3_K block is 110 bytes");
_Static_assert(sizeof(ckq_q4_k) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(ckq_q5_k) == 176, "Q5_K block is 176 bytes");
_Static_assert(sizeof(ckq_q6_k) == 210, "Q6_K block is 210 bytes");
/* fp16 fields at 2-byte alignment: rows of blocks may start anywhere even */
_Static_assert(_Alignof(ckq_q6_k) == 2 && _Alignof(ckq_q3_k) == 2, "blocks are 2-byte aligned");

/* Activations quantized on the fly (internal layout, not GGUF's: 64-byte
 * aligned so the SIMD variants load with aligned loads):
 *   qs[v] = round_half_even(x[v]·127/amax) in [−127, 127], d = amax/127,
 *   bsums[g] = Σ qs[16g .. 16g+15], bsf[g] = d·bsums[g] (fp32: the SIMD
 *   variants fold the min term into one float FMA per super-block)
 *   (amax = max |x| over the 256 values; 0 -> all 0) */
typedef struct {
    int8_t qs[QK_K];
    int16_t bsums[16];
    float d;
    float bsf[16] __attribute__((aligned(64)));
} __attribute__((aligned(64))) ckq_q8_k;
_Static_assert(sizeof(ckq_q8_k) == 384, "Q8_K activation block: 6 cache lines");

/* Row kernel of one format (see quant_k_driver.h). */
typedef void (*ckq_rows_fn)(const void *w, const ckq_q8_k *xq, long nb, int mt, float *out);

/* Q4_K / Q5_K 12-byte scales -> out[0..7] = sc, out[8..15] = m (llama.cpp's utmp trick). */
static inline void ckq_unpack_k4_scales(const uint8_t *s, uint8_t out[16]) {
    uint32_t u[4];
    memcpy(u, s, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    const uint32_t m03 = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = m03;
    u[0] &= k1;
    memcpy(out, u, 16);
}

#if defined(__AVX2__)
#include <immintrin.h>
/* The same with SSE shuffles: bytes 0..7 = sc, 8..15 = m. Reads 16 bytes at s
 * (the 12 scale bytes are followed by the quants in Q4_K and Q5_K blocks).
 *   out[0..3]   = s[0..3] & 63              out[8..11]  = s[4..7] & 63
 *   out[4..7]   = s[8..11] & 15 | (s[0..3] >> 6) << 4
 *   out[12..15] = s[8..11] >> 4 | (s[4..7] >> 6) << 4 */
static inline __m128i ckq_k4_scales_sse(const uint8_t *s) {
    const __m128i v = _mm_loadu_si128((const __m128i *)s);
    const __m128i a = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i hi6 = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i lo = _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    const __m128i top = _mm_and_si128(_mm_srli_epi16(a, 4),
                                      _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    const __m128i hb = _mm_and_si128(_mm_srli_epi16(hi6, 2), _mm_set1_epi8(0x30));
    return _mm_or_si128(_mm_or_si128(lo, top), hb);
}
#endif

/* Q3_K 12-byte scales -> 16 signed scales sc − 32. */
static inline void ckq_unpack_k3_scales(const uint8_t *s, int8_t out[16]) {
    uint32_t a[4];
    memcpy(a, s, 12);
    const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f, t = a[2];
    a[2] = ((a[0] >> 4) & k2) | (((t >> 4) & k1) << 4);
    a[3] = ((a[1] >> 4) & k2) | (((t >> 6) & k1) << 4);
    a[0] = (a[0] & k2) | (((t >> 0) & k1) << 4);
    a[1] = (a[1] & k2) | (((t >> 2) & k1) << 4);
    uint8_t u[16];
    memcpy(u, a, 16);
    for (int i = 0; i < 16; i++) out[i] = (int8_t)(u[i] - 32);
}

/* ckq_dequant_block (see quant_k_driver.h) of a variant file that defines
 * ckq_dq_<fmt>(blk, y) for each format. */
#define CKQ_DEQUANT_BLOCK_OF_DQ                                            \
    static void ckq_dequant_block(int fmt, const void *blk, float *y) {    \
        switch (fmt) {                                                     \
        case CK_QTYPE_Q2_K: ckq_dq_q2_k(blk, y); break;                    \
        case CK_QTYPE_Q3_K: ckq_dq_q3_k(blk, y); break;                    \
        case CK_QTYPE_Q4_K: ckq_dq_q4_k(blk, y); break;                    \
        case CK_QTYPE_Q5_K: ckq_dq_q5_k(blk, y); break;                    \
        default: ckq_dq_q6_k(blk, y); break;                               \
        }                                                                  \
    }

/* Tiled GEMM (AVX-512 VNNI, M >= CKQ_TILED_MIN_M): activations transposed per
 * 16-token tile and super-block for vpdpbusd (q[k/4][token][k%4]), their scales
 * and group sums as floats; weights unpacked once per call into 8-row groups of
 * unsigned quants with float group scales (d·gs) and mins (dm·mn). */
#define CKQ_TILED_MIN_M 16
typedef struct {
    int8_t q[64][16][4];
    float dx[16];
    float bsum[16][16];   /* [group][token] */
} ckq_xt;
typedef struct {
    uint8_t q[QK_K];
    float gsf[16], mnf[16];
} ckq_wt;
_Static_assert(sizeof(ckq_xt) % 64 == 0 && sizeof(ckq_wt) % 64 == 0, "tiles keep 64-byte alignment");

/* Workspace of the quantized GEMMs, 64-byte aligned inside ws: the activations
 * as Q8_K blocks (M rows of K/256 blocks), then the tiled path's transposed
 * activations (ceil(M/16) tiles of K/256) and one 8-row weight group per thread. */
#define CKQ_ALIGN 64
static inline ckq_q8_k *ckq_ws_rows(void *ws) {
    return (ckq_q8_k *)(((uintptr_t)ws + CKQ_ALIGN - 1) & ~(uintptr_t)(CKQ_ALIGN - 1));
}

/* Argument check shared by every ck_qgemm: CK_OK, CK_ERR_ARG or CK_ERR_WORKSPACE. */
static inline int ckq_check(int fmt, int M, int N, int K, void *ws, size_t ws_size, int nth) {
    if (M < 0 || N < 0 || K <= 0 || K % QK_K != 0) return CK_ERR_ARG;
    if (!ws || ws_size < ck_qkgemm_workspace_size(fmt, M, N, K, nth < 1 ? 1 : nth)) return CK_ERR_WORKSPACE;
    return CK_OK;
}

#endif
