/* Fused softmax cross-entropy, AVX512 variant (template: internal/cross_entropy_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/cross_entropy_simd.h"
