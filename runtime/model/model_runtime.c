/* ckc runtime glue: implements runtime/model_abi.h on top of the compute
 * functions and tables that lower-to-c generates (model.c, see model_gen.h).
 *
 * Compiled INTO every model.so together with model.c and linked against
 * libckernels.a (kernels, .bump loader, arena, thread pool), so a model.so runs
 * without the compiler. It lives in runtime/model/ (not runtime/) because
 * CMake globs runtime/ *.c (top level) into libckernels, and this file needs the symbols of
 * one particular model.c.
 *
 *   create:  maps the .bump file (runtime/weights.c) and checks every tensor the
 *            model reads against the compiled table: present, f32, the same shape,
 *            and at the compiled byte offset from the first tensor (the compute
 *            functions address weights as base + offset); allocates the arena with
 *            its canaries, the GEMM workspace and the thread pool.
 *   prefill: validates everything first, then runs the prefill function on chunks
 *            of at most ckc_gen_max_tokens tokens.
 *   decode:  one token.
 * Build with -DCKC_DEBUG for canary checks after every call (lower-to-c{debug})
 * and after every compute function (here).
 * Build with -DCKC_PROFILE (model.c from lower-to-c{profile}, `ckc profile`) for
 * the per-call timers the generated code calls and ckc_profile_read/_reset
 * (see "profiling" below; ckc/profiler/run.py reads them).
 * Build with -DCKC_RECORD (model.c from lower-to-c{record}, `ckc parity`) for
 * ckc_rt_record, which the generated code calls after every kernel call with
 * each output it wrote, and ckc_record_set, which installs the recorder
 * (runtime/record.h; ckc/parity/record.py copies the bytes out).
 */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "model_abi.h"
#include "model_gen.h"
#include "weights.h"

