// RUN: ckc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per tensorop verifier rule; each prints exactly its diagnostic.

%w = tensorop.weight "" : tensor<4x4xf32>
// CHECK: weight name must not be empty

// -----

%w = tensorop.weight "w" : tensor<4x4xi32>
// CHECK: weight 'w' must have a weight element type (f32, f16, bf16, !quant.*), got tensor<4x4xi32>

// -----

%w = tensorop.weight "w" : tensor<?x4xf32>
// CHECK: weight 'w' must have a static shape, got [?, 4]

// -----

%w = "tensorop.weight"() <{name = "w"}> : () -> f32
// CHECK: result 'result' at position 0 does not verify:
// CHECK-NEXT: f32 should be of base attribute tensor

// -----

%c = "tensorop.constant"() <{value = dense<1.0> : tensor<4xf32>}> : () -> tensor<8xf32>
// CHECK: result type tensor<8xf32> differs from the value's type tensor<4xf32>

// -----

%z = tensorop.zeros : tensor<?x4xf32>
// CHECK: zeros must have a static shape, got [?, 4]

// -----

func.func @f(%x: tensor<?x4xf32>) {
  %z = tensorop.zeros_like %x : (tensor<?x4xf32>) -> tensor<?x8xf32>
  func.return
}
// CHECK: result #0 has type tensor<?x8xf32>, expected a type compatible with tensor<?x4xf32>

// -----

