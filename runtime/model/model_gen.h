/* ckc: what the generated model.c (passes/lower_to_c.py) defines for the runtime
 * glue (model_runtime.c). Both are compiled into one model.so; see
 * passes/lower_to_c.py for the meaning of every symbol. */
#ifndef CKC_MODEL_GEN_H
#define CKC_MODEL_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "ckernels.h"

/* A compute function: 0 on success, k + 1 when call k failed, -(k + 1) when an
 * arena canary was overwritten by call k (debug builds). */
typedef int (*ckc_gen_fn)(uint8_t *arena, const uint8_t *weights, const int32_t *tokens,
                          float *logits, int n, int pos, void *ws, size_t ws_size,
                          ck_pool *pool, int nth);

int ckc_gen_prefill(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits,
                    int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth);
int ckc_gen_prefill_all(uint8_t *arena, const uint8_t *weights, const int32_t *tokens,
                        float *logits, int n, int pos, void *ws, size_t ws_size, ck_pool *pool,
                        int nth);
int ckc_gen_decode(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits,
                   int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth);

/* The slot-batched decode (lower-transformer{modes=...,decode_batch slots=N}):
 * n rows of different sequences, row i in KV-cache slot slots[i] at position
 * positions[i] (pos is unused); logits [m, vocab] of the rows out_rows[0..m).
 * Weak: a model compiled without slots has neither it nor ckc_gen_slots (then
 * the runtime reports 0 slots). */
int ckc_gen_decode_batch(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n,
                         int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *slots,
                         const int32_t *positions, const int32_t *out_rows, int m) __attribute__((weak));
extern const int ckc_gen_slots __attribute__((weak));

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
extern const int ckc_gen_weight_dtypes[];     /* CK_DT_F32, or CK_DT_F32P32 (prepacked for gemm_packed) */
extern const int ckc_gen_gemm_max_n;
extern const int ckc_gen_gemm_max_k;
extern const int ckc_gen_n_calls;
extern const char *const ckc_gen_call_names[];

/* Defined by the runtime; called by debug builds of model.c after every kernel. */
int ckc_rt_canaries_ok(uint8_t *arena);

#define CKC_GEN_MAX_DIMS 4

#endif /* CKC_MODEL_GEN_H */
