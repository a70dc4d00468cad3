// verify-shapes: every transformer op against the module's #transformer.config.
// Chunk 1 is a consistent model (unchanged by the pass); every later chunk breaks
// one rule and reports it. The second RUN shows the one-line located diagnostic
// that ckc-opt prints for the first failing chunk, and no traceback.

// RUN: ckc-opt %s --split-input-file -p verify-shapes --verify-diagnostics | filecheck %s
// RUN: not ckc-opt %s --split-input-file -p verify-shapes 2>&1 | filecheck %s --check-prefix=LINE

// LINE: func.return %logits : tensor<?x128xf32>
// LINE: verify-shapes.mlir:82:3: error: 'transformer.embedding' op table has shape [100, 64], expected [vocab, hidden] = [128, 64] by #transformer.config
// LINE-NOT: Traceback

// Passes: a two-layer Gemma3-style model (layer 0 sliding-window with the local RoPE
// theta, layer 1 global; QK-norm and (1 + w) norms; post-norms; GeGLU; scaled and
// tied embeddings; final logit softcap). verify-shapes leaves it unchanged.
// CHECK:       builtin.module attributes {transformer.config = #transformer.config<arch = "gemma3"
// CHECK-LABEL: func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x128xf32> {
// CHECK:         %x0 = transformer.embedding %tokens, %emb {scale = 8.000000e+00 : f64}
// CHECK:         %a0 = transformer.attention %h0, %wq0, %wk0, %wv0, %wo0, q_norm %qn0, k_norm %kn0 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, layer = 0 : i64, scale = 6.250000e-02 : f64, window = 16 : i64, norm_eps = 1.000000e-06 : f64, norm_offset = 1.000000e+00 : f64}
// CHECK:         %a1 = transformer.attention %h1, %wq1, %wk1, %wv1, %wo1, q_norm %qn1, k_norm %kn1 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, layer = 1 : i64, scale = 6.250000e-02 : f64, rope_theta = 1.000000e+06 : f64, norm_eps = 1.000000e-06 : f64, norm_offset = 1.000000e+00 : f64}
// CHECK:         %logits = transformer.lm_head %xf, %emb {tied = true, softcap = 3.000000e+01 : f64}
// CHECK-NEXT:    func.return %logits : tensor<?x128xf32>
builtin.module attributes {transformer.config = #transformer.config<arch = "gemma3", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, head_dim = 32, ffn = 128, context = 256, norm_eps = 1.0e-06, norm_offset = 1.0, post_norms = true, mlp = "geglu", qk_norm = true, attn_scale = 0.0625, final_softcap = 30.0, rope_theta = 1.0e+06, rope_local_theta = 10000.0, embed_scale = 8.0, tied_embeddings = true, sliding_window = 16, sliding_layers = [0]>} {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x128xf32> {
    %emb = transformer.weight "token_embd.weight" : tensor<128x64xf32>
    %x0 = transformer.embedding %tokens, %emb {scale = 8.0 : f64} : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    %n_attn0 = transformer.weight "blk.0.attn_norm.weight" : tensor<64xf32>
    %h0 = transformer.norm %x0, %n_attn0 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq0 = transformer.weight "blk.0.attn_q.weight" : tensor<128x64xf32>
    %wk0 = transformer.weight "blk.0.attn_k.weight" : tensor<64x64xf32>
    %wv0 = transformer.weight "blk.0.attn_v.weight" : tensor<64x64xf32>
    %wo0 = transformer.weight "blk.0.attn_output.weight" : tensor<64x128xf32>
    %qn0 = transformer.weight "blk.0.attn_q_norm.weight" : tensor<32xf32>
    %kn0 = transformer.weight "blk.0.attn_k_norm.weight" : tensor<32xf32>
    %a0 = transformer.attention %h0, %wq0, %wk0, %wv0, %wo0, q_norm %qn0, k_norm %kn0 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, layer = 0 : i64, scale = 0.0625 : f64, window = 16 : i64, norm_eps = 1.0e-06 : f64, norm_offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x128xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
    %n_pa0 = transformer.weight "blk.0.post_attention_norm.weight" : tensor<64xf32>
    %pa0 = transformer.norm %a0, %n_pa0 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %r0 = transformer.residual %x0, %pa0 : tensor<?x64xf32>
    %n_ffn0 = transformer.weight "blk.0.ffn_norm.weight" : tensor<64xf32>
    %f0 = transformer.norm %r0, %n_ffn0 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg0 = transformer.weight "blk.0.ffn_gate.weight" : tensor<128x64xf32>
    %wu0 = transformer.weight "blk.0.ffn_up.weight" : tensor<128x64xf32>
    %wd0 = transformer.weight "blk.0.ffn_down.weight" : tensor<64x128xf32>
    %m0 = transformer.mlp %f0, %wu0, %wd0, gate %wg0 {kind = "geglu"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    %n_pf0 = transformer.weight "blk.0.post_ffw_norm.weight" : tensor<64xf32>
    %pf0 = transformer.norm %m0, %n_pf0 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %x1 = transformer.residual %r0, %pf0 : tensor<?x64xf32>
    %n_attn1 = transformer.weight "blk.1.attn_norm.weight" : tensor<64xf32>
    %h1 = transformer.norm %x1, %n_attn1 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq1 = transformer.weight "blk.1.attn_q.weight" : tensor<128x64xf32>
    %wk1 = transformer.weight "blk.1.attn_k.weight" : tensor<64x64xf32>
    %wv1 = transformer.weight "blk.1.attn_v.weight" : tensor<64x64xf32>
    %wo1 = transformer.weight "blk.1.attn_output.weight" : tensor<64x128xf32>
    %qn1 = transformer.weight "blk.1.attn_q_norm.weight" : tensor<32xf32>
    %kn1 = transformer.weight "blk.1.attn_k_norm.weight" : tensor<32xf32>
    %a1 = transformer.attention %h1, %wq1, %wk1, %wv1, %wo1, q_norm %qn1, k_norm %kn1 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, layer = 1 : i64, scale = 0.0625 : f64, rope_theta = 1.0e+06 : f64, norm_eps = 1.0e-06 : f64, norm_offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x128xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
    %n_pa1 = transformer.weight "blk.1.post_attention_norm.weight" : tensor<64xf32>
    %pa1 = transformer.norm %a1, %n_pa1 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %r1 = transformer.residual %x1, %pa1 : tensor<?x64xf32>
    %n_ffn1 = transformer.weight "blk.1.ffn_norm.weight" : tensor<64xf32>
    %f1 = transformer.norm %r1, %n_ffn1 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg1 = transformer.weight "blk.1.ffn_gate.weight" : tensor<128x64xf32>
    %wu1 = transformer.weight "blk.1.ffn_up.weight" : tensor<128x64xf32>
    %wd1 = transformer.weight "blk.1.ffn_down.weight" : tensor<64x128xf32>
    %m1 = transformer.mlp %f1, %wu1, %wd1, gate %wg1 {kind = "geglu"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    %n_pf1 = transformer.weight "blk.1.post_ffw_norm.weight" : tensor<64xf32>
    %pf1 = transformer.norm %m1, %n_pf1 {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %x2 = transformer.residual %r1, %pf1 : tensor<?x64xf32>
    %n_out = transformer.weight "output_norm.weight" : tensor<64xf32>
    %xf = transformer.norm %x2, %n_out {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %logits = transformer.lm_head %xf, %emb {tied = true, softcap = 30.0 : f64} : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
    func.return %logits : tensor<?x128xf32>
  }
}

// -----

// embedding table of the wrong vocabulary
// CHECK: table has shape [100, 64], expected [vocab, hidden] = [128, 64] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1 = "test.op"() : () -> (tensor<?xi32>, tensor<100x64xf32>)
  %e = transformer.embedding %0, %1 : (tensor<?xi32>, tensor<100x64xf32>) -> tensor<?x64xf32>
}

// -----

// learned positions missing
// CHECK: positions is missing, expected by #transformer.config learned_pos = true
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, learned_pos = true>} {
  %0, %1 = "test.op"() : () -> (tensor<?xi32>, tensor<128x64xf32>)
  %e = transformer.embedding %0, %1 : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
}

// -----

// embedding scale
// CHECK: scale is 1.0, expected 8.0 by #transformer.config embed_scale
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, embed_scale = 8.0>} {
  %0, %1 = "test.op"() : () -> (tensor<?xi32>, tensor<128x64xf32>)
  %e = transformer.embedding %0, %1 : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
}

