/* ckc training runtime: implements runtime/train_abi.h on top of the generated
 * model.c of a differentiated @train_step (see the header for the memory
 * layout). Compiled into the training model.so together with model.c, linked
 * against libckernels. Every computation is generated from the IR: the step
 * (ckc_gen_train_step), the forward-only loss (ckc_gen_eval_loss), the
 * optimizer (ckc_gen_optimizer_step: add-optimizer's clipping + AdamW, a few
 * kernel calls over the parallel weight / gradient / moment blocks) and
 * ckc_gen_zero_grads. This file only owns memory, checks arguments and moves
 * tensors in and out. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise, MADV_DONTNEED (ckc_train_discard) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckernels.h"
#include "train_abi.h"
#ifdef CKC_RECORD
#include "record.h" /* -DCKC_RECORD (`ckc parity --mode train`): every call's outputs recorded */
#endif

/* ---- the generated side (model.c) ---- */
int ckc_gen_train_step(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n,
                       int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *targets,
                       float *losses, float grad_scale);
int ckc_gen_eval_loss(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n,
                      int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *targets,
                      float *losses, float grad_scale);
extern const char *const ckc_gen_simd;
extern const int ckc_gen_vocab;
extern const int ckc_gen_max_tokens; /* rows per call */
extern const int ckc_gen_seq_len;    /* rows per sequence of a batch; 0: one sequence of 1..max_tokens */
extern const size_t ckc_gen_arena_size;
extern const size_t ckc_gen_weights_size;
extern const int ckc_gen_n_weights;
extern const char *const ckc_gen_weight_names[];
extern const size_t ckc_gen_weight_offsets[];
extern const size_t ckc_gen_weight_bytes[];
extern const int ckc_gen_weight_ndim[];
extern const int64_t ckc_gen_weight_shapes[];
extern const int ckc_gen_gemm_max_n;
extern const int ckc_gen_gemm_max_k;
extern const int ckc_gen_n_calls;
extern const char *const ckc_gen_call_names[];
extern const int ckc_gen_n_canaries;
extern const size_t ckc_gen_canaries[];
extern const char *const ckc_gen_canary_names[];
int ckc_gen_optimizer_step(uint8_t *arena, uint8_t *weights, float lr, int step, float *grad_norm, ck_pool *pool,
                           int nth);
int ckc_gen_zero_grads(uint8_t *arena, uint8_t *weights, float lr, int step, float *grad_norm, ck_pool *pool,
                       int nth);
/* The trained tensors are weights 0 .. n_params-1; tensor i's gradient / m / v
 * sits at these arena offsets + (its weight offset - weight 0's): the blocks
 * are parallel (plan-memory; lower-to-c checks it). */
extern const int ckc_gen_n_params;
extern const int64_t ckc_gen_grads_offset;
extern const int64_t ckc_gen_adam_m_offset;
extern const int64_t ckc_gen_adam_v_offset;

struct ckc_train {
    uint8_t *weights;  /* writable copy, ckc_gen_weights_size bytes */
    uint8_t *arena;    /* ckc_gen_arena_size bytes; grads, AdamW m and v live in it */
    void *ws;
    size_t ws_size;
    ck_pool *pool;
    int nth;
    int64_t step;
    float *losses;     /* max_tokens */
    char err[512];
};

static int fail(ckc_train *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return 1;
}

/* n zero bytes, 64-byte aligned; release with aligned_free. calloc, not
 * posix_memalign + memset: a large block comes straight from mmap, already
 * zero, and its pages are only committed when first written, so a store the
 * run never writes (the gradients of an eval-only session, AdamW's moments
 * before the first optimizer step) costs no resident memory, and a tensor
 * copied in from Python is resident once (not zeroed, then written). */
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

int ckc_train_abi_version(void) { return CKC_TRAIN_ABI_VERSION; }

/* ---- arena canaries ----------------------------------------------------------
 * plan-memory leaves an 8-byte word after each region of the arena (grads,
 * activations, ...); ckc_train_create writes CK_CANARY_VALUE there. A debug
 * build (lower-to-c{debug}, -DCKC_DEBUG) checks them after every kernel call
 * (the generated code calls ckc_rt_canaries_ok) and after every step, so a
 * kernel writing past its buffer is caught and named. */
