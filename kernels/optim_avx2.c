/* AdamW and gradient clipping, AVX2 variant (template: internal/optim_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/optim_simd.h"
