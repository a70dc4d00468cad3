/* ckc training runtime: implements runtime/train_abi.h on top of the generated
 * model.c of a differentiated @train_step (see the header for the memory
 * layout). Compiled into the training model.so together with model.c, linked
 * against libckernels. The optimizer is table-driven: for every gradient
 * buffer of ckc_gen_grad_names ("grad.<tensor>") it updates the weight
 * <tensor> with ck_adamw_f32 after global-norm clipping (ck_sumsq_f32 +
 * ck_clip_coef_f32). ckc_train_eval runs the generated forward-only
 * ckc_gen_eval_loss. */
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
extern const int ckc_gen_n_grads;
extern const char *const ckc_gen_grad_names[];
extern const size_t ckc_gen_grad_offsets[];
extern const size_t ckc_gen_grad_bytes[];

#define GRAD_PREFIX "grad."

typedef void (*adamw_fn)(float *, const float *, float *, float *, int64_t, float, float, float, float, float, int,
                         float, ck_pool *, int);
typedef double (*sumsq_fn)(const float *, int64_t, ck_pool *, int);
typedef float (*clip_fn)(double, float, float *);

struct ckc_train {
    uint8_t *weights;  /* writable copy, ckc_gen_weights_size bytes */
    uint8_t *arena;    /* ckc_gen_arena_size bytes; grads live in it */
    float *m, *v;      /* AdamW state, one block each, laid out as packed grads */
    size_t *mv_off;    /* per grad: float offset into m / v */
    int *grad_weight;  /* per grad: index into the weight table */
    size_t mv_floats;
    void *ws;
    size_t ws_size;
    ck_pool *pool;
    int nth;
    int64_t step;
    float *losses;     /* max_tokens */
    adamw_fn adamw;
    sumsq_fn sumsq;
    clip_fn clip;
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
    const char *simd = ckc_gen_simd;
    if (strcmp(simd, "avx512") == 0) {
        t->adamw = ck_adamw_f32_avx512; t->sumsq = ck_sumsq_f32_avx512; t->clip = ck_clip_coef_f32_avx512;
    } else if (strcmp(simd, "avx2") == 0) {
        t->adamw = ck_adamw_f32_avx2; t->sumsq = ck_sumsq_f32_avx2; t->clip = ck_clip_coef_f32_avx2;
    } else {
        t->adamw = ck_adamw_f32_scalar; t->sumsq = ck_sumsq_f32_scalar; t->clip = ck_clip_coef_f32_scalar;
    }
    t->nth = nthreads;
    t->pool = nthreads > 1 ? ck_pool_create(nthreads) : NULL;
    t->weights = aligned(ckc_gen_weights_size);
    t->arena = aligned(ckc_gen_arena_size);
    t->ws_size = ck_gemm_workspace_size(ckc_gen_max_tokens, ckc_gen_gemm_max_n, ckc_gen_gemm_max_k, nthreads);
    t->ws = aligned(t->ws_size);
    t->losses = aligned(sizeof(float) * (size_t)ckc_gen_max_tokens);
    t->mv_off = calloc((size_t)ckc_gen_n_grads + 1, sizeof *t->mv_off);
    t->grad_weight = calloc((size_t)ckc_gen_n_grads + 1, sizeof *t->grad_weight);
    if (!t->weights || !t->arena || !t->ws || !t->losses || !t->mv_off || !t->grad_weight ||
        (nthreads > 1 && !t->pool)) {
        if (err && errlen) snprintf(err, errlen, "out of memory creating the training model");
        ckc_train_destroy(t);
        return NULL;
    }
    size_t off = 0;
    for (int g = 0; g < ckc_gen_n_grads; g++) {
        const char *name = ckc_gen_grad_names[g];
        int w = strncmp(name, GRAD_PREFIX, strlen(GRAD_PREFIX)) == 0 ? weight_index(name + strlen(GRAD_PREFIX)) : -1;
        if (w < 0 || ckc_gen_weight_bytes[w] != ckc_gen_grad_bytes[g]) {
            if (err && errlen) snprintf(err, errlen, "gradient buffer '%s' matches no weight of the same size", name);
            ckc_train_destroy(t);
            return NULL;
        }
        t->grad_weight[g] = w;
        t->mv_off[g] = off;
        off += (ckc_gen_grad_bytes[g] / sizeof(float) + 15) / 16 * 16;
    }
    for (int i = 0; i < ckc_gen_n_canaries; i++)
        if (ckc_gen_canaries[i] % 8 || ckc_gen_canaries[i] + 8 > ckc_gen_arena_size) {
            if (err && errlen) snprintf(err, errlen, "canary #%d at offset %zu lies outside the %zu-byte arena", i,
                                        ckc_gen_canaries[i], ckc_gen_arena_size);
            ckc_train_destroy(t);
            return NULL;
        }
    put_canaries(t->arena);
    t->mv_floats = off;
    t->m = aligned(off * sizeof(float));
    t->v = aligned(off * sizeof(float));
    if (!t->m || !t->v) {
        if (err && errlen) snprintf(err, errlen, "out of memory for the optimizer state");
        ckc_train_destroy(t);
        return NULL;
    }
    return t;
}

