// A batched train step (training_spec(batch=B), ckc/pipeline.py):
// lower-transformer{seq_len=4} gives @train_step / @eval_loss rows that are B
// sequences of 4 tokens back to back; bufferize{max_tokens=8} sizes them for
// B = 2. Every token-wise op (embedding, norms, GEMMs, activations, the loss)
// runs once over all %n rows; what is per sequence goes through its own
// kernels: the positions (pos + i mod 4, seq_positions) feed RoPE (rope_ids /
// rope_grad_ids, ck_rope_f32's per-row positions) and GPT-2's learned
// positions (a gather, and a scatter-add for the gradient, instead of the
// one-sequence row view); attention and its gradient are causal within each
// sequence (attention_seq / attention_train_seq / attention_grad_seq). The
// module records ckc.seq_len, lowered to the runtime's ckc_gen_seq_len.
// The third run: a seq_len that does not tile max_tokens is refused.
// RUN: ckc-opt %s --split-input-file -p 'lower-transformer{modes=train_step,eval_loss seq_len=4},autodiff,bufferize{max_tokens=8}' | filecheck %s
// RUN: ckc-opt %s --split-input-file -p 'lower-transformer{modes=train_step,eval_loss seq_len=4},autodiff,bufferize{max_tokens=8},plan-memory,select-simd{target=scalar},lower-to-c' -t c | filecheck %s --check-prefix=C
// RUN: not ckc-opt %s --split-input-file -p 'lower-transformer{modes=train_step,eval_loss seq_len=3},autodiff,bufferize{max_tokens=8}' 2>&1 | filecheck %s --check-prefix=ERR

// CHECK:       builtin.module attributes {{{.*}}ckc.seq_len = 4 : i64} {
// CHECK:         buffer.buffer @tokens : tensor<?xi32> in io size 32 align 64
// CHECK-LABEL:   func.func @train_step(%n: index) {
// CHECK:           buffer.buffer @positions : tensor<?xi32> in activations size 32 align 64
// The positions are the function's first call (not inside layer 0: roll-layers rolls every layer).
// CHECK:           buffer.call seq_positions ins() outs(@positions) params(rows = %n : index, seq_len = 4 : i64, pos = 0 : i64)
// CHECK-NEXT:      buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb) params(rows = %n : index,
// CHECK:           buffer.call rope_ids ins(@l0_q, @positions) outs(@l0_q_rot) params(rows = %n : index, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT:      buffer.call rope_ids ins(@l0_k, @positions) outs(@l0_k_rot)
// CHECK-NEXT:      buffer.call attention_train_seq ins(@l0_q_rot, @l0_k_rot, @l0_v) outs(@l0_attn, @l0_attn.lse) params(rows = %n : index, seq_len = 4 : i64, heads = 2 : i64, kv_heads = 1 : i64,
// CHECK:           buffer.call attention_grad_seq ins(@l0_q_rot, @l0_k_rot, @l0_v, @l0_attn, @d_l0_attn, @l0_attn.lse) outs(@d_l0_q_rot, @d_l0_k_rot, @d_l0_v) params(rows = %n : index, seq_len = 4 : i64,
// CHECK-NEXT:      buffer.call rope_grad_ids ins(@d_l0_k_rot, @positions) outs(@d_l0_k)
// CHECK-NEXT:      buffer.call rope_grad_ids ins(@d_l0_q_rot, @positions) outs(@d_l0_q)
// CHECK-LABEL:   func.func @eval_loss(%n: index) {
// CHECK:           buffer.call seq_positions ins() outs(@positions) params(rows = %n : index, seq_len = 4 : i64, pos = 0 : i64)
// CHECK:           buffer.call attention_seq ins(@l0_q_rot, @l0_k_rot, @l0_v) outs(@l0_attn) params(rows = %n : index, seq_len = 4 : i64,

