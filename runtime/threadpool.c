/* Persistent thread pool (see threadpool.h). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CK_RELAX() __asm__ volatile("yield")
#else
#define CK_RELAX() ((void)0)
#endif

/* Spin iterations (each a pause, ~10-40 ns) before a worker sleeps: ~0.2-1 ms,
 * enough to bridge consecutive kernel calls of one forward pass. */
#define CK_SPIN_WORKER 20000
#define CK_SPIN_CALLER 20000

/* Tasks are claimed through one 64-bit ticket = (generation << 32) | next index,
 * with compare-and-swap: a thread claims task i of job g only while job g is
 * still current and unfinished, so a worker that wakes up late can never run
 * a task of a job that has moved on, and the caller never waits for workers
 * that claimed nothing (important when the machine is oversubscribed and a
 * worker is not scheduled for a while). The caller waits for `done == nth`. */
struct ck_pool {
    int n;                          /* threads including the caller */
    pthread_t *threads;             /* n - 1 workers */
    _Atomic(ck_task_fn) fn;         /* job description, published before `gen` */
    _Atomic(void *) arg;
    atomic_int nth;
    atomic_ullong ticket;           /* (gen << 32) | next task index */
    atomic_int done;                /* tasks finished in the current job */
    atomic_uint gen;                /* bumped once per job */
    atomic_int stop;
    atomic_int sleepers;            /* workers blocked on cv_work */
    atomic_int caller_sleeping;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;         /* workers wait here for a new generation */
    pthread_cond_t cv_done;         /* the caller waits here for done == nth */
    pthread_mutex_t run_mu;         /* serialises ck_pool_run callers */
    /* ck_pool_profile: per-thread busy time (index 0 = the caller), and per job
     * the time until the first worker started a task. Off: no clock is read. */
    atomic_int profiling;
    atomic_int next_index;          /* hands out worker indices 1..n-1 */
    atomic_llong *busy_ns;          /* [n] */
    atomic_llong job_start_ns;      /* when the current job was published */
    atomic_llong first_worker_ns;   /* when a worker first started a task of it (0: none yet) */
    long long wake_ns, jobs, joined, overhead_ns;
};

static long long ck_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The pool whose task the current thread is running (nested runs go inline). */
static _Thread_local const ck_pool *ck_tls_in_pool = NULL;
/* This thread's index in the pool it works for (0: a caller of ck_pool_run). */
static _Thread_local int ck_tls_index = 0;

void ck_split_range(long n, long align, int ith, int nth, long *lo, long *hi) {
    if (align < 1) align = 1;
    if (nth < 1) nth = 1;
    const long units = (n + align - 1) / align;
    const long base = units / nth, rem = units % nth;
    long ulo = ith * base + (ith < rem ? ith : rem);
    long uhi = ulo + base + (ith < rem ? 1 : 0);
    long a = ulo * align, b = uhi * align;
    if (a > n) a = n;
    if (b > n) b = n;
    *lo = a;
    *hi = b;
}

/* Run tasks of job `g` until none is left (or the job is no longer current). */
static void ck_claim_tasks(ck_pool *p, unsigned g) {
    const ck_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
    void *const arg = atomic_load_explicit(&p->arg, memory_order_relaxed);
    const int nth = atomic_load_explicit(&p->nth, memory_order_relaxed);
    unsigned long long t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        if ((unsigned)(t >> 32) != g || (int)(t & 0xffffffffu) >= nth) return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        /* task (t & mask) of job g is ours: job g cannot finish before we do,
         * so fn/arg/nth read above (after seeing gen == g) are job g's */
        if (atomic_load_explicit(&p->profiling, memory_order_relaxed)) {
            const long long t0 = ck_now_ns();
            if (ck_tls_index > 0) {
                long long zero = 0;
                atomic_compare_exchange_strong(&p->first_worker_ns, &zero, t0);
            }
            fn(arg, (int)(t & 0xffffffffu), nth);
            atomic_fetch_add_explicit(&p->busy_ns[ck_tls_index], ck_now_ns() - t0, memory_order_relaxed);
        } else {
            fn(arg, (int)(t & 0xffffffffu), nth);
        }
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_seq_cst) + 1 == nth &&
            atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

static void *ck_worker(void *vp) {
    ck_pool *p = (ck_pool *)vp;
    unsigned seen = 0; /* gen is 0 at creation; a worker that starts late still sees job 1 */
    ck_tls_in_pool = p;
    ck_tls_index = atomic_fetch_add(&p->next_index, 1) + 1;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < CK_SPIN_WORKER) {
                CK_RELAX();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->cv_work, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&p->stop)) break;
        ck_claim_tasks(p, g);
    }
    return NULL;
}

