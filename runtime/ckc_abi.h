/* ckc ABI: what every compiled model.so exports, for inference and training.
 *
 * The compiler's lower-to-c pass emits model.c (compute functions + tables,
 * runtime/library/ckc_gen.h); runtime/library/ckc_runtime.c implements this
 * header on top of it and is compiled into the same model.so, linked against
 * libckernels (kernels, runtime/weights.c, runtime/arena.c,
 * runtime/threadpool.c), so a model.so runs without the compiler. ckc/binding.py
 * declares this header once for ctypes (ckc/session.py: inference,
 * ckc/train/ckc_backend.py: training); any C program can call it too.
 *
 * One handle, one life cycle. A library holds the functions its IR had:
 * @prefill / @prefill_all / @decode (/ @decode_batch with KV-cache slots) for
 * inference, @train_step / @eval_loss / @optimizer_step / @zero_grads for
 * training. ckc_info.functions says which (CKC_FN_*); calling an entry point
 * whose function the library lacks returns CKC_ERR_UNSUPPORTED with e.g. "this
 * library has no @train_step (compiled for inference)" in ckc_last_error.
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
 * Weights. With a path, create maps the .bump file read-only and checks every
 * tensor the model reads against the compiled table (name, format, shape, byte
 * offset). With NULL, the model owns one writable, 64-byte aligned, zeroed copy
 * of the weights block (the planned layout) that the caller fills tensor by
 * tensor with ckc_tensor_write(.., CKC_WEIGHT, ..) -- every entry of the
 * weight table, compile-time constants (RoPE tables) included. Training needs
 * the writable copy (@optimizer_step writes the weights); with mapped weights
 * ckc_optimizer_step and weight writes return CKC_ERR_INVALID.
 *
 * Memory. The arena (KV cache, activations, scratch; for training also the
 * gradients, AdamW's m and v and the saved activations, the trained tensors'
 * gradient / m / v as blocks parallel to the weights) is one zeroed mapping
 * whose pages are committed when first written. plan-memory leaves an 8-byte
 * canary after every region (runtime/arena.h); create writes them; a debug
 * build (lower-to-c{debug} + -DCKC_DEBUG, ckc compile --debug,
 * CkcBackend(debug=True)) checks them after every kernel call and every entry
 * point and fails with CKC_ERR_MEMORY naming the canary, the region and buffer
 * it ends and the call that overwrote it.
 *
 * State. Inference: one sequence (slot 0: its KV cache and position, the
 * number of tokens the cache holds) plus, with slots, one per slot. Training:
 * the accumulated gradients, AdamW's moments and the step counter.
 *
 * Errors: every call validates its arguments BEFORE computing anything and
 * returns 0 or a CKC_ERR_* code; after CKC_ERR_INVALID, _TOKEN, _CONTEXT and
 * _UNSUPPORTED nothing changed. ckc_last_error(m) then describes the failure
 * in one line, e.g. "token 50000 at index 3 is out of range (vocab 49152)".
 * No call crashes on bad input (NULL pointers included).
 *
 * Threads: a model uses its own worker pool; calls on one model must not
 * overlap (use one model per thread). Distinct models are independent.
 *
 * Logits are row-major float32: [vocab] for one position, [n, vocab] for n.
 */
#ifndef CKC_ABI_H
#define CKC_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: the inference (1) and training (ckc_train_*, 3) ABIs merged into this one. */
#define CKC_ABI_VERSION 2

/* Return codes. */
#define CKC_OK 0
#define CKC_ERR_INVALID 1     /* NULL model or buffer, bad length, name, size or store */
#define CKC_ERR_TOKEN 2       /* a token id < 0 or >= vocab */
#define CKC_ERR_CONTEXT 3     /* position + n > context */
#define CKC_ERR_MEMORY 4      /* debug builds: a canary in the arena was overwritten */
#define CKC_ERR_INTERNAL 5    /* a kernel call failed; reset the model before reusing it */
#define CKC_ERR_UNSUPPORTED 6 /* the library has no such function (e.g. no @train_step) */

