// One case per verifier rule of the transformer ops (the config attribute's
// rules are in config-invalid.mlir: they are parse errors).

// RUN: ckc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// weight: empty name
// CHECK: Operation does not verify: weight name must not be empty
%w = transformer.weight "" : tensor<4xf32>

// -----

// weight: negative slice offset
// CHECK: Operation does not verify: offset must be >= 0, got -1
%w = transformer.weight "w" offset -1 : tensor<4xf32>

// -----

// weight: dynamic shape
// CHECK: Operation does not verify: weight 'w' must have a static shape, got [?, 4]
%w = transformer.weight "w" : tensor<?x4xf32>

// -----

// weight: scalar
// CHECK: Operation does not verify: weight must have rank >= 1
%w = transformer.weight "w" : tensor<f32>

// -----

// weight: integer element type
// CHECK: Operation does not verify: weight 'w' must have a float element type, got i32
%w = transformer.weight "w" : tensor<4xi32>

// -----

// embedding: float tokens
// CHECK: Operation does not verify: tokens must be a 1-D integer tensor, got tensor<?xf32>
%0, %1 = "test.op"() : () -> (tensor<?xf32>, tensor<128x64xf32>)
%r = transformer.embedding %0, %1 : (tensor<?xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>

// -----

// embedding: dynamic table
// CHECK: Operation does not verify: table has shape [?, 64], expected a static [vocab, hidden]
%0, %1 = "test.op"() : () -> (tensor<?xi32>, tensor<?x64xf32>)
%r = transformer.embedding %0, %1 : (tensor<?xi32>, tensor<?x64xf32>) -> tensor<?x64xf32>

// -----

// embedding: positions width
// CHECK: Operation does not verify: positions has shape [256, 32], expected [context, hidden] = [?, 64]
%0, %1, %2 = "test.op"() : () -> (tensor<?xi32>, tensor<128x64xf32>, tensor<256x32xf32>)
%r = transformer.embedding %0, %1, positions %2 : (tensor<?xi32>, tensor<128x64xf32>, tensor<256x32xf32>) -> tensor<?x64xf32>

// -----

// embedding: result width
// CHECK: Operation does not verify: result has shape [?, 32], expected [tokens, hidden] = [?, 64]
%0, %1 = "test.op"() : () -> (tensor<?xi32>, tensor<128x64xf32>)
%r = transformer.embedding %0, %1 : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x32xf32>

// -----

// embedding: result token count
// CHECK: Operation does not verify: result has shape [5, 64], expected [tokens, hidden] = [7, 64]
%0, %1 = "test.op"() : () -> (tensor<7xi32>, tensor<128x64xf32>)
%r = transformer.embedding %0, %1 : (tensor<7xi32>, tensor<128x64xf32>) -> tensor<5x64xf32>

// -----

// embedding: scale
// CHECK: Operation does not verify: scale must be positive, got 0.0
%0, %1 = "test.op"() : () -> (tensor<?xi32>, tensor<128x64xf32>)
%r = transformer.embedding %0, %1 {scale = 0.0 : f64} : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>

// -----

// norm: kind
// CHECK: Operation does not verify: kind must be one of rms, layer, got 'batch'
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
%r = transformer.norm %0, %1 {kind = "batch", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>

// -----

// norm: eps
// CHECK: Operation does not verify: eps must be positive, got 0.0
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
%r = transformer.norm %0, %1 {kind = "rms", eps = 0.0 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>

// -----

// norm: dynamic features
// CHECK: Operation does not verify: x must have a static feature dimension, got [?, ?]
%0, %1 = "test.op"() : () -> (tensor<?x?xf32>, tensor<64xf32>)
%r = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x?xf32>, tensor<64xf32>) -> tensor<?x?xf32>

// -----

// norm: 1-D input
// CHECK: Operation does not verify: x must be a 2-D [tokens, features] tensor, got [64]
%0, %1 = "test.op"() : () -> (tensor<64xf32>, tensor<64xf32>)
%r = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>

// -----

// norm: weight
// CHECK: Operation does not verify: weight has shape [32], expected [C] = [64]
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<32xf32>)
%r = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>

// -----

// norm: bias
// CHECK: Operation does not verify: bias has shape [65], expected [C] = [64]
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>, tensor<65xf32>)
%r = transformer.norm %0, %1, bias %2 {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<65xf32>) -> tensor<?x64xf32>

// -----

// norm: result type
// CHECK: Operation does not verify: result type tensor<?x64xf16> must equal x's type tensor<?x64xf32>
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
%r = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf16>

