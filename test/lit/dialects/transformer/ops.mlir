// Every transformer op and attribute, in custom and generic form: the printed
// custom form must parse back to the same IR.

// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

// A Gemma3-style config: every field spelled out, non-default values.
// CHECK:      builtin.module @gemma3 attributes {transformer.config = #transformer.config<arch = "gemma3", vocab = 256, hidden = 64, layers = 6, heads = 4, kv_heads = 1, head_dim = 32, ffn = 128, context = 512, norm = "rms", norm_eps = 1.0e-06, norm_offset = 1.0, norm_bias = false, post_norms = true, mlp = "geglu", act = "gelu_tanh", mlp_bias = false, qkv_bias = false, o_bias = false, qk_norm = true, attn_scale = 0.0625, scale_by_inverse_layer = false, attn_softcap = 0.0, final_softcap = 30.0, rope_style = "neox", rope_theta = 1000000.0, rotary_dim = 32, rope_scaling = "linear", rope_factor = 8.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0, rope_original_context = 0, rope_local_theta = 10000.0, rope_local_scaling = false, learned_pos = false, embed_scale = 8.0, tied_embeddings = true, sliding_window = 16, sliding_layers = [0, 1, 2, 3, 4], bos = 2, eos = 1>} {
// GENERIC:    "builtin.module"() <{sym_name = "gemma3"}> ({

