/* Elementwise arithmetic, AVX2 variant (template: internal/elementwise_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/elementwise_simd.h"