// -----

// attention: heads
// CHECK: Operation does not verify: heads must be positive, got 0
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 0 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: GQA grouping
// CHECK: Operation does not verify: heads (4) must be a multiple of kv_heads (3)
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 3 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: layer
// CHECK: Operation does not verify: layer must be >= 0, got -1
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = -1 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: window
// CHECK: Operation does not verify: window must be >= 0, got -1
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, window = -1 : i64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: scale
// CHECK: Operation does not verify: scale must be positive, got 0.0
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: softcap
// CHECK: Operation does not verify: softcap must be >= 0, got -1.0
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, softcap = -1.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: rope_style
// CHECK: Operation does not verify: rope_style must be one of neox, interleaved, none, got 'yarn'
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_style = "yarn"} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: rotary_dim without RoPE
// CHECK: Operation does not verify: rotary_dim must be absent when rope_style is none
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_style = "none", rotary_dim = 16 : i64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: rope_theta
// CHECK: Operation does not verify: rope_theta must be positive, got 0.0
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_theta = 0.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: odd rotary_dim
// CHECK: Operation does not verify: rotary_dim must be even and in (0, head_dim=16], got 7
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rotary_dim = 7 : i64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: rotary_dim > head_dim
// CHECK: Operation does not verify: rotary_dim must be even and in (0, head_dim=16], got 32
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rotary_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: rope_scaling
// CHECK: Operation does not verify: rope_scaling must be one of none, linear, llama3, got 'ntk'
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_scaling = "ntk"} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: rope_factor
// CHECK: Operation does not verify: rope_factor must be positive, got 0.0
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_scaling = "linear", rope_factor = 0.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: llama3 original context
// CHECK: Operation does not verify: rope_scaling llama3 needs rope_original_context > 0
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_scaling = "llama3", rope_factor = 8.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: llama3 factors
// CHECK: Operation does not verify: rope_high_freq_factor must exceed rope_low_freq_factor
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_scaling = "llama3", rope_factor = 8.0 : f64, rope_original_context = 8192 : i64, rope_low_freq_factor = 4.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: x
// CHECK: Operation does not verify: x must have a static feature dimension, got [?, ?]
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x?xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x?xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x?xf32>

// -----

// attention: wq
// CHECK: Operation does not verify: wq has shape [32, 64], expected [heads*head_dim, hidden] = [64, 64]
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: wk
// CHECK: Operation does not verify: wk has shape [64, 64], expected [kv_heads*head_dim, hidden] = [32, 64]
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: wv
// CHECK: Operation does not verify: wv has shape [32, 48], expected [kv_heads*head_dim, hidden] = [32, 64]
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x48xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x48xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: wo
// CHECK: Operation does not verify: wo has shape [64, 32], expected [hidden, heads*head_dim] = [64, 64]
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>

// -----

// attention: q bias
// CHECK: Operation does not verify: q_bias has shape [32], expected [heads*head_dim] = [64]
%0, %1, %2, %3, %4, %5 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<32xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, q_bias %5 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>

// -----

// attention: k bias
// CHECK: Operation does not verify: k_bias has shape [64], expected [kv_heads*head_dim] = [32]
%0, %1, %2, %3, %4, %5 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, k_bias %5 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>

// -----

// attention: v bias
// CHECK: Operation does not verify: v_bias has shape [64], expected [kv_heads*head_dim] = [32]
%0, %1, %2, %3, %4, %5 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, v_bias %5 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>

// -----

// attention: o bias
// CHECK: Operation does not verify: o_bias has shape [32], expected [hidden] = [64]
%0, %1, %2, %3, %4, %5 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<32xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, o_bias %5 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>

// -----

// attention: q_norm
// CHECK: Operation does not verify: q_norm has shape [64], expected [head_dim] = [16]
%0, %1, %2, %3, %4, %5, %6 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<16xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, q_norm %5, k_norm %6 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, norm_eps = 1.0e-06 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<16xf32>) -> tensor<?x64xf32>

// -----

// attention: k_norm
// CHECK: Operation does not verify: k_norm has shape [8], expected [head_dim] = [16]
%0, %1, %2, %3, %4, %5, %6 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>, tensor<8xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, q_norm %5, k_norm %6 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, norm_eps = 1.0e-06 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>, tensor<8xf32>) -> tensor<?x64xf32>

// -----

// attention: q_norm alone
// CHECK: Operation does not verify: q_norm and k_norm must be given together
%0, %1, %2, %3, %4, %5 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, q_norm %5 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, norm_eps = 1.0e-06 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>

