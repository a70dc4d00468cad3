/* Fused softmax cross-entropy, AVX2 variant (template: internal/cross_entropy_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/cross_entropy_simd.h"
