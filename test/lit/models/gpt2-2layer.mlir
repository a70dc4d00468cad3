// A hand-written two-layer GPT-2-style model: learned positions, LayerNorm with bias,
// no RoPE, biases on every projection, GELU (tanh) MLP, tied embeddings. It parses,
// verifies, round-trips in custom and generic form and passes verify-shapes.

// RUN: ckc-opt %s | filecheck %s
// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | ckc-opt | filecheck %s
// RUN: ckc-opt %s -p verify-shapes | filecheck %s
// RUN: xdsl-opt %s -p verify-shapes | filecheck %s

// CHECK:      builtin.module attributes {transformer.config = #transformer.config<arch = "gpt2", vocab = 96, hidden = 48, layers = 2, heads = 4, kv_heads = 4, head_dim = 12, ffn = 192, context = 64, norm = "layer", norm_eps = 1.0e-05, norm_offset = 0.0, norm_bias = true, post_norms = false, mlp = "gelu", act = "gelu_tanh", mlp_bias = true, qkv_bias = true, o_bias = true,
// CHECK-SAME: rope_style = "none",
// CHECK-SAME: learned_pos = true, embed_scale = 1.0, tied_embeddings = true,
// CHECK-LABEL: func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x96xf32> {
// CHECK-NEXT:    %wte = transformer.weight "token_embd.weight" : tensor<96x48xf32>
// CHECK-NEXT:    %wpe = transformer.weight "position_embd.weight" : tensor<64x48xf32>
// CHECK-NEXT:    %x0 = transformer.embedding %tokens, %wte, positions %wpe : (tensor<?xi32>, tensor<96x48xf32>, tensor<64x48xf32>) -> tensor<?x48xf32>
// CHECK:         %h0 = transformer.norm %x0, %ln1_w0, bias %ln1_b0 {kind = "layer", eps = 1.000000e-05 : f64} : (tensor<?x48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
// CHECK:         %a0 = transformer.attention %h0, %wq0, %wk0, %wv0, %wo0, q_bias %bq0, k_bias %bk0, v_bias %bv0, o_bias %bo0 {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 12 : i64, layer = 0 : i64, scale = 0.28867513459481287 : f64, rope_style = "none"} : (tensor<?x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48xf32>, tensor<48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
// CHECK:         %m0 = transformer.mlp %f0, %wfc0, %wproj0, up_bias %bfc0, down_bias %bproj0 {kind = "gelu"} : (tensor<?x48xf32>, tensor<192x48xf32>, tensor<48x192xf32>, tensor<192xf32>, tensor<48xf32>) -> tensor<?x48xf32>
// CHECK:         %a1 = transformer.attention {{.*}} layer = 1 : i64
// CHECK:         %logits = transformer.lm_head %xf, %wte {tied = true} : (tensor<?x48xf32>, tensor<96x48xf32>) -> tensor<?x96xf32>
// CHECK-NEXT:    func.return %logits : tensor<?x96xf32>

