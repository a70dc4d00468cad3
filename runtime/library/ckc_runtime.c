/* ckc runtime: implements runtime/ckc_abi.h (inference and training) on top of
 * the compute functions and tables that lower-to-c generates (model.c, see
 * ckc_gen.h).
 *
 * Compiled INTO every model.so together with model.c and linked against
 * libckernels.a (kernels, .bump loader, arena, thread pool), so a model.so runs
 * without the compiler. It lives in runtime/library/ (not runtime/) because
 * CMake globs runtime/ *.c (top level) into libckernels, and this file needs the
 * symbols of one particular model.c.
 *
 * Sections: life cycle (weights mapped and checked, or owned; the arena with
 * its canaries; the GEMM workspace; the thread pool), errors and canaries,
 * the weight table and training state (ckc_tensor_*), inference (prefill in
 * chunks of at most ckc_gen_max_tokens rows, decode, slots) and training
 * (train_step, eval_loss, optimizer_step, zero_grads). The runtime computes
 * nothing itself: every step is a generated function of the IR; it owns
 * memory, checks arguments and moves tensors in and out. An entry point whose
 * generated function the library lacks (a weak symbol, NULL) returns
 * CKC_ERR_UNSUPPORTED.
 *
 * Build with -DCKC_DEBUG for canary checks after every call (lower-to-c{debug})
 * and after every compute function (here).
 * Build with -DCKC_PROFILE (model.c from lower-to-c{profile}, `ckc profile`) for
 * the per-call timers the generated code calls and ckc_profile_read/_reset
 * (see "profiling" below; ckc/profiler.py reads them).
 * Build with -DCKC_RECORD (model.c from lower-to-c{record}, `ckc parity`) for
 * ckc_rt_record, which the generated code calls after every kernel call with
 * each output it wrote, and ckc_record_set, which installs the recorder
 * (runtime/record.h; ckc/parity/record.py copies the bytes out).
 */
#define _DEFAULT_SOURCE /* madvise, MADV_DONTNEED (ckc_tensor_discard) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "ckc_abi.h"
#include "ckc_gen.h"
#include "threadpool.h"
#include "weights.h"

struct ckc_model {
    ck_weights *w;         /* the mapped .bump, or NULL: weights owned */
    uint8_t *owned;        /* the writable weights block (created with NULL), or NULL */
    const uint8_t *wbase;  /* weights base: data of the first tensor - its offset */
    ck_arena arena;
    ck_pool *pool;
    int nth;
    void *ws;
    size_t ws_size;
    float *scratch_logits; /* [vocab] for chunks whose logits nobody reads */
    float *losses;         /* [max_tokens]: training's per-row losses */
    int position;          /* slot 0's */
    int nslots;            /* ckc_gen_slots (0: no ckc_gen_decode_batch) */
    int *slot_pos;         /* [nslots]: positions of slots 1.. (slot 0: position) */
    int *next_pos;         /* [nslots]: ckc_batch's scratch */
    int32_t *row_pos;      /* [max_tokens]: one chunk's row positions */
    int32_t *row_out;      /* [max_tokens]: one chunk's output rows */
    int64_t step;          /* the optimizer's step counter */
    char err[512];
};

int ckc_abi_version(void) { return CKC_ABI_VERSION; }

#ifdef CKC_PROFILE
/* ---- profiling --------------------------------------------------------------
 * Counters per kernel call K of model.c (the numbering of ckc_gen_call_names),
 * summed over every execution since the last ckc_profile_reset: wall ns,
 * executions, the pool threads' busy ns summed and their per-execution maximum
 * summed (thread imbalance), pool join latency ns, pool jobs, jobs a worker
 * joined, the calling thread's ns in the pool not running a task (wake-ups). Totals: ns inside ckc_prefill/ckc_decode, ns inside the compute
 * functions, compute function runs. The counters belong to the library, not to
 * a model: profile one model at a time. */
#include <time.h>

enum { PROF_NS, PROF_COUNT, PROF_BUSY_SUM, PROF_BUSY_MAX, PROF_WAKE, PROF_JOBS, PROF_JOINED, PROF_POOL_OVERHEAD,
       PROF_FIELDS };
enum { PROF_ABI_NS, PROF_FN_NS, PROF_FN_RUNS, PROF_TOTALS };
static int64_t *prof_calls;            /* [ckc_gen_n_calls * PROF_FIELDS] */
static int64_t prof_totals[PROF_TOTALS];
static long long *prof_busy;           /* [prof_nbusy]: one pool's threads */
static int prof_nbusy;

static int64_t prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int prof_init(int nth) {
    if (!prof_calls) {
        prof_calls = (int64_t *)calloc((size_t)(ckc_gen_n_calls > 0 ? ckc_gen_n_calls : 1) * PROF_FIELDS,
                                       sizeof(int64_t));
        if (!prof_calls) return -1;
    }
    if (nth > prof_nbusy) {
        long long *b = (long long *)realloc(prof_busy, (size_t)nth * sizeof *b);
        if (!b) return -1;
        prof_busy = b;
        prof_nbusy = nth;
    }
    return 0;
}

