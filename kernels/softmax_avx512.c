/* Row softmax, AVX512 variant (template: internal/softmax_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/softmax_simd.h"
