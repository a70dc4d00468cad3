// bufferize on a differentiated @train_step (the output of `autodiff` on a
// one-layer Llama): the function becomes @train_step(%n) (the runtime gradient
// scale is the compute function's own parameter, kernel_abi role "func");
// every weight gradient is a module-level buffer @grad.<tensor> in region
// `grads`, written by the accumulating (+=) parameter-gradient kernels, so the
// tensorop.accumulate of two contributions to one gradient is no call, while
// activation-gradient accumulates add in place (axpy); forward rmsnorm and
// causal_attention whose gradient follows save rstd / lse (rmsnorm_train,
// attention_train); cross_entropy_fused writes per-row losses to the io
// buffer @losses and dlogits in place over the logits (nothing else reads
// them). The second RUN lowers the result to C: the
// train_step signature with targets, losses and grad_scale; without add-optimizer
// (test/lit/passes/add-optimizer.mlir) there is no trained state for the training
// runtime (ckc_gen_n_params 0).
// RUN: ckc-opt %s -p 'autodiff,bufferize{max_tokens=8}' | filecheck %s
// RUN: ckc-opt %s -p 'autodiff,bufferize{max_tokens=8}' | ckc-opt | filecheck %s
// RUN: ckc-opt %s -p 'autodiff,bufferize{max_tokens=8},plan-memory,select-simd{target=scalar},lower-to-c' -t c | filecheck %s --check-prefix=C