int64_t ckc_rt_prof_begin(void) { return prof_now(); }

void ckc_rt_prof_end(int k, int64_t t0, ck_pool *pool) {
    const int64_t wall = prof_now() - t0;
    if (!prof_calls || k < 0 || k >= ckc_gen_n_calls) return;
    int64_t *r = prof_calls + (size_t)k * PROF_FIELDS;
    int64_t sum = 0, max = 0;
    r[PROF_NS] += wall;
    r[PROF_COUNT] += 1;
    if (pool && ck_pool_size(pool) <= prof_nbusy) {
        long long stats[4] = {0, 0, 0, 0};
        ck_pool_profile_take(pool, prof_busy, stats);
        for (int i = 0; i < ck_pool_size(pool); i++) {
            sum += prof_busy[i];
            if (prof_busy[i] > max) max = prof_busy[i];
        }
        r[PROF_WAKE] += stats[0];
        r[PROF_JOBS] += stats[1];
        r[PROF_JOINED] += stats[2];
        r[PROF_POOL_OVERHEAD] += stats[3];
    }
    if (sum == 0) sum = max = wall; /* no pool task ran: the calling thread did it all */
    r[PROF_BUSY_SUM] += sum;
    r[PROF_BUSY_MAX] += max;
}

int ckc_profile_fields(void) { return PROF_FIELDS; }

/* Copies the counters: calls [ckc_gen_n_calls * PROF_FIELDS], totals [PROF_TOTALS]. */
int ckc_profile_read(int64_t *calls, int64_t *totals) {
    if (calls && prof_calls) memcpy(calls, prof_calls, (size_t)ckc_gen_n_calls * PROF_FIELDS * sizeof(int64_t));
    if (totals) memcpy(totals, prof_totals, sizeof prof_totals);
    return ckc_gen_n_calls;
}

void ckc_profile_reset(void) {
    if (prof_calls) memset(prof_calls, 0, (size_t)ckc_gen_n_calls * PROF_FIELDS * sizeof(int64_t));
    memset(prof_totals, 0, sizeof prof_totals);
}
#define PROF_START() const int64_t prof_t0 = prof_now()
#define PROF_ADD(slot) (prof_totals[slot] += prof_now() - prof_t0)
#else
#define PROF_START() ((void)0)
#define PROF_ADD(slot) ((void)0)
#endif

#ifdef CKC_RECORD
#include "record.h" /* ckc_record_set, ckc_rt_record (ckc parity) */
#endif

/* ---- life cycle ------------------------------------------------------------ */

static void seterr(char *err, int errlen, const char *fmt, ...) {
    if (!err || errlen <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, (size_t)errlen, fmt, ap);
    va_end(ap);
}

static int functions(void) {
    return (ckc_gen_prefill ? CKC_FN_PREFILL : 0) | (ckc_gen_prefill_all ? CKC_FN_PREFILL_ALL : 0) |
           (ckc_gen_decode ? CKC_FN_DECODE : 0) | (ckc_gen_decode_batch && &ckc_gen_slots ? CKC_FN_DECODE_BATCH : 0) |
           (ckc_gen_train_step ? CKC_FN_TRAIN_STEP : 0) | (ckc_gen_eval_loss ? CKC_FN_EVAL_LOSS : 0) |
           (ckc_gen_optimizer_step ? CKC_FN_OPTIMIZER_STEP : 0) | (ckc_gen_zero_grads ? CKC_FN_ZERO_GRADS : 0);
}

/* Trained tensors with their parallel gradient / m / v blocks (0: none; add-optimizer). */
static int n_params(void) {
    if (!&ckc_gen_n_params || !&ckc_gen_grads_offset || !&ckc_gen_adam_m_offset || !&ckc_gen_adam_v_offset)
        return 0;
    if (ckc_gen_n_params < 1 || ckc_gen_n_params > ckc_gen_n_weights || ckc_gen_grads_offset < 0 ||
        ckc_gen_adam_m_offset < 0 || ckc_gen_adam_v_offset < 0)
        return 0;
    return ckc_gen_n_params;
}

static int seq_len(void) { return &ckc_gen_seq_len && ckc_gen_seq_len > 0 ? ckc_gen_seq_len : 0; }

