/* A persistent thread pool: work is split as (ith, nth), no OpenMP.
 *
 * ck_pool_create(n) starts n-1 worker threads; the thread calling
 * ck_pool_run takes part as well, so a pool of size n runs n tasks at once.
 * Idle workers spin briefly on an atomic generation counter, then sleep on a
 * condition variable, so a hot decode loop pays no wake-up latency and an idle
 * process burns no CPU.
 *
 * ck_pool_run(pool, nth, fn, arg) calls fn(arg, ith, nth) exactly once for
 * every ith in [0, nth) and returns when all have returned. nth may exceed the
 * pool size (tasks are claimed dynamically by whichever thread is free);
 * pool == NULL or nth <= 1 runs everything inline on the caller. Calls from
 * different threads on one pool are serialised; a task that calls
 * ck_pool_run on its own pool runs that inner job inline (no deadlock). */
#ifndef CK_THREADPOOL_H
#define CK_THREADPOOL_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_pool ck_pool;
typedef void (*ck_task_fn)(void *arg, int ith, int nth);

/* nthreads <= 0 means "number of online CPUs". Returns NULL on failure. */
ck_pool *ck_pool_create(int nthreads);
void ck_pool_destroy(ck_pool *pool);
int  ck_pool_size(const ck_pool *pool);   /* 1 for NULL */
void ck_pool_run(ck_pool *pool, int nth, ck_task_fn fn, void *arg);

/* Profiling (ckc profile): with `on`, every task's run time is added to its
 * thread's busy counter (index 0 is the thread calling ck_pool_run, 1..n-1 the
 * workers), each job records how long its first worker took to start a task
 * after the job was published (join latency) and how long the calling thread
 * spent in ck_pool_run not running a task (waking sleeping workers, waiting for
 * the last task). ck_pool_profile_take copies and zeroes them:
 * busy_ns[ck_pool_size(pool)], stats[4] = {join latency ns summed over jobs,
 * jobs, jobs a worker joined, caller overhead ns}. */
void ck_pool_profile(ck_pool *pool, int on);
void ck_pool_profile_take(ck_pool *pool, long long *busy_ns, long long *stats);

/* Split [0, n) into nth near-equal contiguous ranges, each starting on a
 * multiple of `align` (>= 1): range ith is [*lo, *hi). */
void ck_split_range(long n, long align, int ith, int nth, long *lo, long *hi);

#ifdef __cplusplus
}
#endif
#endif