#define CANARY_VALUE 0xC4C4CA7A4E5A11EDULL /* runtime/arena.h CK_CANARY_VALUE */

static void put_canaries(uint8_t *arena) {
    const uint64_t v = CANARY_VALUE;
    for (int i = 0; i < ckc_gen_n_canaries; i++) memcpy(arena + ckc_gen_canaries[i], &v, sizeof v);
}

/* Index of the first overwritten canary, or -1. */
static int dead_canary(const uint8_t *arena) {
    for (int i = 0; i < ckc_gen_n_canaries; i++) {
        uint64_t v;
        memcpy(&v, arena + ckc_gen_canaries[i], sizeof v);
        if (v != CANARY_VALUE) return i;
    }
    return -1;
}

int ckc_rt_canaries_ok(uint8_t *arena) { return dead_canary(arena) < 0; }

/* The error of a compute function's return code rc != 0 (call k = |rc| - 1 failed,
 * or, rc < 0, a canary died after it). */
static int call_failed(ckc_train *t, const char *what, int rc) {
    int k = rc > 0 ? rc - 1 : -rc - 1;
    const char *call = k >= 0 && k < ckc_gen_n_calls ? ckc_gen_call_names[k] : "?";
    int bad = rc < 0 ? dead_canary(t->arena) : -1;
    if (bad >= 0)
        return fail(t, "%s: arena canary #%d at offset %zu (%s) overwritten by call %s", what, bad,
                    ckc_gen_canaries[bad], ckc_gen_canary_names[bad], call);
    return fail(t, "%s: kernel call failed: %s", what, call);
}

#ifdef CKC_DEBUG
/* Debug builds: after every step, whatever wrote (kernels, the optimizer, zeroing). */
static int check_canaries(ckc_train *t, const char *what) {
    int bad = dead_canary(t->arena);
    if (bad < 0) return 0;
    return fail(t, "%s: arena canary #%d at offset %zu (%s) overwritten", what, bad, ckc_gen_canaries[bad],
                ckc_gen_canary_names[bad]);
}
#else
#define check_canaries(t, what) 0
#endif

const char *ckc_train_error(const ckc_train *t) { return t ? t->err : "no training handle"; }

static int weight_index(const char *name) {
    for (int i = 0; i < ckc_gen_n_weights; i++)
        if (strcmp(ckc_gen_weight_names[i], name) == 0) return i;
    return -1;
}

ckc_train *ckc_train_create(int nthreads, char *err, size_t errlen) {
    ckc_train *t = calloc(1, sizeof *t);
    if (!t) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (nthreads < 1) nthreads = 1;
    if (ckc_gen_n_params < 1 || ckc_gen_n_params > ckc_gen_n_weights || ckc_gen_grads_offset < 0 ||
        ckc_gen_adam_m_offset < 0 || ckc_gen_adam_v_offset < 0) {
        if (err && errlen) snprintf(err, errlen, "the library has no optimizer state (compile it with add-optimizer)");
        free(t);
        return NULL;
    }
    t->nth = nthreads;
    t->pool = nthreads > 1 ? ck_pool_create(nthreads) : NULL;
    t->weights = aligned(ckc_gen_weights_size);
    t->arena = aligned(ckc_gen_arena_size);
    t->ws_size = ck_gemm_workspace_size(ckc_gen_max_tokens, ckc_gen_gemm_max_n, ckc_gen_gemm_max_k, nthreads);
    t->ws = aligned(t->ws_size);
    t->losses = aligned(sizeof(float) * (size_t)ckc_gen_max_tokens);
    if (!t->weights || !t->arena || !t->ws || !t->losses || (nthreads > 1 && !t->pool)) {
        if (err && errlen) snprintf(err, errlen, "out of memory creating the training model");
        ckc_train_destroy(t);
        return NULL;
    }
    for (int i = 0; i < ckc_gen_n_canaries; i++)
        if (ckc_gen_canaries[i] % 8 || ckc_gen_canaries[i] + 8 > ckc_gen_arena_size) {
            if (err && errlen) snprintf(err, errlen, "canary #%d at offset %zu lies outside the %zu-byte arena", i,
                                        ckc_gen_canaries[i], ckc_gen_arena_size);
            ckc_train_destroy(t);
            return NULL;
        }
    put_canaries(t->arena);
    return t;
}