static int check_weights(ckc_model *m, const char *path, char *err, int errlen) {
    const uint8_t *first = NULL;
    for (int i = 0; i < ckc_gen_n_weights; i++) {
        const char *name = ckc_gen_weight_names[i];
        int idx = ck_weights_find(m->w, name);
        if (idx < 0) {
            seterr(err, errlen, "%s: missing tensor '%s'", path, name);
            return -1;
        }
        const void *data = ck_weights_expect(m->w, name, ckc_gen_weight_dtypes[i], ckc_gen_weight_ndim[i],
                                             ckc_gen_weight_shapes + (size_t)i * CKC_GEN_MAX_DIMS,
                                             err, errlen);
        if (!data) return -1;
        const uint8_t *p = (const uint8_t *)data;
        if (i == 0) {
            first = p;
            m->wbase = p - ckc_gen_weight_offsets[0];
        }
        size_t have = (size_t)(p - first), want = ckc_gen_weight_offsets[i] - ckc_gen_weight_offsets[0];
        if (have != want) {
            seterr(err, errlen,
                   "%s: tensor '%s' lies %zu bytes after '%s', the compiled model expects %zu "
                   "(weights written for another compilation of the model)",
                   path, name, have, ckc_gen_weight_names[0], want);
            return -1;
        }
    }
    return 0;
}

/* n zero bytes, 64-byte aligned; release with aligned_free. calloc, not
 * posix_memalign + memset: a large block comes straight from mmap, already
 * zero, and its pages are only committed when first written, so a tensor
 * copied in by the caller is resident once (not zeroed, then written). */
static void *aligned(size_t n) {
    size_t pad = 64 + sizeof(void *);
    uint8_t *base = calloc(1, (n ? (n + 63) / 64 * 64 : 64) + pad);
    if (!base) return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)base + pad) & ~(uintptr_t)63);
    ((void **)p)[-1] = base;
    return p;
}

static void aligned_free(void *p) {
    if (p) free(((void **)p)[-1]);
}

static int rows_max(void) { return ckc_gen_max_tokens > 0 ? ckc_gen_max_tokens : 1; }

