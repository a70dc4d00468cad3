/* Quantized GEMM / GEMV / embedding, AVX-512 variant (see ckernels.h, section
 * quant; the kernel body is internal/quant_simd.h). The body is compiled twice:
 * with target("avx512vnni") using vpdpbusd (one instruction per 32-byte block
 * pair), and plain AVX-512BW (vpmaddubsw + vpmaddwd) for CPUs without VNNI;
 * each call picks by ck_cpu_features() & CK_CPU_AVX512VNNI. 32 vector
 * registers: tiles of 4 x rows by 4 W rows (3 x rows for Q4_1/Q5_1), decode
 * 1 x row by 4 W rows; the R8 packed kernel takes 8 x rows by 8 W rows. */
#include "ckernels.h"
#include "internal/quant_common.h"

#define QK_MR 4
#define QK_NR 4
#define QK_MR_MIN 3
#define QK_R8_MR 8
#define QK_NR1 4
#define QK_HMR 4
#define QK_HNR 4

#define QK_SFX avx512_vnni
#define QK_VNNI 1
#define QK_ATTR __attribute__((target("avx512vnni,f16c")))
#include "internal/quant_simd.h"
#undef QK_SFX
#undef QK_VNNI
#undef QK_ATTR

#define QK_SFX avx512_bw
#define QK_VNNI 0
#define QK_ATTR __attribute__((target("f16c")))   /* the CMake AVX-512 flags lack -mf16c; every AVX-512 CPU has it */
#include "internal/quant_simd.h"

static void qk_compute_avx512(const qk_job *j, long n0, long n1) {
    if (ck_cpu_features() & CK_CPU_AVX512VNNI)
        qk_compute_avx512_vnni(j, n0, n1);
    else
        qk_compute_avx512_bw(j, n0, n1);
}

#define ENTRIES(name, FMT)                                                                        \
    QK_ENTRY(ck_qgemm_##name##_avx512, FMT, avx512, 0, qk_quant_row_simd, qk_compute_avx512)      \
    QK_EMB_ENTRY(ck_qembedding_##name##_avx512, FMT)
#define PACKED_ENTRY(name, FMT) \
    QK_ENTRY(ck_qgemm_packed_##name##_avx512, FMT, avx512, 1, qk_quant_row_simd, qk_compute_avx512)

QK_FORMATS(ENTRIES)
QK_PACKED_FORMATS(PACKED_ENTRY)
