// A hand-written two-layer Llama-style model (GQA 4/2 heads, RoPE, RMSNorm, SwiGLU,
// untied output): it parses, verifies, round-trips in custom and generic form and
// passes verify-shapes; plain xdsl-opt parses it too (ckc registers its dialects
// through the xdsl.universe entry point).

// RUN: ckc-opt %s | filecheck %s
// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | ckc-opt | filecheck %s
// RUN: ckc-opt %s -p verify-shapes | filecheck %s
// RUN: xdsl-opt %s | filecheck %s

// CHECK:      builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, head_dim = 16, ffn = 160, context = 256, norm = "rms", norm_eps = 1.0e-05,
// CHECK-SAME: tied_embeddings = false, sliding_window = 0, sliding_layers = [], bos = 1, eos = 2>} {
// CHECK-LABEL: func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x128xf32> {
// CHECK-NEXT:    %emb = transformer.weight "token_embd.weight" : tensor<128x64xf32>
// CHECK-NEXT:    %x0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
// CHECK-NEXT:    %attn_norm0 = transformer.weight "blk.0.attn_norm.weight" : tensor<64xf32>
// CHECK-NEXT:    %h0 = transformer.norm %x0, %attn_norm0 {kind = "rms", eps = 1.000000e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
// CHECK:         %a0 = transformer.attention %h0, %wq0, %wk0, %wv0, %wo0 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 2.500000e-01 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
// CHECK-NEXT:    %r0 = transformer.residual %x0, %a0 : tensor<?x64xf32>
// CHECK:         %m0 = transformer.mlp %f0, %wu0, %wd0, gate %wg0 {kind = "swiglu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>) -> tensor<?x64xf32>
// CHECK-NEXT:    %x1 = transformer.residual %r0, %m0 : tensor<?x64xf32>
// CHECK:         %a1 = transformer.attention %h1, %wq1, %wk1, %wv1, %wo1 {{{.*}}layer = 1 : i64{{.*}}}
// CHECK:         %x2 = transformer.residual %r1, %m1 : tensor<?x64xf32>
// CHECK-NEXT:    %out_norm = transformer.weight "output_norm.weight" : tensor<64xf32>
// CHECK-NEXT:    %xf = transformer.norm %x2, %out_norm {kind = "rms", eps = 1.000000e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
// CHECK-NEXT:    %out = transformer.weight "output.weight" : tensor<128x64xf32>
// CHECK-NEXT:    %logits = transformer.lm_head %xf, %out : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
// CHECK-NEXT:    func.return %logits : tensor<?x128xf32>
// CHECK-LABEL: func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
// CHECK-NEXT:    %logits = func.call @forward(%tokens) : (tensor<?xi32>) -> tensor<?x128xf32>
// CHECK-NEXT:    %loss = transformer.cross_entropy %logits, %targets : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<f32>
// CHECK-NEXT:    func.return %loss : tensor<f32>

builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, norm_eps = 1.0e-05, rope_theta = 10000.0, bos = 1, eos = 2>} {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x128xf32> {
    %emb = transformer.weight "token_embd.weight" : tensor<128x64xf32>
    %x0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    // layer 0
    %attn_norm0 = transformer.weight "blk.0.attn_norm.weight" : tensor<64xf32>
    %h0 = transformer.norm %x0, %attn_norm0 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq0 = transformer.weight "blk.0.attn_q.weight" : tensor<64x64xf32>
    %wk0 = transformer.weight "blk.0.attn_k.weight" : tensor<32x64xf32>
    %wv0 = transformer.weight "blk.0.attn_v.weight" : tensor<32x64xf32>
    %wo0 = transformer.weight "blk.0.attn_output.weight" : tensor<64x64xf32>
    %a0 = transformer.attention %h0, %wq0, %wk0, %wv0, %wo0 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %r0 = transformer.residual %x0, %a0 : tensor<?x64xf32>
    %ffn_norm0 = transformer.weight "blk.0.ffn_norm.weight" : tensor<64xf32>
    %f0 = transformer.norm %r0, %ffn_norm0 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg0 = transformer.weight "blk.0.ffn_gate.weight" : tensor<160x64xf32>
    %wu0 = transformer.weight "blk.0.ffn_up.weight" : tensor<160x64xf32>
    %wd0 = transformer.weight "blk.0.ffn_down.weight" : tensor<64x160xf32>
    %m0 = transformer.mlp %f0, %wu0, %wd0, gate %wg0 {kind = "swiglu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>) -> tensor<?x64xf32>
    %x1 = transformer.residual %r0, %m0 : tensor<?x64xf32>
    // layer 1
    %attn_norm1 = transformer.weight "blk.1.attn_norm.weight" : tensor<64xf32>
    %h1 = transformer.norm %x1, %attn_norm1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq1 = transformer.weight "blk.1.attn_q.weight" : tensor<64x64xf32>
    %wk1 = transformer.weight "blk.1.attn_k.weight" : tensor<32x64xf32>
    %wv1 = transformer.weight "blk.1.attn_v.weight" : tensor<32x64xf32>
    %wo1 = transformer.weight "blk.1.attn_output.weight" : tensor<64x64xf32>
    %a1 = transformer.attention %h1, %wq1, %wk1, %wv1, %wo1 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 1 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %r1 = transformer.residual %x1, %a1 : tensor<?x64xf32>
    %ffn_norm1 = transformer.weight "blk.1.ffn_norm.weight" : tensor<64xf32>
    %f1 = transformer.norm %r1, %ffn_norm1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg1 = transformer.weight "blk.1.ffn_gate.weight" : tensor<160x64xf32>
    %wu1 = transformer.weight "blk.1.ffn_up.weight" : tensor<160x64xf32>
    %wd1 = transformer.weight "blk.1.ffn_down.weight" : tensor<64x160xf32>
    %m1 = transformer.mlp %f1, %wu1, %wd1, gate %wg1 {kind = "swiglu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>) -> tensor<?x64xf32>
    %x2 = transformer.residual %r1, %m1 : tensor<?x64xf32>
    // head
    %out_norm = transformer.weight "output_norm.weight" : tensor<64xf32>
    %xf = transformer.norm %x2, %out_norm {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %out = transformer.weight "output.weight" : tensor<128x64xf32>
    %logits = transformer.lm_head %xf, %out : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
    func.return %logits : tensor<?x128xf32>
  }
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?xi32>) -> tensor<?x128xf32>
    %loss = transformer.cross_entropy %logits, %targets : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
}