ckc_model *ckc_model_create(const char *weights_path, int nthreads, char *err, int errlen) {
    if (err && errlen > 0) err[0] = 0;
    if (nthreads < 0) {
        seterr(err, errlen, "nthreads must be >= 0, got %d", nthreads);
        return NULL;
    }
    ckc_model *m = (ckc_model *)calloc(1, sizeof *m);
    if (!m) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (weights_path) {
        if (ck_weights_open(weights_path, &m->w, err, errlen) != 0) goto fail;
        if (check_weights(m, weights_path, err, errlen) != 0) goto fail;
    } else {
        m->owned = (uint8_t *)aligned(ckc_gen_weights_size);
        if (!m->owned) {
            seterr(err, errlen, "out of memory (weights block of %zu bytes)", ckc_gen_weights_size);
            goto fail;
        }
        m->wbase = m->owned;
    }
    if (ck_arena_init(&m->arena, ckc_gen_arena_size, ckc_gen_canaries, (size_t)ckc_gen_n_canaries,
                      err, errlen) != 0)
        goto fail;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    m->nth = nthreads ? nthreads : (ncpu > 0 ? (int)ncpu : 1);
    if (m->nth > 1) {
        m->pool = ck_pool_create(m->nth);
        if (!m->pool) {
            seterr(err, errlen, "cannot start %d threads", m->nth);
            goto fail;
        }
    }
#ifdef CKC_PROFILE
    if (prof_init(m->nth) != 0) {
        seterr(err, errlen, "out of memory (profile counters)");
        goto fail;
    }
    ck_pool_profile(m->pool, 1);
#endif
    m->ws_size = ck_gemm_workspace_size(rows_max(), ckc_gen_gemm_max_n > 0 ? ckc_gen_gemm_max_n : 1,
                                        ckc_gen_gemm_max_k > 0 ? ckc_gen_gemm_max_k : 1, m->nth);
    for (int i = 0; i < ckc_gen_n_qgemm; i++) {   /* quantized GEMMs: x quantized into the same workspace */
        int fmt = ckc_gen_qgemm_fmts[i], n = ckc_gen_qgemm_max_n[i], k = ckc_gen_qgemm_max_k[i];
        size_t q = (fmt >= CK_QTYPE_Q2_K && fmt <= CK_QTYPE_Q6_K)
                       ? ck_qkgemm_workspace_size(fmt, rows_max(), n, k, m->nth)
                       : ck_qgemm_workspace_size(fmt, rows_max(), n, k, m->nth);
        if (q > m->ws_size) m->ws_size = q;
    }
    if (m->ws_size) {
        size_t sz = (m->ws_size + 63) / 64 * 64;
        m->ws = aligned_alloc(64, sz);
        if (!m->ws) {
            seterr(err, errlen, "out of memory (GEMM workspace of %zu bytes)", sz);
            goto fail;
        }
    }
    m->scratch_logits = (float *)calloc((size_t)(ckc_gen_vocab > 0 ? ckc_gen_vocab : 1), sizeof(float));
    m->losses = (float *)calloc((size_t)rows_max(), sizeof(float));
    if (!m->scratch_logits || !m->losses) {
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    m->nslots = (functions() & CKC_FN_DECODE_BATCH) ? ckc_gen_slots : 0;
    if (m->nslots > 0) {
        m->slot_pos = (int *)calloc((size_t)m->nslots, sizeof(int));
        m->next_pos = (int *)calloc((size_t)m->nslots, sizeof(int));
        m->row_pos = (int32_t *)calloc((size_t)rows_max(), sizeof(int32_t));
        m->row_out = (int32_t *)calloc((size_t)rows_max(), sizeof(int32_t));
        if (!m->slot_pos || !m->next_pos || !m->row_pos || !m->row_out) {
            seterr(err, errlen, "out of memory");
            goto fail;
        }
    }
    return m;
fail:
    ckc_model_destroy(m);
    return NULL;
}

void ckc_model_destroy(ckc_model *m) {
    if (!m) return;
    if (m->pool) ck_pool_destroy(m->pool);
    free(m->ws);
    free(m->scratch_logits);
    free(m->losses);
    free(m->slot_pos);
    free(m->next_pos);
    free(m->row_pos);
    free(m->row_out);
    ck_arena_free(&m->arena);
    ck_weights_close(m->w);
    aligned_free(m->owned);
    free(m);
}

int ckc_model_info(const ckc_model *m, ckc_info *out) {
    if (!m || !out) return CKC_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->abi_version = CKC_ABI_VERSION;
    out->vocab = ckc_gen_vocab;
    out->context = ckc_gen_context;
    out->max_batch = ckc_gen_max_tokens;
    out->layers = ckc_gen_layers;
    out->hidden = ckc_gen_hidden;
    out->nthreads = m->nth;
#ifdef CKC_DEBUG
    out->debug = 1;
#endif
    out->arena_bytes = (int64_t)m->arena.size;
    out->weights_bytes = (int64_t)(m->w ? ck_weights_size(m->w) : ckc_gen_weights_size);
    snprintf(out->arch, sizeof out->arch, "%s", ckc_gen_arch);
    snprintf(out->simd, sizeof out->simd, "%s", ckc_gen_simd);
    out->functions = functions();
    out->slots = m->nslots;
    out->seq_len = seq_len() ? seq_len() : ckc_gen_max_tokens;
    out->batch = seq_len() ? ckc_gen_max_tokens / seq_len() : 1;
    out->n_tensors = ckc_gen_n_weights;
    out->n_params = n_params();
    out->weights_owned = m->owned != NULL;
    return CKC_OK;
}

const char *ckc_last_error(const ckc_model *m) { return m ? m->err : "model is NULL"; }

/* ---- errors and canaries ---------------------------------------------------- */

/* Sets m's one-line error, evaluates to `code`. */
#define fail(m, code, ...) (snprintf((m)->err, sizeof (m)->err, __VA_ARGS__), (code))

/* CKC_ERR_UNSUPPORTED unless the library has `fn` (a CKC_FN_* bit). */
static int need(ckc_model *m, int fn, const char *name) {
    if (functions() & fn) return CKC_OK;
    const int f = functions();
    const char *kind = (f & (CKC_FN_TRAIN_STEP | CKC_FN_OPTIMIZER_STEP)) ? "training"
                       : (f & (CKC_FN_PREFILL | CKC_FN_DECODE)) ? "inference" : "neither inference nor training";
    return fail(m, CKC_ERR_UNSUPPORTED, "this library has no @%s (compiled for %s)", name, kind);
}

int ckc_rt_canaries_ok(uint8_t *arena) {
    if (!arena) return 1;
    for (int i = 0; i < ckc_gen_n_canaries; i++) {
        uint64_t v;
        memcpy(&v, arena + ckc_gen_canaries[i], sizeof v);
        if (v != CK_CANARY_VALUE) return 0;
    }
    return 1;
}

static const char *call_name(int rc) {
    int k = (rc > 0 ? rc : -rc) - 1;
    return k >= 0 && k < ckc_gen_n_calls ? ckc_gen_call_names[k] : "?";
}

/* After a compute function of entry point `what` (NULL: no prefix) returned rc:
 * CKC_OK, or the error: rc = k + 1, kernel call k failed; rc = -(k + 1), a debug
 * build's check after call k found a dead canary; rc = 0 in a debug build, the
 * check here (whatever wrote: kernels, the optimizer, zeroing). The message
 * names the canary: its offset, the region it ends and the buffer before it. */
static int after(ckc_model *m, const char *what, int rc) {
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    if (rc > 0) return fail(m, CKC_ERR_INTERNAL, "%s%sinternal error: kernel call failed: %s", what, sep, call_name(rc));
    long bad = -1;
#ifdef CKC_DEBUG
    bad = ck_arena_check_canaries(&m->arena);
#endif
    if (rc < 0) bad = ck_arena_check_canaries(&m->arena);
    if (bad < 0 && rc == 0) return CKC_OK;
    if (bad < 0) return fail(m, CKC_ERR_MEMORY, "%s%sarena canary overwritten by call %s", what, sep, call_name(rc));
    return fail(m, CKC_ERR_MEMORY, "%s%sarena canary #%ld at offset %zu (%s) overwritten%s%s", what, sep, bad,
                m->arena.canaries[bad], ckc_gen_canary_names[bad], rc ? " by call " : "", rc ? call_name(rc) : "");
}

/* ---- the weight table and the training state ------------------------------- */

const char *ckc_tensor_name(const ckc_model *m, int i) {
    return m && i >= 0 && i < ckc_gen_n_weights ? ckc_gen_weight_names[i] : NULL;
}

int ckc_tensor_shape(const ckc_model *m, int i, int64_t shape[4]) {
    if (!m || !shape || i < 0 || i >= ckc_gen_n_weights) return -1;
    for (int d = 0; d < CKC_GEN_MAX_DIMS; d++) shape[d] = ckc_gen_weight_shapes[CKC_GEN_MAX_DIMS * i + d];
    return ckc_gen_weight_ndim[i];
}

int ckc_tensor_trainable(const ckc_model *m, int i) { return m && i >= 0 && i < n_params(); }

static int weight_index(const char *name) {
    for (int i = 0; i < ckc_gen_n_weights; i++)
        if (strcmp(ckc_gen_weight_names[i], name) == 0) return i;
    return -1;
}

/* The bytes of tensor `name` in store `what`, or NULL (error set). `write`:
 * the caller writes them (mapped weights are read-only). */
static uint8_t *locate(ckc_model *m, int what, const char *name, size_t nbytes, int write) {
    if (!name) { (void)fail(m, CKC_ERR_INVALID, "no tensor name"); return NULL; }
    int w = weight_index(name);
    if (w < 0) { (void)fail(m, CKC_ERR_INVALID, "unknown tensor '%s'", name); return NULL; }
    if (nbytes != ckc_gen_weight_bytes[w]) {
        (void)fail(m, CKC_ERR_INVALID, "tensor '%s' has %zu bytes, got %zu", name, (size_t)ckc_gen_weight_bytes[w], nbytes);
        return NULL;
    }
    if (what == CKC_WEIGHT) {
        if (write && !m->owned) {
            (void)fail(m, CKC_ERR_INVALID, "tensor '%s': the weights are mapped read-only from the .bump file "
                 "(create the model with no weights path to write them)", name);
            return NULL;
        }
        return (uint8_t *)m->wbase + ckc_gen_weight_offsets[w];
    }
    if (what < CKC_GRAD || what > CKC_ADAM_V) { (void)fail(m, CKC_ERR_INVALID, "unknown store %d", what); return NULL; }
    if (w >= n_params()) { (void)fail(m, CKC_ERR_INVALID, "tensor '%s' is not trained (no gradient)", name); return NULL; }
    /* the parallel blocks: the same relative offset as the weight's */
    int64_t base = what == CKC_GRAD ? ckc_gen_grads_offset : what == CKC_ADAM_M ? ckc_gen_adam_m_offset
                                                                                : ckc_gen_adam_v_offset;
    return m->arena.base + base + (ckc_gen_weight_offsets[w] - ckc_gen_weight_offsets[0]);
}

/* ckc_tensor_read (write 0: tensor -> buf) and ckc_tensor_write (1: buf -> tensor). */
static int copy(ckc_model *m, int what, const char *name, void *buf, size_t nbytes, int write) {
    if (!m) return CKC_ERR_INVALID;
    if (!buf) return fail(m, CKC_ERR_INVALID, "no %s buffer", write ? "source" : "destination");
    uint8_t *p = locate(m, what, name, nbytes, write);
    if (!p) return CKC_ERR_INVALID;
    memcpy(write ? p : buf, write ? buf : p, nbytes);
    return CKC_OK;
}

int ckc_tensor_read(ckc_model *m, int what, const char *name, void *dst, size_t nbytes) {
    return copy(m, what, name, dst, nbytes, 0);
}

int ckc_tensor_write(ckc_model *m, int what, const char *name, const void *src, size_t nbytes) {
    return copy(m, what, name, (void *)src, nbytes, 1);
}

/* Zero bytes [p, p + n); whole pages inside go back to the OS (they read as
 * zero again, committed on the next write). */
static void release(uint8_t *p, size_t n) {
#if defined(MADV_DONTNEED)
    long pg = sysconf(_SC_PAGESIZE);
    if (pg > 0 && n >= 2 * (size_t)pg) {
        uintptr_t lo = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
        uintptr_t hi = ((uintptr_t)p + n) & ~((uintptr_t)pg - 1);
        if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) {
            memset(p, 0, lo - (uintptr_t)p);
            memset((void *)hi, 0, (uintptr_t)p + n - hi);
            return;
        }
    }
#endif
    memset(p, 0, n);
}

