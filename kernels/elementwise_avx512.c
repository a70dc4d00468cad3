/* Elementwise arithmetic, AVX512 variant (template: internal/elementwise_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/elementwise_simd.h"