builtin.module attributes {transformer.config = #transformer.config<arch = "gpt2", vocab = 96, hidden = 48, layers = 2, heads = 4, ffn = 192, context = 64, norm = "layer", mlp = "gelu", rope_style = "none", learned_pos = true, tied_embeddings = true, qkv_bias = true, o_bias = true, mlp_bias = true, attn_scale = 0.28867513459481287>} {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x96xf32> {
    %wte = transformer.weight "token_embd.weight" : tensor<96x48xf32>
    %wpe = transformer.weight "position_embd.weight" : tensor<64x48xf32>
    %x0 = transformer.embedding %tokens, %wte, positions %wpe : (tensor<?xi32>, tensor<96x48xf32>, tensor<64x48xf32>) -> tensor<?x48xf32>
    // layer 0
    %ln1_w0 = transformer.weight "blk.0.attn_norm.weight" : tensor<48xf32>
    %ln1_b0 = transformer.weight "blk.0.attn_norm.bias" : tensor<48xf32>
    %h0 = transformer.norm %x0, %ln1_w0, bias %ln1_b0 {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %wq0 = transformer.weight "blk.0.attn_q.weight" : tensor<48x48xf32>
    %bq0 = transformer.weight "blk.0.attn_q.bias" : tensor<48xf32>
    %wk0 = transformer.weight "blk.0.attn_k.weight" : tensor<48x48xf32>
    %bk0 = transformer.weight "blk.0.attn_k.bias" : tensor<48xf32>
    %wv0 = transformer.weight "blk.0.attn_v.weight" : tensor<48x48xf32>
    %bv0 = transformer.weight "blk.0.attn_v.bias" : tensor<48xf32>
    %wo0 = transformer.weight "blk.0.attn_output.weight" : tensor<48x48xf32>
    %bo0 = transformer.weight "blk.0.attn_output.bias" : tensor<48xf32>
    %a0 = transformer.attention %h0, %wq0, %wk0, %wv0, %wo0, q_bias %bq0, k_bias %bk0, v_bias %bv0, o_bias %bo0 {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 12 : i64, layer = 0 : i64, scale = 0.28867513459481287 : f64, rope_style = "none"} : (tensor<?x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48xf32>, tensor<48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %r0 = transformer.residual %x0, %a0 : tensor<?x48xf32>
    %ln2_w0 = transformer.weight "blk.0.ffn_norm.weight" : tensor<48xf32>
    %ln2_b0 = transformer.weight "blk.0.ffn_norm.bias" : tensor<48xf32>
    %f0 = transformer.norm %r0, %ln2_w0, bias %ln2_b0 {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %wfc0 = transformer.weight "blk.0.ffn_up.weight" : tensor<192x48xf32>
    %bfc0 = transformer.weight "blk.0.ffn_up.bias" : tensor<192xf32>
    %wproj0 = transformer.weight "blk.0.ffn_down.weight" : tensor<48x192xf32>
    %bproj0 = transformer.weight "blk.0.ffn_down.bias" : tensor<48xf32>
    %m0 = transformer.mlp %f0, %wfc0, %wproj0, up_bias %bfc0, down_bias %bproj0 {kind = "gelu"} : (tensor<?x48xf32>, tensor<192x48xf32>, tensor<48x192xf32>, tensor<192xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %x1 = transformer.residual %r0, %m0 : tensor<?x48xf32>
    // layer 1
    %ln1_w1 = transformer.weight "blk.1.attn_norm.weight" : tensor<48xf32>
    %ln1_b1 = transformer.weight "blk.1.attn_norm.bias" : tensor<48xf32>
    %h1 = transformer.norm %x1, %ln1_w1, bias %ln1_b1 {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %wq1 = transformer.weight "blk.1.attn_q.weight" : tensor<48x48xf32>
    %bq1 = transformer.weight "blk.1.attn_q.bias" : tensor<48xf32>
    %wk1 = transformer.weight "blk.1.attn_k.weight" : tensor<48x48xf32>
    %bk1 = transformer.weight "blk.1.attn_k.bias" : tensor<48xf32>
    %wv1 = transformer.weight "blk.1.attn_v.weight" : tensor<48x48xf32>
    %bv1 = transformer.weight "blk.1.attn_v.bias" : tensor<48xf32>
    %wo1 = transformer.weight "blk.1.attn_output.weight" : tensor<48x48xf32>
    %bo1 = transformer.weight "blk.1.attn_output.bias" : tensor<48xf32>
    %a1 = transformer.attention %h1, %wq1, %wk1, %wv1, %wo1, q_bias %bq1, k_bias %bk1, v_bias %bv1, o_bias %bo1 {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 12 : i64, layer = 1 : i64, scale = 0.28867513459481287 : f64, rope_style = "none"} : (tensor<?x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48xf32>, tensor<48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %r1 = transformer.residual %x1, %a1 : tensor<?x48xf32>
    %ln2_w1 = transformer.weight "blk.1.ffn_norm.weight" : tensor<48xf32>
    %ln2_b1 = transformer.weight "blk.1.ffn_norm.bias" : tensor<48xf32>
    %f1 = transformer.norm %r1, %ln2_w1, bias %ln2_b1 {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %wfc1 = transformer.weight "blk.1.ffn_up.weight" : tensor<192x48xf32>
    %bfc1 = transformer.weight "blk.1.ffn_up.bias" : tensor<192xf32>
    %wproj1 = transformer.weight "blk.1.ffn_down.weight" : tensor<48x192xf32>
    %bproj1 = transformer.weight "blk.1.ffn_down.bias" : tensor<48xf32>
    %m1 = transformer.mlp %f1, %wfc1, %wproj1, up_bias %bfc1, down_bias %bproj1 {kind = "gelu"} : (tensor<?x48xf32>, tensor<192x48xf32>, tensor<48x192xf32>, tensor<192xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %x2 = transformer.residual %r1, %m1 : tensor<?x48xf32>
    // head (tied: reads the token embedding table)
    %lnf_w = transformer.weight "output_norm.weight" : tensor<48xf32>
    %lnf_b = transformer.weight "output_norm.bias" : tensor<48xf32>
    %xf = transformer.norm %x2, %lnf_w, bias %lnf_b {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
    %logits = transformer.lm_head %xf, %wte {tied = true} : (tensor<?x48xf32>, tensor<96x48xf32>) -> tensor<?x96xf32>
    func.return %logits : tensor<?x96xf32>
  }
}
