/* Activations, AVX512 variant (template: internal/activation_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/activation_simd.h"