/* ckc_info.functions: the compute functions the library's IR had. */
#define CKC_FN_PREFILL (1 << 0)
#define CKC_FN_PREFILL_ALL (1 << 1)
#define CKC_FN_DECODE (1 << 2)
#define CKC_FN_DECODE_BATCH (1 << 3)
#define CKC_FN_TRAIN_STEP (1 << 4)
#define CKC_FN_EVAL_LOSS (1 << 5)
#define CKC_FN_OPTIMIZER_STEP (1 << 6)
#define CKC_FN_ZERO_GRADS (1 << 7)

/* What ckc_tensor_read / _write / _discard address. */
enum {
    CKC_WEIGHT = 0, /* the weights (and compile-time constants) */
    CKC_GRAD = 1,   /* accumulated gradients (since the last optimizer step) */
    CKC_ADAM_M = 2, /* AdamW first moment */
    CKC_ADAM_V = 3  /* AdamW second moment */
};

typedef struct ckc_model ckc_model;

/* Static facts about a compiled model. Fields never move between ABI versions;
 * new ones take reserved slots. Strings are NUL-terminated. */
typedef struct ckc_info {
    int32_t abi_version;    /* CKC_ABI_VERSION of the generated code */
    int32_t vocab;          /* logits per position; valid token ids are [0, vocab) */
    int32_t context;        /* maximum positions per KV-cache slot (0: no KV cache) */
    int32_t max_batch;      /* rows per internal compute call; longer prefills are
                               split into chunks by the model itself */
    int32_t layers;
    int32_t hidden;
    int32_t nthreads;       /* worker threads in use (after resolving 0 = all cores) */
    int32_t debug;          /* 1 if compiled with canary checks after every call */
    int64_t arena_bytes;    /* the one arena */
    int64_t weights_bytes;  /* the mapped .bump file, or the owned weights block */
    char arch[32];          /* "llama", "qwen2", "gpt2", ... */
    char simd[16];          /* kernel variant compiled in: "avx512", "avx2", "scalar" */
    /* ---- ABI 2 ---- */
    int32_t functions;      /* CKC_FN_* */
    int32_t slots;          /* KV-cache slots of @decode_batch (0: none) */
    int32_t seq_len;        /* training: tokens per sequence of one call -- the longest
                               (batch 1) or THE sequence length (batch > 1) */
    int32_t batch;          /* training: sequences per call (n = b * seq_len, b <= batch) */
    int32_t n_tensors;      /* entries of the weight table (ckc_tensor_*) */
    int32_t n_params;       /* the trained ones: tensors 0 .. n_params-1 */
    int32_t weights_owned;  /* 1: the writable copy (created with NULL), 0: mapped */
    int32_t reserved32;     /* zero */
    int64_t reserved[4];    /* zero */
} ckc_info;

/* CKC_ABI_VERSION of this model.so; callers check it before anything else. */
int ckc_abi_version(void);

/* Weights from the .bump at weights_path (mapped, checked), or with NULL an
 * owned zeroed copy to fill with ckc_tensor_write; allocates the arena (with
 * its canaries), the GEMM workspace and nthreads workers (0 = all cores;
 * negative is an error). NULL on any error with one line in err (if
 * errlen > 0), e.g. "<path>: missing tensor 'output_norm.weight'". */
ckc_model *ckc_model_create(const char *weights_path, int nthreads, char *err, int errlen);

/* Frees everything; NULL is allowed. */
void ckc_model_destroy(ckc_model *m);

/* Fills *out; returns CKC_OK, or CKC_ERR_INVALID for NULL arguments. */
int ckc_model_info(const ckc_model *m, ckc_info *out);

/* One line describing the last failed call on m ("" if none). Valid until the
 * next call on m. For NULL returns a static message. */
const char *ckc_last_error(const ckc_model *m);

/* ---- inference (@prefill, @prefill_all, @decode) ---- */

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

