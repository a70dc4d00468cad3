/* ckc model ABI: what every generated model.so exports.
 *
 * The compiler's lower-to-c pass emits model.c implementing exactly these
 * functions; ckc/session.py (ctypes) and any C program call them. A model.so is
 * linked against libckernels (kernels, runtime/weights.c, runtime/arena.c,
 * runtime/threadpool.c), so it runs without the compiler.
 *
 * Life cycle:
 *
 *     char err[256];
 *     ckc_model *m = ckc_model_create("DIR/weights.bump", 0, err, sizeof err);
 *     if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *     ckc_info info; ckc_model_info(m, &info);
 *     float *logits = malloc(sizeof(float) * info.vocab);
 *     int rc = ckc_prefill(m, prompt, n, logits);          // position: 0 -> n
 *     while (!rc && ...) rc = ckc_decode(m, next, logits);  // position: p -> p + 1
 *     if (rc) fprintf(stderr, "%s\n", ckc_last_error(m));
 *     ckc_reset(m);                                        // position -> 0
 *     ckc_model_destroy(m);
 *
 * State: a model holds one sequence: its KV cache and the current position (the
 * number of tokens the cache holds). prefill and decode append tokens at the
 * current position; tokens at positions < position are attended to.
 *
 * Errors: every call validates its arguments BEFORE computing anything and returns
 * 0 or a CKC_ERR_* code; after CKC_ERR_INVALID, CKC_ERR_TOKEN and CKC_ERR_CONTEXT
 * nothing changed (same position, same cache). ckc_last_error(m) then describes
 * the failure in one line, e.g. "token 50000 at index 3 is out of range (vocab
 * 49152)" or "context overflow: position 2040 + 16 tokens > context 2048".
 * No call crashes on bad input (NULL pointers included).
 *
 * Threads: a model uses its own worker pool; calls on one model must not overlap
 * (use one model per thread). Distinct models are independent.
 *
 * Logits are row-major float32: [vocab] for one position, [n, vocab] for n.
 */
#ifndef CKC_MODEL_ABI_H
#define CKC_MODEL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKC_ABI_VERSION 1

/* Return codes. */
#define CKC_OK 0
#define CKC_ERR_INVALID 1   /* NULL model or buffer, n <= 0 */
#define CKC_ERR_TOKEN 2     /* a token id < 0 or >= vocab */
#define CKC_ERR_CONTEXT 3   /* position + n > context */
#define CKC_ERR_MEMORY 4    /* debug builds: a canary in the arena was overwritten */
#define CKC_ERR_INTERNAL 5  /* anything else; reset the model before reusing it */

typedef struct ckc_model ckc_model;

/* Static facts about a compiled model. Fields never move between ABI versions;
 * new ones take reserved slots. Strings are NUL-terminated. */
typedef struct ckc_info {
    int32_t abi_version;    /* CKC_ABI_VERSION of the generated code */
    int32_t vocab;          /* logits per position; valid token ids are [0, vocab) */
    int32_t context;        /* maximum positions (KV cache length) */
    int32_t max_batch;      /* tokens per internal forward pass; longer prefills are
                               split into chunks by the model itself */
    int32_t layers;
    int32_t hidden;
    int32_t nthreads;       /* worker threads in use (after resolving 0 = all cores) */
    int32_t debug;          /* 1 if compiled with canary checks after every call */
    int64_t arena_bytes;    /* the one arena: KV cache + activations + scratch */
    int64_t weights_bytes;  /* size of the mapped .bump file */
    char arch[32];          /* "llama", "qwen2", "gpt2", ... */
    char simd[16];          /* kernel variant compiled in: "avx512", "avx2", "scalar" */
    int64_t reserved[8];    /* zero */
} ckc_info;

/* CKC_ABI_VERSION of this model.so; callers check it before anything else. */
int ckc_abi_version(void);

/* Maps the weights (a .bump file, checked against the tensors the model expects),
 * allocates the arena and starts nthreads workers (0 = all cores; negative is an
 * error). Returns NULL on any error with one line in err (if errlen > 0), e.g.
 * "<path>: missing tensor 'output_norm.weight'" or "<path>: truncated: tensor
 * 'blk.3.ffn_up.weight' needs bytes [a, b) but the file has n". */
ckc_model *ckc_model_create(const char *weights_path, int nthreads, char *err, int errlen);

/* Frees everything; NULL is allowed. */
void ckc_model_destroy(ckc_model *m);

/* Fills *out; returns CKC_OK, or CKC_ERR_INVALID for NULL arguments. */
int ckc_model_info(const ckc_model *m, ckc_info *out);

/* Appends tokens[0..n) at the current position (position += n) and writes the
 * logits of the LAST of them into logits_last [vocab]. logits_last may be NULL:
 * then no logits are written (only the KV cache is filled). */
int ckc_prefill(ckc_model *m, const int32_t *tokens, int n, float *logits_last);

/* Same, but writes the logits of all n positions into logits [n, vocab]
 * (parity tests, perplexity). */
int ckc_prefill_all(ckc_model *m, const int32_t *tokens, int n, float *logits);

/* Appends one token at the current position (position += 1); logits [vocab]. */
int ckc_decode(ckc_model *m, int32_t token, float *logits);

/* Position back to 0: the next prefill starts a new sequence (the KV cache memory
 * is reused, not freed). */
int ckc_reset(ckc_model *m);

/* Tokens currently in the KV cache; -1 for NULL. */
int ckc_position(const ckc_model *m);

/* ---- KV-cache slots: several sequences in one model (ckc serve) ----
 * A model compiled with slots (ckc compile --slots N; the IR's @decode_batch)
 * holds N sequences, each with its own KV cache region and position. Slot 0
 * is the sequence ckc_prefill / ckc_decode / ckc_reset / ckc_position use.
 *
 * ckc_batch appends n rows in ONE compute call: row i appends tokens[i] to
 * slot slots[i] (its position advances by one). The linear layers run over all
 * n rows at once (the weights are read once), attention per row against its
 * own slot. Rows of one slot are taken in order, so a prefill chunk of a new
 * sequence (consecutive rows of its slot) mixes with one decode row of each
 * running sequence. logits [n_out, vocab] receives the logits of the rows
 * out_rows[0..n_out) (strictly increasing, in [0, n): usually the last row of
 * each sequence; only those rows pay for the final norm and the lm_head), or
 * with out_rows NULL the logits of all n rows ([n, vocab]). Errors as
 * above (nothing changes after CKC_ERR_INVALID / _TOKEN / _CONTEXT); on
 * CKC_ERR_INTERNAL the slots of the call are reset. Calls longer than
 * max_batch rows run as several compute calls. */

/* KV-cache slots; 0 for a model compiled without them (ckc_batch refuses). */
int ckc_slots(const ckc_model *m);

int ckc_batch(ckc_model *m, const int32_t *slots, const int32_t *tokens, int n, const int32_t *out_rows,
              int n_out, float *logits);

/* Slot back to position 0 / its position (-1 for NULL or a bad slot). */
int ckc_slot_reset(ckc_model *m, int slot);
int ckc_slot_position(const ckc_model *m, int slot);

/* One line describing the last failed call on m ("" if none). Valid until the
 * next call on m. For NULL returns a static message. */
const char *ckc_last_error(const ckc_model *m);

#ifdef __cplusplus
}
#endif
#endif /* CKC_MODEL_ABI_H */
