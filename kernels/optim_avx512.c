/* AdamW and gradient clipping, AVX512 variant (template: internal/optim_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/optim_simd.h"
