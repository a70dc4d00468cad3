/* ckc's roofline probes (ckc/roofline.py builds this with ckc.build and caches
 * the results per machine): the fp32 FMA peak and the streaming read bandwidth
 * this machine reaches with `nthreads` threads.
 *
 *   ckc_probe_fma_gflops(nthreads, iters): every thread runs `iters` rounds of
 *     16 independent vector FMA chains (AVX-512 if the CPU has it, else
 *     AVX2+FMA, else scalar); returns 2 * lanes * 16 * iters * nthreads / wall.
 *   ckc_probe_read_gbs(nthreads, buf, bytes): the threads sum disjoint slices of
 *     `buf` (far larger than the last-level cache) with vector loads; returns
 *     bytes / wall. The caller allocates and touches `buf` once and takes the
 *     best of several runs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    long iters;
    const float *buf;
    size_t n; /* floats in this thread's slice */
    volatile float sink;
    double t0, t1; /* this thread's start and end */
    pthread_barrier_t *go;
} probe_job;

#if defined(__x86_64__)
static volatile float probe_seed = 1.0f;

__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
    const float seed = probe_seed;
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    /* distinct starting values from a volatile: the compiler cannot merge the chains */
    __m512 c0 = _mm512_set1_ps(seed), c1 = _mm512_set1_ps(seed + 1), c2 = _mm512_set1_ps(seed + 2),
           c3 = _mm512_set1_ps(seed + 3), c4 = _mm512_set1_ps(seed + 4), c5 = _mm512_set1_ps(seed + 5),
           c6 = _mm512_set1_ps(seed + 6), c7 = _mm512_set1_ps(seed + 7), c8 = _mm512_set1_ps(seed + 8),
           c9 = _mm512_set1_ps(seed + 9), c10 = _mm512_set1_ps(seed + 10), c11 = _mm512_set1_ps(seed + 11),
           c12 = _mm512_set1_ps(seed + 12), c13 = _mm512_set1_ps(seed + 13), c14 = _mm512_set1_ps(seed + 14),
           c15 = _mm512_set1_ps(seed + 15);
    for (long i = 0; i < iters; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b); c1 = _mm512_fmadd_ps(c1, a, b);
        c2 = _mm512_fmadd_ps(c2, a, b); c3 = _mm512_fmadd_ps(c3, a, b);
        c4 = _mm512_fmadd_ps(c4, a, b); c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b); c7 = _mm512_fmadd_ps(c7, a, b);
        c8 = _mm512_fmadd_ps(c8, a, b); c9 = _mm512_fmadd_ps(c9, a, b);
        c10 = _mm512_fmadd_ps(c10, a, b); c11 = _mm512_fmadd_ps(c11, a, b);
        c12 = _mm512_fmadd_ps(c12, a, b); c13 = _mm512_fmadd_ps(c13, a, b);
        c14 = _mm512_fmadd_ps(c14, a, b); c15 = _mm512_fmadd_ps(c15, a, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                       _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
    const float seed = probe_seed;
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(seed), c1 = _mm256_set1_ps(seed + 1), c2 = _mm256_set1_ps(seed + 2),
           c3 = _mm256_set1_ps(seed + 3), c4 = _mm256_set1_ps(seed + 4), c5 = _mm256_set1_ps(seed + 5),
           c6 = _mm256_set1_ps(seed + 6), c7 = _mm256_set1_ps(seed + 7), c8 = _mm256_set1_ps(seed + 8),
           c9 = _mm256_set1_ps(seed + 9), c10 = _mm256_set1_ps(seed + 10), c11 = _mm256_set1_ps(seed + 11),
           c12 = _mm256_set1_ps(seed + 12), c13 = _mm256_set1_ps(seed + 13), c14 = _mm256_set1_ps(seed + 14),
           c15 = _mm256_set1_ps(seed + 15);
    for (long i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b); c1 = _mm256_fmadd_ps(c1, a, b);
        c2 = _mm256_fmadd_ps(c2, a, b); c3 = _mm256_fmadd_ps(c3, a, b);
        c4 = _mm256_fmadd_ps(c4, a, b); c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b); c7 = _mm256_fmadd_ps(c7, a, b);
        c8 = _mm256_fmadd_ps(c8, a, b); c9 = _mm256_fmadd_ps(c9, a, b);
        c10 = _mm256_fmadd_ps(c10, a, b); c11 = _mm256_fmadd_ps(c11, a, b);
        c12 = _mm256_fmadd_ps(c12, a, b); c13 = _mm256_fmadd_ps(c13, a, b);
        c14 = _mm256_fmadd_ps(c14, a, b); c15 = _mm256_fmadd_ps(c15, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)),
                                       _mm256_add_ps(_mm256_add_ps(c12, c13), _mm256_add_ps(c14, c15))));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

/* Eight sequential streams at once (eight equal parts of the slice, one cache
 * line from each per step): the hardware prefetchers then keep more misses in
 * flight than a single stream gets, as a GEMV reading several weight rows at
 * once does. */
