/* AVX-512 row kernels of quant_k_avx512.c, included twice: CKQ_R_SFX names the
 * copy (bw | vnni); the bw copy defines CKQ_DPWSSD(acc, pairs, scales) (the
 * int16-pair × scale accumulate: vpmaddwd + vpaddd), the vnni copy
 * CKQ_DPBUSD (vpdpbusd + vpackssdw + vpdpwssd). Internal.
 *
 * rows(w, xq, nb, mt, out): out[i] = Σ_b dot(weight block b, xq[i·nb + b]) for
 * i < mt <= CKQ_MT; the super-block is unpacked once per block for all rows. */
#define CKQ_RCAT2(a, b) a##b
#define CKQ_RCAT(a, b) CKQ_RCAT2(a, b)
#define CKQ_RNAME(stem) CKQ_RCAT(CKQ_RCAT(stem, _), CKQ_R_SFX)

CKQ_INLINE void CKQ_RNAME(ckq_tile)(const ckq_ub512 *u, const ckq_q8_k *xq, long nb, long b, int mt,
                                   __m512 *acc, __m512 *accm) {
#pragma GCC unroll 8
    for (int i = 0; i < mt; i++) {
        const ckq_q8_k *x = xq + i * nb + b;
        __m512i s = _mm512_setzero_si512();
#ifdef CKQ_DPBUSD
        for (int j = 0; j < 2; j++) {
            const __m512i z = _mm512_setzero_si512();
            const __m512i p0 = _mm512_dpbusd_epi32(z, u->q[2 * j], _mm512_load_si512((const void *)(x->qs + 128 * j)));
            const __m512i p1 =
                _mm512_dpbusd_epi32(z, u->q[2 * j + 1], _mm512_load_si512((const void *)(x->qs + 128 * j + 64)));
            s = _mm512_dpwssd_epi32(s, _mm512_packs_epi32(p0, p1), u->scp[j]);
        }
#else
        for (int k = 0; k < 4; k++)
            s = CKQ_DPWSSD(s, _mm512_maddubs_epi16(u->q[k], _mm512_load_si512((const void *)(x->qs + 64 * k))),
                           u->sc[k]);
#endif
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(u->d * x->d), acc[i]);
        accm[i] = _mm512_fmadd_ps(u->mnf, _mm512_load_ps(x->bsf), accm[i]);
    }
}

#ifndef CKQ_PREFETCH_DEFINED
#define CKQ_PREFETCH_DEFINED
/* Software prefetch CKQ_PF_BYTES ahead in the weight stream (rows are back to
 * back, so this runs into the next row): one weight row is a slow, compute-
 * heavy stream that the hardware prefetcher alone does not keep far enough
 * ahead of. Past the end of W it touches nothing (prefetches do not fault). */
#define CKQ_PF_BYTES 2048
CKQ_INLINE void ckq_prefetch_block(const void *blk, size_t bytes) {
    const char *p = (const char *)blk + CKQ_PF_BYTES;
    _mm_prefetch(p, _MM_HINT_T0);
    _mm_prefetch(p + 64, _MM_HINT_T0);
    if (bytes > 128) _mm_prefetch(p + 128, _MM_HINT_T0);
    if (bytes > 192) _mm_prefetch(p + 192, _MM_HINT_T0);
}
#endif

#define CKQ_ROWS_BODY(fmtname, blk_t)                                                                      \
    CKQ_INLINE void CKQ_RNAME(ckq_rows_mt_##fmtname)(const void *w, const ckq_q8_k *xq, long nb, int mt,   \
                                                   float *out) {                                           \
        __m512 acc[8];                                                                                \
        __m512 accm[8];                                                                               \
        _Pragma("GCC unroll 8") for (int i = 0; i < mt; i++) {                                             \
            acc[i] = _mm512_setzero_ps();                                                                  \
            accm[i] = _mm512_setzero_ps();                                                                 \
        }                                                                                                  \
        const blk_t *wb = (const blk_t *)w;                                                                \
        for (long b = 0; b < nb; b++) {                                                                    \
            ckq_prefetch_block(wb + b, sizeof(blk_t));                                                     \
            ckq_ub512 u;                                                                                   \
            ckq_unpack_##fmtname(wb + b, &u);                                                              \
            u.mnf = _mm512_mul_ps(_mm512_set1_ps(u.dm), _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(u.mn)));  \
            CKQ_RNAME(ckq_tile)(&u, xq, nb, b, mt, acc, accm);                                             \
        }                                                                                                  \
        _Pragma("GCC unroll 8") for (int i = 0; i < mt; i++) out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i], accm[i]));        \
    }                                                                                                      \
    static void CKQ_RNAME(ckq_rows_##fmtname)(const void *w, const ckq_q8_k *xq, long nb, int mt,          \
                                             float *out) {                                                 \
        switch (mt) { /* constant row counts: the accumulators stay in registers */                       \
        case 1: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 1, out); break;                               \
        case 2: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 2, out); break;                               \
        case 3: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 3, out); break;                               \
        case 4: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 4, out); break;                               \
        case 5: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 5, out); break;                               \
        case 6: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 6, out); break;                               \
        case 7: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 7, out); break;                               \
        default: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 8, out); break;                              \
        }                                                                                                  \
    }

CKQ_ROWS_BODY(q2_k, ckq_q2_k)
CKQ_ROWS_BODY(q3_k, ckq_q3_k)
CKQ_ROWS_BODY(q4_k, ckq_q4_k)
CKQ_ROWS_BODY(q5_k, ckq_q5_k)
CKQ_ROWS_BODY(q6_k, ckq_q6_k)

#undef CKQ_ROWS_BODY
