/* Causal GQA attention, AVX2 variant (template: internal/attention_simd.h). */
#define CK_SIMD_AVX2 1
#include "internal/simd.h"
#include "internal/attention_simd.h"