// -----

// norm kind
// CHECK: kind is "layer", expected "rms" by #transformer.config norm
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
  %n = transformer.norm %0, %1 {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
}

// -----

// norm eps
// CHECK: eps is 1e-06, expected 1e-05 by #transformer.config norm_eps
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
  %n = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-06 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
}

// -----

// norm offset (Gemma's 1 + w)
// CHECK: offset is 0.0, expected 1.0 by #transformer.config norm_offset
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, norm_offset = 1.0>} {
  %0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
  %n = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
}

// -----

// norm width
// CHECK: x has shape [?, 48], expected [tokens, hidden] = [?, 64] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1 = "test.op"() : () -> (tensor<?x48xf32>, tensor<48xf32>)
  %n = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x48xf32>, tensor<48xf32>) -> tensor<?x48xf32>
}

// -----

// norm bias the config does not have
// CHECK: bias is present, but #transformer.config norm_bias = false
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
  %n = transformer.norm %0, %1, bias %1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
}

// -----

// attention heads
// CHECK: heads is 2, expected 4 by #transformer.config heads
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// attention kv_heads
// CHECK: kv_heads is 4, expected 2 by #transformer.config kv_heads
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// layer index past the last layer
// CHECK: layer is 2, expected < 2 by #transformer.config layers
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 2 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// two attention ops for one layer
// CHECK: layer 0 has a second attention op in this function
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %b = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// attention scale
// CHECK: scale of layer 0 is 0.125, expected 0.25 by #transformer.config attn_scale
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.125 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// sliding-window layer without its window
// CHECK: window of layer 0 is 0, expected 16 by #transformer.config sliding_window
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, sliding_window = 16, sliding_layers = [0]>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// global layer with a window
// CHECK: window of layer 1 is 16, expected 0 by #transformer.config sliding_window
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, sliding_window = 16, sliding_layers = [0]>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 1 : i64, scale = 0.25 : f64, window = 16 : i64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// local RoPE theta of a sliding layer (Gemma3)
// CHECK: rope_theta of layer 0 is 1000000.0, expected 10000.0 by #transformer.config rope_local_theta
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, rope_theta = 1.0e+06, rope_local_theta = 10000.0, sliding_window = 16, sliding_layers = [0]>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, window = 16 : i64, rope_theta = 1.0e+06 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// RoPE style
// CHECK: rope_style is "interleaved", expected "neox" by #transformer.config rope_style
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_style = "interleaved"} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// partial rotary dim
// CHECK: rotary_dim is 16, expected 8 by #transformer.config rotary_dim
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, rotary_dim = 8>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// RoPE scaling
// CHECK: rope_scaling of layer 0 is "none", expected "linear" by #transformer.config rope_scaling
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, rope_scaling = "linear", rope_factor = 4.0>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// attention softcap
// CHECK: softcap is 0.0, expected 50.0 by #transformer.config attn_softcap
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, attn_softcap = 50.0>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// missing q/k/v biases (Qwen2)
// CHECK: q_bias is missing, expected by #transformer.config qkv_bias = true
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, qkv_bias = true>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// missing QK-norm (Qwen3)
// CHECK: q_norm is missing, expected by #transformer.config qk_norm = true
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, qk_norm = true>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// non-causal attention
// CHECK: causal is false, but decoder-only models attend causally
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
  %a = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, causal = false} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
}

