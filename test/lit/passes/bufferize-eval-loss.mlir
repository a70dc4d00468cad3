// bufferize on @eval_loss, the compiled training library's forward-only loss
// (`lower-transformer{modes=train_step,eval_loss}` makes it: @train_step's
// function under another name, left undifferentiated; here a one-layer Llama).
// It becomes @eval_loss(%n) with the inference kernels (rmsnorm and attention
// save nothing, no backward, no grads buffer); cross_entropy_fused writes the
// per-row losses to the io buffer @losses that @train_step uses and its
// dlogits over the dead logits in place. The second RUN lowers it to C: the
// same signature as ckc_gen_train_step (targets, losses, grad_scale).
// RUN: ckc-opt %s -p 'bufferize{max_tokens=8}' | filecheck %s
// RUN: ckc-opt %s -p 'bufferize{max_tokens=8},plan-memory,select-simd{target=scalar},lower-to-c' -t c | filecheck %s --check-prefix=C

// CHECK:      buffer.buffer @tokens : tensor<?xi32> in io size 32 align 64
// CHECK-NEXT: buffer.buffer @targets : tensor<?xi32> in io size 32 align 64
// CHECK-NEXT: buffer.buffer @losses : tensor<?xf32> in io size 32 align 64
// CHECK-NOT:  in grads
// CHECK:      func.func @eval_loss(%n: index) {
// CHECK:      buffer.buffer @logits : tensor<?x32xf32> in activations size 1024 align 64
// CHECK-NEXT: buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb)
// CHECK-NEXT: buffer.call rmsnorm ins(@x_emb, @blk.0.attn_norm.weight) outs(@l0_attn_norm) params(rows = %n : index
// CHECK:      buffer.call attention ins(@l0_q_rot, @l0_k_rot, @l0_v) outs(@l0_attn) params(rows = %n : index, pos = 0 : i64
// CHECK:      buffer.call gemm ins(@output_norm, @output.weight) outs(@logits) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
// CHECK-NEXT: buffer.call cross_entropy_fused ins(@logits, @targets) outs(@logits, @losses) params(rows = %n : index, cols = 32 : i64, ignore_index = -100 : i64)
// CHECK-NEXT: func.return
// CHECK-NOT:  _grad

// C: int ckc_gen_eval_loss(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *targets, float *losses, float grad_scale) {
// C-NOT: _grad_f32
// C:     ck_cross_entropy_f32_scalar((const float *)arena, targets, (float *)arena, losses, n, 32, -100, grad_scale, pool, nth);
// C-NEXT: return 0;

builtin.module {
  func.func @eval_loss(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
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