/* ---- KV-cache slots: several sequences in one model (@decode_batch, ckc serve) ----
 * A model compiled with slots (ckc compile --slots N) holds N sequences, each
 * with its own KV cache region and position. Slot 0 is the sequence
 * ckc_prefill / ckc_decode / ckc_reset / ckc_position use.
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
 * above; on CKC_ERR_INTERNAL / _MEMORY the slots of the call are reset. Calls
 * longer than max_batch rows run as several compute calls. */

/* KV-cache slots; 0 for a model compiled without them (ckc_batch refuses). */
int ckc_slots(const ckc_model *m);

int ckc_batch(ckc_model *m, const int32_t *slots, const int32_t *tokens, int n, const int32_t *out_rows,
              int n_out, float *logits);

/* Slot back to position 0 / its position (-1 for NULL or a bad slot). */
int ckc_slot_reset(ckc_model *m, int slot);
int ckc_slot_position(const ckc_model *m, int slot);

/* ---- the weight table and the training state ---- */

/* Tensor i (0 <= i < info.n_tensors): its name (NULL out of range), its shape
 * (returns ndim <= 4, -1 out of range), whether it is trained (has a gradient
 * and AdamW moments). */
const char *ckc_tensor_name(const ckc_model *m, int i);
int ckc_tensor_shape(const ckc_model *m, int i, int64_t shape[4]);
int ckc_tensor_trainable(const ckc_model *m, int i);

/* Copy tensor `name` of store `what` (CKC_WEIGHT, _GRAD, _ADAM_M, _ADAM_V) out
 * of / into the model; nbytes must equal its stored size. GRAD / ADAM_M /
 * ADAM_V exist for trained tensors only. */
int ckc_tensor_read(ckc_model *m, int what, const char *name, void *dst, size_t nbytes);
int ckc_tensor_write(ckc_model *m, int what, const char *name, const void *src, size_t nbytes);
/* Zero tensor `name` of store `what` and return its whole pages to the OS
 * (committed again when next written; moving state to a recompiled library
 * one tensor at a time). Not for mapped weights. */
int ckc_tensor_discard(ckc_model *m, int what, const char *name);

/* ---- training (@train_step, @eval_loss, @optimizer_step, @zero_grads) ----
 * A step of k micro-batches:
 *   for each micro-batch: ckc_train_step(m, tokens, targets, n, 1.0f / k, &loss)
 *   ckc_optimizer_step(m, lr, &grad_norm)   (the generated clipping + AdamW, then @zero_grads)
 * Evaluation: ckc_eval_loss(m, tokens, targets, n, &loss) (forward only). */

/* One micro-batch of n tokens and their n targets (ignored where outside
 * [0, vocab), e.g. -100): with info.batch == 1 one causal sequence
 * (1 <= n <= seq_len); else b sequences of seq_len tokens each, back to back
 * (n = b * seq_len, 1 <= b <= batch), every GEMM over all n rows and attention
 * causal within each sequence. Adds grad_scale * d(mean loss)/dW to the
 * gradients (mean over the valid targets of all n rows); *loss = that mean. */
int ckc_train_step(ckc_model *m, const int32_t *tokens, const int32_t *targets, int n, float grad_scale,
                   float *loss);
/* The mean loss as ckc_train_step computes it, from the forward pass alone:
 * no backward, the gradients are left as they are. */
int ckc_eval_loss(ckc_model *m, const int32_t *tokens, const int32_t *targets, int n, float *loss);
/* The generated @optimizer_step: global-norm clipping and one AdamW update of
 * every trained tensor (betas, eps, weight decay and the clipping norm were
 * compiled in by add-optimizer), then @zero_grads. Bias correction uses the
 * step counter + 1, which becomes the counter on success.
 * *grad_norm = the global gradient norm before clipping (may be NULL). */
int ckc_optimizer_step(ckc_model *m, float lr, float *grad_norm);
/* The generated @zero_grads (create and ckc_optimizer_step do it too). */
int ckc_zero_grads(ckc_model *m);
/* The optimizer's step counter (-1 for NULL); set clamps below at 0. */
int64_t ckc_get_step(const ckc_model *m);
int ckc_set_step(ckc_model *m, int64_t step);

#ifdef __cplusplus
}
#endif
#endif /* CKC_ABI_H */