// -----

// mlp kind
// CHECK: kind is "geglu", expected "swiglu" by #transformer.config mlp
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>)
  %m = transformer.mlp %0, %1, %2, gate %1 {kind = "geglu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>) -> tensor<?x64xf32>
}

// -----

// mlp inner width
// CHECK: gate has shape [128, 64], expected [ffn, hidden] = [160, 64] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>)
  %m = transformer.mlp %0, %1, %2, gate %1 {kind = "swiglu"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
}

// -----

// GELU flavour
// CHECK: approximate is "tanh", expected "none" by #transformer.config act
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, mlp = "gelu", act = "gelu">} {
  %0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>)
  %m = transformer.mlp %0, %1, %2 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>
}

// -----

// mlp biases missing (GPT-2)
// CHECK: up_bias is missing, expected by #transformer.config mlp_bias = true
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, mlp = "gelu", mlp_bias = true>} {
  %0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>)
  %m = transformer.mlp %0, %1, %2 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>
}

// -----

// residual width
// CHECK: lhs has shape [?, 32], expected [tokens, hidden] = [?, 64] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0 = "test.op"() : () -> (tensor<?x32xf32>)
  %r = transformer.residual %0, %0 : tensor<?x32xf32>
}

// -----

// lm_head vocabulary
// CHECK: weight has shape [100, 64], expected [vocab, hidden] = [128, 64] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<100x64xf32>)
  %l = transformer.lm_head %0, %1 : (tensor<?x64xf32>, tensor<100x64xf32>) -> tensor<?x100xf32>
}

// -----

// lm_head tied flag
// CHECK: tied is false, expected true by #transformer.config tied_embeddings
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, tied_embeddings = true>} {
  %0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<128x64xf32>)
  %l = transformer.lm_head %0, %1 : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
}

