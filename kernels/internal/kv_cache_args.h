/* What kv_cache.c (scalar reference) and kv_cache_simd.h share: the task
 * arguments, the argument checks and the threaded driver. */
#ifndef CK_INTERNAL_KV_CACHE_ARGS_H
#define CK_INTERNAL_KV_CACHE_ARGS_H

#include "common.h"
#include "quant_common.h"

typedef struct {
    const float *x;
    void *cache;
    int T, C;
} kv_args;

/* Rows are independent: split them over the threads (same bytes for any nth). */
static inline int kv_run(const float *x, void *cache, int T, int C, int q8, void (*task)(void *, int, int),
                         ck_pool *pool, int nth)
{
    if (T < 0 || C <= 0 || (q8 && C % CK_QK)) return CK_ERR_ARG;
    if (T == 0) return CK_OK;
    kv_args a = {.x = x, .cache = cache, .T = T, .C = C};
    if (nth < 1) nth = 1;
    ck_pool_run(pool, T < nth ? T : nth, task, &a);
    return CK_OK;
}

#endif
