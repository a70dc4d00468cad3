/* ckc training ABI: what a TRAINING model.so exports (runtime/train/train_runtime.c
 * on top of the generated model.c of a differentiated @train_step).
 *
 * The generated code (lower-to-c) provides
 *   int ckc_gen_train_step(arena, weights, tokens, logits, n, pos, ws, ws_size, pool, nth,
 *                          targets, losses, grad_scale)
 * which runs the forward pass, the fused cross-entropy (per-row losses into
 * `losses`, dlogits scaled by grad_scale) and the backward pass, ACCUMULATING
 * (+=) every parameter gradient into its `grads` buffer in the arena;
 *   int ckc_gen_eval_loss(...same parameters...)
 * the forward pass and the per-row losses alone (no backward, no gradient
 * touched; its activations reuse the same arena bytes);
 *   int ckc_gen_optimizer_step(arena, weights, lr, step, grad_norm, pool, nth)
 *   int ckc_gen_zero_grads(...same parameters...)
 * add-optimizer's functions (global-norm clipping and AdamW with the
 * hyperparameters compiled in, lr and the 1-based step at run time; zeroing
 * the gradients); plus the tables of runtime/model/model_gen.h and
 * ckc_gen_n_params (the trained tensors are weights 0 .. n_params-1) and
 * ckc_gen_grads_offset / _adam_m_offset / _adam_v_offset: plan-memory lays
 * the trained weights, their gradients and AdamW's m and v out as parallel
 * blocks (llm.c style), so tensor i's gradient is at arena + grads_offset +
 * (weight_offsets[i] - weight_offsets[0]), and likewise m and v.
 *
 * Memory. Training writes the weights, so the runtime does not map a .bump:
 * it owns one writable, 64-byte aligned copy of the weights block
 * (ckc_gen_weights_size bytes, the planned layout, zero at create) that the
 * caller fills tensor by tensor with ckc_train_write(.., CKC_TRAIN_WEIGHT, ..)
 * (constants such as RoPE tables included: every entry of the weight table).
 * The arena (gradients, AdamW's m and v, activations, saved activations) is
 * one aligned allocation of ckc_gen_arena_size bytes, its regions separated
 * by canaries. Nothing is allocated after create. Every block
 * starts zero and untouched (calloc: the OS commits a page when it is first
 * written), so the process holds one copy of the weights, written by the
 * caller, and the gradients / moments become resident as training writes
 * them; ckc_train_discard gives a tensor's pages back (moving state to a
 * recompiled library one tensor at a time).
 * The arena holds plan-memory's canaries (an 8-byte word after each region),
 * written at create; a build with -DCKC_DEBUG and lower-to-c{debug} checks
 * them after every kernel call and every step, and fails the step with an
 * error naming the canary, the buffer before it and the call.
 *
 * A step of k micro-batches:
 *   for each micro-batch: ckc_train_step(t, tokens, targets, n, 1.0f / k, &loss)
 *   ckc_optimizer_step(t, lr, &grad_norm)      (the generated clipping + AdamW, then zero_grads)
 * Evaluation: ckc_train_eval(t, tokens, targets, n, &loss) (forward only).
 * Every function returns 0 on success, else non-zero with a one-line message
 * in ckc_train_error(t); never crashes on bad input (token ids, lengths, names,
 * sizes are checked).
 */
#ifndef CKC_TRAIN_ABI_H
#define CKC_TRAIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKC_TRAIN_ABI_VERSION 3

typedef struct ckc_train ckc_train;

/* What ckc_train_read / ckc_train_write address. */
enum {
    CKC_TRAIN_WEIGHT = 0, /* the parameters (and compile-time constants) */
    CKC_TRAIN_GRAD = 1,   /* accumulated gradients (since the last optimizer step) */
    CKC_TRAIN_ADAM_M = 2, /* AdamW first moment */
    CKC_TRAIN_ADAM_V = 3  /* AdamW second moment */
};

int ckc_train_abi_version(void);
/* nthreads >= 1. NULL on failure with the reason in err. */
ckc_train *ckc_train_create(int nthreads, char *err, size_t errlen);
void ckc_train_destroy(ckc_train *t);
const char *ckc_train_error(const ckc_train *t);

/* Tokens per sequence: the longest sequence (an unbatched library), or THE
 * sequence length of a batched one (ckc_train_max_batch > 1 or compiled with
 * a batch: lower-transformer{seq_len}). */
int ckc_train_max_tokens(const ckc_train *t);
/* Sequences per call (the compiled batch B; 1 for an unbatched library). */
int ckc_train_max_batch(const ckc_train *t);
int ckc_train_vocab(const ckc_train *t);
/* The weight table: n tensors, each with a name, ndim (<= 4) and shape. */
int ckc_train_n_tensors(const ckc_train *t);
const char *ckc_train_tensor_name(const ckc_train *t, int i);
int ckc_train_tensor_shape(const ckc_train *t, int i, int64_t shape[4]); /* returns ndim */
int ckc_train_tensor_trainable(const ckc_train *t, int i);               /* has a gradient */

/* Copy a tensor (by name) out of / into the model; nbytes must equal its size.
 * GRAD / ADAM_M / ADAM_V exist for trainable tensors only. */
int ckc_train_read(ckc_train *t, int what, const char *name, float *dst, size_t nbytes);
int ckc_train_write(ckc_train *t, int what, const char *name, const float *src, size_t nbytes);

/* One micro-batch of n tokens and their n targets (ignored where outside
 * [0, vocab), e.g. -100): an unbatched library takes one causal sequence
 * (1 <= n <= max_tokens); a batched one b sequences of S = max_tokens tokens
 * each, back to back (n = b * S, 1 <= b <= max_batch), every GEMM over all n
 * rows and attention causal within each sequence. Adds
 * grad_scale * d(mean loss)/dW to the gradients (mean over the valid targets
 * of all n rows); *loss = that mean loss. */
int ckc_train_step(ckc_train *t, const int32_t *tokens, const int32_t *targets, int n, float grad_scale,
                   float *loss);
/* The mean loss of one sequence as ckc_train_step computes it, from the
 * forward pass alone: no backward, the gradients are left as they are. */
int ckc_train_eval(ckc_train *t, const int32_t *tokens, const int32_t *targets, int n, float *loss);
/* Zero tensor `name` of store `what` and return its whole pages to the OS
 * (they are committed again when next written). */
int ckc_train_discard(ckc_train *t, int what, const char *name);
/* Zero the gradients (create and ckc_optimizer_step do it too). */
void ckc_zero_grads(ckc_train *t);
/* The generated @optimizer_step: global-norm clipping and one AdamW update of
 * every trainable tensor (as torch.optim.AdamW; betas, eps, weight decay --
 * matrices only, norms and biases get none -- and the clipping norm were
 * compiled in by add-optimizer), then zero the gradients. Bias correction uses
 * the step counter + 1, which becomes the counter on success.
 * *grad_norm = the global gradient norm before clipping. */
int ckc_optimizer_step(ckc_train *t, float lr, float *grad_norm);
int64_t ckc_train_get_step(const ckc_train *t);
void ckc_train_set_step(ckc_train *t, int64_t step);

#ifdef __cplusplus
}
#endif

#endif /* CKC_TRAIN_ABI_H */