// -----

// tied lm_head reading output.weight
// CHECK: weight is 'output.weight', expected 'token_embd.weight' (#transformer.config tied_embeddings = true)
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, tied_embeddings = true>} {
  %0 = "test.op"() : () -> (tensor<?x64xf32>)
  %w = transformer.weight "output.weight" : tensor<128x64xf32>
  %l = transformer.lm_head %0, %w {tied = true} : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
}

// -----

// final logit softcap
// CHECK: softcap is 0.0, expected 30.0 by #transformer.config final_softcap
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256, final_softcap = 30.0>} {
  %0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<128x64xf32>)
  %l = transformer.lm_head %0, %1 : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
}

// -----

// cross-entropy over the wrong vocabulary
// CHECK: logits has shape [?, 100], expected [tokens, vocab] = [?, 128] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %0, %1 = "test.op"() : () -> (tensor<?x100xf32>, tensor<?xi32>)
  %ce = transformer.cross_entropy %0, %1 : (tensor<?x100xf32>, tensor<?xi32>) -> tensor<f32>
}

// -----

// embedding table weight of the wrong shape
// CHECK: weight 'token_embd.weight' has shape [128, 32], expected [vocab, hidden] = [128, 64] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %w = transformer.weight "token_embd.weight" : tensor<128x32xf32>
}

// -----

// weight of a layer the model does not have
// CHECK: weight 'blk.7.attn_q.weight' names layer 7, but #transformer.config layers = 2
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %w = transformer.weight "blk.7.attn_q.weight" : tensor<64x64xf32>
}

// -----

// transformer ops but no config to check them against
// CHECK: module has transformer ops but no 'transformer.config' attribute
builtin.module {
  %w = transformer.weight "token_embd.weight" : tensor<128x64xf32>
}

// -----

// a config key holding something else
// CHECK: module attribute 'transformer.config' must be a #transformer.config, got "llama"
builtin.module attributes {transformer.config = "llama"} {
  %w = transformer.weight "token_embd.weight" : tensor<128x64xf32>
}

// -----

// tensorop ops (lowered IR keeps the config) that agree with it pass unchanged.
// CHECK:      %n = tensorop.rmsnorm %x, %w {eps = 1.000000e-05 : f32}
// CHECK:      %o = tensorop.causal_attention %r, %k, %v {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, scale = 2.500000e-01 : f32}
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %x, %k, %v, %w, %p = "test.op"() : () -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<64xf32>, index)
  %t = tensorop.weight "token_embd.weight" : tensor<128x64xf32>
  %n = tensorop.rmsnorm %x, %w {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %r = tensorop.rope %n, %p {theta = 1.000000e+04 : f32, heads = 4 : i64, head_dim = 16 : i64} : (tensor<?x64xf32>, index) -> tensor<?x64xf32>
  %o = tensorop.causal_attention %r, %k, %v {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, scale = 2.500000e-01 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
}

// -----

// tensorop attention with another model's grouping
// CHECK: kv_heads is 4, expected 2 by #transformer.config kv_heads
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %q, %k, %v = "test.op"() : () -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  %o = tensorop.causal_attention %q, %k, %v {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 16 : i64, scale = 2.500000e-01 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
}

// -----

// tensorop rmsnorm with another eps
// CHECK: eps is 1e-06, expected 1e-05 by #transformer.config norm_eps
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %x, %w = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
  %n = tensorop.rmsnorm %x, %w {eps = 1.000000e-06 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
}

// -----

// tensorop rope with another theta
// CHECK: theta is 500000.0, expected 10000.0 by #transformer.config rope_theta
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %q, %p = "test.op"() : () -> (tensor<?x64xf32>, index)
  %r = tensorop.rope %q, %p {theta = 5.000000e+05 : f32, heads = 4 : i64, head_dim = 16 : i64} : (tensor<?x64xf32>, index) -> tensor<?x64xf32>
}

// -----

// tensorop weight of the wrong shape
// CHECK: weight 'output.weight' has shape [128, 32], expected [vocab, hidden] = [128, 64] by #transformer.config
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %t = tensorop.weight "output.weight" : tensor<128x32xf32>
}

// -----

// a tensor the configured model does not have
// CHECK: weight 'blk.0.post_ffw_norm.weight' is present, but #transformer.config post_norms = false
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 160, context = 256>} {
  %w = transformer.weight "blk.0.post_ffw_norm.weight" : tensor<64xf32>
}
