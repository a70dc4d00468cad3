/* RoPE, AVX512 variant (template: internal/rope_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/rope_simd.h"
