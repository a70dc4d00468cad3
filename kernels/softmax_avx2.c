/* Row softmax, AVX2 variant (template: internal/softmax_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/softmax_simd.h"