void ckc_train_destroy(ckc_train *t) {
    if (!t) return;
    if (t->pool) ck_pool_destroy(t->pool);
    aligned_free(t->weights); aligned_free(t->arena); aligned_free(t->ws); aligned_free(t->losses);
    free(t);
}

int ckc_train_max_tokens(const ckc_train *t) { (void)t; return ckc_gen_seq_len ? ckc_gen_seq_len : ckc_gen_max_tokens; }
int ckc_train_max_batch(const ckc_train *t) { (void)t; return ckc_gen_seq_len ? ckc_gen_max_tokens / ckc_gen_seq_len : 1; }

/* n rows the compiled step takes: 1..max_tokens of one sequence, or a whole
 * number of sequences of seq_len rows for a batched library. */
static int check_rows(ckc_train *t, const char *what, int n) {
    if (ckc_gen_seq_len) {
        if (n < ckc_gen_seq_len || n > ckc_gen_max_tokens || n % ckc_gen_seq_len)
            return fail(t, "%s: %d tokens, the model was compiled for batches of 1..%d sequences of %d tokens", what,
                        n, ckc_gen_max_tokens / ckc_gen_seq_len, ckc_gen_seq_len);
    } else if (n < 1 || n > ckc_gen_max_tokens) {
        return fail(t, "%s: %d tokens, the model was compiled for 1..%d per sequence", what, n, ckc_gen_max_tokens);
    }
    return 0;
}
int ckc_train_vocab(const ckc_train *t) { (void)t; return ckc_gen_vocab; }
int ckc_train_n_tensors(const ckc_train *t) { (void)t; return ckc_gen_n_weights; }

const char *ckc_train_tensor_name(const ckc_train *t, int i) {
    (void)t;
    return i >= 0 && i < ckc_gen_n_weights ? ckc_gen_weight_names[i] : NULL;
}

int ckc_train_tensor_shape(const ckc_train *t, int i, int64_t shape[4]) {
    (void)t;
    if (i < 0 || i >= ckc_gen_n_weights) return -1;
    for (int d = 0; d < 4; d++) shape[d] = ckc_gen_weight_shapes[4 * i + d];
    return ckc_gen_weight_ndim[i];
}

int ckc_train_tensor_trainable(const ckc_train *t, int i) { (void)t; return i >= 0 && i < ckc_gen_n_params; }

/* The bytes of tensor `name` in store `what`, or NULL (error set). */
static uint8_t *locate(ckc_train *t, int what, const char *name, size_t nbytes) {
    if (!name) { fail(t, "no tensor name"); return NULL; }
    int w = weight_index(name);
    if (w < 0) { fail(t, "unknown tensor '%s'", name); return NULL; }
    if (nbytes != ckc_gen_weight_bytes[w]) {
        fail(t, "tensor '%s' has %zu bytes, got %zu", name, (size_t)ckc_gen_weight_bytes[w], nbytes);
        return NULL;
    }
    if (what == CKC_TRAIN_WEIGHT) return t->weights + ckc_gen_weight_offsets[w];
    if (what < CKC_TRAIN_GRAD || what > CKC_TRAIN_ADAM_V) { fail(t, "unknown store %d", what); return NULL; }
    if (w >= ckc_gen_n_params) { fail(t, "tensor '%s' is not trained (no gradient)", name); return NULL; }
    /* the parallel blocks: the same relative offset as the weight's */
    int64_t base = what == CKC_TRAIN_GRAD ? ckc_gen_grads_offset
                   : what == CKC_TRAIN_ADAM_M ? ckc_gen_adam_m_offset : ckc_gen_adam_v_offset;
    return t->arena + base + (ckc_gen_weight_offsets[w] - ckc_gen_weight_offsets[0]);
}

int ckc_train_read(ckc_train *t, int what, const char *name, float *dst, size_t nbytes) {
    uint8_t *p = locate(t, what, name, nbytes);
    if (!p) return 1;
    memcpy(dst, p, nbytes);
    return 0;
}