// CHECK: buffer.buffer @losses : tensor<?xf32> in io size 32 align 64
// CHECK-NEXT: buffer.buffer @grad.token_embd.weight : tensor<32x16xf32> in grads size 2048 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.attn_norm.weight : tensor<16xf32> in grads size 64 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.attn_q.weight : tensor<16x16xf32> in grads size 1024 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.attn_k.weight : tensor<8x16xf32> in grads size 512 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.attn_v.weight : tensor<8x16xf32> in grads size 512 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.attn_output.weight : tensor<16x16xf32> in grads size 1024 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.ffn_norm.weight : tensor<16xf32> in grads size 64 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.ffn_up.weight : tensor<32x16xf32> in grads size 2048 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.ffn_gate.weight : tensor<32x16xf32> in grads size 2048 align 64
// CHECK-NEXT: buffer.buffer @grad.blk.0.ffn_down.weight : tensor<16x32xf32> in grads size 2048 align 64
// CHECK-NEXT: buffer.buffer @grad.output_norm.weight : tensor<16xf32> in grads size 64 align 64
// CHECK-NEXT: buffer.buffer @grad.output.weight : tensor<32x16xf32> in grads size 2048 align 64
// CHECK-NEXT: func.func @train_step(%n: index) {
// CHECK-NEXT: buffer.buffer @x_emb : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_attn_norm.rstd : tensor<?x1xf32> in activations size 32 align 64
// CHECK-NEXT: buffer.buffer @l0_attn_norm : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_q : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_k : tensor<?x8xf32> in activations size 256 align 64
// CHECK-NEXT: buffer.buffer @l0_v : tensor<?x8xf32> in activations size 256 align 64
// CHECK-NEXT: buffer.buffer @l0_q_rot : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_k_rot : tensor<?x8xf32> in activations size 256 align 64
// CHECK-NEXT: buffer.buffer @l0_attn.lse : tensor<?x2xf32> in activations size 64 align 64
// CHECK-NEXT: buffer.buffer @l0_attn : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_attn_out : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_resid : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_ffn_norm.rstd : tensor<?x1xf32> in activations size 32 align 64
// CHECK-NEXT: buffer.buffer @l0_ffn_norm : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_ffn_up : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.buffer @l0_ffn_gate : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.buffer @l0_ffn_act : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.buffer @l0_ffn_out : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @l0_resid_v2 : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @output_norm.rstd : tensor<?x1xf32> in activations size 32 align 64
// CHECK-NEXT: buffer.buffer @output_norm : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @logits : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.buffer @d_output_norm : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_resid_v2 : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_ffn_act : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.buffer @d_l0_ffn_gate : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.buffer @d_l0_ffn_up : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.buffer @d_l0_ffn_norm : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_ffn_norm.2 : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_resid : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_attn : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_q_rot : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_k_rot : tensor<?x8xf32> in activations size 256 align 64
// CHECK-NEXT: buffer.buffer @d_l0_v : tensor<?x8xf32> in activations size 256 align 64
// CHECK-NEXT: buffer.buffer @d_l0_k : tensor<?x8xf32> in activations size 256 align 64
// CHECK-NEXT: buffer.buffer @d_l0_q : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_attn_norm : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_attn_norm.2 : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_l0_attn_norm.3 : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.buffer @d_x_emb : tensor<?x16xf32> in activations size 512 align 64
// CHECK-NEXT: buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb) params(rows = %n : index, vocab = 32 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
// CHECK-NEXT: buffer.call rmsnorm_train ins(@x_emb, @blk.0.attn_norm.weight) outs(@l0_attn_norm, @l0_attn_norm.rstd) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_q.weight) outs(@l0_q) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_k.weight) outs(@l0_k) params(rows = %n : index, n = 8 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_v.weight) outs(@l0_v) params(rows = %n : index, n = 8 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call rope ins(@l0_q) outs(@l0_q_rot) params(rows = %n : index, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, pos = 0 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT: buffer.call rope ins(@l0_k) outs(@l0_k_rot) params(rows = %n : index, heads = 1 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, pos = 0 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT: buffer.call attention_train ins(@l0_q_rot, @l0_k_rot, @l0_v) outs(@l0_attn, @l0_attn.lse) params(rows = %n : index, pos = 0 : i64, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, window = 0 : i64, scale = 0.353553385 : f32, softcap = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call gemm ins(@l0_attn, @blk.0.attn_output.weight) outs(@l0_attn_out) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call add ins(@x_emb, @l0_attn_out) outs(@l0_resid) params(rows = %n : index, cols = 16 : i64)
// CHECK-NEXT: buffer.call rmsnorm_train ins(@l0_resid, @blk.0.ffn_norm.weight) outs(@l0_ffn_norm, @l0_ffn_norm.rstd) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_up.weight) outs(@l0_ffn_up) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_gate.weight) outs(@l0_ffn_gate) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call swiglu ins(@l0_ffn_gate, @l0_ffn_up) outs(@l0_ffn_act) params(rows = %n : index, cols = 32 : i64)
// CHECK-NEXT: buffer.call gemm ins(@l0_ffn_act, @blk.0.ffn_down.weight) outs(@l0_ffn_out) params(rows = %n : index, n = 16 : i64, k = 32 : i64)
// CHECK-NEXT: buffer.call add ins(@l0_resid, @l0_ffn_out) outs(@l0_resid_v2) params(rows = %n : index, cols = 16 : i64)
// CHECK-NEXT: buffer.call rmsnorm_train ins(@l0_resid_v2, @output_norm.weight) outs(@output_norm, @output_norm.rstd) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call gemm ins(@output_norm, @output.weight) outs(@logits) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call cross_entropy_fused ins(@logits, @targets) outs(@logits, @losses) params(rows = %n : index, cols = 32 : i64, ignore_index = -100 : i64)
// CHECK-NEXT: buffer.call gemm_grad ins(@logits, @output_norm, @output.weight) outs(@d_output_norm, @grad.output.weight) params(rows = %n : index, n = 32 : i64, k = 16 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call rmsnorm_grad ins(@d_output_norm, @l0_resid_v2, @output_norm.weight, @output_norm.rstd) outs(@d_l0_resid_v2, @grad.output_norm.weight) params(rows = %n : index, cols = 16 : i64, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call gemm_grad ins(@d_l0_resid_v2, @l0_ffn_act, @blk.0.ffn_down.weight) outs(@d_l0_ffn_act, @grad.blk.0.ffn_down.weight) params(rows = %n : index, n = 16 : i64, k = 32 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call swiglu_grad ins(@l0_ffn_gate, @l0_ffn_up, @d_l0_ffn_act) outs(@d_l0_ffn_gate, @d_l0_ffn_up) params(rows = %n : index, cols = 32 : i64)
// CHECK-NEXT: buffer.call gemm_grad ins(@d_l0_ffn_gate, @l0_ffn_norm, @blk.0.ffn_gate.weight) outs(@d_l0_ffn_norm, @grad.blk.0.ffn_gate.weight) params(rows = %n : index, n = 32 : i64, k = 16 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call gemm_grad ins(@d_l0_ffn_up, @l0_ffn_norm, @blk.0.ffn_up.weight) outs(@d_l0_ffn_norm.2, @grad.blk.0.ffn_up.weight) params(rows = %n : index, n = 32 : i64, k = 16 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call axpy ins(@d_l0_ffn_norm.2) outs(@d_l0_ffn_norm) params(rows = %n : index, cols = 16 : i64, a = 1.000000e+00 : f32)
// CHECK-NEXT: buffer.call rmsnorm_grad ins(@d_l0_ffn_norm, @l0_resid, @blk.0.ffn_norm.weight, @l0_ffn_norm.rstd) outs(@d_l0_resid, @grad.blk.0.ffn_norm.weight) params(rows = %n : index, cols = 16 : i64, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call axpy ins(@d_l0_resid_v2) outs(@d_l0_resid) params(rows = %n : index, cols = 16 : i64, a = 1.000000e+00 : f32)
// CHECK-NEXT: buffer.call gemm_grad ins(@d_l0_resid, @l0_attn, @blk.0.attn_output.weight) outs(@d_l0_attn, @grad.blk.0.attn_output.weight) params(rows = %n : index, n = 16 : i64, k = 16 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call attention_grad ins(@l0_q_rot, @l0_k_rot, @l0_v, @l0_attn, @d_l0_attn, @l0_attn.lse) outs(@d_l0_q_rot, @d_l0_k_rot, @d_l0_v) params(rows = %n : index, pos = 0 : i64, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, window = 0 : i64, scale = 0.353553385 : f32, softcap = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call rope_grad ins(@d_l0_k_rot) outs(@d_l0_k) params(rows = %n : index, heads = 1 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, pos = 0 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT: buffer.call rope_grad ins(@d_l0_q_rot) outs(@d_l0_q) params(rows = %n : index, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, pos = 0 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT: buffer.call gemm_grad ins(@d_l0_v, @l0_attn_norm, @blk.0.attn_v.weight) outs(@d_l0_attn_norm, @grad.blk.0.attn_v.weight) params(rows = %n : index, n = 8 : i64, k = 16 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call gemm_grad ins(@d_l0_k, @l0_attn_norm, @blk.0.attn_k.weight) outs(@d_l0_attn_norm.2, @grad.blk.0.attn_k.weight) params(rows = %n : index, n = 8 : i64, k = 16 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call gemm_grad ins(@d_l0_q, @l0_attn_norm, @blk.0.attn_q.weight) outs(@d_l0_attn_norm.3, @grad.blk.0.attn_q.weight) params(rows = %n : index, n = 16 : i64, k = 16 : i64, flags = 2 : i64)
// CHECK-NEXT: buffer.call axpy ins(@d_l0_attn_norm.2) outs(@d_l0_attn_norm) params(rows = %n : index, cols = 16 : i64, a = 1.000000e+00 : f32)
// CHECK-NEXT: buffer.call axpy ins(@d_l0_attn_norm.3) outs(@d_l0_attn_norm) params(rows = %n : index, cols = 16 : i64, a = 1.000000e+00 : f32)
// CHECK-NEXT: buffer.call rmsnorm_grad ins(@d_l0_attn_norm, @x_emb, @blk.0.attn_norm.weight, @l0_attn_norm.rstd) outs(@d_x_emb, @grad.blk.0.attn_norm.weight) params(rows = %n : index, cols = 16 : i64, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call axpy ins(@d_l0_resid) outs(@d_x_emb) params(rows = %n : index, cols = 16 : i64, a = 1.000000e+00 : f32)
// CHECK-NEXT: buffer.call embedding_grad ins(@tokens, @d_x_emb) outs(@grad.token_embd.weight) params(rows = %n : index, vocab = 32 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
// CHECK-NEXT: func.return