int ckc_tensor_discard(ckc_model *m, int what, const char *name) {
    if (!m) return CKC_ERR_INVALID;
    if (!name) return fail(m, CKC_ERR_INVALID, "no tensor name");
    int w = weight_index(name);
    if (w < 0) return fail(m, CKC_ERR_INVALID, "unknown tensor '%s'", name);
    uint8_t *p = locate(m, what, name, ckc_gen_weight_bytes[w], 1);
    if (!p) return CKC_ERR_INVALID;
    release(p, ckc_gen_weight_bytes[w]);
    return CKC_OK;
}

/* ---- inference ---------------------------------------------------------------- */

/* Runs one compute function; on failure the sequence is lost (position 0). */
static int run(ckc_model *m, ckc_gen_fn fn, const int32_t *tokens, int n, float *logits) {
#ifdef CKC_RECORD
    CKC_RECORD_RUN(n, m->position);
#endif
    PROF_START();
    int rc = fn(m->arena.base, m->wbase, tokens, logits, n, m->position, m->ws, m->ws_size, m->pool,
                m->nth);
    PROF_ADD(PROF_FN_NS);
#ifdef CKC_PROFILE
    prof_totals[PROF_FN_RUNS]++;
#endif
    rc = after(m, NULL, rc);
    if (rc) {
        m->position = 0;
        return rc;
    }
    m->position += n;
    return CKC_OK;
}

