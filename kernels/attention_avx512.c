/* Causal GQA attention, AVX512 variant (template: internal/attention_simd.h). */
#define CK_SIMD_AVX512 1
#include "internal/simd.h"
#include "internal/attention_simd.h"
