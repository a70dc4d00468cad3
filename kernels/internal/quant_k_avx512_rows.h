/* AVX-512 row kernels of quant_k_avx512.c, included twice: CKQ_R_SFX names the
 * copy (bw | vnni) and CKQ_DPWSSD(acc, pairs, scales) is the int16-pair ×
 * scale accumulate (vpmaddwd + vpaddd, or VNNI vpdpwssd). Internal.
 *
 * rows(w, xq, nb, mt, out): out[i] = Σ_b dot(weight block b, xq[i·nb + b]) for
 * i < mt <= CKQ_MT; the super-block is unpacked once per block for all rows. */
#define CKQ_RCAT2(a, b) a##b
#define CKQ_RCAT(a, b) CKQ_RCAT2(a, b)
#define CKQ_RNAME(stem) CKQ_RCAT(CKQ_RCAT(stem, _), CKQ_R_SFX)

CKQ_INLINE void CKQ_RNAME(ckq_tile)(const ckq_ub512 *u, const ckq_q8_k *xq, long nb, long b, int mt,
                                   __m512 *acc, __m256 *accm) {
    for (int i = 0; i < mt; i++) {
        const ckq_q8_k *x = xq + i * nb + b;
        __m512i s = _mm512_setzero_si512();
        for (int k = 0; k < 4; k++)
            s = CKQ_DPWSSD(s, _mm512_maddubs_epi16(u->q[k], _mm512_load_si512((const void *)(x->qs + 64 * k))),
                           u->sc[k]);
        const __m256i ms = _mm256_madd_epi16(u->mn, _mm256_load_si256((const __m256i *)x->bsums));
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(u->d * x->d), acc[i]);
        accm[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_set1_ps(u->dm * x->d), accm[i]);
    }
}

#define CKQ_ROWS_BODY(fmtname, blk_t)                                                                      \
    CKQ_INLINE void CKQ_RNAME(ckq_rows_mt_##fmtname)(const void *w, const ckq_q8_k *xq, long nb, int mt,   \
                                                   float *out) {                                           \
        __m512 acc[CKQ_MT];                                                                                \
        __m256 accm[CKQ_MT];                                                                               \
        for (int i = 0; i < mt; i++) {                                                                     \
            acc[i] = _mm512_setzero_ps();                                                                  \
            accm[i] = _mm256_setzero_ps();                                                                 \
        }                                                                                                  \
        const blk_t *wb = (const blk_t *)w;                                                                \
        for (long b = 0; b < nb; b++) {                                                                    \
            ckq_ub512 u;                                                                                   \
            ckq_unpack_##fmtname(wb + b, &u);                                                              \
            CKQ_RNAME(ckq_tile)(&u, xq, nb, b, mt, acc, accm);                                             \
        }                                                                                                  \
        for (int i = 0; i < mt; i++) out[i] = _mm512_reduce_add_ps(acc[i]) + ckq_hsum256(accm[i]);        \
    }                                                                                                      \
    static void CKQ_RNAME(ckq_rows_##fmtname)(const void *w, const ckq_q8_k *xq, long nb, int mt,          \
                                             float *out) {                                                 \
        switch (mt) { /* constant row counts: the accumulators stay in registers */                       \
        case 1: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 1, out); break;                               \
        case 2: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 2, out); break;                               \
        case 3: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, 3, out); break;                               \
        default: CKQ_RNAME(ckq_rows_mt_##fmtname)(w, xq, nb, CKQ_MT, out); break;                         \
        }                                                                                                  \
    }

CKQ_ROWS_BODY(q2_k, ckq_q2_k)
CKQ_ROWS_BODY(q3_k, ckq_q3_k)
CKQ_ROWS_BODY(q4_k, ckq_q4_k)
CKQ_ROWS_BODY(q5_k, ckq_q5_k)
CKQ_ROWS_BODY(q6_k, ckq_q6_k)

#undef CKQ_ROWS_BODY
