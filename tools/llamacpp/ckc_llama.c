/* ckc-llama: a small harness over llama.cpp's C API (llama.h), for ckc's tests and bench.
 *
 * Built and run by ckc/llamacpp.py (linked statically with llama.cpp's libraries).
 * Token ids come on stdin as little-endian int32; llama.cpp's own log goes nowhere
 * except errors, which go to stderr; exit status 0 on success.
 *
 *   ckc-llama logits   MODEL THREADS ALL [KV]       stdin: T int32 token ids
 *       stdout: int32 rows, int32 vocab, then rows*vocab float32 logits
 *       (rows = T with ALL=1, else 1: the last position). One batch of T tokens
 *       from an empty cache, flash attention off, KV cache of type KV: f32 (the
 *       default), f16 or q8_0 (a quantized V cache needs flash attention: on).
 *   ckc-llama bench    MODEL THREADS DECODE REPS KVF32   stdin: prompt token ids
 *       stdout: "<best prefill seconds> <best decode seconds>\n". Per repetition:
 *       clear the cache, decode the prompt as one batch (logits of the last
 *       position only), then DECODE greedy single-token steps (argmax here).
 *       KVF32=1: fp32 KV cache, flash attention off; 0: llama.cpp's defaults.
 *   ckc-llama tensors  MODEL THREADS          stdin: T int32 token ids
 *       One batch of T tokens from an empty cache (logits at every position,
 *       fp32 KV cache, flash attention off), with llama.cpp's graph callback
 *       (cb_eval) observing every node: each f32 node with a name is written
 *       after it is computed, in execution order: int32 name length, the name,
 *       the same for the names of its first two sources (length 0: none),
 *       int32 ne[4], then ne0*ne1*ne2*ne3 float32 (a strided view gathered
 *       into row-major order). Weights stay in the GGUF's layout (no repacking
 *       buffer types, which a graph split at every node breaks). ckc parity
 *       --against llama.cpp reads them.
 *   ckc-llama quantize IN OUT FTYPE THREADS
 *       llama_model_quantize with requantizing allowed (FTYPE: enum llama_ftype,
 *       0 = all F32, 7 = Q8_0).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-backend.h"
#include "llama.h"

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static void die(const char *msg) {
    fprintf(stderr, "ckc-llama: %s\n", msg);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t *read_tokens(int *n_out) {
    size_t cap = 1024, n = 0;
    int32_t *buf = malloc(cap * sizeof *buf);
    if (!buf) die("out of memory");
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap * sizeof *buf);
            if (!buf) die("out of memory");
        }
        size_t got = fread(buf + n, sizeof *buf, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (n == 0) die("no tokens on stdin");
    *n_out = (int)n;
    return buf;
}

static struct llama_model *load_with(const char *path, int extra_bufts) {
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.use_extra_bufts = extra_bufts != 0;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) die("llama.cpp could not load the model (see its error above)");
    return model;
}

static struct llama_model *load(const char *path) { return load_with(path, 1); }

/* kv: a ggml_type for the K and V caches (plain attention, or flash attention for a
 * quantized V cache, which needs it), or -1: llama.cpp's defaults (f16, flash auto). */
static struct llama_context *context(struct llama_model *model, int n_ctx, int n_batch, int threads, int kv) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_batch;
    cp.n_ubatch = (uint32_t)n_batch;
    cp.n_seq_max = 1;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    if (kv >= 0) {
        cp.type_k = cp.type_v = (enum ggml_type)kv;
        cp.flash_attn_type = kv == GGML_TYPE_Q8_0 ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) die("llama.cpp could not create a context");
    return ctx;
}

/* One batch of tokens [pos0, pos0+n) of sequence 0; outputs at every position or the last. */
static void decode(struct llama_context *ctx, struct llama_batch *b, const int32_t *tok, int n, int pos0, int all) {
    b->n_tokens = n;
    for (int i = 0; i < n; i++) {
        b->token[i] = tok[i];
        b->pos[i] = pos0 + i;
        b->n_seq_id[i] = 1;
        b->seq_id[i][0] = 0;
        b->logits[i] = (int8_t)(all || i == n - 1);
    }
    int rc = llama_decode(ctx, *b);
    if (rc != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "llama_decode returned %d", rc);
        die(msg);
    }
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

