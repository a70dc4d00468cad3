/* ckc: what the generated model.c (passes/lower_to_c.py) defines for the
 * runtime (ckc_runtime.c). Both are compiled into one model.so; see
 * passes/lower_to_c.py for the meaning of every symbol.
 *
 * A library holds the compute functions its IR had: inference (@prefill,
 * @prefill_all, @decode, maybe @decode_batch) or training (@train_step,
 * @eval_loss, @optimizer_step, @zero_grads). Every function and every table
 * only some libraries have is declared weak: an absent one is NULL here, the
 * runtime reports it in ckc_info.functions and refuses its entry point
 * (CKC_ERR_UNSUPPORTED). (Not hidden: tests and tools dlsym the compute
 * functions of a model.so.) */
#ifndef CKC_GEN_H
#define CKC_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "ckernels.h"

/* A compute function: 0 on success, k + 1 when call k failed, -(k + 1) when an
 * arena canary was overwritten by call k (debug builds). */
typedef int (*ckc_gen_fn)(uint8_t *arena, const uint8_t *weights, const int32_t *tokens,
                          float *logits, int n, int pos, void *ws, size_t ws_size,
                          ck_pool *pool, int nth);

#define CKC_GEN_OPT __attribute__((weak))

int ckc_gen_prefill(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits,
                    int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth) CKC_GEN_OPT;
int ckc_gen_prefill_all(uint8_t *arena, const uint8_t *weights, const int32_t *tokens,
                        float *logits, int n, int pos, void *ws, size_t ws_size, ck_pool *pool,
                        int nth) CKC_GEN_OPT;
int ckc_gen_decode(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits,
                   int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth) CKC_GEN_OPT;

/* The slot-batched decode (lower-transformer{modes=...,decode_batch slots=N}):
 * n rows of different sequences, row i in KV-cache slot slots[i] at position
 * positions[i] (pos is unused); logits [m, vocab] of the rows out_rows[0..m).
 * A model compiled without slots has neither it nor ckc_gen_slots (then the
 * runtime reports 0 slots). */
int ckc_gen_decode_batch(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n,
                         int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *slots,
                         const int32_t *positions, const int32_t *out_rows, int m) CKC_GEN_OPT;
extern const int ckc_gen_slots CKC_GEN_OPT;

/* Training: the forward pass, the fused cross-entropy (per-row losses into
 * `losses`, dlogits scaled by grad_scale) and the backward pass, ACCUMULATING
 * (+=) every parameter gradient into the arena's grads block; @eval_loss the
 * forward pass and the per-row losses alone. */
typedef int (*ckc_gen_train_fn)(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits,
                                int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth,
                                const int32_t *targets, float *losses, float grad_scale);
int ckc_gen_train_step(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n,
                       int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *targets,
                       float *losses, float grad_scale) CKC_GEN_OPT;
int ckc_gen_eval_loss(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n,
                      int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *targets,
                      float *losses, float grad_scale) CKC_GEN_OPT;
/* add-optimizer's functions: global-norm clipping + AdamW (hyperparameters
 * compiled in; lr and the 1-based step at run time), zeroing the gradients.
 * The only functions that write the weights. */
int ckc_gen_optimizer_step(uint8_t *arena, uint8_t *weights, float lr, int step, float *grad_norm, ck_pool *pool,
                           int nth) CKC_GEN_OPT;
int ckc_gen_zero_grads(uint8_t *arena, uint8_t *weights, float lr, int step, float *grad_norm, ck_pool *pool,
                       int nth) CKC_GEN_OPT;
/* rows per sequence of a batched training call; 0: one sequence of 1..max_tokens */
extern const int ckc_gen_seq_len CKC_GEN_OPT;
/* The trained tensors are weights 0 .. n_params-1; tensor i's gradient / m / v
 * sits at these arena offsets + (its weight offset - weight 0's): the blocks
 * are parallel (plan-memory; lower-to-c checks it). -1: no such block. */
extern const int ckc_gen_n_params CKC_GEN_OPT;
extern const int64_t ckc_gen_grads_offset CKC_GEN_OPT;
extern const int64_t ckc_gen_adam_m_offset CKC_GEN_OPT;
extern const int64_t ckc_gen_adam_v_offset CKC_GEN_OPT;

extern const char *const ckc_gen_arch;
extern const char *const ckc_gen_simd;
extern const int ckc_gen_vocab;
extern const int ckc_gen_context;
extern const int ckc_gen_max_tokens;
extern const int ckc_gen_layers;
extern const int ckc_gen_hidden;
extern const size_t ckc_gen_arena_size;
extern const int ckc_gen_n_canaries;
extern const size_t ckc_gen_canaries[];
extern const char *const ckc_gen_canary_names[]; /* what each canary guards (lower-to-c) */
extern const size_t ckc_gen_weights_size;
extern const int ckc_gen_n_weights;
extern const char *const ckc_gen_weight_names[];
extern const size_t ckc_gen_weight_offsets[];
extern const size_t ckc_gen_weight_bytes[];
extern const int ckc_gen_weight_ndim[];
extern const int64_t ckc_gen_weight_shapes[]; /* 4 per tensor */
extern const int ckc_gen_weight_dtypes[];     /* CK_DT_*: f32, f32p32, a GGUF block format or its r8 */
extern const int ckc_gen_gemm_max_n;
extern const int ckc_gen_gemm_max_k;
/* Quantized GEMMs, one entry per weight format they read: its ck_qtype and the
 * largest n, k; the workspace is the max of ck_gemm_workspace_size and these
 * formats' ck_qgemm_workspace_size / ck_qkgemm_workspace_size. */
extern const int ckc_gen_n_qgemm;
extern const int ckc_gen_qgemm_fmts[];
extern const int ckc_gen_qgemm_max_n[];
extern const int ckc_gen_qgemm_max_k[];
extern const int ckc_gen_n_calls;
extern const char *const ckc_gen_call_names[];

/* Defined by the runtime; called by debug builds of model.c after every kernel. */
int ckc_rt_canaries_ok(uint8_t *arena);

#define CKC_GEN_MAX_DIMS 4

#endif /* CKC_GEN_H */
