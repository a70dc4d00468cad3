/* Private helpers shared by every kernel file (scalar and SIMD). */
#ifndef CK_INTERNAL_COMMON_H
#define CK_INTERNAL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "../include/ckernels.h"

/* Split n items into nth nearly equal contiguous ranges whose boundaries are
   multiples of `align` items (except the end); range ith is [*lo, *hi).
   The one implementation is the public ck_split_range (runtime/threadpool.c). */
static inline void ckk_split_aligned(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi)
{
    long l, h;
    ck_split_range((long)n, (long)align, ith, nth, &l, &h);
    *lo = l;
    *hi = h;
}

/* Same with no alignment. */
static inline void ckk_split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi)
{
    ckk_split_aligned(n, 1, ith, nth, lo, hi);
}

/* Threads actually worth using for `work` units (at least `min_per_thread` each). */
static inline int ckk_threads_for(int64_t work, int64_t min_per_thread, int nth)
{
    if (nth < 1) nth = 1;
    int64_t most = work / (min_per_thread > 0 ? min_per_thread : 1);
    if (most < 1) most = 1;
    return most < nth ? (int)most : nth;
}

/* Threads for a row-parallel kernel over T rows of C (at most one per row), and
   for a column-parallel one (at least 64 columns per thread). */
#define ROW_THREADS(T, C, nth) (ckk_threads_for((int64_t)(T) * (C), 1 << 13, (nth)) < (T) ? ckk_threads_for((int64_t)(T) * (C), 1 << 13, (nth)) : ((T) > 0 ? (T) : 1))
#define COL_THREADS(T, C, nth) ckk_threads_for((int64_t)(T) * (C), 1 << 14, ckk_threads_for((C), 64, (nth)))

#endif
