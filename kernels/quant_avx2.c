/* Quantized GEMM / GEMV / embedding, AVX2 variant (see ckernels.h, section
 * quant; the kernel body is internal/quant_simd.h). Tiles of 2 x rows by 4 W
 * rows (16 ymm registers); decode takes 1 x row by 4 W rows. */
#include "ckernels.h"
#include "internal/quant_common.h"

#define QK_SFX avx2
#define QK_VNNI 0
#define QK_ATTR
#define QK_MR 2
#define QK_NR 4
#define QK_MR_MIN 2
#define QK_R8_MR 2
#define QK_NR1 4
#define QK_HMR 2
#define QK_HNR 4
#include "internal/quant_simd.h"

#define ENTRIES(name, FMT)                                                                        \
    QK_ENTRY(ck_qgemm_##name##_avx2, FMT, avx2, 0, qk_quant_row_simd, qk_compute_avx2)            \
    QK_EMB_ENTRY(ck_qembedding_##name##_avx2, FMT)
#define PACKED_ENTRY(name, FMT) \
    QK_ENTRY(ck_qgemm_packed_##name##_avx2, FMT, avx2, 1, qk_quant_row_simd, qk_compute_avx2)

QK_FORMATS(ENTRIES)
QK_PACKED_FORMATS(PACKED_ENTRY)
