/* What attention.c (scalar reference) and attention_simd.h (SIMD template) share:
 * the task arguments and their limits, defined once. */
#ifndef CK_INTERNAL_ATTENTION_ARGS_H
#define CK_INTERNAL_ATTENTION_ARGS_H

#include "common.h"

static inline int key_lo(int P, int window) { return window > 0 && P - window + 1 > 0 ? P - window + 1 : 0; }

#endif