// C: const int ckc_gen_n_params = 0;
// C: const int64_t ckc_gen_grads_offset = -1;
// C: const char *const ckc_gen_call_names[40] = {"@train_step #0: ck_embedding_f32_scalar(tokens, token_embd.weight -> x_emb)", "@train_step #1: ck_rmsnorm_f32_scalar(x_emb, blk.0.attn_norm.weight -> l0_attn_norm, l0_attn_norm.rstd)", "@train_step #2: ck_gemm_f32_scalar(l0_attn_norm, blk.0.attn_q.weight -> l0_q)", "@train_step #3: ck_gemm_f32_scalar(l0_attn_norm, blk.0.attn_k.weight -> l0_k)", "@train_step #4: ck_gemm_f32_scalar(l0_attn_norm, blk.0.attn_v.weight -> l0_v)", "@train_step #5: ck_rope_f32_scalar(l0_q -> l0_q_rot)", "@train_step #6: ck_rope_f32_scalar(l0_k -> l0_k_rot)", "@train_step #7: ck_attention_f32_scalar(l0_q_rot, l0_k_rot, l0_v -> l0_attn, l0_attn.lse)", "@train_step #8: ck_gemm_f32_scalar(l0_attn, blk.0.attn_output.weight -> l0_attn_out)", "@train_step #9: ck_add_f32_scalar(x_emb, l0_attn_out -> l0_resid)", "@train_step #10: ck_rmsnorm_f32_scalar(l0_resid, blk.0.ffn_norm.weight -> l0_ffn_norm, l0_ffn_norm.rstd)", "@train_step #11: ck_gemm_f32_scalar(l0_ffn_norm, blk.0.ffn_up.weight -> l0_ffn_up)", "@train_step #12: ck_gemm_f32_scalar(l0_ffn_norm, blk.0.ffn_gate.weight -> l0_ffn_gate)", "@train_step #13: ck_swiglu_f32_scalar(l0_ffn_gate, l0_ffn_up -> l0_ffn_act)", "@train_step #14: ck_gemm_f32_scalar(l0_ffn_act, blk.0.ffn_down.weight -> l0_ffn_out)", "@train_step #15: ck_add_f32_scalar(l0_resid, l0_ffn_out -> l0_resid_v2)", "@train_step #16: ck_rmsnorm_f32_scalar(l0_resid_v2, output_norm.weight -> output_norm, output_norm.rstd)", "@train_step #17: ck_gemm_f32_scalar(output_norm, output.weight -> logits)", "@train_step #18: ck_cross_entropy_f32_scalar(logits, targets -> logits, losses)", "@train_step #19: ck_gemm_grad_f32_scalar(logits, output_norm, output.weight -> d_output_norm, grad.output.weight)", "@train_step #20: ck_rmsnorm_grad_f32_scalar(d_output_norm, l0_resid_v2, output_norm.weight, output_norm.rstd -> d_l0_resid_v2, grad.output_norm.weight)", "@train_step #21: ck_gemm_grad_f32_scalar(d_l0_resid_v2, l0_ffn_act, blk.0.ffn_down.weight -> d_l0_ffn_act, grad.blk.0.ffn_down.weight)", "@train_step #22: ck_swiglu_grad_f32_scalar(l0_ffn_gate, l0_ffn_up, d_l0_ffn_act -> d_l0_ffn_gate, d_l0_ffn_up)", "@train_step #23: ck_gemm_grad_f32_scalar(d_l0_ffn_gate, l0_ffn_norm, blk.0.ffn_gate.weight -> d_l0_ffn_norm, grad.blk.0.ffn_gate.weight)", "@train_step #24: ck_gemm_grad_f32_scalar(d_l0_ffn_up, l0_ffn_norm, blk.0.ffn_up.weight -> d_l0_ffn_norm.2, grad.blk.0.ffn_up.weight)", "@train_step #25: ck_axpy_f32_scalar(d_l0_ffn_norm.2 -> d_l0_ffn_norm)", "@train_step #26: ck_rmsnorm_grad_f32_scalar(d_l0_ffn_norm, l0_resid, blk.0.ffn_norm.weight, l0_ffn_norm.rstd -> d_l0_resid, grad.blk.0.ffn_norm.weight)", "@train_step #27: ck_axpy_f32_scalar(d_l0_resid_v2 -> d_l0_resid)", "@train_step #28: ck_gemm_grad_f32_scalar(d_l0_resid, l0_attn, blk.0.attn_output.weight -> d_l0_attn, grad.blk.0.attn_output.weight)", "@train_step #29: ck_attention_grad_f32_scalar(l0_q_rot, l0_k_rot, l0_v, l0_attn, d_l0_attn, l0_attn.lse -> d_l0_q_rot, d_l0_k_rot, d_l0_v)", "@train_step #30: ck_rope_grad_f32_scalar(d_l0_k_rot -> d_l0_k)", "@train_step #31: ck_rope_grad_f32_scalar(d_l0_q_rot -> d_l0_q)", "@train_step #32: ck_gemm_grad_f32_scalar(d_l0_v, l0_attn_norm, blk.0.attn_v.weight -> d_l0_attn_norm, grad.blk.0.attn_v.weight)", "@train_step #33: ck_gemm_grad_f32_scalar(d_l0_k, l0_attn_norm, blk.0.attn_k.weight -> d_l0_attn_norm.2, grad.blk.0.attn_k.weight)", "@train_step #34: ck_gemm_grad_f32_scalar(d_l0_q, l0_attn_norm, blk.0.attn_q.weight -> d_l0_attn_norm.3, grad.blk.0.attn_q.weight)", "@train_step #35: ck_axpy_f32_scalar(d_l0_attn_norm.2 -> d_l0_attn_norm)", "@train_step #36: ck_axpy_f32_scalar(d_l0_attn_norm.3 -> d_l0_attn_norm)", "@train_step #37: ck_rmsnorm_grad_f32_scalar(d_l0_attn_norm, x_emb, blk.0.attn_norm.weight, l0_attn_norm.rstd -> d_x_emb, grad.blk.0.attn_norm.weight)", "@train_step #38: ck_axpy_f32_scalar(d_l0_resid -> d_x_emb)", "@train_step #39: ck_embedding_grad_f32_scalar(tokens, d_x_emb -> grad.token_embd.weight)"};
// C: int ckc_gen_train_step(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *targets, float *losses, float grad_scale) {
// C: ck_cross_entropy_f32_scalar((const float *)(arena + {{[0-9]+}}), targets, (float *)(arena + {{[0-9]+}}), losses, n, 32, -100, grad_scale, pool, nth);

