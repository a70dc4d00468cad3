/* KV cache append, AVX2 variant (template: internal/kv_cache_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/kv_cache_simd.h"