static int validate(ckc_model *m, const int32_t *tokens, int n) {
    if (!tokens) return fail(m, CKC_ERR_INVALID, "tokens is NULL");
    if (n <= 0) return fail(m, CKC_ERR_INVALID, "empty token list (n = %d)", n);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= ckc_gen_vocab)
            return fail(m, CKC_ERR_TOKEN, "token %ld at index %d is out of range (vocab %d)",
                        (long)tokens[i], i, ckc_gen_vocab);
    if (n > ckc_gen_context - m->position)
        return fail(m, CKC_ERR_CONTEXT, "context overflow: position %d + %d tokens > context %d",
                    m->position, n, ckc_gen_context);
    return CKC_OK;
}

static int prefill(ckc_model *m, const int32_t *tokens, int n, float *out, int all) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    int rc = all ? need(m, CKC_FN_PREFILL_ALL, "prefill_all") : need(m, CKC_FN_PREFILL, "prefill");
    if (rc) return rc;
    if (all && !out) return fail(m, CKC_ERR_INVALID, "logits is NULL");
    rc = validate(m, tokens, n);
    if (rc) return rc;
    const int chunk = rows_max();
    for (int done = 0; done < n; done += chunk) {
        int c = n - done < chunk ? n - done : chunk;
        if (all) {
            rc = run(m, ckc_gen_prefill_all, tokens + done, c, out + (size_t)done * ckc_gen_vocab);
        } else {
            float *dst = (done + c == n && out) ? out : m->scratch_logits;
            rc = run(m, ckc_gen_prefill, tokens + done, c, dst);
        }
        if (rc) return rc;
    }
    return CKC_OK;
}

int ckc_prefill(ckc_model *m, const int32_t *tokens, int n, float *logits_last) {
    PROF_START();
    int rc = prefill(m, tokens, n, logits_last, 0);
    PROF_ADD(PROF_ABI_NS);
    return rc;
}

int ckc_prefill_all(ckc_model *m, const int32_t *tokens, int n, float *logits) {
    PROF_START();
    int rc = prefill(m, tokens, n, logits, 1);
    PROF_ADD(PROF_ABI_NS);
    return rc;
}

static int decode(ckc_model *m, int32_t token, float *logits) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    int rc = need(m, CKC_FN_DECODE, "decode");
    if (rc) return rc;
    if (!logits) return fail(m, CKC_ERR_INVALID, "logits is NULL");
    rc = validate(m, &token, 1);
    if (rc) return rc;
    return run(m, ckc_gen_decode, &token, 1, logits);
}

int ckc_decode(ckc_model *m, int32_t token, float *logits) {
    PROF_START();
    int rc = decode(m, token, logits);
    PROF_ADD(PROF_ABI_NS);
    return rc;
}

int ckc_reset(ckc_model *m) {
    if (!m) return CKC_ERR_INVALID;
    m->position = 0;
    m->err[0] = 0;
#ifdef CKC_DEBUG
    if (!n_params()) ck_arena_clear(&m->arena); /* not a training state's gradients and moments */
#endif
    return CKC_OK;
}

int ckc_position(const ckc_model *m) { return m ? m->position : -1; }

/* ---- slots (ckc_batch) ---- */
static int *slot_position(ckc_model *m, int s) { return s == 0 ? &m->position : &m->slot_pos[s]; }

int ckc_slots(const ckc_model *m) { return m ? m->nslots : 0; }