builtin.module {
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %pos = arith.constant 0 : index
    %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
    %x_emb = tensorop.embedding %w_token_embd, %tokens : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %w_l0_attn_norm = tensorop.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %l0_attn_norm = tensorop.rmsnorm %x_emb, %w_l0_attn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_q = tensorop.weight "blk.0.attn_q.weight" : tensor<16x16xf32>
    %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_k = tensorop.weight "blk.0.attn_k.weight" : tensor<8x16xf32>
    %l0_k = tensorop.matmul %l0_attn_norm, %w_l0_attn_k {transpose_b} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
    %w_l0_attn_v = tensorop.weight "blk.0.attn_v.weight" : tensor<8x16xf32>
    %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_v {transpose_b} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
    %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<?x16xf32>, index) -> tensor<?x16xf32>
    %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64} : (tensor<?x8xf32>, index) -> tensor<?x8xf32>
    %l0_attn = tensorop.causal_attention %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x16xf32>
    %w_l0_attn_output = tensorop.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %l0_attn_out = tensorop.matmul %l0_attn, %w_l0_attn_output {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %l0_resid = tensorop.add %x_emb, %l0_attn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %l0_ffn_norm = tensorop.rmsnorm %l0_resid, %w_l0_ffn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_ffn_up = tensorop.weight "blk.0.ffn_up.weight" : tensor<32x16xf32>
    %l0_ffn_up = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_up {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %w_l0_ffn_gate = tensorop.weight "blk.0.ffn_gate.weight" : tensor<32x16xf32>
    %l0_ffn_gate = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_gate {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %l0_ffn_act = tensorop.swiglu %l0_ffn_gate, %l0_ffn_up : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %w_l0_ffn_down = tensorop.weight "blk.0.ffn_down.weight" : tensor<16x32xf32>
    %l0_ffn_out = tensorop.matmul %l0_ffn_act, %w_l0_ffn_down {transpose_b} : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x16xf32>
    %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %output_norm = tensorop.rmsnorm %l0_resid_v2, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
    %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %loss = tensorop.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
}