int ckc_train_write(ckc_train *t, int what, const char *name, const float *src, size_t nbytes) {
    uint8_t *p = locate(t, what, name, nbytes);
    if (!p) return 1;
    memcpy(p, src, nbytes);
    return 0;
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

int ckc_train_discard(ckc_train *t, int what, const char *name) {
    if (!name) return fail(t, "no tensor name");
    int w = weight_index(name);
    if (w < 0) return fail(t, "unknown tensor '%s'", name);
    uint8_t *p = locate(t, what, name, ckc_gen_weight_bytes[w]);
    if (!p) return 1;
    release(p, ckc_gen_weight_bytes[w]);
    return 0;
}

/* The generated @zero_grads: one ck_zero_f32 over the gradient block. */
void ckc_zero_grads(ckc_train *t) { ckc_gen_zero_grads(t->arena, t->weights, 0.0f, 0, NULL, t->pool, t->nth); }

/* *loss = the mean of the per-row losses over the valid targets. */
static int mean_loss(const ckc_train *t, const int32_t *targets, int n, float *loss) {
    double sum = 0.0;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (targets[i] >= 0 && targets[i] < ckc_gen_vocab) {
            sum += t->losses[i];
            count++;
        }
    if (loss) *loss = count ? (float)(sum / count) : 0.0f;
    return 0;
}

int ckc_train_step(ckc_train *t, const int32_t *tokens, const int32_t *targets, int n, float grad_scale,
                   float *loss) {
    if (check_rows(t, "train_step", n)) return 1;
    if (!tokens || !targets) return fail(t, "train_step: no tokens or targets");
    if (!isfinite(grad_scale)) return fail(t, "train_step: grad_scale is not finite");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= ckc_gen_vocab)
            return fail(t, "train_step: token id %d at position %d is outside the vocabulary (0..%d)", (int)tokens[i],
                        i, ckc_gen_vocab - 1);
#ifdef CKC_RECORD
    CKC_RECORD_RUN(n, 0);
#endif
    int rc = ckc_gen_train_step(t->arena, t->weights, tokens, NULL, n, 0, t->ws, t->ws_size, t->pool, t->nth,
                                targets, t->losses, grad_scale);
    if (rc != 0) return call_failed(t, "train_step", rc);
    if (check_canaries(t, "train_step")) return 1;
    return mean_loss(t, targets, n, loss);
}

int ckc_train_eval(ckc_train *t, const int32_t *tokens, const int32_t *targets, int n, float *loss) {
    if (check_rows(t, "eval", n)) return 1;
    if (!tokens || !targets) return fail(t, "eval: no tokens or targets");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= ckc_gen_vocab)
            return fail(t, "eval: token id %d at position %d is outside the vocabulary (0..%d)", (int)tokens[i], i,
                        ckc_gen_vocab - 1);
#ifdef CKC_RECORD
    CKC_RECORD_RUN(n, 0);
#endif
    int rc = ckc_gen_eval_loss(t->arena, t->weights, tokens, NULL, n, 0, t->ws, t->ws_size, t->pool, t->nth,
                               targets, t->losses, 0.0f);
    if (rc != 0) return call_failed(t, "eval", rc);
    if (check_canaries(t, "eval")) return 1;
    return mean_loss(t, targets, n, loss);
}

int ckc_optimizer_step(ckc_train *t, float lr, float *grad_norm) {
    if (!isfinite(lr)) return fail(t, "optimizer_step: the learning rate is not finite");
    if (t->step >= INT32_MAX) return fail(t, "optimizer_step: step counter overflow");
    float norm = 0.0f;
    int rc = ckc_gen_optimizer_step(t->arena, t->weights, lr, (int)(t->step + 1), &norm, t->pool, t->nth);
    if (rc != 0) return call_failed(t, "optimizer_step", rc);
    t->step++;
    if (grad_norm) *grad_norm = norm;
    ckc_zero_grads(t);
    return check_canaries(t, "optimizer_step");
}

int64_t ckc_train_get_step(const ckc_train *t) { return t->step; }
void ckc_train_set_step(ckc_train *t, int64_t step) { t->step = step < 0 ? 0 : step; }