builtin.module @gemma3 attributes {transformer.config = #transformer.config<eos = 1, bos = 2, arch = "gemma3", vocab = 256, hidden = 64, layers = 6, heads = 4, kv_heads = 1, head_dim = 32, ffn = 128, context = 512, norm_eps = 1.0e-06, norm_offset = 1.0, post_norms = true, mlp = "geglu", qk_norm = true, attn_scale = 0.0625, final_softcap = 30.0, rope_theta = 1.0e+06, rope_scaling = "linear", rope_factor = 8.0, rope_local_theta = 10000.0, rope_local_scaling = false, embed_scale = 8.0, tied_embeddings = true, sliding_window = 16, sliding_layers = [0, 1, 2, 3, 4]>} {
  func.func @ops(%tokens: tensor<?xi32>, %targets: tensor<?xi32>, %x: tensor<?x64xf32>,
                 %c: tensor<64xf32>, %cc: tensor<64x64xf32>,
                 %wq: tensor<128x64xf32>, %wkv: tensor<32x64xf32>, %wo: tensor<64x128xf32>,
                 %bq: tensor<128xf32>, %bkv: tensor<32xf32>, %d: tensor<32xf32>,
                 %up: tensor<128x64xf32>, %down: tensor<64x128xf32>, %f: tensor<128xf32>) -> tensor<f32> {
    // CHECK:      %emb = transformer.weight "token_embd.weight" : tensor<256x64xf32>
    // GENERIC:    %emb = "transformer.weight"() <{tensor_name = "token_embd.weight", offset = 0 : i64}> : () -> tensor<256x64xf32>
    %emb = transformer.weight "token_embd.weight" : tensor<256x64xf32>
    // CHECK-NEXT: %pos = transformer.weight "position_embd.weight" : tensor<512x64xf32>
    %pos = transformer.weight "position_embd.weight" : tensor<512x64xf32>
    // A slice of a fused tensor (GPT-2's attn_qkv): rows [64, 96).
    // CHECK-NEXT: %wk_slice = transformer.weight "blk.0.attn_qkv.weight" offset 64 : tensor<32x64xf32>
    // GENERIC:    %wk_slice = "transformer.weight"() <{tensor_name = "blk.0.attn_qkv.weight", offset = 64 : i64}> : () -> tensor<32x64xf32>
    %wk_slice = transformer.weight "blk.0.attn_qkv.weight" offset 64 : tensor<32x64xf32>

    // CHECK-NEXT: %e0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    // GENERIC:    %e0 = "transformer.embedding"(%tokens, %emb) <{scale = 1.000000e+00 : f64}> : (tensor<?xi32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    %e0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    // CHECK-NEXT: %e1 = transformer.embedding %tokens, %emb {scale = 8.000000e+00 : f64} : (tensor<?xi32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    %e1 = transformer.embedding %tokens, %emb {scale = 8.0 : f64} : (tensor<?xi32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    // CHECK-NEXT: %e2 = transformer.embedding %tokens, %emb, positions %pos : (tensor<?xi32>, tensor<256x64xf32>, tensor<512x64xf32>) -> tensor<?x64xf32>
    %e2 = transformer.embedding %tokens, %emb, positions %pos : (tensor<?xi32>, tensor<256x64xf32>, tensor<512x64xf32>) -> tensor<?x64xf32>
    // A static token count is fine too.
    // CHECK-NEXT: %t7 = "test.op"() : () -> tensor<7xi32>
    // CHECK-NEXT: %e3 = transformer.embedding %t7, %emb : (tensor<7xi32>, tensor<256x64xf32>) -> tensor<7x64xf32>
    %t7 = "test.op"() : () -> tensor<7xi32>
    %e3 = transformer.embedding %t7, %emb : (tensor<7xi32>, tensor<256x64xf32>) -> tensor<7x64xf32>

    // CHECK-NEXT: %n0 = transformer.norm %x, %c {kind = "rms", eps = 1.000000e-06 : f64, offset = 1.000000e+00 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    // GENERIC:    %n0 = "transformer.norm"(%x, %c) <{kind = "rms", eps = 1.000000e-06 : f64, offset = 1.000000e+00 : f64}> : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %n0 = transformer.norm %x, %c {kind = "rms", eps = 1.0e-06 : f64, offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    // CHECK-NEXT: %n1 = transformer.norm %x, %c, bias %c {kind = "layer", eps = 1.000000e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    // GENERIC:    %n1 = "transformer.norm"(%x, %c, %c) <{kind = "layer", eps = 1.000000e-05 : f64, offset = 0.000000e+00 : f64}> : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %n1 = transformer.norm %x, %c, bias %c {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>

    // Plain multi-head attention without RoPE (GPT-2).
    // CHECK-NEXT: %a0 = transformer.attention %x, %cc, %cc, %cc, %cc {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 2.500000e-01 : f64, rope_style = "none"} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %a0 = transformer.attention %x, %cc, %cc, %cc, %cc {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_style = "none"} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    // GQA with biases on q/k/v (Qwen2), interleaved partial RoPE, llama3 scaling.
    // CHECK-NEXT: %a1 = transformer.attention %x, %wq, %wkv, %wkv, %wo, q_bias %bq, k_bias %bkv, v_bias %bkv {heads = 4 : i64, kv_heads = 1 : i64, head_dim = 32 : i64, layer = 1 : i64, scale = 1.250000e-01 : f64, rope_style = "interleaved", rope_theta = 5.000000e+05 : f64, rotary_dim = 16 : i64, rope_scaling = "llama3", rope_factor = 8.000000e+00 : f64, rope_original_context = 8192 : i64} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
    // GENERIC:    %a1 = "transformer.attention"(%x, %wq, %wkv, %wkv, %wo, %bq, %bkv, %bkv) <{heads = 4 : i64{{.*}}operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0>
    %a1 = transformer.attention %x, %wq, %wkv, %wkv, %wo, q_bias %bq, k_bias %bkv, v_bias %bkv {heads = 4 : i64, kv_heads = 1 : i64, head_dim = 32 : i64, layer = 1 : i64, scale = 1.250000e-01 : f64, rope_style = "interleaved", rope_theta = 5.0e+05 : f64, rotary_dim = 16 : i64, rope_scaling = "llama3", rope_factor = 8.0 : f64, rope_original_context = 8192 : i64} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
    // Gemma3 local layer: QK-norm with (1 + w), sliding window, softcap, an o bias.
    // CHECK-NEXT: %a2 = transformer.attention %x, %wq, %wkv, %wkv, %wo, o_bias %c, q_norm %d, k_norm %d {heads = 4 : i64, kv_heads = 1 : i64, head_dim = 32 : i64, layer = 2 : i64, scale = 6.250000e-02 : f64, window = 16 : i64, softcap = 5.000000e+01 : f64, norm_eps = 1.000000e-06 : f64, norm_offset = 1.000000e+00 : f64} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x128xf32>, tensor<64xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
    %a2 = transformer.attention %x, %wq, %wkv, %wkv, %wo, o_bias %c, q_norm %d, k_norm %d {heads = 4 : i64, kv_heads = 1 : i64, head_dim = 32 : i64, layer = 2 : i64, scale = 0.0625 : f64, window = 16 : i64, softcap = 50.0 : f64, norm_eps = 1.0e-06 : f64, norm_offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x128xf32>, tensor<64xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
    // Non-causal (an encoder-style block; decoder models keep the default).
    // CHECK-NEXT: %a3 = transformer.attention %x, %cc, %cc, %cc, %cc {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, layer = 3 : i64, scale = 1.250000e-01 : f64, causal = false} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %a3 = transformer.attention %x, %cc, %cc, %cc, %cc {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, layer = 3 : i64, scale = 1.250000e-01 : f64, causal = false} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

    // CHECK-NEXT: %m0 = transformer.mlp %x, %up, %down, gate %up {kind = "swiglu"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    // GENERIC:    %m0 = "transformer.mlp"(%x, %up, %down, %up) <{kind = "swiglu", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0, 0>, approximate = "tanh"}>
    %m0 = transformer.mlp %x, %up, %down, gate %up {kind = "swiglu"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    // CHECK-NEXT: %m1 = transformer.mlp %x, %up, %down, gate %up, gate_bias %f, up_bias %f, down_bias %c {kind = "geglu", approximate = "none"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<128xf32>, tensor<128xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %m1 = transformer.mlp %x, %up, %down, gate %up, gate_bias %f, up_bias %f, down_bias %c {kind = "geglu", approximate = "none"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<128xf32>, tensor<128xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    // CHECK-NEXT: %m2 = transformer.mlp %x, %up, %down, up_bias %f, down_bias %c {kind = "gelu"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %m2 = transformer.mlp %x, %up, %down, up_bias %f, down_bias %c {kind = "gelu"} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<64xf32>) -> tensor<?x64xf32>

    // CHECK-NEXT: %r = transformer.residual %a0, %m0 : tensor<?x64xf32>
    // GENERIC:    %r = "transformer.residual"(%a0, %m0) : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %r = transformer.residual %a0, %m0 : tensor<?x64xf32>

    // CHECK-NEXT: %l0 = transformer.lm_head %r, %emb {tied = true, softcap = 3.000000e+01 : f64} : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
    // GENERIC:    %l0 = "transformer.lm_head"(%r, %emb) <{tied = true, softcap = 3.000000e+01 : f64}> : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
    %l0 = transformer.lm_head %r, %emb {tied = true, softcap = 30.0 : f64} : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
    // CHECK-NEXT: %l1 = transformer.lm_head %r, %emb : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
    %l1 = transformer.lm_head %r, %emb : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>

    // CHECK-NEXT: %ce0 = transformer.cross_entropy %l0, %targets : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
    // GENERIC:    %ce0 = "transformer.cross_entropy"(%l0, %targets) <{ignore_index = -100 : i64}> : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
    %ce0 = transformer.cross_entropy %l0, %targets : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
    // CHECK-NEXT: %ce1 = transformer.cross_entropy %l1, %targets {ignore_index = 0 : i64} : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
    %ce1 = transformer.cross_entropy %l1, %targets {ignore_index = 0 : i64} : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
    // CHECK-NEXT: func.return %ce0 : tensor<f32>
    func.return %ce0 : tensor<f32>
  }
}