// -----

// attention: qk-norm eps missing
// CHECK: Operation does not verify: norm_eps is required with q_norm/k_norm
%0, %1, %2, %3, %4, %5, %6 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>, tensor<16xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, q_norm %5, k_norm %6 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x64xf32>

// -----

// attention: qk-norm eps
// CHECK: Operation does not verify: norm_eps must be positive, got 0.0
%0, %1, %2, %3, %4, %5, %6 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>, tensor<16xf32>)
%r = transformer.attention %0, %1, %2, %3, %4, q_norm %5, k_norm %6 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, norm_eps = 0.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x64xf32>

// -----

// attention: qk-norm attrs without weights
// CHECK: Operation does not verify: norm_eps/norm_offset given without q_norm/k_norm
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, norm_offset = 1.0 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// attention: result type
// CHECK: Operation does not verify: result type tensor<7x64xf32> must equal x's type tensor<?x64xf32>
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<7x64xf32>

// -----

// attention: integer weight
// CHECK: Operation does not verify: wq must have a float element type, got i8
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64x64xi8>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>)
%r = transformer.attention %0, %1, %2, %3, %4 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xi8>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>

// -----

// mlp: kind
// CHECK: Operation does not verify: kind must be one of swiglu, geglu, gelu, got 'moe'
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>)
%r = transformer.mlp %0, %1, %2 {kind = "moe"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>

// -----

// mlp: approximate
// CHECK: Operation does not verify: approximate must be one of tanh, none, got 'erf'
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>)
%r = transformer.mlp %0, %1, %2 {kind = "gelu", approximate = "erf"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>

// -----

// mlp: approximate on swiglu
// CHECK: Operation does not verify: approximate applies to geglu and gelu only
%0, %1, %2, %3 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>)
%r = transformer.mlp %0, %1, %2, gate %3 {kind = "swiglu", approximate = "none"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>) -> tensor<?x64xf32>

// -----

// mlp: swiglu without gate
// CHECK: Operation does not verify: kind 'swiglu' needs a gate weight
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>)
%r = transformer.mlp %0, %1, %2 {kind = "swiglu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>

// -----

// mlp: gelu with gate
// CHECK: Operation does not verify: kind 'gelu' takes no gate weight
%0, %1, %2, %3 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>)
%r = transformer.mlp %0, %1, %2, gate %3 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>) -> tensor<?x64xf32>

// -----

// mlp: dynamic up
// CHECK: Operation does not verify: up has shape [?, 64], expected a static [ffn, hidden]
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64x160xf32>)
%r = transformer.mlp %0, %1, %2 {kind = "gelu"} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>

// -----

// mlp: up
// CHECK: Operation does not verify: up has shape [160, 32], expected [ffn, hidden] = [160, 64]
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x32xf32>, tensor<64x160xf32>)
%r = transformer.mlp %0, %1, %2 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x32xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>

// -----

// mlp: gate
// CHECK: Operation does not verify: gate has shape [128, 64], expected [ffn, hidden] = [160, 64]
%0, %1, %2, %3 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<128x64xf32>)
%r = transformer.mlp %0, %1, %2, gate %3 {kind = "geglu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>

// -----

// mlp: down
// CHECK: Operation does not verify: down has shape [64, 128], expected [hidden, ffn] = [64, 160]
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x128xf32>)
%r = transformer.mlp %0, %1, %2 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x128xf32>) -> tensor<?x64xf32>

// -----

// mlp: gate bias
// CHECK: Operation does not verify: gate_bias has shape [64], expected [ffn] = [160]
%0, %1, %2, %3, %4 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>, tensor<64xf32>)
%r = transformer.mlp %0, %1, %2, gate %3, gate_bias %4 {kind = "geglu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>

// -----

// mlp: up bias
// CHECK: Operation does not verify: up_bias has shape [64], expected [ffn] = [160]
%0, %1, %2, %3 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<64xf32>)
%r = transformer.mlp %0, %1, %2, up_bias %3 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<64xf32>) -> tensor<?x64xf32>

// -----

// mlp: down bias
// CHECK: Operation does not verify: down_bias has shape [160], expected [hidden] = [64]
%0, %1, %2, %3 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160xf32>)
%r = transformer.mlp %0, %1, %2, down_bias %3 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>, tensor<160xf32>) -> tensor<?x64xf32>

// -----

