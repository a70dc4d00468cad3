/* Embedding, AVX2 variant (template: internal/embedding_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/embedding_simd.h"