int ckc_slot_position(const ckc_model *m, int slot) {
    if (!m || slot < 0 || slot >= (m->nslots > 0 ? m->nslots : 1)) return -1;
    return slot == 0 ? m->position : m->slot_pos[slot];
}

int ckc_slot_reset(ckc_model *m, int slot) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    if (slot < 0 || slot >= (m->nslots > 0 ? m->nslots : 1))
        return fail(m, CKC_ERR_INVALID, "slot %d out of range (the model has %d slots)", slot, m->nslots);
    *slot_position(m, slot) = 0;
    return CKC_OK;
}

static int batch(ckc_model *m, const int32_t *slots, const int32_t *tokens, int n, const int32_t *out_rows,
                 int n_out, float *logits) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    if (!(functions() & CKC_FN_DECODE_BATCH)) return need(m, CKC_FN_DECODE_BATCH, "decode_batch");
    if (m->nslots <= 0) return fail(m, CKC_ERR_INVALID, "the model was compiled without KV-cache slots");
    if (!slots || !tokens || !logits) return fail(m, CKC_ERR_INVALID, "slots, tokens or logits is NULL");
    if (n <= 0) return fail(m, CKC_ERR_INVALID, "empty batch (n = %d)", n);
    if (out_rows) {
        if (n_out < 0 || n_out > n) return fail(m, CKC_ERR_INVALID, "%d output rows for %d rows", n_out, n);
        for (int j = 0; j < n_out; j++)
            if (out_rows[j] < 0 || out_rows[j] >= n || (j > 0 && out_rows[j] <= out_rows[j - 1]))
                return fail(m, CKC_ERR_INVALID, "output row %ld at index %d: rows must increase within [0, %d)",
                            (long)out_rows[j], j, n);
    }
    for (int s = 0; s < m->nslots; s++) m->next_pos[s] = *slot_position(m, s);
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= m->nslots)
            return fail(m, CKC_ERR_INVALID, "slot %ld at row %d out of range (the model has %d slots)",
                        (long)slots[i], i, m->nslots);
        if (tokens[i] < 0 || tokens[i] >= ckc_gen_vocab)
            return fail(m, CKC_ERR_TOKEN, "token %ld at index %d is out of range (vocab %d)", (long)tokens[i], i,
                        ckc_gen_vocab);
        if (m->next_pos[slots[i]]++ >= ckc_gen_context)
            return fail(m, CKC_ERR_CONTEXT, "context overflow: slot %d position %d + %d tokens > context %d",
                        (int)slots[i], *slot_position(m, slots[i]), m->next_pos[slots[i]] - *slot_position(m, slots[i]),
                        ckc_gen_context);
    }
    for (int s = 0; s < m->nslots; s++) m->next_pos[s] = *slot_position(m, s);
    const int chunk = ckc_gen_max_tokens > 0 ? ckc_gen_max_tokens : 1;
    int emitted = 0, next_out = 0; /* logits rows written; index into out_rows */
    for (int done = 0; done < n; done += chunk) {
        const int c = n - done < chunk ? n - done : chunk;
        for (int i = 0; i < c; i++) m->row_pos[i] = m->next_pos[slots[done + i]]++;
        int mc = 0;
        if (out_rows) {
            while (next_out < n_out && out_rows[next_out] < done + c) m->row_out[mc++] = out_rows[next_out++] - done;
        } else {
            for (int i = 0; i < c; i++) m->row_out[mc++] = i;
        }
        /* a chunk without wanted rows still computes one (its last) into scratch: no zero-row kernel calls */
        float *dst = mc ? logits + (size_t)emitted * ckc_gen_vocab : m->scratch_logits;
        if (!mc) m->row_out[mc++] = c - 1;
        PROF_START();
        int rc = ckc_gen_decode_batch(m->arena.base, m->wbase, tokens + done, dst, c, 0, m->ws, m->ws_size, m->pool,
                                      m->nth, slots + done, m->row_pos, m->row_out, mc);
        if (dst != m->scratch_logits) emitted += mc;
        PROF_ADD(PROF_FN_NS);
        rc = after(m, NULL, rc);
        if (rc) {
            for (int i = 0; i < n; i++) *slot_position(m, slots[i]) = 0; /* their sequences are lost */
            return rc;
        }
    }
    for (int s = 0; s < m->nslots; s++) *slot_position(m, s) = m->next_pos[s];
    return CKC_OK;
}

int ckc_batch(ckc_model *m, const int32_t *slots, const int32_t *tokens, int n, const int32_t *out_rows,
              int n_out, float *logits) {
    PROF_START();
    int rc = batch(m, slots, tokens, n, out_rows, n_out, logits);
    PROF_ADD(PROF_ABI_NS);
    return rc;
}

/* ---- training ------------------------------------------------------------------ */

/* n rows the compiled step takes: 1..max_tokens of one sequence, or a whole
 * number of sequences of seq_len rows for a batched library. */
