/* KV cache append, AVX512 variant (template: internal/kv_cache_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/kv_cache_simd.h"
