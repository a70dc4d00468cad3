/* RMSNorm / LayerNorm, AVX512 variant (template: internal/norm_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/norm_simd.h"