void ckc_train_destroy(ckc_train *t) {
    if (!t) return;
    if (t->pool) ck_pool_destroy(t->pool);
    aligned_free(t->weights); aligned_free(t->arena); aligned_free(t->ws); aligned_free(t->losses);
    aligned_free(t->m); aligned_free(t->v);
    free(t->mv_off); free(t->grad_weight);
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

static int grad_of(const ckc_train *t, int w) {
    for (int g = 0; g < ckc_gen_n_grads; g++)
        if (t->grad_weight[g] == w) return g;
    return -1;
}

int ckc_train_tensor_trainable(const ckc_train *t, int i) { return grad_of(t, i) >= 0; }

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
    int g = grad_of(t, w);
    if (what < CKC_TRAIN_GRAD || what > CKC_TRAIN_ADAM_V) { fail(t, "unknown store %d", what); return NULL; }
    if (g < 0) { fail(t, "tensor '%s' is not trained (no gradient)", name); return NULL; }
    if (what == CKC_TRAIN_GRAD) return t->arena + ckc_gen_grad_offsets[g];
    return (uint8_t *)((what == CKC_TRAIN_ADAM_M ? t->m : t->v) + t->mv_off[g]);
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

/* Thread ith of nth zeroes its share of the gradients' bytes: the tensors
 * taken end to end, cut into nth equal byte ranges (a bandwidth-bound memset
 * of the whole gradient block goes faster on every core). */
static void zero_task(void *arg, int ith, int nth) {
    ckc_train *t = arg;
    size_t total = 0;
    for (int g = 0; g < ckc_gen_n_grads; g++) total += ckc_gen_grad_bytes[g];
    size_t lo = total / (size_t)nth * (size_t)ith, hi = ith == nth - 1 ? total : total / (size_t)nth * (size_t)(ith + 1);
    size_t at = 0;
    for (int g = 0; g < ckc_gen_n_grads && at < hi; g++) {
        size_t n = ckc_gen_grad_bytes[g], a = lo > at ? lo - at : 0, b = hi - at < n ? hi - at : n;
        if (a < b) memset(t->arena + ckc_gen_grad_offsets[g] + a, 0, b - a);
        at += n;
    }
}

void ckc_zero_grads(ckc_train *t) { ck_pool_run(t->pool, t->nth, zero_task, t); }

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

int ckc_optimizer_step(ckc_train *t, float lr, float beta1, float beta2, float eps, float weight_decay,
                       float max_norm, float *grad_norm) {
    if (!isfinite(lr) || !isfinite(beta1) || !isfinite(beta2) || !isfinite(eps) || !isfinite(weight_decay))
        return fail(t, "optimizer_step: a hyperparameter is not finite");
    double total = 0.0;
    for (int g = 0; g < ckc_gen_n_grads; g++)
        total += t->sumsq((const float *)(t->arena + ckc_gen_grad_offsets[g]),
                          (int64_t)(ckc_gen_grad_bytes[g] / sizeof(float)), t->pool, t->nth);
    float norm = (float)sqrt(total);
    float coef = 1.0f;
    if (max_norm > 0) coef = t->clip(total, max_norm, &norm);
    if (grad_norm) *grad_norm = norm;
    t->step++;
    for (int g = 0; g < ckc_gen_n_grads; g++) {
        int w = t->grad_weight[g];
        float wd = ckc_gen_weight_ndim[w] >= 2 ? weight_decay : 0.0f;
        t->adamw((float *)(t->weights + ckc_gen_weight_offsets[w]), (const float *)(t->arena + ckc_gen_grad_offsets[g]),
                 t->m + t->mv_off[g], t->v + t->mv_off[g], (int64_t)(ckc_gen_grad_bytes[g] / sizeof(float)), lr, beta1,
                 beta2, eps, wd, (int)t->step, coef, t->pool, t->nth);
    }
    ckc_zero_grads(t);
    return check_canaries(t, "optimizer_step");
}

int64_t ckc_train_get_step(const ckc_train *t) { return t->step; }
void ckc_train_set_step(ckc_train *t, int64_t step) { t->step = step < 0 ? 0 : step; }
