/* CPU feature detection (cpuid + xgetbv): which kernel variants this machine runs.
 * A feature bit is set only when the CPU has the instructions AND the OS saves
 * the register state they need (XCR0: YMM for AVX/AVX2/FMA/F16C, ZMM+opmask
 * for AVX-512). Non-x86 builds return 0. */
#ifndef CK_CPU_H
#define CK_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

#define CK_CPU_AVX      (1 << 0)
#define CK_CPU_AVX2     (1 << 1)
#define CK_CPU_FMA      (1 << 2)
#define CK_CPU_F16C     (1 << 3)
#define CK_CPU_AVX512F  (1 << 4)
#define CK_CPU_AVX512BW (1 << 5)
#define CK_CPU_AVX512DQ (1 << 6)
#define CK_CPU_AVX512VL (1 << 7)
#define CK_CPU_AVX512VNNI (1 << 8)

/* What the *_avx2 and *_avx512 variants were compiled for. */
#define CK_CPU_VARIANT_AVX2   (CK_CPU_AVX | CK_CPU_AVX2 | CK_CPU_FMA | CK_CPU_F16C)
#define CK_CPU_VARIANT_AVX512 (CK_CPU_VARIANT_AVX2 | CK_CPU_AVX512F | CK_CPU_AVX512BW | \
                               CK_CPU_AVX512DQ | CK_CPU_AVX512VL)

/* Bit set of CK_CPU_* flags. */
int ck_cpu_features(void);

/* Best variant this CPU runs: 0 scalar, 1 avx2, 2 avx512. */
int ck_cpu_best_variant(void);

#ifdef __cplusplus
}
#endif
#endif