static int check_rows(ckc_model *m, const char *what, int n) {
    const int S = seq_len();
    if (S) {
        if (n < S || n > ckc_gen_max_tokens || n % S)
            return fail(m, CKC_ERR_INVALID, "%s: %d tokens, the model was compiled for batches of 1..%d sequences of %d tokens",
                        what, n, ckc_gen_max_tokens / S, S);
    } else if (n < 1 || n > ckc_gen_max_tokens) {
        return fail(m, CKC_ERR_INVALID, "%s: %d tokens, the model was compiled for 1..%d per sequence", what, n,
                    ckc_gen_max_tokens);
    }
    return CKC_OK;
}

/* *loss = the mean of the per-row losses over the valid targets. */
static void mean_loss(const ckc_model *m, const int32_t *targets, int n, float *loss) {
    double sum = 0.0;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (targets[i] >= 0 && targets[i] < ckc_gen_vocab) {
            sum += m->losses[i];
            count++;
        }
    if (loss) *loss = count ? (float)(sum / count) : 0.0f;
}

/* train_step / eval_loss: check, run the generated function, the mean loss. */
static int loss_call(ckc_model *m, int fn_bit, const char *what, ckc_gen_train_fn fn, const int32_t *tokens,
                     const int32_t *targets, int n, float grad_scale, float *loss) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    int rc = need(m, fn_bit, what);
    if (rc) return rc;
    if ((rc = check_rows(m, what, n))) return rc;
    if (!tokens || !targets) return fail(m, CKC_ERR_INVALID, "%s: no tokens or targets", what);
    if (!isfinite(grad_scale)) return fail(m, CKC_ERR_INVALID, "%s: grad_scale is not finite", what);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= ckc_gen_vocab)
            return fail(m, CKC_ERR_TOKEN, "%s: token id %d at position %d is outside the vocabulary (0..%d)", what,
                        (int)tokens[i], i, ckc_gen_vocab - 1);
#ifdef CKC_RECORD
    CKC_RECORD_RUN(n, 0);
#endif
    rc = fn(m->arena.base, m->wbase, tokens, NULL, n, 0, m->ws, m->ws_size, m->pool, m->nth, targets, m->losses,
            grad_scale);
    if ((rc = after(m, what, rc))) return rc;
    mean_loss(m, targets, n, loss);
    return CKC_OK;
}

int ckc_train_step(ckc_model *m, const int32_t *tokens, const int32_t *targets, int n, float grad_scale,
                   float *loss) {
    return loss_call(m, CKC_FN_TRAIN_STEP, "train_step", ckc_gen_train_step, tokens, targets, n, grad_scale, loss);
}

int ckc_eval_loss(ckc_model *m, const int32_t *tokens, const int32_t *targets, int n, float *loss) {
    return loss_call(m, CKC_FN_EVAL_LOSS, "eval_loss", ckc_gen_eval_loss, tokens, targets, n, 0.0f, loss);
}

static int zero_grads(ckc_model *m) {
    int rc = ckc_gen_zero_grads((uint8_t *)m->arena.base, (uint8_t *)m->wbase, 0.0f, 0, NULL, m->pool, m->nth);
    return after(m, "zero_grads", rc);
}

int ckc_zero_grads(ckc_model *m) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    int rc = need(m, CKC_FN_ZERO_GRADS, "zero_grads");
    return rc ? rc : zero_grads(m);
}

int ckc_optimizer_step(ckc_model *m, float lr, float *grad_norm) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    int rc = need(m, CKC_FN_OPTIMIZER_STEP, "optimizer_step");
    if (!rc) rc = need(m, CKC_FN_ZERO_GRADS, "zero_grads");
    if (rc) return rc;
    if (!n_params()) return fail(m, CKC_ERR_UNSUPPORTED, "optimizer_step: the library has no optimizer state");
    if (!m->owned)
        return fail(m, CKC_ERR_INVALID, "optimizer_step: the weights are mapped read-only from the .bump file "
                    "(create the model with no weights path to train)");
    if (!isfinite(lr)) return fail(m, CKC_ERR_INVALID, "optimizer_step: the learning rate is not finite");
    if (m->step >= INT32_MAX) return fail(m, CKC_ERR_INVALID, "optimizer_step: step counter overflow");
    float norm = 0.0f;
    rc = ckc_gen_optimizer_step(m->arena.base, m->owned, lr, (int)(m->step + 1), &norm, m->pool, m->nth);
    if ((rc = after(m, "optimizer_step", rc))) return rc;
    m->step++;
    if (grad_norm) *grad_norm = norm;
    return zero_grads(m);
}

int64_t ckc_get_step(const ckc_model *m) { return m ? m->step : -1; }

int ckc_set_step(ckc_model *m, int64_t step) {
    if (!m) return CKC_ERR_INVALID;
    m->step = step < 0 ? 0 : step;
    return CKC_OK;
}
