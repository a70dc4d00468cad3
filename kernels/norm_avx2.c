/* RMSNorm / LayerNorm, AVX2 variant (template: internal/norm_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/norm_simd.h"
