/* ckernels.h — the one public header of ckc's C kernel library (libckernels).
 *
 * Conventions (every family):
 *  - fp32, row-major, contiguous unless a stride is given. Shapes are written
 *    [rows, cols]; "x[M,K]" means M rows of K floats.
 *  - Symbols are ck_<op>_f32_<variant>, variant in {scalar, avx2, avx512}; all
 *    variants of one op have the same signature and the same results up to
 *    rounding. Backward kernels are ck_<op>_grad_f32_<variant>. The caller picks
 *    the variant (ck_cpu_features() says which the CPU runs); only the variant
 *    files are compiled with ISA flags, so calling an avx512 symbol on a CPU
 *    without AVX-512 is an illegal instruction.
 *  - No allocation and no global state inside a kernel: scratch memory comes
 *    from the caller.
 *  - Kernels that run in parallel take `ck_pool *pool, int nth` as their last
 *    two parameters: the work is split into nth parts run on the pool
 *    (pool == NULL or nth <= 1: run on the calling thread).
 *
 * Each op family has its own section below, marked
 *   / * ==== <family> ==== * /
 * Add a new family as a new section just above the "end of families" marker.
 */
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/* CPU features (CK_CPU_* flags, variant masks, ck_cpu_features,
 * ck_cpu_disable, ck_cpu_best_variant) are declared once, in runtime/cpu.h
 * next to their implementation; by path, so -I kernels/include suffices. */
#include "../../runtime/cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== runtime: thread pool ==== */
/* (runtime/threadpool.h) A pool of size n = the caller + n-1 persistent
 * workers that spin briefly, then sleep. ck_pool_run calls fn(arg, ith, nth)
 * once for each ith in [0, nth) (nth may exceed the pool size) and returns when
 * all are done; pool == NULL or nth <= 1 runs inline. nthreads <= 0 in
 * ck_pool_create means "online CPUs". */
typedef struct ck_pool ck_pool;
typedef void (*ck_task_fn)(void *arg, int ith, int nth);
ck_pool *ck_pool_create(int nthreads);
void ck_pool_destroy(ck_pool *pool);
int  ck_pool_size(const ck_pool *pool);
void ck_pool_run(ck_pool *pool, int nth, ck_task_fn fn, void *arg);
/* [*lo, *hi): part ith of nth near-equal parts of [0, n), each starting on a
 * multiple of align. */
void ck_split_range(long n, long align, int ith, int nth, long *lo, long *hi);

/* Status codes returned by kernels that can fail. */
#define CK_OK 0
#define CK_ERR_WORKSPACE (-1)   /* workspace NULL or smaller than the size query */

/* ==== gemm ==== */
/* Linear layer, weights stored [out, in] (PyTorch / GGUF):
 *
 *   y[M,N] (+)= x[M,K] · W[N,K]ᵀ + b[N]          (b may be NULL)
 *
 * accumulate = 0 overwrites y, 1 adds to it. M = tokens, K = in features,
 * N = out features; all contiguous row-major. M == 1 (decode) takes a GEMV
 * path that streams W once; small M avoids packing W.
 *
 * Workspace: the SIMD variants pack blocks of x and W into caller-provided
 * scratch (no allocation inside the kernel). ws must be 64-byte aligned and
 * hold at least ck_gemm_workspace_size(M, N, K, nth) bytes (the same query
 * covers every variant, forward and backward; today it depends only on nth and
 * is bounded: 768 KiB shared + 512 KiB per thread + 64 bytes, any alignment of
 * ws is accepted since the kernel aligns inside it). With too little workspace the kernel
 * writes nothing and returns CK_ERR_WORKSPACE; otherwise CK_OK. The scalar
 * reference needs no workspace (ws may be NULL). Blocking: KC = 256,
 * MC = 768 rows of x packed once per k block and shared by the threads,
 * columns of Wᵀ packed per chunk (at most NC = 512 wide); micro-tile 12x32
 * (avx512) / 6x16 (avx2); M < 8 streams W with dot products instead (no
 * packing). Threads claim (row group, column chunk) items dynamically, about
 * three per thread, so a thread slowed down by the machine takes fewer; each
 * output element is computed by one thread in a fixed order, so results do
 * not depend on the thread count or the schedule. */
size_t ck_gemm_workspace_size(int M, int N, int K, int nth);