struct ckc_model {
    ck_weights *w;
    const uint8_t *wbase;  /* weights base: data of the first tensor - its offset */
    ck_arena arena;
    ck_pool *pool;
    int nth;
    void *ws;
    size_t ws_size;
    float *scratch_logits; /* [vocab] for chunks whose logits nobody reads */
    int position;          /* slot 0's */
    int nslots;            /* ckc_gen_slots (0: no ckc_gen_decode_batch) */
    int *slot_pos;         /* [nslots]: positions of slots 1.. (slot 0: position) */
    int *next_pos;         /* [nslots]: ckc_batch's scratch */
    int32_t *row_pos;      /* [max_tokens]: one chunk's row positions */
    int32_t *row_out;      /* [max_tokens]: one chunk's output rows */
    char err[256];
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

static void seterr(char *err, int errlen, const char *fmt, ...) {
    if (!err || errlen <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, (size_t)errlen, fmt, ap);
    va_end(ap);
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

ckc_model *ckc_model_create(const char *weights_path, int nthreads, char *err, int errlen) {
    if (err && errlen > 0) err[0] = 0;
    if (!weights_path) {
        seterr(err, errlen, "weights path is NULL");
        return NULL;
    }
    if (nthreads < 0) {
        seterr(err, errlen, "nthreads must be >= 0, got %d", nthreads);
        return NULL;
    }
    ckc_model *m = (ckc_model *)calloc(1, sizeof *m);
    if (!m) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (ck_weights_open(weights_path, &m->w, err, errlen) != 0) goto fail;
    if (check_weights(m, weights_path, err, errlen) != 0) goto fail;
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
    m->ws_size = ck_gemm_workspace_size(ckc_gen_max_tokens, ckc_gen_gemm_max_n > 0 ? ckc_gen_gemm_max_n : 1,
                                        ckc_gen_gemm_max_k > 0 ? ckc_gen_gemm_max_k : 1, m->nth);
    if (m->ws_size) {
        size_t sz = (m->ws_size + 63) / 64 * 64;
        m->ws = aligned_alloc(64, sz);
        if (!m->ws) {
            seterr(err, errlen, "out of memory (GEMM workspace of %zu bytes)", sz);
            goto fail;
        }
    }
    m->scratch_logits = (float *)calloc((size_t)(ckc_gen_vocab > 0 ? ckc_gen_vocab : 1), sizeof(float));
    if (!m->scratch_logits) {
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    m->nslots = (&ckc_gen_slots && ckc_gen_decode_batch) ? ckc_gen_slots : 0;
    if (m->nslots > 0) {
        m->slot_pos = (int *)calloc((size_t)m->nslots, sizeof(int));
        m->next_pos = (int *)calloc((size_t)m->nslots, sizeof(int));
        m->row_pos = (int32_t *)calloc((size_t)(ckc_gen_max_tokens > 0 ? ckc_gen_max_tokens : 1), sizeof(int32_t));
        m->row_out = (int32_t *)calloc((size_t)(ckc_gen_max_tokens > 0 ? ckc_gen_max_tokens : 1), sizeof(int32_t));
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
    free(m->slot_pos);
    free(m->next_pos);
    free(m->row_pos);
    free(m->row_out);
    ck_arena_free(&m->arena);
    ck_weights_close(m->w);
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
    out->weights_bytes = (int64_t)ck_weights_size(m->w);
    snprintf(out->arch, sizeof out->arch, "%s", ckc_gen_arch);
    snprintf(out->simd, sizeof out->simd, "%s", ckc_gen_simd);
    return CKC_OK;
}

static int fail(ckc_model *m, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return code;
}

static const char *call_name(int rc) {
    int k = (rc > 0 ? rc : -rc) - 1;
    return k >= 0 && k < ckc_gen_n_calls ? ckc_gen_call_names[k] : "?";
}

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
    if (rc > 0) {
        m->position = 0;
        return fail(m, CKC_ERR_INTERNAL, "internal error: kernel call failed: %s", call_name(rc));
    }
    if (rc < 0) {
        /* a debug build's check after call -rc - 1 (lower-to-c{debug}): name the canary and the call */
        long bad = ck_arena_check_canaries(&m->arena);
        m->position = 0;
        if (bad >= 0)
            return fail(m, CKC_ERR_MEMORY, "arena canary #%ld at offset %zu (%s) overwritten by call %s", bad,
                        m->arena.canaries[bad], ckc_gen_canary_names[bad], call_name(rc));
        return fail(m, CKC_ERR_MEMORY, "arena canary overwritten by call %s", call_name(rc));
    }
#ifdef CKC_DEBUG
    long bad = ck_arena_check_canaries(&m->arena);
    if (bad >= 0) {
        m->position = 0;
        return fail(m, CKC_ERR_MEMORY, "arena canary #%ld at offset %zu (%s) overwritten", bad,
                    m->arena.canaries[bad], ckc_gen_canary_names[bad]);
    }
#endif
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
    if (all && !out) return fail(m, CKC_ERR_INVALID, "logits is NULL");
    int rc = validate(m, tokens, n);
    if (rc) return rc;
    const int chunk = ckc_gen_max_tokens > 0 ? ckc_gen_max_tokens : 1;
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
    if (!logits) return fail(m, CKC_ERR_INVALID, "logits is NULL");
    int rc = validate(m, &token, 1);
    if (rc) return rc;
    return run(m, ckc_gen_decode, &token, 1, logits);
}

int ckc_decode(ckc_model *m, int32_t token, float *logits) {
    PROF_START();
    int rc = decode(m, token, logits);
    PROF_ADD(PROF_ABI_NS);
    return rc;
}

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
        long bad = -1;
#ifdef CKC_DEBUG
        bad = ck_arena_check_canaries(&m->arena);
#endif
        if (rc || bad >= 0) {
            for (int i = 0; i < n; i++) *slot_position(m, slots[i]) = 0; /* their sequences are lost */
            if (rc > 0) return fail(m, CKC_ERR_INTERNAL, "internal error: kernel call failed: %s", call_name(rc));
            if (rc < 0) bad = ck_arena_check_canaries(&m->arena);
            if (bad >= 0)
                return fail(m, CKC_ERR_MEMORY, "arena canary #%ld at offset %zu (%s) overwritten%s%s", bad,
                            m->arena.canaries[bad], ckc_gen_canary_names[bad], rc ? " by call " : "",
                            rc ? call_name(rc) : "");
            return fail(m, CKC_ERR_MEMORY, "arena canary overwritten by call %s", call_name(rc));
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

int ckc_reset(ckc_model *m) {
    if (!m) return CKC_ERR_INVALID;
    m->position = 0;
    m->err[0] = 0;
#ifdef CKC_DEBUG
    ck_arena_clear(&m->arena);
#endif
    return CKC_OK;
}

int ckc_position(const ckc_model *m) { return m ? m->position : -1; }

const char *ckc_last_error(const ckc_model *m) { return m ? m->err : "model is NULL"; }
