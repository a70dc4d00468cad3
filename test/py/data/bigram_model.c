/* A hand-written model implementing runtime/ckc_abi.h's inference part (what its
 * ckc_info.functions says), used to test the ABI,
 * the .bump loader, the arena and ckc.session before the compiler generates
 * models. It is a real (tiny) language model:
 *
 *   logits(t) = T[tok_t] + P[t] + 0.25 * T[tok_0]
 *
 * T = "token_embd.weight" [vocab, vocab] (a bigram table), P = "pos_bias.weight"
 * [context, vocab] (a learned bias per position), tok_0 the first token of the
 * sequence, read back from the "KV cache" (the tokens seen so far, kept in the
 * arena, followed by a canary word). The vocab and context come from the file.
 */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "ckc_abi.h"
#include "weights.h"

struct ckc_model {
    ck_weights *w;
    const float *table; /* [vocab, vocab] */
    const float *pos;   /* [context, vocab] */
    ck_arena arena;
    int32_t *cache;     /* [context] token ids, in the arena */
    int vocab, context, position, nthreads;
    char err[256];
};

int ckc_abi_version(void) { return CKC_ABI_VERSION; }

void ckc_model_destroy(ckc_model *m) {
    if (!m) return;
    ck_arena_free(&m->arena);
    ck_weights_close(m->w);
    free(m);
}

ckc_model *ckc_model_create(const char *weights_path, int nthreads, char *err, int errlen) {
    if (err && errlen > 0) err[0] = 0;
    if (nthreads < 0) {
        if (err && errlen > 0) snprintf(err, (size_t)errlen, "nthreads must be >= 0, got %d", nthreads);
        return NULL;
    }
    ckc_model *m = (ckc_model *)calloc(1, sizeof *m);
    if (!m) {
        if (err && errlen > 0) snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    if (ck_weights_open(weights_path, &m->w, err, errlen) != 0) goto fail;
    int i = ck_weights_find(m->w, "token_embd.weight");
    const ck_tensor_info *t = ck_weights_tensor(m->w, i);
    if (!t || t->ndim != 2) {
        if (err && errlen > 0)
            snprintf(err, (size_t)errlen, "%s: %s", weights_path,
                     t ? "tensor 'token_embd.weight' must have 2 dims" : "missing tensor 'token_embd.weight'");
        goto fail;
    }
    m->vocab = (int)t->shape[0];
    int64_t tshape[2] = {m->vocab, m->vocab};
    m->table = (const float *)ck_weights_expect(m->w, "token_embd.weight", CK_DT_F32, 2, tshape, err, errlen);
    if (!m->table) goto fail;
    i = ck_weights_find(m->w, "pos_bias.weight");
    t = ck_weights_tensor(m->w, i);
    m->context = t && t->ndim == 2 ? (int)t->shape[0] : 0;
    int64_t pshape[2] = {m->context, m->vocab};
    m->pos = (const float *)ck_weights_expect(m->w, "pos_bias.weight", CK_DT_F32, 2, pshape, err, errlen);
    if (!m->pos) goto fail;

    size_t cache_bytes = ((size_t)m->context * sizeof(int32_t) + 63) / 64 * 64;
    size_t canary = cache_bytes;
    if (ck_arena_init(&m->arena, cache_bytes + 64, &canary, 1, err, errlen) != 0) goto fail;
    m->cache = (int32_t *)m->arena.base;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    m->nthreads = nthreads ? nthreads : (ncpu > 0 ? (int)ncpu : 1);
    return m;
fail:
    ckc_model_destroy(m);
    return NULL;
}

int ckc_model_info(const ckc_model *m, ckc_info *out) {
    if (!m || !out) return CKC_ERR_INVALID;
    /* one token per step, one "layer" as wide as the vocab, inference only */
    *out = (ckc_info){
        .abi_version = CKC_ABI_VERSION, .vocab = m->vocab, .context = m->context, .max_batch = 1,
        .layers = 1, .hidden = m->vocab, .nthreads = m->nthreads, .arena_bytes = (int64_t)m->arena.size,
        .weights_bytes = (int64_t)ck_weights_size(m->w), .arch = "bigram", .simd = "scalar",
        .functions = CKC_FN_PREFILL | CKC_FN_PREFILL_ALL | CKC_FN_DECODE, .seq_len = 1, .batch = 1,
#ifdef CKC_DEBUG
        .debug = 1,
#endif
    };
    return CKC_OK;
}

static int fail(ckc_model *m, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return code;
}

/* Validates, then appends; rows of logits go to out (every row if all, else the last). */
static int forward(ckc_model *m, const int32_t *tokens, int n, float *out, int all) {
    if (!m) return CKC_ERR_INVALID;
    m->err[0] = 0;
    if (!tokens) return fail(m, CKC_ERR_INVALID, "tokens is NULL");
    if (n <= 0) return fail(m, CKC_ERR_INVALID, "empty token list (n = %d)", n);
    if (all && !out) return fail(m, CKC_ERR_INVALID, "logits is NULL");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->vocab)
            return fail(m, CKC_ERR_TOKEN, "token %ld at index %d is out of range (vocab %d)", (long)tokens[i], i,
                        m->vocab);
    if (n > m->context - m->position)
        return fail(m, CKC_ERR_CONTEXT, "context overflow: position %d + %d tokens > context %d",
                    m->position, n, m->context);
    const int V = m->vocab;
    for (int i = 0; i < n; i++) {
        int p = m->position + i;
        m->cache[p] = tokens[i];
        float *row = all ? out + (size_t)i * V : (i == n - 1 ? out : NULL);
        if (!row) continue;
        const float *a = m->table + (size_t)tokens[i] * V, *b = m->pos + (size_t)p * V;
        const float *c = m->table + (size_t)m->cache[0] * V;
        for (int v = 0; v < V; v++) row[v] = a[v] + b[v] + 0.25f * c[v];
    }
    m->position += n;
#ifdef CKC_DEBUG
    long bad = ck_arena_check_canaries(&m->arena);
    if (bad >= 0)
        return fail(m, CKC_ERR_MEMORY, "arena canary #%ld at offset %zu overwritten", bad,
                    m->arena.canaries[bad]);
#endif
    return CKC_OK;
}

int ckc_prefill(ckc_model *m, const int32_t *tokens, int n, float *logits_last) {
    return forward(m, tokens, n, logits_last, 0);
}

int ckc_prefill_all(ckc_model *m, const int32_t *tokens, int n, float *logits) {
    return forward(m, tokens, n, logits, 1);
}

int ckc_decode(ckc_model *m, int32_t token, float *logits) {
    if (m && !logits) return fail(m, CKC_ERR_INVALID, "logits is NULL");
    return forward(m, &token, 1, logits, 0);
}

int ckc_reset(ckc_model *m) {
    if (!m) return CKC_ERR_INVALID;
    m->position = 0;
    m->err[0] = 0;
    return CKC_OK;
}

int ckc_position(const ckc_model *m) { return m ? m->position : -1; }

const char *ckc_last_error(const ckc_model *m) { return m ? m->err : "model is NULL"; }