int ck_gemm_f32_scalar(const float *x, const float *W, const float *b, float *y,
                       int M, int N, int K, int accumulate,
                       void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_gemm_f32_avx2(const float *x, const float *W, const float *b, float *y,
                     int M, int N, int K, int accumulate,
                     void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_gemm_f32_avx512(const float *x, const float *W, const float *b, float *y,
                       int M, int N, int K, int accumulate,
                       void *ws, size_t ws_size, ck_pool *pool, int nth);

/* Backward of ck_gemm, given dy[M,N] and the forward inputs x[M,K], W[N,K]:
 *
 *   dx[M,K] (+)= dy · W            (skipped if dx == NULL; needs W)
 *   dW[N,K] (+)= dyᵀ · x           (skipped if dW == NULL; needs x)
 *   db[N]   (+)= Σ_m dy[m,:]       (skipped if db == NULL)
 *
 * flags: CK_GEMM_ACC_DX / _DW / _DB make that output accumulate (+=), else it
 * is overwritten. Gradient accumulation over micro-batches uses
 * CK_GEMM_ACC_DW | CK_GEMM_ACC_DB. Workspace and return value as ck_gemm. */
#define CK_GEMM_ACC_DX 1
#define CK_GEMM_ACC_DW 2
#define CK_GEMM_ACC_DB 4
int ck_gemm_grad_f32_scalar(const float *dy, const float *x, const float *W,
                            float *dx, float *dW, float *db,
                            int M, int N, int K, int flags,
                            void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_gemm_grad_f32_avx2(const float *dy, const float *x, const float *W,
                          float *dx, float *dW, float *db,
                          int M, int N, int K, int flags,
                          void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_gemm_grad_f32_avx512(const float *dy, const float *x, const float *W,
                            float *dx, float *dW, float *db,
                            int M, int N, int K, int flags,
                            void *ws, size_t ws_size, ck_pool *pool, int nth);

/* Prepacked weights: W[N,K] rearranged once (at load) into column panels of 32
 * output features, k-major, zero-padded to a multiple of 32 features:
 *
 *   Wp[q][k][j] = W[32q + j][k]   (0 where 32q + j >= N),  q < ceil(N/32), k < K
 *
 * ck_gemm_packed_size(N, K) bytes (0 if N or K <= 0); Wp 64-byte aligned. The
 * layout is the same for every variant (a weight packed once serves them all).
 * ck_gemm_packed_f32_<v> computes exactly what ck_gemm_f32_<v> computes on the
 * unpacked W (y[M,N] (+)= x · Wᵀ + b, any M >= 1, decode included), without
 * packing W on every call; same workspace query and return values. */
size_t ck_gemm_packed_size(int N, int K);
void ck_gemm_pack_f32(const float *W, int N, int K, float *Wp, ck_pool *pool, int nth);
int ck_gemm_packed_f32_scalar(const float *x, const float *Wp, const float *b, float *y,
                              int M, int N, int K, int accumulate,
                              void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_gemm_packed_f32_avx2(const float *x, const float *Wp, const float *b, float *y,
                            int M, int N, int K, int accumulate,
                            void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_gemm_packed_f32_avx512(const float *x, const float *Wp, const float *b, float *y,
                              int M, int N, int K, int accumulate,
                              void *ws, size_t ws_size, ck_pool *pool, int nth);

/* GEMV (decode): y[N] (+)= W[N,K] · x[K] + b[N] (b may be NULL). Streams W once,
 * split over N; no workspace. ck_gemm with M == 1 calls this. */
void ck_gemv_f32_scalar(const float *x, const float *W, const float *b, float *y,
                        int N, int K, int accumulate, ck_pool *pool, int nth);
void ck_gemv_f32_avx2(const float *x, const float *W, const float *b, float *y,
                      int N, int K, int accumulate, ck_pool *pool, int nth);
void ck_gemv_f32_avx512(const float *x, const float *W, const float *b, float *y,
                        int N, int K, int accumulate, ck_pool *pool, int nth);

/* ==== common (other families) ==== */
/* Status code for a bad argument (shape limits, unknown style). */
#define CK_ERR_ARG (-2)
/* CK_DECLARE_VARIANTS(ret, op, params) declares op_scalar, op_avx2 and
 * op_avx512 with one signature; every family below uses it. */
#define CK_DECLARE_VARIANTS(ret, op, params) \
    ret op##_scalar params;                  \
    ret op##_avx2 params;                    \
    ret op##_avx512 params;
/* Unless a section says otherwise: outputs may alias the matching input
 * (in-place use) for elementwise and row-wise kernels; parameter gradients
 * (dw, db, dtable) ACCUMULATE (+=) so the caller zeroes them once per step,
 * activation gradients (dx, dq, ...) are overwritten. Element counts are
 * int64_t, dimensions int. */

/* ==== elementwise ==== */
/* y[n] = a[n] + b[n]                  (residual add)
 * y[n] = a[n] * b[n]                  (product; its grad is two products)
 * y[n] = s * x[n]                     (scale; also applies a clip coefficient)
 * y[n] += a * x[n]                    (gradient accumulate, axpy) */
CK_DECLARE_VARIANTS(void, ck_add_f32, (const float *a, const float *b, float *y, int64_t n, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_mul_f32, (const float *a, const float *b, float *y, int64_t n, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_scale_f32, (const float *x, float *y, int64_t n, float s, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_axpy_f32, (float *y, const float *x, int64_t n, float a, ck_pool *pool, int nth))

/* ==== activation ==== */
/* SiLU y = x·σ(x); GELU with approx = 0: exact 0.5·x·(1 + erf(x/√2)),
 * approx = 1: tanh form 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))
 * (PyTorch approximate="tanh", "gelu_pytorch_tanh", GPT-2 "gelu_new").
 * Grad: dx[n] = dy[n] · f'(x[n]) from the forward input x. */
CK_DECLARE_VARIANTS(void, ck_silu_f32, (const float *x, float *y, int64_t n, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_silu_grad_f32,
                    (const float *x, const float *dy, float *dx, int64_t n, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_gelu_f32, (const float *x, float *y, int64_t n, int approx, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_gelu_grad_f32,
                    (const float *x, const float *dy, float *dx, int64_t n, int approx, ck_pool *pool, int nth))
/* Soft capping y = cap·tanh(x/cap) (Gemma 2 final logits); dx = dy·(1 − tanh²(x/cap)). */
CK_DECLARE_VARIANTS(void, ck_softcap_f32, (const float *x, float *y, int64_t n, float cap, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_softcap_grad_f32,
                    (const float *x, const float *dy, float *dx, int64_t n, float cap, ck_pool *pool, int nth))
/* Gated MLP activations, two separate inputs (the gate and up projections):
 *   SwiGLU: y[t,i] = silu(gate[t,i]) · up[t,i]
 *   GeGLU:  y[t,i] = gelu(gate[t,i]) · up[t,i]   (approx as ck_gelu)
 * over T rows of F values. gate, up (and dgate, dup) have row stride ld_in,
 * y and dy row stride ld_out (ld = F when contiguous). A fused gate|up
 * projection output [T, 2F] is used in place as gate = p, up = p + F,
 * ld_in = 2F. Grad: dgate = dy·up·act'(gate), dup = dy·act(gate), overwritten. */
CK_DECLARE_VARIANTS(void, ck_swiglu_f32,
                    (const float *gate, const float *up, float *y, int T, int F, int ld_in, int ld_out,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_swiglu_grad_f32,
                    (const float *gate, const float *up, const float *dy, float *dgate, float *dup, int T, int F,
                     int ld_in, int ld_out, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_geglu_f32,
                    (const float *gate, const float *up, float *y, int T, int F, int ld_in, int ld_out, int approx,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_geglu_grad_f32,
                    (const float *gate, const float *up, const float *dy, float *dgate, float *dup, int T, int F,
                     int ld_in, int ld_out, int approx, ck_pool *pool, int nth))

/* ==== norm ==== */
/* RMSNorm over rows of x[T,C] (per-head QK-norm of [T, heads*hd] with a [hd]
 * weight is the same call with T*heads rows of C = hd):
 *   rstd[t] = 1/sqrt(mean_i x[t,i]² + eps);  y[t,i] = x[t,i]·rstd[t]·(w[i] + w_offset)
 * w_offset = 0 (Llama) or 1 (Gemma's (1+w)). rstd[T] is written if non-NULL
 * (save it for the backward). Grad (needs the saved rstd):
 *   dx[T,C] = rstd·g − x·rstd³·mean_i(g·x), g = dy·(w + w_offset)  (overwritten; skipped if NULL)
 *   dw[C]  += Σ_t dy·x·rstd                                        (skipped if NULL) */
CK_DECLARE_VARIANTS(void, ck_rmsnorm_f32,
                    (const float *x, const float *w, float *y, float *rstd, int T, int C, float eps, float w_offset,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_rmsnorm_grad_f32,
                    (const float *dy, const float *x, const float *w, const float *rstd, float *dx, float *dw, int T,
                     int C, float w_offset, ck_pool *pool, int nth))
/* LayerNorm over rows of x[T,C] (biased variance, as PyTorch):
 *   y = (x − mean[t])·rstd[t]·(w + w_offset) + b   (b may be NULL; mean[T], rstd[T]
 *                                                   written if non-NULL; w_offset usually 0)
 * Grad (needs the saved mean and rstd), xhat = (x − mean)·rstd, g = dy·(w + w_offset):
 *   dx  = rstd·(g − mean_i(g) − xhat·mean_i(g·xhat))   (overwritten; skipped if NULL)
 *   dw += Σ_t dy·xhat,  db += Σ_t dy                     (each skipped if NULL) */
CK_DECLARE_VARIANTS(void, ck_layernorm_f32,
                    (const float *x, const float *w, const float *b, float *y, float *mean, float *rstd, int T, int C,
                     float eps, float w_offset, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_layernorm_grad_f32,
                    (const float *dy, const float *x, const float *w, const float *mean, const float *rstd, float *dx,
                     float *dw, float *db, int T, int C, float w_offset, ck_pool *pool, int nth))

/* ==== rope ==== */
/* Rotary position embedding on x[T, heads*head_dim] (Q or K, whole tensor),
 * written to y (y == x allowed). Row t has position pos[t] if pos != NULL,
 * else pos0 + t (pos0 = n_past when continuing a cache). Only the first
 * rotary_dim dims of each head rotate (partial rotary); the rest are copied.
 *   inv_freq[i] = theta^(−2i/rotary_dim) (rounded to fp32), or the caller's table
 *   inv_freq[rotary_dim/2] if non-NULL (RoPE scaling: linear, llama3, ...);
 *   angle = fp32(position)·inv_freq[i] in fp32 (as PyTorch/transformers), cos/sin
 *   of that angle evaluated in double
 *   CK_ROPE_NEOX:        pairs (i, i + rotary_dim/2)   — HF rotate_half (Llama/Qwen/Gemma
 *                        safetensors, GGUF "neox" archs)
 *   CK_ROPE_INTERLEAVED: pairs (2i, 2i+1)              — GPT-J, GGUF llama (weights permuted)
 *   (x1, x2) -> (x1·cos − x2·sin, x2·cos + x1·sin)
 * Grad applies the inverse rotation (dy -> dx). Returns CK_OK, or CK_ERR_ARG
 * if rotary_dim is odd, <= 0, > head_dim or > CK_ROPE_MAX_DIM, or style unknown. */
#define CK_ROPE_NEOX 0
#define CK_ROPE_INTERLEAVED 1
#define CK_ROPE_MAX_DIM 1024
CK_DECLARE_VARIANTS(int, ck_rope_f32,
                    (const float *x, float *y, const int32_t *pos, const float *inv_freq, int T, int heads,
                     int head_dim, int rotary_dim, int pos0, float theta, int style, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_rope_grad_f32,
                    (const float *dy, float *dx, const int32_t *pos, const float *inv_freq, int T, int heads,
                     int head_dim, int rotary_dim, int pos0, float theta, int style, ck_pool *pool, int nth))

/* ==== softmax ==== */
/* Numerically stable softmax over each row of x[T,C] -> y[T,C] (y == x allowed).
 * Grad from the forward output y: dx = y·(dy − Σ_i y·dy). */
CK_DECLARE_VARIANTS(void, ck_softmax_f32, (const float *x, float *y, int T, int C, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_softmax_grad_f32,
                    (const float *y, const float *dy, float *dx, int T, int C, ck_pool *pool, int nth))

/* ==== attention ==== */
/* Causal self-attention with GQA (H query heads, KV key/value heads, H % KV == 0;
 * query head h uses KV head h / (H/KV)) and an optional sliding window.
 *   q, out [T, H*D]                 rows = the T new tokens, at positions n_past + t
 *   k, v   [n_past + T, KV*D]       row j = position j; a KV cache [max_ctx, KV*D]
 *                                   works as is (rows past n_past + T are never read)
 *   lse    [T, H] or NULL           per-row log-sum-exp of the scaled scores (save
 *                                   for the backward)
 * Query at position P attends keys j with j <= P and, if window > 0,
 * j > P − window (window keys including itself; window <= 0: no window).
 * out = softmax(cap(scale·q·kᵀ) + mask)·v; scale is usually 1/sqrt(D);
 * cap(s) = softcap·tanh(s/softcap) if softcap > 0 (Gemma 2), else s.
 * Online softmax over key blocks (flash style); parallel over heads (the
 * heads of a GQA group share a task) and query blocks. D <= CK_ATTN_MAX_HEAD_DIM.
 * Returns CK_OK or CK_ERR_ARG (bad sizes; nothing written). */
#define CK_ATTN_MAX_HEAD_DIM 256
CK_DECLARE_VARIANTS(int, ck_attention_f32,
                    (const float *q, const float *k, const float *v, float *out, float *lse, int T, int n_past,
                     int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth))
/* Decode: one new token at position n_past, q/out [1, H*D]; its k/v must
 * already be stored at row n_past of k_cache / v_cache [max_ctx, KV*D].
 * Same as ck_attention with T = 1, lse = NULL; parallel over heads. */
CK_DECLARE_VARIANTS(int, ck_attention_decode_f32,
                    (const float *q, const float *k_cache, const float *v_cache, float *out, int n_past, int H,
                     int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth))
/* KV cache stored in fp16 or Q8_0 (ckc --kv-type f16|q8_0): the same
 * attention with k, v (caches [max_ctx, KV*D]) in that format, q/out fp32, no
 * lse (inference only). Key/value rows are converted to fp32 on the fly, one
 * key block of a KV head at a time (F16C vcvtph2ps / AVX-512F for f16; Q8_0:
 * d·q, exact in fp32), then the fp32 kernel's arithmetic runs unchanged: the
 * result equals ck_attention_f32 on the dequantized cache up to fp32
 * rounding. Q8_0 needs D % 32 == 0 (a head is whole blocks; row j of head g
 * is blocks j·KV·D/32 + g·D/32 ..); CK_ERR_ARG otherwise. */
CK_DECLARE_VARIANTS(int, ck_attention_kvf16,
                    (const float *q, const void *k, const void *v, float *out, int T, int n_past, int H,
                     int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_attention_decode_kvf16,
                    (const float *q, const void *k_cache, const void *v_cache, float *out, int n_past,
                     int H, int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_attention_kvq8_0,
                    (const float *q, const void *k, const void *v, float *out, int T, int n_past, int H, int KV,
                     int D, int window, float scale, float softcap, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_attention_decode_kvq8_0,
                    (const float *q, const void *k_cache, const void *v_cache, float *out, int n_past, int H,
                     int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth))
/* KV cache append: T fp32 rows x[T, C] -> T cache rows in the cache's format
 * (cache points at the first row to write, row pos of the cache).
 *   f16:  round to nearest even (numpy's astype(float16); overflow -> inf).
 *   q8_0: per block of 32 (C % 32 == 0, else CK_ERR_ARG): amax = max |x|,
 *         d = fp16(amax / 127), q = round-to-nearest-even(x · (127 / amax))
 *         (0 when amax = 0), |q| <= 127: ggml-cpu's quantize_row_q8_0.
 * Every variant writes the same bytes; parallel over rows, independent of nth. */
CK_DECLARE_VARIANTS(int, ck_kv_write_f16, (const float *x, void *cache, int T, int C, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_kv_write_q8_0, (const float *x, void *cache, int T, int C, ck_pool *pool, int nth))
/* Backward, given the forward's q, k, v, out, lse and dout [T, H*D]:
 *   dq [T, H*D]            overwritten
 *   dk, dv [n_past+T, KV*D] overwritten (all rows, the GQA sum over the heads
 *                          of each group included)
 * Probabilities are recomputed from lse (no [T, T] matrix), flash-attention-2
 * style in two passes: dK/dV parallel over (KV head, key block), then dQ over
 * (query head, query block). No scratch memory; the SIMD variants keep their
 * tiles on the stack (about 170 KiB per thread, forward about 150 KiB). */
CK_DECLARE_VARIANTS(int, ck_attention_grad_f32,
                    (const float *q, const float *k, const float *v, const float *out, const float *dout,
                     const float *lse, float *dq, float *dk, float *dv, int T, int n_past, int H, int KV, int D,
                     int window, float scale, float softcap, ck_pool *pool, int nth))

/* A batch of independent sequences: q, k, v, out (and lse, dq, dk, dv) hold
 * rows = B·S rows, sequence b in rows b·S .. b·S+S-1, each attending causally
 * within itself only (positions 0..S-1; no cache). The same arithmetic as B
 * calls of ck_attention_f32 / ck_attention_grad_f32 (T = S, n_past = 0) on the
 * sequences' rows, which is what they do. Returns CK_ERR_ARG (nothing written)
 * unless S > 0 and rows is a multiple of S, or the per-sequence arguments are bad. */
CK_DECLARE_VARIANTS(int, ck_attention_seq_f32,
                    (const float *q, const float *k, const float *v, float *out, float *lse, int rows, int S, int H,
                     int KV, int D, int window, float scale, float softcap, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_attention_grad_seq_f32,
                    (const float *q, const float *k, const float *v, const float *out, const float *dout,
                     const float *lse, float *dq, float *dk, float *dv, int rows, int S, int H, int KV, int D,
                     int window, float scale, float softcap, ck_pool *pool, int nth))
/* pos[i] = pos0 + i mod S for i < rows (S <= 0: pos0 + i): the positions of a
 * batch of sequences of S rows, for ck_rope_f32's pos and learned-position
 * embedding ids. */
CK_DECLARE_VARIANTS(void, ck_seq_positions_i32, (int32_t *pos, int rows, int S, int pos0, ck_pool *pool, int nth))

/* ==== slot-batched decode (slot_attention.c) ====
 * Rows t of one call belong to different sequences: row t lives in KV-cache
 * slot slots[t] at position pos[t]. Caches are [nslots, context, W] (W =
 * KV*D), slot s at row s*context. Rows of one slot come in position order.
 * kv_scatter: cache[slots[t], pos[t], :] = x[t, :] for x [T, W].
 * slot_attention: q, out [T, H*D]; row t attends to rows 0..pos[t] of its
 * slot (its own row included: scatter first), as ck_attention_f32 does for
 * one sequence; each run of consecutive rows of one slot at consecutive
 * positions is one ck_attention_f32 call of the same variant.
 * Both return CK_OK, or CK_ERR_ARG (nothing written) when a slot or position
 * is out of range or a size is invalid. */
CK_DECLARE_VARIANTS(int, ck_kv_scatter_f32,
                    (const float *x, float *cache, const int32_t *slots, const int32_t *pos, int T, int W,
                     int nslots, int context, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_slot_attention_f32,
                    (const float *q, const float *k_cache, const float *v_cache, float *out, const int32_t *slots,
                     const int32_t *pos, int T, int nslots, int context, int H, int KV, int D, int window,
                     float scale, float softcap, ck_pool *pool, int nth))

/* ==== embedding ==== */
/* out[t,:] = scale · table[ids[t], :]    table [vocab, C], ids [T], out [T, C]
 * (scale = 1, or sqrt(C) for Gemma). An id outside [0, vocab) gives a zero
 * row; the return value counts such ids (0 = all valid).
 * Grad: dtable[ids[t], :] += scale · dout[t, :] (scatter-add, repeated ids
 * sum; deterministic: parallel over columns). Out-of-range ids are skipped. */
CK_DECLARE_VARIANTS(int, ck_embedding_f32,
                    (const int32_t *ids, const float *table, float *out, int T, int vocab, int C, float scale,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_embedding_grad_f32,
                    (const int32_t *ids, const float *dout, float *dtable, int T, int vocab, int C, float scale,
                     ck_pool *pool, int nth))

/* ==== cross_entropy ==== */
/* Fused softmax + cross-entropy over logits[T, V], targets[T]:
 *   loss[t] = logsumexp(logits[t]) − logits[t, targets[t]]
 * Returns the mean of loss[t] over rows whose target is not ignore_index (a
 * target outside [0, V) is ignored too); 0 if there are none.
 * losses[T] (per-row loss, 0 for ignored rows) and dlogits[T, V] are written
 * if non-NULL: dlogits = grad_scale·(softmax(logits) − onehot(target)) / count,
 * zero rows for ignored targets (grad_scale = 1: the gradient of the mean
 * loss; else dloss or a loss scale). dlogits == logits is allowed (in place). */
CK_DECLARE_VARIANTS(float, ck_cross_entropy_f32,
                    (const float *logits, const int32_t *targets, float *dlogits, float *losses, int T, int V,
                     int ignore_index, float grad_scale, ck_pool *pool, int nth))

/* ==== optim ==== */
/* AdamW, one parameter tensor of n floats, as torch.optim.AdamW:
 *   g = grad·grad_scale  (grad_scale: 1, or the clip coefficient below)
 *   param *= 1 − lr·weight_decay
 *   m = β1·m + (1−β1)·g;   v = β2·v + (1−β2)·g²
 *   param −= lr/(1−β1^step) · m / (sqrt(v)/sqrt(1−β2^step) + eps)
 * step counts from 1 (the update being made). m, v: state, zero at start. */
CK_DECLARE_VARIANTS(void, ck_adamw_f32,
                    (float *param, const float *grad, float *m, float *v, int64_t n, float lr, float beta1,
                     float beta2, float eps, float weight_decay, int step, float grad_scale, ck_pool *pool, int nth))
/* Global-norm clipping over many tensors, two phases:
 *   1. total = Σ over tensors of ck_sumsq_f32(grad, n)      (double)
 *   2. c = ck_clip_coef_f32(total, max_norm, &norm) = min(1, max_norm/(sqrt(total) + 1e-6))
 *      (as torch.nn.utils.clip_grad_norm_), then scale every gradient by c
 *      (ck_scale_f32, or pass c as ck_adamw's grad_scale). */
CK_DECLARE_VARIANTS(double, ck_sumsq_f32, (const float *x, int64_t n, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(float, ck_clip_coef_f32, (double sumsq, float max_norm, float *norm_out))
/* The optimizer as the compiled @optimizer_step runs it (bufferize), over
 * flat blocks: plan-memory lays weights, gradients and AdamW's m and v out as
 * parallel blocks in the same order, so one call covers many tensors.
 *   ck_clip_norm_f32: norm[0] = sqrt(Σ g²) over n floats (ck_sumsq_f32), and
 *     coef[0] = min(1, max_norm / (norm + 1e-6)) (1 when max_norm <= 0).
 *   ck_adamw_coef_f32: ck_adamw_f32 with grad_scale = coef[0] (1 if coef is NULL).
 *   ck_zero_f32: x[0..n) = 0 (zeroing the gradients; threads split the bytes). */
CK_DECLARE_VARIANTS(void, ck_clip_norm_f32,
                    (const float *g, int64_t n, float max_norm, float *norm, float *coef, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_adamw_coef_f32,
                    (float *param, const float *grad, float *m, float *v, const float *coef, int64_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int step, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(void, ck_zero_f32, (float *x, int64_t n, ck_pool *pool, int nth))

/* ==== fused_qkv ==== */
/* Attention input of one layer in one call (fuse-rmsnorm-qkv-rope):
 *   h = rmsnorm(x; nw, eps, w_offset)        x[T, C] -> h[T, C] (caller's scratch)
 *   q = rope(h·Wqᵀ + bq; heads),  k = rope(h·Wkᵀ + bk; kv_heads),  v = h·Wvᵀ + bv
 * with ck_rmsnorm_f32, ck_gemm_f32 (packed == 0: W row-major [out, C]) or
 * ck_gemm_packed_f32 (packed != 0: W in ck_gemm_pack_f32's layout) and
 * ck_rope_f32 of the same variant, so the result is bit for bit that of the
 * separate calls. q[T, heads*head_dim], k and v [T, kv_heads*head_dim]
 * contiguous (k, v may be KV-cache rows pos0..); biases and inv_freq may be
 * NULL; rope rows at positions pos0 + t. Workspace as ck_gemm (M = T). Returns
 * CK_OK, CK_ERR_WORKSPACE, or CK_ERR_ARG (bad heads / rope arguments). */
CK_DECLARE_VARIANTS(int, ck_rmsnorm_qkv_rope_f32,
                    (const float *x, const float *nw, const float *wq, const float *wk, const float *wv,
                     const float *bq, const float *bk, const float *bv, const float *inv_freq, float *q, float *k,
                     float *v, float *h, int T, int C, int heads, int kv_heads, int head_dim, int rotary_dim,
                     int pos0, float theta, int style, float eps, float w_offset, int packed, void *ws,
                     size_t ws_size, ck_pool *pool, int nth))

/* ==== quant ==== */
/* Quantized weights in GGUF block formats, kept quantized up to the kernel.
 *
 * Types: ck_qtype values equal GGUF's ggml_type numbers, so a tensor's type id
 * from the file is the fmt argument. Block layouts (element q[i] of a block
 * of 32; d, m are IEEE fp16; reference: gguf-py's quants.py):
 *   Q8_0  34 B: d, int8 qs[32]                         w = d·qs[i]
 *   Q4_0  18 B: d, qs[16]  q[i] = qs[i] & 15, q[i+16] = qs[i] >> 4 (i < 16)
 *                                                      w = d·(q − 8)
 *   Q4_1  20 B: d, m, qs[16] (nibbles as Q4_0)          w = d·q + m
 *   Q5_0  22 B: d, qh[4], qs[16]: q = nibble as Q4_0 | bit i of the
 *               little-endian uint32 qh << 4            w = d·(q − 16)
 *   Q5_1  24 B: d, m, qh[4], qs[16] (q as Q5_0)         w = d·q + m
 *   F16 / BF16: one 16-bit value per element (BF16 = the high half of an fp32)
 * A row of K elements is K/32 consecutive blocks (F16/BF16: K values); K must
 * be a multiple of the block size (ck_qtype_block_size). K-quants (Q2_K..Q6_K,
 * blocks of 256) are declared in their own section.
 *
 * Linear layer with quantized W[N,K] (rows in the format above), x, b, y fp32:
 *
 *   y[M,N] (+)= x[M,K] · dequant(W)[N,K]ᵀ + b[N]          (b may be NULL)
 *
 * Block formats quantize each row of x on the fly to 8-bit blocks of 32
 * (fp32 scale dx = amax/127, qx = round-to-nearest-even(x/dx), |qx| <= 127, plus
 * the integer block sum Σqx for the formats with an offset or a minimum) and
 * compute per block one exact integer dot product Σ q·qx, then one float
 * step: acc += dw·dx·(Σ q·qx − off·Σqx) (Q8_0/Q4_0/Q5_0, off = 0/8/16) or
 * acc += dw·dx·Σ q·qx + m·dx·Σqx (Q4_1/Q5_1). Every variant computes the same
 * quantized activations bit for bit; results differ only by fp32 rounding of
 * the per-block accumulation. F16/BF16 convert W to fp32 and use fp32 FMA
 * (no activation quantization).
 *
 * Workspace (the quantized x rows): ws holds at least
 * ck_qgemm_workspace_size(fmt, M, N, K, nth) bytes, any alignment (scalar
 * included; 0 for F16/BF16, where ws may be NULL). The avx512 variant uses
 * AVX-512 VNNI (vpdpbusd) when ck_cpu_features() has CK_CPU_AVX512VNNI, else
 * AVX-512BW vpmaddubsw. Threads split N (and quantize x by rows); each output
 * is computed by one thread in a fixed order: results do not depend on nth.
 * Returns CK_OK; CK_ERR_WORKSPACE (ws too small, nothing written);
 * CK_ERR_ARG (K not a multiple of the block size, unknown fmt; nothing written). */
typedef enum {
    CK_QTYPE_F32 = 0,
    CK_QTYPE_F16 = 1,
    CK_QTYPE_Q4_0 = 2,
    CK_QTYPE_Q4_1 = 3,
    CK_QTYPE_Q5_0 = 6,
    CK_QTYPE_Q5_1 = 7,
    CK_QTYPE_Q8_0 = 8,
    CK_QTYPE_Q8_1 = 9,
    CK_QTYPE_Q2_K = 10,
    CK_QTYPE_Q3_K = 11,
    CK_QTYPE_Q4_K = 12,
    CK_QTYPE_Q5_K = 13,
    CK_QTYPE_Q6_K = 14,
    CK_QTYPE_Q8_K = 15,
    CK_QTYPE_BF16 = 30,
} ck_qtype;

#define CK_QK 32   /* elements per block of the legacy formats */
typedef struct { uint16_t d; int8_t qs[32]; } ck_block_q8_0;
typedef struct { uint16_t d; uint8_t qs[16]; } ck_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } ck_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } ck_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } ck_block_q5_1;
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(ck_block_q8_0) == 34, "Q8_0 block is 34 bytes in GGUF");
_Static_assert(sizeof(ck_block_q4_0) == 18, "Q4_0 block is 18 bytes in GGUF");
_Static_assert(sizeof(ck_block_q4_1) == 20, "Q4_1 block is 20 bytes in GGUF");
_Static_assert(sizeof(ck_block_q5_0) == 22, "Q5_0 block is 22 bytes in GGUF");
_Static_assert(sizeof(ck_block_q5_1) == 24, "Q5_1 block is 24 bytes in GGUF");
#endif

/* Elements per block / bytes per block of a type (GGUF's GGML_QUANT_SIZES,
 * K-quants included); 0 for an unknown type. Bytes of a row of K elements:
 * ck_qrow_size (0 if K is not a multiple of the block). */
int ck_qtype_block_size(int fmt);
int ck_qtype_type_size(int fmt);
size_t ck_qrow_size(int fmt, int K);

size_t ck_qgemm_workspace_size(int fmt, int M, int N, int K, int nth);

/* IEEE fp16 <-> fp32 rows (scalar, exact; fp32 -> fp16 rounds to nearest even,
 * overflow to inf, nan stays nan), as numpy's astype. The same conversions are
 * the inline helpers of kernels/internal/quant_common.h. */
void ck_fp16_to_fp32_row(const uint16_t *h, float *f, int64_t n);
void ck_fp32_to_fp16_row(const float *f, uint16_t *h, int64_t n);

#define CK_DECLARE_QGEMM(fmt)                                                              \
    CK_DECLARE_VARIANTS(int, ck_qgemm_##fmt,                                               \
                        (const float *x, const void *W, const float *b, float *y, int M,   \
                         int N, int K, int accumulate, void *ws, size_t ws_size,           \
                         ck_pool *pool, int nth))
CK_DECLARE_QGEMM(q8_0)
CK_DECLARE_QGEMM(q4_0)
CK_DECLARE_QGEMM(q4_1)
CK_DECLARE_QGEMM(q5_0)
CK_DECLARE_QGEMM(q5_1)
CK_DECLARE_QGEMM(f16)
CK_DECLARE_QGEMM(bf16)

/* Interleaved repacking (ik_llama.cpp's _R8 idea), every block format: rows
 * are taken in groups of 8 and each block column of a group is stored as one
 * "R8 block" holding the 8 rows' blocks kb side by side, with the scales first:
 *
 *   Q4_0 (144 B): d[8] | qs of rows 0-3 (4 x 16 B) | qs of rows 4-7
 *   Q4_1 (160 B): d[8] | m[8] | qs of rows 0-3 | qs of rows 4-7
 *   Q5_0 (176 B): d[8] | qh[8] | qs of rows 0-3 | qs of rows 4-7
 *   Q5_1 (192 B): d[8] | m[8] | qh[8] | qs of rows 0-3 | qs of rows 4-7
 *   Q8_0 (272 B): d[8] | q[0:16] of rows 0-3 | q[16:32] of rows 0-3 |
 *                        q[0:16] of rows 4-7 | q[16:32] of rows 4-7
 *
 * (d, m fp16 and qh uint32 of row r at index r; qs as in the GGUF block; rows
 * >= N of the last group are zero). Group g = rows 8g..8g+7 holds its K/32 R8 blocks in
 * order. One 64-byte load then gives 16 bytes of 4 rows: the same 16
 * activation bytes broadcast to the four 128-bit lanes feed 4 rows per
 * vpdpbusd, and one float step (cvt, scale, FMA) serves 4 rows, the scales of
 * 8 rows coming from one 16-byte load. ck_qpacked_size(fmt, N, K) bytes
 * (= ceil(N/8)·8 rows; 0 for another format or a bad shape).
 * ck_qgemm_packed_<fmt>_<v> computes what ck_qgemm_<fmt>_<v> computes on the
 * unpacked W, up to fp32 rounding (same workspace query, same return values).
 * Same layout for every variant. */
#define CK_QPACK_ROWS 8
size_t ck_qpacked_size(int fmt, int N, int K);
#define CK_DECLARE_QPACKED(fmt)                                                            \
    void ck_qpack_##fmt(const void *W, int N, int K, void *Wp, ck_pool *pool, int nth);    \
    CK_DECLARE_VARIANTS(int, ck_qgemm_packed_##fmt,                                        \
                        (const float *x, const void *Wp, const float *b, float *y, int M,  \
                         int N, int K, int accumulate, void *ws, size_t ws_size,           \
                         ck_pool *pool, int nth))
CK_DECLARE_QPACKED(q8_0)
CK_DECLARE_QPACKED(q4_0)
CK_DECLARE_QPACKED(q4_1)
CK_DECLARE_QPACKED(q5_0)
CK_DECLARE_QPACKED(q5_1)

/* Embedding lookup from quantized rows: out[t,:] = scale · dequant(table[ids[t]])
 * (table [vocab, C] in the format, C a multiple of the block size). An id
 * outside [0, vocab) gives a zero row; returns the count of such ids, or
 * CK_ERR_ARG (-2) for a C that is not a multiple of the block (nothing written). */
#define CK_DECLARE_QEMBEDDING(fmt)                                                         \
    CK_DECLARE_VARIANTS(int, ck_qembedding_##fmt,                                          \
                        (const int32_t *ids, const void *table, float *out, int T,         \
                         int vocab, int C, float scale, ck_pool *pool, int nth))
CK_DECLARE_QEMBEDDING(q8_0)
CK_DECLARE_QEMBEDDING(q4_0)
CK_DECLARE_QEMBEDDING(q4_1)
CK_DECLARE_QEMBEDDING(q5_0)
CK_DECLARE_QEMBEDDING(q5_1)
CK_DECLARE_QEMBEDDING(f16)
CK_DECLARE_QEMBEDDING(bf16)

/* ==== quant_k ==== */
/* K-quant weights (GGUF's Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: super-blocks of 256
 * values; byte layouts documented in kernels/internal/quant_k.h). fmt numbers
 * are GGUF's ggml_type values. A weight W[N,K] is N rows of K/256 blocks each,
 * row-major, rows packed back to back (the GGUF tensor bytes as they are).
 *
 *   y[M,N] (+)= x[M,K] · dequant(W)[N,K]ᵀ + b[N]          (b may be NULL)
 *
 * Arguments as ck_gemm (accumulate = 0 overwrites y, 1 adds). x is first
 * quantized to Q8_K in the workspace (per 256 values: int8 q = round(x·127/amax),
 * scale amax/127, 16 group sums); each super-block then contributes two exact
 * integer dot products and one float step, as llama.cpp. Any M (M = 1 is the
 * decode GEMV); threads split N, every output is computed by one thread in a
 * fixed order, so results do not depend on nth or the schedule (the kernel
 * path depends on M only). ws: at least ck_qkgemm_workspace_size(fmt, M, N,
 * K, nth) bytes, any alignment, for every variant the scalar one included:
 * M·K/256 Q8_K blocks of 384 bytes, ceil(M/16)·K/256 transposed tiles of
 * 5184 bytes and nth·8·K/256 unpacked weight blocks of 384 bytes, + 64.
 * Returns CK_OK; CK_ERR_ARG (nothing written) when K is not a positive
 * multiple of 256 or M, N < 0; CK_ERR_WORKSPACE when ws is NULL or too small.
 * The avx512 variant checks CK_CPU_AVX512VNNI once: with VNNI, M >= 16 runs a
 * tiled kernel (8 weight rows unpacked once per call × 16 tokens in the lanes,
 * vpdpbusd) and smaller M row kernels (vpdpbusd + vpdpwssd); without, row
 * kernels on AVX-512BW (vpmaddubsw + vpmaddwd), also exported as
 * ck_qgemm_<fmt>_avx512bw (any AVX-512BW CPU; the tests reach that path on a
 * VNNI machine). Results agree to rounding across variants and paths. */
size_t ck_qkgemm_workspace_size(int fmt, int M, int N, int K, int nth);
CK_DECLARE_VARIANTS(int, ck_qgemm_q2_k,
                    (const float *x, const void *W, const float *b, float *y, int M, int N, int K, int accumulate,
                     void *ws, size_t ws_size, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qgemm_q3_k,
                    (const float *x, const void *W, const float *b, float *y, int M, int N, int K, int accumulate,
                     void *ws, size_t ws_size, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qgemm_q4_k,
                    (const float *x, const void *W, const float *b, float *y, int M, int N, int K, int accumulate,
                     void *ws, size_t ws_size, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qgemm_q5_k,
                    (const float *x, const void *W, const float *b, float *y, int M, int N, int K, int accumulate,
                     void *ws, size_t ws_size, ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qgemm_q6_k,
                    (const float *x, const void *W, const float *b, float *y, int M, int N, int K, int accumulate,
                     void *ws, size_t ws_size, ck_pool *pool, int nth))
int ck_qgemm_q2_k_avx512bw(const float *x, const void *W, const float *b, float *y, int M, int N, int K,
                           int accumulate, void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_qgemm_q3_k_avx512bw(const float *x, const void *W, const float *b, float *y, int M, int N, int K,
                           int accumulate, void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_qgemm_q4_k_avx512bw(const float *x, const void *W, const float *b, float *y, int M, int N, int K,
                           int accumulate, void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_qgemm_q5_k_avx512bw(const float *x, const void *W, const float *b, float *y, int M, int N, int K,
                           int accumulate, void *ws, size_t ws_size, ck_pool *pool, int nth);
int ck_qgemm_q6_k_avx512bw(const float *x, const void *W, const float *b, float *y, int M, int N, int K,
                           int accumulate, void *ws, size_t ws_size, ck_pool *pool, int nth);
/* The activation quantizer the GEMMs run first: x[M,K] -> M·K/256 Q8_K blocks
 * of 384 bytes at q (64-byte aligned): int8 qs[256], int16 bsums[16] (group
 * sums), float d, 28 bytes of padding, float bsf[16] = d·bsums.
 * Every variant gives the same bytes. CK_ERR_ARG if K % 256 != 0. */
CK_DECLARE_VARIANTS(int, ck_quantize_q8_k, (const float *x, void *q, int M, int K, ck_pool *pool, int nth))
/* dst[n] = dequant(src), n values (n % 256 == 0; else nothing written, CK_ERR_ARG). */
int ck_qdequant_q2_k(const void *src, float *dst, int64_t n);
int ck_qdequant_q3_k(const void *src, float *dst, int64_t n);
int ck_qdequant_q4_k(const void *src, float *dst, int64_t n);
int ck_qdequant_q5_k(const void *src, float *dst, int64_t n);
int ck_qdequant_q6_k(const void *src, float *dst, int64_t n);
/* Embedding lookup from a quantized table [vocab, C] (C % 256 == 0):
 * out[t,:] = scale · dequant(table row ids[t]), the dequantized values bit for
 * bit those of ck_qdequant_<fmt> (gguf-py's expression order) times scale; ids
 * outside [0, vocab) give a zero row and are counted in the return value (as
 * ck_embedding_f32); CK_ERR_ARG if C is not a positive multiple of 256. */
CK_DECLARE_VARIANTS(int, ck_qembedding_q2_k,
                    (const int32_t *ids, const void *table, float *out, int T, int vocab, int C, float scale,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qembedding_q3_k,
                    (const int32_t *ids, const void *table, float *out, int T, int vocab, int C, float scale,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qembedding_q4_k,
                    (const int32_t *ids, const void *table, float *out, int T, int vocab, int C, float scale,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qembedding_q5_k,
                    (const int32_t *ids, const void *table, float *out, int T, int vocab, int C, float scale,
                     ck_pool *pool, int nth))
CK_DECLARE_VARIANTS(int, ck_qembedding_q6_k,
                    (const int32_t *ids, const void *table, float *out, int T, int vocab, int C, float scale,
                     ck_pool *pool, int nth))

/* ==== quantize ==== */
/* fp32 rows -> GGUF rows at compile time (kernels/quantize.c): x[rows, K] fp32
 * to rows of fmt (a ck_qtype: F32, F16, BF16, the legacy block formats or
 * Q2_K..Q6_K), K a multiple of the block, written back to back at out
 * (rows · ck_qrow_size(fmt, K) bytes). The bytes are llama.cpp's reference
 * quantizers' (quantize_row_<fmt>_ref, what llama-quantize writes without an
 * importance matrix), BF16 as ggml_compute_fp32_to_bf16, F16 round to nearest
 * even. Single-threaded: callers split rows. Every variant writes the same
 * bytes (the avx2/avx512 builds only vectorize across independent groups).
 * Returns the bytes written, or CK_ERR_ARG (bad fmt or K; nothing written). */
CK_DECLARE_VARIANTS(int64_t, ck_quantize_rows, (int fmt, const float *x, void *out, int64_t rows, int64_t K))

/* ==== end of families (add new sections above this line) ==== */

#ifdef __cplusplus
}
#endif
#endif /* CKERNELS_H */
