// bufferize on a module holding the slot-batched @decode_batch
// (lower-transformer{modes=prefill,decode_batch slots=2 context=16} of a
// one-layer Llama): each layer's K/V cache is ONE kv_cache buffer of
// slots x context rows with a `slots` attribute (slot s = rows s*16 ..), so
// @prefill (a single sequence) works on slot 0 of it; @decode_batch(%n, %m)
// reads the io buffers @slots and @positions (one i32 per row) and becomes
// rope_rows / kv_scatter / slot_attention calls around GEMMs over all n rows;
// gather_rows (the embedding kernel on the activations) keeps the m rows
// @out_rows for the final norm and the lm_head.
// The second run line lowers it to C. The compute function gets the slots and
// positions pointers, and the table ckc_gen_slots.

// RUN: ckc-opt %s -p 'bufferize{max_tokens=8}' | filecheck %s
// RUN: ckc-opt %s -p 'bufferize{max_tokens=8},plan-memory,select-simd{target=scalar},lower-to-c' -t c | filecheck %s --check-prefix=C

// CHECK:       buffer.buffer @blk.0.k_cache : tensor<32x8xf32> in kv_cache size 1024 align 64 {slots = 2 : index}
// CHECK-NEXT:  buffer.buffer @blk.0.v_cache : tensor<32x8xf32> in kv_cache size 1024 align 64 {slots = 2 : index}
// CHECK:       buffer.buffer @slots : tensor<?xi32> in io
// CHECK-NEXT:  buffer.buffer @positions : tensor<?xi32> in io
// CHECK-NEXT:  buffer.buffer @out_rows : tensor<?xi32> in io
// CHECK-LABEL: func.func @prefill(%n: index, %pos: index) {
// CHECK:         buffer.call attention ins(@l0_q_rot, @blk.0.k_cache, @blk.0.v_cache) outs(@l0_attn)
// CHECK-LABEL: func.func @decode_batch(%n: index, %m: index) {
// CHECK:         buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_q.weight) outs(@l0_q) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
// CHECK:         buffer.call rope_rows ins(@l0_q, @positions) outs(@l0_q_rot) params(rows = %n : index, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT:    buffer.call rope_rows ins(@l0_k, @positions) outs(@l0_k_rot)
// CHECK-NEXT:    buffer.call kv_scatter ins(@l0_k_rot, @slots, @positions) outs(@blk.0.k_cache) params(rows = %n : index, cols = 8 : i64, slots = 2 : i64, context = 16 : i64)
// CHECK-NEXT:    buffer.call kv_scatter ins(@l0_v, @slots, @positions) outs(@blk.0.v_cache) params(rows = %n : index, cols = 8 : i64, slots = 2 : i64, context = 16 : i64)
// CHECK-NEXT:    buffer.call slot_attention ins(@l0_q_rot, @blk.0.k_cache, @blk.0.v_cache, @slots, @positions) outs(@l0_attn) params(rows = %n : index, slots = 2 : i64, context = 16 : i64, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, window = 0 : i64, scale = 0.353553385 : f32, softcap = 0.000000e+00 : f32)
// CHECK:         buffer.call embedding ins(@out_rows, @l0_resid_v2) outs(@x_out) params(rows = %m : index, vocab = %n : index, cols = 16 : i64, scale = 1.000000e+00 : f32)
// CHECK-NEXT:    buffer.call rmsnorm ins(@x_out, @output_norm.weight) outs(@output_norm) params(rows = %m : index,
// CHECK-NEXT:    buffer.call gemm ins(@output_norm, @output.weight) outs(@logits) params(rows = %m : index, n = 32 : i64, k = 16 : i64)