static int cmd_logits(int argc, char **argv) {
    if (argc != 5 && argc != 6) die("usage: logits MODEL THREADS ALL [f32|f16|q8_0]");
    int threads = atoi(argv[3]), all = atoi(argv[4]);
    const char *kv = argc == 6 ? argv[5] : "f32";
    enum ggml_type kv_type;
    if (strcmp(kv, "f32") == 0) kv_type = GGML_TYPE_F32;
    else if (strcmp(kv, "f16") == 0) kv_type = GGML_TYPE_F16;
    else if (strcmp(kv, "q8_0") == 0) kv_type = GGML_TYPE_Q8_0;
    else die("KV type must be f32, f16 or q8_0");
    int n;
    int32_t *tok = read_tokens(&n);
    struct llama_model *model = load(argv[2]);
    int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= vocab) die("token id out of the vocabulary");
    struct llama_context *ctx = context(model, round_up(n, 256), n, threads, (int)kv_type);
    struct llama_batch b = llama_batch_init(n, 0, 1);
    decode(ctx, &b, tok, n, 0, all);
    int32_t hdr[2] = {all ? n : 1, vocab};
    fwrite(hdr, sizeof hdr, 1, stdout);
    for (int i = all ? 0 : n - 1; i < n; i++) {
        const float *row = llama_get_logits_ith(ctx, i);
        if (!row) die("llama.cpp returned no logits");
        fwrite(row, sizeof(float), (size_t)vocab, stdout);
    }
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    free(tok);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_bench(int argc, char **argv) {
    if (argc != 7) die("usage: bench MODEL THREADS DECODE REPS KVF32");
    int threads = atoi(argv[3]), steps = atoi(argv[4]), reps = atoi(argv[5]), kv_f32 = atoi(argv[6]);
    int n;
    int32_t *prompt = read_tokens(&n);
    struct llama_model *model = load(argv[2]);
    int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_context *ctx = context(model, round_up(n + steps + 1, 256), n, threads,
                                         kv_f32 ? (int)GGML_TYPE_F32 : -1);
    struct llama_batch b = llama_batch_init(n, 0, 1);
    llama_memory_t mem = llama_get_memory(ctx);
    double best_p = 1e30, best_d = 1e30;
    for (int r = 0; r < reps; r++) {
        llama_memory_clear(mem, true);
        double t0 = now();
        decode(ctx, &b, prompt, n, 0, 0);
        int32_t tok = argmax(llama_get_logits_ith(ctx, -1), vocab);
        double t1 = now();
        for (int s = 0; s < steps; s++) {
            decode(ctx, &b, &tok, 1, n + s, 1);
            tok = argmax(llama_get_logits_ith(ctx, -1), vocab);
        }
        double t2 = now();
        if (t1 - t0 < best_p) best_p = t1 - t0;
        if (t2 - t1 < best_d) best_d = t2 - t1;
    }
    printf("%.9f %.9f\n", best_p, best_d);
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    free(prompt);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* cb_eval: ask = may I see t (yes, for named f32 nodes); then t computed. */
static bool observe(struct ggml_tensor *t, bool ask, void *user) {
    (void)user;
    const char *name = ggml_get_name(t);
    if (t->type != GGML_TYPE_F32 || !name || !name[0]) return ask ? false : true;
    if (ask) return true;
    int64_t n = ggml_nelements(t);
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    if (!buf) die("out of memory");
    if (ggml_is_contiguous(t)) {
        ggml_backend_tensor_get(t, buf, 0, (size_t)n * sizeof *buf);
    } else if (t->buffer && ggml_backend_buffer_is_host(t->buffer) && t->data) {
        const char *base = (const char *)t->data;
        size_t k = 0;
        for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
            for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
                for (int64_t i1 = 0; i1 < t->ne[1]; i1++)
                    for (int64_t i0 = 0; i0 < t->ne[0]; i0++)
                        memcpy(buf + k++, base + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3],
                               sizeof *buf);
    } else {
        free(buf);
        return true;
    }
    int32_t ne[4] = {(int32_t)t->ne[0], (int32_t)t->ne[1], (int32_t)t->ne[2], (int32_t)t->ne[3]};
    const char *names[3] = {name, t->src[0] ? ggml_get_name(t->src[0]) : "", t->src[1] ? ggml_get_name(t->src[1]) : ""};
    for (int i = 0; i < 3; i++) {
        int32_t len = (int32_t)strlen(names[i]);
        fwrite(&len, sizeof len, 1, stdout);
        fwrite(names[i], 1, (size_t)len, stdout);
    }
    fwrite(ne, sizeof ne, 1, stdout);
    fwrite(buf, sizeof *buf, (size_t)n, stdout);
    free(buf);
    return true;
}

static int cmd_tensors(int argc, char **argv) {
    if (argc != 4) die("usage: tensors MODEL THREADS");
    int threads = atoi(argv[3]);
    int n;
    int32_t *tok = read_tokens(&n);
    /* no extra buffer types: the repacked (AMX, CPU_REPACK) matmuls assume whole-graph
     * splits, and observing every node splits the graph at each one (AMX crashes) */
    struct llama_model *model = load_with(argv[2], 0);
    int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= vocab) die("token id out of the vocabulary");
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)round_up(n, 256);
    cp.n_batch = cp.n_ubatch = (uint32_t)n;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.cb_eval = observe;
    cp.cb_eval_user_data = NULL;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) die("llama.cpp could not create a context");
    struct llama_batch b = llama_batch_init(n, 0, 1);
    decode(ctx, &b, tok, n, 0, 1);
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    free(tok);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_quantize(int argc, char **argv) {
    if (argc != 6) die("usage: quantize IN OUT FTYPE THREADS");
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = (enum llama_ftype)atoi(argv[4]);
    qp.nthread = atoi(argv[5]);
    qp.allow_requantize = true;
    if (llama_model_quantize(argv[2], argv[3], &qp) != 0) die("llama_model_quantize failed");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: ckc-llama logits|bench|quantize|tensors ...");
    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    int rc;
    if (strcmp(argv[1], "logits") == 0) rc = cmd_logits(argc, argv);
    else if (strcmp(argv[1], "bench") == 0) rc = cmd_bench(argc, argv);
    else if (strcmp(argv[1], "quantize") == 0) rc = cmd_quantize(argc, argv);
    else if (strcmp(argv[1], "tensors") == 0) rc = cmd_tensors(argc, argv);
    else die("unknown command (logits, bench, quantize, tensors)");
    llama_backend_free();
    return rc;
}