func.func @f(%x: tensor<?x4x4xf32>, %w: tensor<4x4xf32>) {
  %y = tensorop.matmul %x, %w : (tensor<?x4x4xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
  func.return
}
// CHECK: operand 'a' must have rank 2, got tensor<?x4x4xf32>

// -----

func.func @f(%x: tensor<?x4xf32>, %w: tensor<4xf32>) {
  %y = tensorop.matmul %x, %w : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  func.return
}
// CHECK: operand 'b' must have rank 2, got tensor<4xf32>

// -----

func.func @f(%x: tensor<?x4xf16>, %w: tensor<4x4xf32>) {
  %y = tensorop.matmul %x, %w : (tensor<?x4xf16>, tensor<4x4xf32>) -> tensor<?x4xf32>
  func.return
}
// CHECK: operand 'a' must have element type f32, got tensor<?x4xf16>

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<128x32xf32>) {
  %y = tensorop.matmul %x, %w {transpose_b} : (tensor<?x64xf32>, tensor<128x32xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: contraction sizes differ: 64 from 'a' [?, 64], 32 from 'b' [128, 32]

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<1x128xf32>) {
  %y = tensorop.matmul %x, %w, bias %b {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<1x128xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: bias must have rank 1, got tensor<1x128xf32>

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<64xf32>) {
  %y = tensorop.matmul %x, %w, bias %b {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: bias size is 64, expected 128

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  %y = tensorop.matmul %x, %w {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: result #0 has type tensor<?x64xf32>, expected a type compatible with tensor<?x128xf32>

// -----

func.func @f(%x: tensor<?x64xf32>, %w: f32) {
  %y = tensorop.matmul %x, %w : (tensor<?x64xf32>, f32) -> tensor<?x64xf32>
  func.return
}
// CHECK: operand 'b' at position 1 does not verify:
// CHECK-NEXT: f32 should be of base attribute tensor

// -----

func.func @f(%a: tensor<?x64xf32>, %b: tensor<?x32xf32>) {
  %y = tensorop.add %a, %b : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: operands: shapes [?, 64] and [?, 32] differ

// -----

func.func @f(%a: tensor<?x64xf32>, %b: tensor<64xf32>) {
  %y = tensorop.add %a, %b : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: operands: shapes [?, 64] and [64] differ

// -----

func.func @f(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) {
  %y = tensorop.add %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xi32>
  func.return
}
// CHECK: result #0 has type tensor<?x64xi32>, expected a type compatible with tensor<?x64xf32>

// -----

func.func @f(%a: tensor<4x64xf32>, %b: tensor<8x64xf32>) {
  %y = tensorop.mul %a, %b : (tensor<4x64xf32>, tensor<8x64xf32>) -> tensor<4x64xf32>
  func.return
}
// CHECK: operands: shapes [4, 64] and [8, 64] differ

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.scale %x {factor = 0x7F800000 : f32} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: factor must be finite, got inf

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.scale %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: property 'factor' expected in operation 'tensorop.scale'

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.scale %x {factor = 2.0 : f64} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: f64 should be of base attribute f32

// -----

func.func @f(%x: tensor<?x4x64xf32>, %w: tensor<64xf32>) {
  %y = tensorop.rmsnorm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x4x64xf32>, tensor<64xf32>) -> tensor<?x4x64xf32>
  func.return
}
// CHECK: operand 'x' must have rank 2, got tensor<?x4x64xf32>

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<1x64xf32>) {
  %y = tensorop.rmsnorm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<1x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: weight must have rank 1, got tensor<1x64xf32>

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<?xf32>) {
  %y = tensorop.rmsnorm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<?xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: weight must have a static shape, got [?]

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<48xf32>) {
  %y = tensorop.rmsnorm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<48xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: weight size 48 must divide the normalized dim 64 (one group per 48 elements)

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  %y = tensorop.rmsnorm %x, %w {eps = 0.0 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: eps must be positive, got 0

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<32xf32>, %b: tensor<64xf32>) {
  %y = tensorop.layernorm %x, %w, bias %b {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<32xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: weight size is 32, expected 64

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<32xf32>) {
  %y = tensorop.layernorm %x, %w, bias %b {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: bias size is 32, expected 64

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) {
  %y = tensorop.layernorm %x, %w, bias %b {eps = -1.0 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: eps must be positive, got -1

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 0 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: heads must be positive, got 0

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 0 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: head_dim must be positive, got 0

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 7 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: rotary_dim must be even and in (0, head_dim=32], got 7

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 64 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: rotary_dim must be even and in (0, head_dim=32], got 64

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 32 : i64, theta = 0.0 : f32} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: theta must be positive, got 0

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 32 : i64, style = "gptj"} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: style must be one of neox, interleaved, got 'gptj'

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: row size (heads * head_dim) is 128, expected 64

// -----

func.func @f(%x: tensor<?x128xf32>, %p: f32) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, f32) -> tensor<?x128xf32>
  func.return
}
// CHECK: operand 'pos' at position 1 does not verify:
// CHECK-NEXT: Unexpected attribute f32

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {head_dim = 32 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: property 'heads' expected in operation 'tensorop.rope'

// -----

func.func @f(%x: tensor<f32>) {
  %y = tensorop.softmax %x : (tensor<f32>) -> tensor<f32>
  func.return
}
// CHECK: operand 'x' must have rank >= 1

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x96xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 3 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?x96xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: heads (4) must be a multiple of kv_heads (3)

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 0 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: heads must be positive, got 0

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 0 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: kv_heads must be positive, got 0

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 0 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: head_dim must be positive, got 0

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = -0.125 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: scale must be positive, got -0.125

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, window = -1 : i64} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: window must be non-negative, got -1

// -----

func.func @f(%q: tensor<?x96xf32>, %k: tensor<?x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x96xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: q row size (heads * head_dim) is 96, expected 128

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x128xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: k row size (kv_heads * head_dim) is 128, expected 64

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x32xf32>) {
  %o = tensorop.causal_attention %q, %k, %v {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: 'k' and 'v': shapes [?, 64] and [?, 32] differ

// -----

func.func @f(%q: tensor<4x128xf32>, %k: tensor<8x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<4x128xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<4x128xf32>
  func.return
}
// CHECK: k/v row count (no pos: same tokens as q) is 8, expected 4

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %p: index) {
  %o = tensorop.causal_attention %q, %k, %k, pos %p {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: with 'pos', k and v are KV caches and need a static row count

// -----

func.func @f(%c: tensor<?x64xf32>, %k: tensor<?x64xf32>, %p: index) {
  %c1 = tensorop.kv_write %c, %k, %p : (tensor<?x64xf32>, tensor<?x64xf32>, index) -> tensor<?x64xf32>
  func.return
}
// CHECK: cache must have a static shape, got [?, 64]

// -----

func.func @f(%c: tensor<512x64xf32>, %k: tensor<?x32xf32>, %p: index) {
  %c1 = tensorop.kv_write %c, %k, %p : (tensor<512x64xf32>, tensor<?x32xf32>, index) -> tensor<512x64xf32>
  func.return
}
// CHECK: row size of 'x' is 32, expected 64

// -----

func.func @f(%c: tensor<8x64xf32>, %k: tensor<16x64xf32>, %p: index) {
  %c1 = tensorop.kv_write %c, %k, %p : (tensor<8x64xf32>, tensor<16x64xf32>, index) -> tensor<8x64xf32>
  func.return
}
// CHECK: 16 rows do not fit a cache of 8 rows

// -----

func.func @f(%c: tensor<512x64xf32>, %k: tensor<?x64xf32>, %p: index) {
  %c1 = tensorop.kv_write %c, %k, %p : (tensor<512x64xf32>, tensor<?x64xf32>, index) -> tensor<256x64xf32>
  func.return
}
// CHECK: result #0 has type tensor<256x64xf32>, expected a type compatible with tensor<512x64xf32>

// -----

func.func @f(%x: tensor<?x64xi32>) {
  %y = tensorop.silu %x : (tensor<?x64xi32>) -> tensor<?x64xi32>
  func.return
}
// CHECK: operand 'x' must have element type f32, got tensor<?x64xi32>

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.gelu %x {approximate = "sigmoid"} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: approximate must be one of none, tanh, got 'sigmoid'

// -----

func.func @f(%g: tensor<?x64xf32>, %u: tensor<?x32xf32>) {
  %y = tensorop.swiglu %g, %u : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: 'gate' and 'up': shapes [?, 64] and [?, 32] differ

// -----

func.func @f(%g: tensor<64xf32>, %u: tensor<64xf32>) {
  %y = tensorop.swiglu %g, %u : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  func.return
}
// CHECK: operand 'gate' must have rank 2, got tensor<64xf32>

// -----

func.func @f(%g: tensor<?x64xf32>, %u: tensor<?x64xf32>) {
  %y = tensorop.geglu %g, %u {approximate = "erf"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: approximate must be one of none, tanh, got 'erf'

// -----

func.func @f(%t: tensor<256x64xf32>, %tok: tensor<?xi64>) {
  %y = tensorop.embedding %t, %tok : (tensor<256x64xf32>, tensor<?xi64>) -> tensor<?x64xf32>
  func.return
}
// CHECK: tokens must have element type i32, got tensor<?xi64>

// -----

func.func @f(%t: tensor<?x64xf32>, %tok: tensor<?xi32>) {
  %y = tensorop.embedding %t, %tok : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: table must have a static shape, got [?, 64]

// -----

func.func @f(%t: tensor<256x64xf32>, %tok: tensor<1x?xi32>) {
  %y = tensorop.embedding %t, %tok : (tensor<256x64xf32>, tensor<1x?xi32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: tokens must have rank 1, got tensor<1x?xi32>

// -----

func.func @f(%t: tensor<256x64xf32>, %tok: tensor<?xi32>) {
  %y = tensorop.embedding %t, %tok {scale = 0x7FC00000 : f32} : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: scale must be finite, got nan

// -----

func.func @f(%t: tensor<256x64xf32>, %tok: tensor<?xi32>) {
  %y = tensorop.embedding %t, %tok : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  func.return
}
// CHECK: result #0 has type tensor<?x32xf32>, expected a type compatible with tensor<?x64xf32>

// -----

func.func @f(%x: tensor<8x64xf32>) {
  %y = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<512xi32>
  func.return
}
// CHECK: element type changes from f32 to i32

// -----

func.func @f(%x: tensor<8x64xf32>) {
  %y = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<500xf32>
  func.return
}
// CHECK: element count changes from 512 to 500

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.reshape %x : (tensor<?x64xf32>) -> tensor<8x64xf32>
  func.return
}
// CHECK: a dynamic dim must stay dynamic: [?, 64] -> [8, 64]

// -----

func.func @f(%x: tensor<?x3xf32>) {
  %y = tensorop.reshape %x : (tensor<?x3xf32>) -> tensor<?x2xf32>
  func.return
}
// CHECK: static sizes [?, 3] and [?, 2] cannot hold the same elements

// -----

func.func @f(%x: tensor<?x4x4xf32>) {
  %y = tensorop.transpose %x : (tensor<?x4x4xf32>) -> tensor<4x4x?xf32>
  func.return
}
// CHECK: operand 'x' must have rank 2, got tensor<?x4x4xf32>

// -----

func.func @f(%x: tensor<8x4xf32>) {
  %y = tensorop.transpose %x : (tensor<8x4xf32>) -> tensor<8x4xf32>
  func.return
}
// CHECK: result #0 has type tensor<8x4xf32>, expected a type compatible with tensor<4x8xf32>

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.last_rows %x {count = 0 : i64} : (tensor<?x64xf32>) -> tensor<0x64xf32>
  func.return
}
// CHECK: count must be positive, got 0

// -----

func.func @f(%x: tensor<2x64xf32>) {
  %y = tensorop.last_rows %x {count = 4 : i64} : (tensor<2x64xf32>) -> tensor<4x64xf32>
  func.return
}
// CHECK: count 4 exceeds the 2 rows of 'x'

// -----

func.func @f(%l: tensor<?x256xf32>, %t: tensor<?xf32>) {
  %y = tensorop.cross_entropy %l, %t : (tensor<?x256xf32>, tensor<?xf32>) -> tensor<f32>
  func.return
}
// CHECK: targets must have element type i32, got tensor<?xf32>

// -----

func.func @f(%l: tensor<4x256xf32>, %t: tensor<5xi32>) {
  %y = tensorop.cross_entropy %l, %t : (tensor<4x256xf32>, tensor<5xi32>) -> tensor<f32>
  func.return
}
// CHECK: target count is 5, expected 4

// -----

func.func @f(%l: tensor<256xf32>, %t: tensor<?xi32>) {
  %y = tensorop.cross_entropy %l, %t : (tensor<256xf32>, tensor<?xi32>) -> tensor<f32>
  func.return
}
// CHECK: logits must have rank 2, got tensor<256xf32>

// -----

func.func @f(%l: tensor<?x256xf32>, %t: tensor<?xi32>) {
  %y = tensorop.cross_entropy %l, %t : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<1xf32>
  func.return
}
// CHECK: result #0 has type tensor<1xf32>, expected a type compatible with tensor<f32>

// -----

func.func @f(%l: tensor<?x256xf32>, %t: tensor<?xi32>) {
  %y, %d = tensorop.cross_entropy_fused %l, %t {grad_scale = 0xFF800000 : f32} : (tensor<?x256xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x256xf32>)
  func.return
}
// CHECK: grad_scale must be finite, got -inf

// -----

func.func @f(%l: tensor<?x256xf32>, %t: tensor<?xi32>) {
  %y, %d = tensorop.cross_entropy_fused %l, %t : (tensor<?x256xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x128xf32>)
  func.return
}
// CHECK: result #1 has type tensor<?x128xf32>, expected a type compatible with tensor<?x256xf32>

// -----

func.func @f(%l: tensor<?x256xf32>, %t: tensor<?xi32>, %dl: tensor<1xf32>) {
  %d = tensorop.cross_entropy_grad %dl, %l, %t : (tensor<1xf32>, tensor<?x256xf32>, tensor<?xi32>) -> tensor<?x256xf32>
  func.return
}
// CHECK: dloss must have rank 0, got tensor<1xf32>

// -----

func.func @f(%dy: tensor<?x64xf32>, %x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  %dx, %dw = tensorop.matmul_grad %dy, %x, %w {transpose_b} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>)
  func.return
}
// CHECK: 'dy' and the matmul result: shapes [?, 64] and [?, 128] differ

// -----

func.func @f(%dy: tensor<?x128xf32>, %x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  %dx, %dw = tensorop.matmul_grad %dy, %x, %w {transpose_b, has_bias} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>)
  func.return
}
// CHECK: expected 3 results, got 2

// -----

func.func @f(%dy: tensor<?x128xf32>, %x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  %dx, %dw, %db = tensorop.matmul_grad %dy, %x, %w {transpose_b, has_bias} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64xf32>)
  func.return
}
// CHECK: result #2 has type tensor<64xf32>, expected a type compatible with tensor<128xf32>

// -----

func.func @f(%dy: tensor<?x32xf32>, %a: tensor<?x64xf32>) {
  %da, %db = tensorop.mul_grad %dy, %a, %a : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: 'dy' and the operands: shapes [?, 32] and [?, 64] differ

// -----

func.func @f(%dy: tensor<?x32xf32>, %x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  %dx, %dw = tensorop.rmsnorm_grad %dy, %x, %w {eps = 1.0e-05 : f32} : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>)
  func.return
}
// CHECK: 'dy' and 'x': shapes [?, 32] and [?, 64] differ

// -----

func.func @f(%dy: tensor<?x64xf32>, %x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  %dx, %dw = tensorop.rmsnorm_grad %dy, %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<32xf32>)
  func.return
}
// CHECK: result #1 has type tensor<32xf32>, expected a type compatible with tensor<64xf32>

// -----

func.func @f(%dy: tensor<?x32xf32>, %x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  %dx, %dw, %db = tensorop.layernorm_grad %dy, %x, %w {eps = 1.0e-05 : f32} : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
  func.return
}
// CHECK: 'dy' and 'x': shapes [?, 32] and [?, 64] differ

// -----

func.func @f(%dy: tensor<?x128xf32>, %p: index) {
  %dx = tensorop.rope_grad %dy, %p {heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 33 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: rotary_dim must be even and in (0, head_dim=32], got 33

// -----

func.func @f(%dy: tensor<?x32xf32>, %y: tensor<?x64xf32>) {
  %dx = tensorop.softmax_grad %dy, %y : (tensor<?x32xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: 'dy' and 'y': shapes [?, 32] and [?, 64] differ

// -----

func.func @f(%do: tensor<?x64xf32>, %q: tensor<?x128xf32>, %k: tensor<?x64xf32>) {
  %dq, %dk, %dv = tensorop.causal_attention_grad %do, %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x64xf32>, tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: 'dout' and the attention output: shapes [?, 64] and [?, 128] differ

// -----

func.func @f(%do: tensor<4x128xf32>, %q: tensor<4x128xf32>, %k: tensor<8x64xf32>) {
  %dq, %dk, %dv = tensorop.causal_attention_grad %do, %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<4x128xf32>, tensor<4x128xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> (tensor<4x128xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  func.return
}
// CHECK: k/v row count is 8, expected 4

// -----

func.func @f(%dy: tensor<?x32xf32>, %x: tensor<?x64xf32>) {
  %dx = tensorop.silu_grad %dy, %x : (tensor<?x32xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: 'dy' and 'x': shapes [?, 32] and [?, 64] differ

// -----

func.func @f(%dy: tensor<?x64xf32>, %x: tensor<?x64xf32>) {
  %dx = tensorop.gelu_grad %dy, %x {approximate = "fast"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: approximate must be one of none, tanh, got 'fast'

// -----

func.func @f(%dy: tensor<?x32xf32>, %g: tensor<?x64xf32>) {
  %dg, %du = tensorop.swiglu_grad %dy, %g, %g : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: 'dy' and 'gate': shapes [?, 32] and [?, 64] differ

// -----

func.func @f(%dy: tensor<?x64xf32>, %g: tensor<?x64xf32>) {
  %dg, %du = tensorop.geglu_grad %dy, %g, %g {approximate = "exact"} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: approximate must be one of none, tanh, got 'exact'

// -----

func.func @f(%dy: tensor<?x64xf32>, %tok: tensor<?xi32>) {
  %dt = tensorop.embedding_grad %dy, %tok {vocab = 0 : i64} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<0x64xf32>
  func.return
}
// CHECK: vocab must be positive, got 0

// -----

func.func @f(%dy: tensor<4x64xf32>, %tok: tensor<5xi32>) {
  %dt = tensorop.embedding_grad %dy, %tok {vocab = 256 : i64} : (tensor<4x64xf32>, tensor<5xi32>) -> tensor<256x64xf32>
  func.return
}
// CHECK: token count is 5, expected 4

// -----

func.func @f(%dy: tensor<?x?xf32>, %tok: tensor<?xi32>) {
  %dt = tensorop.embedding_grad %dy, %tok {vocab = 256 : i64} : (tensor<?x?xf32>, tensor<?xi32>) -> tensor<256x64xf32>
  func.return
}
// CHECK: operand 'dy' must have a static row size

// -----

func.func @f(%dy: tensor<?x64xf32>, %tok: tensor<?xi32>) {
  %dt = tensorop.embedding_grad %dy, %tok {vocab = 256 : i64} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<128x64xf32>
  func.return
}
// CHECK: result #0 has type tensor<128x64xf32>, expected a type compatible with tensor<256x64xf32>

// -----

func.func @f(%p: tensor<?x64xf32>, %lr: f32, %s: index) {
  %p1, %m1, %v1 = tensorop.adamw_update %p, %p, %p, %p, %lr, %s : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, f32, index) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: param must have a static shape, got [?, 64]

// -----

func.func @f(%p: tensor<8x64xf32>, %g: tensor<8x32xf32>, %lr: f32, %s: index) {
  %p1, %m1, %v1 = tensorop.adamw_update %p, %g, %p, %p, %lr, %s : (tensor<8x64xf32>, tensor<8x32xf32>, tensor<8x64xf32>, tensor<8x64xf32>, f32, index) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  func.return
}
// CHECK: 'grad' and 'param': shapes [8, 32] and [8, 64] differ

// -----

func.func @f(%p: tensor<8x64xf32>, %lr: f32, %s: index) {
  %p1, %m1, %v1 = tensorop.adamw_update %p, %p, %p, %p, %lr, %s {beta1 = 1.0 : f32} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, f32, index) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  func.return
}
// CHECK: beta1 must be in [0, 1), got 1

// -----

func.func @f(%p: tensor<8x64xf32>, %lr: f32, %s: index) {
  %p1, %m1, %v1 = tensorop.adamw_update %p, %p, %p, %p, %lr, %s {beta2 = -0.5 : f32} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, f32, index) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  func.return
}
// CHECK: beta2 must be in [0, 1), got -0.5

// -----

func.func @f(%p: tensor<8x64xf32>, %lr: f32, %s: index) {
  %p1, %m1, %v1 = tensorop.adamw_update %p, %p, %p, %p, %lr, %s {eps = 0.0 : f32} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, f32, index) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  func.return
}
// CHECK: eps must be positive, got 0

// -----

func.func @f(%p: tensor<8x64xf32>, %lr: f32, %s: index) {
  %p1, %m1, %v1 = tensorop.adamw_update %p, %p, %p, %p, %lr, %s {weight_decay = -0.1 : f32} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, f32, index) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  func.return
}
// CHECK: weight_decay must be non-negative, got -0.1

// -----

func.func @f(%p: tensor<8x64xf32>, %lr: f64, %s: index) {
  %p1, %m1, %v1 = tensorop.adamw_update %p, %p, %p, %p, %lr, %s : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, f64, index) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  func.return
}
// CHECK: operand 'lr' at position 4 does not verify:
// CHECK-NEXT: f64 should be of base attribute f32

// -----

func.func @f(%a: tensor<8x64xf32>, %g: tensor<8x32xf32>) {
  %a1 = tensorop.accumulate %a, %g : (tensor<8x64xf32>, tensor<8x32xf32>) -> tensor<8x64xf32>
  func.return
}
// CHECK: 'acc' and 'x': shapes [8, 64] and [8, 32] differ

// -----

%n = "tensorop.global_norm"() : () -> tensor<f32>
// CHECK: needs at least one operand

// -----

func.func @f(%g: tensor<8xi32>) {
  %n = tensorop.global_norm %g : (tensor<8xi32>) -> tensor<f32>
  func.return
}
// CHECK: operand #0 must have element type f32, got tensor<8xi32>

// -----

func.func @f(%g: tensor<8xf32>) {
  %n = tensorop.global_norm %g : (tensor<8xf32>) -> tensor<8xf32>
  func.return
}
// CHECK: result #0 has type tensor<8xf32>, expected a type compatible with tensor<f32>

// -----

func.func @f(%g: tensor<8xf32>) {
  %c = tensorop.clip_by_norm %g, %g : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  func.return
}
// CHECK: norm must have rank 0, got tensor<8xf32>

// -----

func.func @f(%g: tensor<8xf32>, %n: tensor<f32>) {
  %c = tensorop.clip_by_norm %g, %n {max_norm = 0.0 : f32} : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  func.return
}
// CHECK: max_norm must be positive, got 0

// -----

func.func @f(%x: tensor<?x?xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x?xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: operand 'x' must have a static row size

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<32xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<32xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: norm weight size is 32, expected 64

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p {eps = 0.0 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: eps must be positive, got 0

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 3 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: heads (4) must be a multiple of kv_heads (3)

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, style = "yarn"} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: style must be one of neox, interleaved, got 'yarn'

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wk, %wk, %wk, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: wq has shape [64, 64], expected [128, 64]

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wq, %wk, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: wk has shape [128, 64], expected [64, 64]

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wq, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<128x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: wv has shape [128, 64], expected [64, 64]

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p, bq %nw {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: size of 'bq' is 64, expected 128

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x32xf32>)
  func.return
}
// CHECK: result #2 has type tensor<?x32xf32>, expected a type compatible with tensor<?x64xf32>

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index, %f: tensor<16xf32>) {
  %y = tensorop.rope %x, %p, inv_freq %f {heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x128xf32>, index, tensor<16xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: inv_freq has 16 entries, expected rotary_dim / 2 = 8

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index, %f: tensor<4x4xf32>) {
  %y = tensorop.rope %x, %p, inv_freq %f {heads = 4 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, index, tensor<4x4xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: inv_freq must have rank 1, got tensor<4x4xf32>

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, softcap = -1.0 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: softcap must be non-negative, got -1

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.softcap %x {cap = 0.0 : f32} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: cap must be positive, got 0

// -----

func.func @f(%dy: tensor<?x32xf32>, %x: tensor<?x64xf32>) {
  %dx = tensorop.softcap_grad %dy, %x {cap = 30.0 : f32} : (tensor<?x32xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: 'dy' and 'x': shapes [?, 32] and [?, 64] differ

// -----

func.func @f(%t: tensor<?xf32>, %p: index) {
  %ids = tensorop.positions %t, %p : (tensor<?xf32>, index) -> tensor<?xi32>
  func.return
}
// CHECK: tokens must have element type i32, got tensor<?xf32>

// -----

func.func @f(%t: tensor<?xi32>, %p: index) {
  %ids = tensorop.positions %t, %p : (tensor<?xi32>, index) -> tensor<?xi64>
  func.return
}
// CHECK: result #0 has type tensor<?xi64>, expected a type compatible with tensor<?xi32>

// -----

func.func @f(%dy: tensor<?x64xf32>, %x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  %dx, %dw, %db = tensorop.layernorm_grad %dy, %x, %w {eps = 0.0 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
  func.return
}
// CHECK: eps must be positive, got 0

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  %y = tensorop.rmsnorm %x, %w : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: property 'eps' expected in operation 'tensorop.rmsnorm'

// -----

func.func @f(%c: tensor<512x64xf32>, %k: tensor<?x64xf32>, %p: f32) {
  %c1 = tensorop.kv_write %c, %k, %p : (tensor<512x64xf32>, tensor<?x64xf32>, f32) -> tensor<512x64xf32>
  func.return
}
// CHECK: operand 'pos' at position 2 does not verify:
// CHECK-NEXT: Unexpected attribute f32

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  %y = tensorop.layernorm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %z = tensorop.layernorm %y, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x32xf32>
  func.return
}
// CHECK: result #0 has type tensor<?x32xf32>, expected a type compatible with tensor<?x64xf32>

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 32 : i32} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: Expected attribute i64 but got i32

// -----

%w = tensorop.weight "blk.0.attn_qkv.weight" offset -1 : tensor<4x4xf32>
// CHECK: offset must be >= 0, got -1

// -----

%w = tensorop.weight "w" : tensor<f32>
// CHECK: weight 'w' must have rank >= 1

// -----

func.func @f(%q: tensor<60x128xf32>, %k: tensor<60x64xf32>) {
  %o = tensorop.causal_attention %q, %k, %k {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, seq_len = 16 : i64} : (tensor<60x128xf32>, tensor<60x64xf32>, tensor<60x64xf32>) -> tensor<60x128xf32>
  func.return
}
// CHECK: 60 rows are not a whole number of sequences of 16

// -----

func.func @f(%q: tensor<?x128xf32>, %k: tensor<64x64xf32>, %p: index) {
  %o = tensorop.causal_attention %q, %k, %k, pos %p {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, seq_len = 16 : i64} : (tensor<?x128xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: seq_len (a batch of sequences) needs the no-cache form

// -----

func.func @f(%x: tensor<?x128xf32>, %p: index) {
  %y = tensorop.rope %x, %p {heads = 4 : i64, head_dim = 32 : i64, seq_len = -4 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  func.return
}
// CHECK: seq_len must be non-negative, got -4

// -----

func.func @f(%t: tensor<10xi32>, %p: index) {
  %ids = tensorop.positions %t, %p {seq_len = 4 : i64} : (tensor<10xi32>, index) -> tensor<10xi32>
  func.return
}
// CHECK: 10 rows are not a whole number of sequences of 4

// -----

func.func @f(%c: tensor<512x64xf32>, %k: tensor<?x64xf32>, %s: tensor<?xi32>, %p: tensor<?xi32>) {
  %c1 = tensorop.kv_scatter %c, %k, %s, %p : (tensor<512x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<512x64xf32>
  func.return
}
// CHECK: cache must have rank 3, got tensor<512x64xf32>

// -----

func.func @f(%c: tensor<2x512x64xf32>, %k: tensor<4x64xf32>, %s: tensor<3xi32>, %p: tensor<4xi32>) {
  %c1 = tensorop.kv_scatter %c, %k, %s, %p : (tensor<2x512x64xf32>, tensor<4x64xf32>, tensor<3xi32>, tensor<4xi32>) -> tensor<2x512x64xf32>
  func.return
}
// CHECK: length of 'slots' (one per row) is 3, expected 4

// -----

func.func @f(%q: tensor<?x128xf32>, %c: tensor<2x512x64xf32>, %v: tensor<2x256x64xf32>, %s: tensor<?xi32>, %p: tensor<?xi32>) {
  %o = tensorop.slot_attention %q, %c, %v, %s, %p {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32} : (tensor<?x128xf32>, tensor<2x512x64xf32>, tensor<2x256x64xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: 'k' and 'v': shapes [2, 512, 64] and [2, 256, 64] differ

// -----

func.func @f(%x: tensor<?x128xf32>, %p: tensor<?xf32>) {
  %y = tensorop.rope_rows %x, %p {heads = 4 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, tensor<?xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: positions must have element type i32, got tensor<?xf32>

// -----

func.func @f(%x: tensor<?x128xf32>, %r: tensor<?x2xi32>) {
  %y = tensorop.gather_rows %x, %r : (tensor<?x128xf32>, tensor<?x2xi32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: rows must have rank 1, got tensor<?x2xi32>