ck_pool *ck_pool_create(int nthreads) {
    if (nthreads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = c > 0 ? (int)c : 1;
    }
    ck_pool *p = (ck_pool *)calloc(1, sizeof(ck_pool));
    if (!p) return NULL;
    p->n = nthreads;
    atomic_init(&p->fn, NULL);
    atomic_init(&p->arg, NULL);
    atomic_init(&p->nth, 0);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->profiling, 0);
    atomic_init(&p->next_index, 0);
    atomic_init(&p->job_start_ns, 0);
    atomic_init(&p->first_worker_ns, 0);
    p->busy_ns = (atomic_llong *)calloc((size_t)nthreads, sizeof(atomic_llong));
    if (!p->busy_ns) {
        free(p);
        return NULL;
    }
    for (int i = 0; i < nthreads; i++) atomic_init(&p->busy_ns[i], 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (nthreads > 1) {
        p->threads = (pthread_t *)calloc((size_t)nthreads - 1, sizeof(pthread_t));
        if (!p->threads) {
            free(p->busy_ns);
            free(p);
            return NULL;
        }
        for (int i = 0; i < nthreads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, ck_worker, p) != 0) {
                p->n = i + 1; /* the ones that started, plus the caller */
                ck_pool_destroy(p);
                return NULL;
            }
        }
    }
    return p;
}

void ck_pool_destroy(ck_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->run_mu);
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n - 1; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_unlock(&p->run_mu);
    free(p->threads);
    free(p->busy_ns);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

int ck_pool_size(const ck_pool *p) { return p ? p->n : 1; }

void ck_pool_run(ck_pool *p, int nth, ck_task_fn fn, void *arg) {
    if (nth <= 0) return;
    if (!p || nth == 1 || p->n <= 1 || ck_tls_in_pool == p) {
        /* inline; a nested run is already inside a timed task */
        const int timed = p && ck_tls_in_pool != p && atomic_load_explicit(&p->profiling, memory_order_relaxed);
        const long long t0 = timed ? ck_now_ns() : 0;
        for (int i = 0; i < nth; i++) fn(arg, i, nth);
        if (timed) atomic_fetch_add_explicit(&p->busy_ns[0], ck_now_ns() - t0, memory_order_relaxed);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    const int profiling = atomic_load_explicit(&p->profiling, memory_order_relaxed);
    long long run_t0 = 0, caller_busy0 = 0;
    if (profiling) {
        run_t0 = ck_now_ns();
        caller_busy0 = atomic_load_explicit(&p->busy_ns[0], memory_order_relaxed);
        atomic_store_explicit(&p->first_worker_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&p->job_start_ns, run_t0, memory_order_relaxed);
    }
    const unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&p->nth, nth, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (unsigned long long)g << 32, memory_order_release);
    atomic_store(&p->gen, g); /* seq_cst: publishes the job above */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    const ck_pool *outer = ck_tls_in_pool;
    const int outer_index = ck_tls_index; /* a worker of another pool is this pool's caller */
    ck_tls_in_pool = p;
    ck_tls_index = 0;
    ck_claim_tasks(p, g);
    ck_tls_in_pool = outer;
    ck_tls_index = outer_index;
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < nth) {
        if (++spins < CK_SPIN_CALLER) {
            CK_RELAX();
            continue;
        }
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeping, 1);
        while (atomic_load(&p->done) < nth) pthread_cond_wait(&p->cv_done, &p->mu);
        atomic_store(&p->caller_sleeping, 0);
        pthread_mutex_unlock(&p->mu);
    }
    if (profiling) {
        const long long first = atomic_load(&p->first_worker_ns);
        /* the caller's time in here not running a task: waking the workers, waiting for the last */
        p->overhead_ns += ck_now_ns() - run_t0 -
                          (atomic_load_explicit(&p->busy_ns[0], memory_order_relaxed) - caller_busy0);
        p->jobs++;
        if (first) {
            p->joined++;
            p->wake_ns += first - atomic_load_explicit(&p->job_start_ns, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&p->run_mu);
}

void ck_pool_profile(ck_pool *p, int on) {
    if (p) atomic_store(&p->profiling, on ? 1 : 0);
}

void ck_pool_profile_take(ck_pool *p, long long *busy_ns, long long *stats) {
    if (!p) return;
    pthread_mutex_lock(&p->run_mu); /* no job in flight */
    for (int i = 0; i < p->n; i++) busy_ns[i] = atomic_exchange(&p->busy_ns[i], 0);
    stats[0] = p->wake_ns;
    stats[1] = p->jobs;
    stats[2] = p->joined;
    stats[3] = p->overhead_ns;
    p->wake_ns = p->jobs = p->joined = p->overhead_ns = 0;
    pthread_mutex_unlock(&p->run_mu);
}
