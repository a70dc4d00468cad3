#include "cpu.h"

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t ck_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

int ck_cpu_features(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1;
    if (!osxsave) return 0;
    const uint64_t xcr0 = ck_xgetbv0();
    const int ymm_state = (xcr0 & 0x6) == 0x6;      /* SSE + AVX state */
    const int zmm_state = (xcr0 & 0xe6) == 0xe6;    /* + opmask, ZMM_Hi256, Hi16_ZMM */
    int f = 0;
    if (!ymm_state) return 0;
    if ((c >> 28) & 1) f |= CK_CPU_AVX;
    if ((c >> 12) & 1) f |= CK_CPU_FMA;
    if ((c >> 29) & 1) f |= CK_CPU_F16C;
    unsigned max_leaf = __get_cpuid_max(0, 0);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b >> 5) & 1) f |= CK_CPU_AVX2;
        if (zmm_state) {
            if ((b >> 16) & 1) f |= CK_CPU_AVX512F;
            if ((b >> 17) & 1) f |= CK_CPU_AVX512DQ;
            if ((b >> 30) & 1) f |= CK_CPU_AVX512BW;
            if ((b >> 31) & 1) f |= CK_CPU_AVX512VL;
            if ((c >> 11) & 1) f |= CK_CPU_AVX512VNNI;
        }
    }
    return f;
}
#else
int ck_cpu_features(void) { return 0; }
#endif

int ck_cpu_best_variant(void) {
    const int f = ck_cpu_features();
    if ((f & CK_CPU_VARIANT_AVX512) == CK_CPU_VARIANT_AVX512) return 2;
    if ((f & CK_CPU_VARIANT_AVX2) == CK_CPU_VARIANT_AVX2) return 1;
    return 0;
}