// CHECK:       builtin.module attributes {{{.*}}arch = "gpt2"{{.*}}ckc.seq_len = 4 : i64} {
// CHECK-LABEL:   func.func @train_step(%n: index) {
// CHECK:           buffer.call seq_positions ins() outs(@positions) params(rows = %n : index, seq_len = 4 : i64, pos = 0 : i64)
// CHECK-NEXT:      buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb)
// CHECK-NEXT:      buffer.call embedding ins(@positions, @position_embd.weight) outs(@pos_emb) params(rows = %n : index, vocab = 64 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
// CHECK-NEXT:      buffer.call add ins(@x_emb, @pos_emb) outs(@x_pos)
// CHECK:           buffer.call attention_train_seq ins(@l0_q, @l0_k, @l0_v)
// CHECK:           buffer.call attention_grad_seq
// CHECK:           buffer.call embedding_grad ins(@positions, @d_x_pos) outs(@grad.position_embd.weight) params(rows = %n : index, vocab = 64 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
// CHECK-NEXT:      buffer.call embedding_grad ins(@tokens, @d_x_pos) outs(@grad.token_embd.weight)

// C: const int ckc_gen_max_tokens = 8;
// C-NEXT: const int ckc_gen_seq_len = 4;
// C: int ckc_gen_train_step(
// C: ck_seq_positions_i32_scalar((int32_t *)(arena + {{[0-9]+}}), n, 4, 0, pool, nth);
// C: ck_rope_f32_scalar({{.*}}, (const int32_t *)(arena + {{[0-9]+}}), 0, n, 2, 8, 8, 0, 10000.0f, 0, pool, nth);
// C: ck_attention_seq_f32_scalar({{.*}}, n, 4, 2, 1, 8,
// C: ck_attention_grad_seq_f32_scalar({{.*}}, n, 4, 2, 1, 8,
// C: const int ckc_gen_seq_len = 4;
// C: ck_embedding_f32_scalar((const int32_t *)(arena + {{[0-9]+}}), (const float *)(weights + {{[0-9]+}}), (float *)(arena + {{[0-9]+}}), n, 64, 16, 1.0f, pool, nth);
// C: ck_embedding_grad_f32_scalar((const int32_t *)(arena + {{[0-9]+}}), {{.*}}, n, 64, 16, 1.0f, pool, nth);

// ERR: bufferize: 'tensorop.rope' seq_len 3 does not divide max_tokens 8 (a whole number of sequences per call)

builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 32, hidden = 16, layers = 1, heads = 2, kv_heads = 1, ffn = 32, context = 64, bos = 1, eos = 2>} {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x32xf32> {
    %emb = transformer.weight "token_embd.weight" : tensor<32x16xf32>
    %x0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<32x16xf32>) -> tensor<?x16xf32>
    %n_attn = transformer.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %h = transformer.norm %x0, %n_attn {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wq = transformer.weight "blk.0.attn_q.weight" : tensor<16x16xf32>
    %wk = transformer.weight "blk.0.attn_k.weight" : tensor<8x16xf32>
    %wv = transformer.weight "blk.0.attn_v.weight" : tensor<8x16xf32>
    %wo = transformer.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %a = transformer.attention %h, %wq, %wk, %wv, %wo {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, layer = 0 : i64, scale = 0.35355339059327379 : f64} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %r = transformer.residual %x0, %a : tensor<?x16xf32>
    %n_ffn = transformer.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %g = transformer.norm %r, %n_ffn {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wu = transformer.weight "blk.0.ffn_up.weight" : tensor<32x16xf32>
    %wd = transformer.weight "blk.0.ffn_down.weight" : tensor<16x32xf32>
    %wg = transformer.weight "blk.0.ffn_gate.weight" : tensor<32x16xf32>
    %m = transformer.mlp %g, %wu, %wd, gate %wg {kind = "swiglu"} : (tensor<?x16xf32>, tensor<32x16xf32>, tensor<16x32xf32>, tensor<32x16xf32>) -> tensor<?x16xf32>
    %x1 = transformer.residual %r, %m : tensor<?x16xf32>
    %n_out = transformer.weight "output_norm.weight" : tensor<16xf32>
    %xf = transformer.norm %x1, %n_out {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %out = transformer.weight "output.weight" : tensor<32x16xf32>
    %logits = transformer.lm_head %xf, %out : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    func.return %logits : tensor<?x32xf32>
  }
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?xi32>) -> tensor<?x32xf32>
    %loss = transformer.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
}

// -----

builtin.module attributes {transformer.config = #transformer.config<arch = "gpt2", vocab = 32, hidden = 16, layers = 1, heads = 2, ffn = 64, context = 64, norm = "layer", mlp = "gelu", qkv_bias = true, o_bias = true, mlp_bias = true, rope_style = "none", learned_pos = true, tied_embeddings = true>} {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x32xf32> {
    %wte = transformer.weight "token_embd.weight" : tensor<32x16xf32>
    %wpe = transformer.weight "position_embd.weight" : tensor<64x16xf32>
    %x0 = transformer.embedding %tokens, %wte, positions %wpe : (tensor<?xi32>, tensor<32x16xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    %ln1_w = transformer.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %ln1_b = transformer.weight "blk.0.attn_norm.bias" : tensor<16xf32>
    %h = transformer.norm %x0, %ln1_w, bias %ln1_b {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wq = transformer.weight "blk.0.attn_qkv.weight" : tensor<16x16xf32>
    %wk = transformer.weight "blk.0.attn_qkv.weight" offset 16 : tensor<16x16xf32>
    %wv = transformer.weight "blk.0.attn_qkv.weight" offset 32 : tensor<16x16xf32>
    %bq = transformer.weight "blk.0.attn_qkv.bias" : tensor<16xf32>
    %bk = transformer.weight "blk.0.attn_qkv.bias" offset 16 : tensor<16xf32>
    %bv = transformer.weight "blk.0.attn_qkv.bias" offset 32 : tensor<16xf32>
    %wo = transformer.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %bo = transformer.weight "blk.0.attn_output.bias" : tensor<16xf32>
    %a = transformer.attention %h, %wq, %wk, %wv, %wo, q_bias %bq, k_bias %bk, v_bias %bv, o_bias %bo {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, layer = 0 : i64, scale = 0.35355339059327379 : f64, rope_style = "none"} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %r = transformer.residual %x0, %a : tensor<?x16xf32>
    %ln2_w = transformer.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %ln2_b = transformer.weight "blk.0.ffn_norm.bias" : tensor<16xf32>
    %g = transformer.norm %r, %ln2_w, bias %ln2_b {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wfc = transformer.weight "blk.0.ffn_up.weight" : tensor<64x16xf32>
    %wproj = transformer.weight "blk.0.ffn_down.weight" : tensor<16x64xf32>
    %bfc = transformer.weight "blk.0.ffn_up.bias" : tensor<64xf32>
    %bproj = transformer.weight "blk.0.ffn_down.bias" : tensor<16xf32>
    %m = transformer.mlp %g, %wfc, %wproj, up_bias %bfc, down_bias %bproj {kind = "gelu"} : (tensor<?x16xf32>, tensor<64x16xf32>, tensor<16x64xf32>, tensor<64xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %x1 = transformer.residual %r, %m : tensor<?x16xf32>
    %lnf_w = transformer.weight "output_norm.weight" : tensor<16xf32>
    %lnf_b = transformer.weight "output_norm.bias" : tensor<16xf32>
    %xf = transformer.norm %x1, %lnf_w, bias %lnf_b {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %logits = transformer.lm_head %xf, %wte {tied = true} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    func.return %logits : tensor<?x32xf32>
  }
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?xi32>) -> tensor<?x32xf32>
    %loss = transformer.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
}
