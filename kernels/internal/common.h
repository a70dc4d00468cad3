/* Private helpers shared by every kernel file (scalar and SIMD). */
#ifndef CK_INTERNAL_COMMON_H
#define CK_INTERNAL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "../include/ckernels.h"

/* Split n items into nth nearly equal contiguous ranges; range ith is [*lo, *hi). */
static inline void ckk_split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi)
{
    int64_t q = n / nth, r = n % nth;
    *lo = ith * q + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}

/* Same, but range boundaries are multiples of `align` items (except the end). */
static inline void ckk_split_aligned(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi)
{
    int64_t blocks = (n + align - 1) / align, b0, b1;
    ckk_split_range(blocks, ith, nth, &b0, &b1);
    *lo = b0 * align < n ? b0 * align : n;
    *hi = b1 * align < n ? b1 * align : n;
}

/* Threads actually worth using for `work` units (at least `min_per_thread` each). */
static inline int ckk_threads_for(int64_t work, int64_t min_per_thread, int nth)
{
    if (nth < 1) nth = 1;
    int64_t most = work / (min_per_thread > 0 ? min_per_thread : 1);
    if (most < 1) most = 1;
    return most < nth ? (int)most : nth;
}

#endif