#define CKP_STREAMS 8
__attribute__((target("avx512f"))) static float read_avx512(const float *p, size_t n) {
    const size_t part = n / CKP_STREAMS / 16 * 16;
    __m512 s[CKP_STREAMS];
    for (int k = 0; k < CKP_STREAMS; k++) s[k] = _mm512_setzero_ps();
    for (size_t i = 0; i < part; i += 16)
        for (int k = 0; k < CKP_STREAMS; k++) s[k] = _mm512_add_ps(s[k], _mm512_loadu_ps(p + k * part + i));
    __m512 t = s[0];
    for (int k = 1; k < CKP_STREAMS; k++) t = _mm512_add_ps(t, s[k]);
    float r = _mm512_reduce_add_ps(t);
    for (size_t i = part * CKP_STREAMS; i < n; i++) r += p[i];
    return r;
}

__attribute__((target("avx2"))) static float read_avx2(const float *p, size_t n) {
    const size_t part = n / CKP_STREAMS / 8 * 8;
    __m256 s[CKP_STREAMS];
    for (int k = 0; k < CKP_STREAMS; k++) s[k] = _mm256_setzero_ps();
    for (size_t i = 0; i < part; i += 8)
        for (int k = 0; k < CKP_STREAMS; k++) s[k] = _mm256_add_ps(s[k], _mm256_loadu_ps(p + k * part + i));
    __m256 t = s[0];
    for (int k = 1; k < CKP_STREAMS; k++) t = _mm256_add_ps(t, s[k]);
    float out[8];
    _mm256_storeu_ps(out, t);
    float r = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
    for (size_t i = part * CKP_STREAMS; i < n; i++) r += p[i];
    return r;
}
#endif

static float fma_scalar(long iters) {
    float c[16];
    for (int j = 0; j < 16; j++) c[j] = 1.0f + (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 16; j++) c[j] = c[j] * 0.999999f + 1e-7f;
    float s = 0;
    for (int j = 0; j < 16; j++) s += c[j];
    return s;
}

static float read_scalar(const float *p, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    return s;
}

/* Vector lanes of the widest FMA this CPU runs (16, 8, or 1). */
int ckc_probe_lanes(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
#endif
    return 1;
}

static void *fma_thread(void *vp) {
    probe_job *j = (probe_job *)vp;
    const int lanes = ckc_probe_lanes();
    pthread_barrier_wait(j->go);
    j->t0 = now_s();
#if defined(__x86_64__)
    if (lanes == 16) j->sink = fma_avx512(j->iters);
    else if (lanes == 8) j->sink = fma_avx2(j->iters);
    else
#endif
        j->sink = fma_scalar(j->iters);
    j->t1 = now_s();
    (void)lanes;
    return NULL;
}

static void *read_thread(void *vp) {
    probe_job *j = (probe_job *)vp;
    const int lanes = ckc_probe_lanes();
    pthread_barrier_wait(j->go);
    j->t0 = now_s();
#if defined(__x86_64__)
    if (lanes == 16) j->sink = read_avx512(j->buf, j->n);
    else if (lanes == 8) j->sink = read_avx2(j->buf, j->n);
    else
#endif
        j->sink = read_scalar(j->buf, j->n);
    j->t1 = now_s();
    (void)lanes;
    return NULL;
}

/* Runs `fn` on nthreads threads; returns the wall seconds from the first
 * thread's start to the last one's end (each thread reads the clock itself:
 * the caller may be descheduled), or -1. */
static double run_threads(int nthreads, void *(*fn)(void *), probe_job *jobs) {
    pthread_t th[256];
    pthread_barrier_t go;
    if (nthreads < 1 || nthreads > 256) return -1;
    pthread_barrier_init(&go, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        jobs[i].go = &go;
        if (pthread_create(&th[i], NULL, fn, &jobs[i]) != 0) return -1;
    }
    for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    double t0 = jobs[0].t0, t1 = jobs[0].t1;
    for (int i = 1; i < nthreads; i++) {
        if (jobs[i].t0 < t0) t0 = jobs[i].t0;
        if (jobs[i].t1 > t1) t1 = jobs[i].t1;
    }
    pthread_barrier_destroy(&go);
    return t1 - t0;
}

double ckc_probe_fma_gflops(int nthreads, long iters) {
    probe_job jobs[256] = {{0}};
    for (int i = 0; i < nthreads && i < 256; i++) jobs[i].iters = iters;
    const double t = run_threads(nthreads, fma_thread, jobs);
    if (t <= 0) return -1;
    return 2.0 * ckc_probe_lanes() * 16.0 * (double)iters * nthreads / t / 1e9;
}

double ckc_probe_read_gbs(int nthreads, const float *buf, size_t bytes) {
    probe_job jobs[256] = {{0}};
    const size_t n = bytes / sizeof(float);
    for (int i = 0; i < nthreads && i < 256; i++) {
        const size_t lo = n * (size_t)i / (size_t)nthreads, hi = n * (size_t)(i + 1) / (size_t)nthreads;
        jobs[i].buf = buf + lo;
        jobs[i].n = hi - lo;
    }
    const double t = run_threads(nthreads, read_thread, jobs);
    if (t <= 0) return -1;
    return (double)(n * sizeof(float)) / t / 1e9;
}