// mlp: result type
// CHECK: Operation does not verify: result type tensor<?x32xf32> must equal x's type tensor<?x64xf32>
%0, %1, %2 = "test.op"() : () -> (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>)
%r = transformer.mlp %0, %1, %2 {kind = "gelu"} : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<64x160xf32>) -> tensor<?x32xf32>

// -----

// residual: mismatched types
// CHECK: Operation does not verify: rhs type tensor<?x32xf32> must equal lhs type tensor<?x64xf32>
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<?x32xf32>)
%r = "transformer.residual"(%0, %1) : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>

// -----

// residual: 1-D
// CHECK: Operation does not verify: lhs must be a 2-D [tokens, features] tensor, got [64]
%0, %1 = "test.op"() : () -> (tensor<64xf32>, tensor<64xf32>)
%r = transformer.residual %0, %1 : tensor<64xf32>

// -----

// lm_head: weight width
// CHECK: Operation does not verify: weight has shape [128, 32], expected [vocab, hidden] = [?, 64]
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<128x32xf32>)
%r = transformer.lm_head %0, %1 : (tensor<?x64xf32>, tensor<128x32xf32>) -> tensor<?x128xf32>

// -----

// lm_head: dynamic vocab
// CHECK: Operation does not verify: weight has shape [?, 64], expected a static [vocab, hidden]
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<?x64xf32>)
%r = transformer.lm_head %0, %1 : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>

// -----

// lm_head: result vocab
// CHECK: Operation does not verify: result has shape [?, 100], expected [tokens, vocab] = [?, 128]
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<128x64xf32>)
%r = transformer.lm_head %0, %1 : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x100xf32>

// -----

// lm_head: softcap
// CHECK: Operation does not verify: softcap must be >= 0, got -1.0
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<128x64xf32>)
%r = transformer.lm_head %0, %1 {softcap = -1.0 : f64} : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>

// -----

// cross_entropy: float targets
// CHECK: Operation does not verify: targets must be a 1-D integer tensor, got tensor<?xf32>
%0, %1 = "test.op"() : () -> (tensor<?x128xf32>, tensor<?xf32>)
%r = transformer.cross_entropy %0, %1 : (tensor<?x128xf32>, tensor<?xf32>) -> tensor<f32>

// -----

// cross_entropy: token count
// CHECK: Operation does not verify: targets has shape [6], expected [tokens] = [7]
%0, %1 = "test.op"() : () -> (tensor<7x128xf32>, tensor<6xi32>)
%r = transformer.cross_entropy %0, %1 : (tensor<7x128xf32>, tensor<6xi32>) -> tensor<f32>

// -----

// cross_entropy: result
// CHECK: Operation does not verify: result must be tensor<f32>, got tensor<1xf32>
%0, %1 = "test.op"() : () -> (tensor<?x128xf32>, tensor<?xi32>)
%r = transformer.cross_entropy %0, %1 : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<1xf32>

// -----

// cross_entropy: 1-D logits
// CHECK: Operation does not verify: logits must be a 2-D [tokens, features] tensor, got [128]
%0, %1 = "test.op"() : () -> (tensor<128xf32>, tensor<?xi32>)
%r = transformer.cross_entropy %0, %1 : (tensor<128xf32>, tensor<?xi32>) -> tensor<f32>

// -----

// embedding: dynamic positions table
// CHECK: Operation does not verify: positions must have a static shape
%0, %1, %2 = "test.op"() : () -> (tensor<?xi32>, tensor<128x64xf32>, tensor<?x64xf32>)
%r = transformer.embedding %0, %1, positions %2 : (tensor<?xi32>, tensor<128x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>

// -----

// embedding: integer table
// CHECK: Operation does not verify: table must have a float element type, got i8
%0, %1 = "test.op"() : () -> (tensor<?xi32>, tensor<128x64xi8>)
%r = transformer.embedding %0, %1 : (tensor<?xi32>, tensor<128x64xi8>) -> tensor<?x64xf32>

// -----

// norm: infinite offset
// CHECK: Operation does not verify: offset must be finite
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<64xf32>)
%r = transformer.norm %0, %1 {kind = "rms", eps = 1.0e-05 : f64, offset = 0x7FF0000000000000 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>

// -----

// lm_head: integer weight
// CHECK: Operation does not verify: weight must have a float element type, got i8
%0, %1 = "test.op"() : () -> (tensor<?x64xf32>, tensor<128x64xi8>)
%r = transformer.lm_head %0, %1 : (tensor<?x64xf32>, tensor<128x64xi8>) -> tensor<?x128xf32>