// C: const int ckc_gen_context = 16;
// C: const int ckc_gen_slots = 2;
// C: int ckc_gen_decode_batch(uint8_t *arena, const uint8_t *weights, const int32_t *tokens, float *logits, int n, int pos, void *ws, size_t ws_size, ck_pool *pool, int nth, const int32_t *slots, const int32_t *positions, const int32_t *out_rows, int m) {
// C:   ck_rope_f32_scalar({{.*}}, positions, 0, n, 2, 8, 8, 0, 10000.0f, 0, pool, nth);
// C:   ck_kv_scatter_f32_scalar((const float *)(arena + {{[0-9]+}}), (float *)arena, slots, positions, n, 8, 2, 16, pool, nth);
// C:   ck_slot_attention_f32_scalar({{.*}}, slots, positions, n, 2, 16, 2, 1, 8, 0, 0.35355338f, 0.0f, pool, nth);
// C:   ck_embedding_f32_scalar(out_rows, {{.*}}, m, n, 16, 1.0f, pool, nth);

builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 32, hidden = 16, layers = 1, heads = 2, kv_heads = 1, head_dim = 8, ffn = 32, context = 64, norm = "rms", norm_eps = 1.0e-05, norm_offset = 0.0, norm_bias = false, post_norms = false, mlp = "swiglu", act = "silu", mlp_bias = false, qkv_bias = false, o_bias = false, qk_norm = false, attn_scale = 0.3535533905932738, scale_by_inverse_layer = false, attn_softcap = 0.0, final_softcap = 0.0, rope_style = "neox", rope_theta = 10000.0, rotary_dim = 8, rope_scaling = "none", rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0, rope_original_context = 0, rope_local_theta = 10000.0, rope_local_scaling = true, learned_pos = false, embed_scale = 1.0, tied_embeddings = false, sliding_window = 0, sliding_layers = [], bos = 1, eos = 2>} {
  func.func @prefill(%tokens: tensor<?xi32>, %pos: index, %kc0: tensor<16x8xf32>, %vc0: tensor<16x8xf32>) -> (tensor<1x32xf32>, tensor<16x8xf32>, tensor<16x8xf32>) {
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
    %kc0_new = tensorop.kv_write %kc0, %l0_k_rot, %pos : (tensor<16x8xf32>, tensor<?x8xf32>, index) -> tensor<16x8xf32>
    %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<16x8xf32>, tensor<?x8xf32>, index) -> tensor<16x8xf32>
    %l0_attn = tensorop.causal_attention %l0_q_rot, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<16x8xf32>, tensor<16x8xf32>, index) -> tensor<?x16xf32>
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
    %x_last = tensorop.last_rows %l0_resid_v2 : (tensor<?x16xf32>) -> tensor<1x16xf32>
    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %output_norm = tensorop.rmsnorm %x_last, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
    %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
    %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
    func.return %logits, %kc0_new, %vc0_new : tensor<1x32xf32>, tensor<16x8xf32>, tensor<16x8xf32>
  }
  func.func @decode_batch(%tokens: tensor<?xi32>, %slots: tensor<?xi32>, %positions: tensor<?xi32>, %out_rows: tensor<?xi32>, %kc0: tensor<2x16x8xf32>, %vc0: tensor<2x16x8xf32>) -> (tensor<?x32xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>) {
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
    %l0_q_rot = tensorop.rope_rows %l0_q, %positions {heads = 2 : i64, head_dim = 8 : i64} : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %l0_k_rot = tensorop.rope_rows %l0_k, %positions {heads = 1 : i64, head_dim = 8 : i64} : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %kc0_new = tensorop.kv_scatter %kc0, %l0_k_rot, %slots, %positions : (tensor<2x16x8xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<2x16x8xf32>
    %vc0_new = tensorop.kv_scatter %vc0, %l0_v, %slots, %positions : (tensor<2x16x8xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<2x16x8xf32>
    %l0_attn = tensorop.slot_attention %l0_q_rot, %kc0_new, %vc0_new, %slots, %positions {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x16xf32>
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
    %x_out = tensorop.gather_rows %l0_resid_v2, %out_rows : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %output_norm = tensorop.rmsnorm %x_out, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
    %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    func.return %logits, %kc0_new, %vc0_new : tensor<?x32xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>
  }
}

