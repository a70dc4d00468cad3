// RUN: ckc-opt %s -p canonicalize | filecheck %s

// tensorop canonicalization patterns, each with a case where it must not fire.
// Unused pure ops disappear (canonicalize runs dead-code elimination).

// CHECK-LABEL: func.func @reshape_chain
// CHECK-NEXT:    %r = tensorop.reshape %x : (tensor<?x64xf32>) -> tensor<?x4x4x4xf32>
// CHECK-NEXT:    func.return %r
func.func @reshape_chain(%x: tensor<?x64xf32>) -> tensor<?x4x4x4xf32> {
  %a = tensorop.reshape %x : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %r = tensorop.reshape %a : (tensor<?x4x16xf32>) -> tensor<?x4x4x4xf32>
  func.return %r : tensor<?x4x4x4xf32>
}

// A chain coming back to the input type disappears entirely.
// CHECK-LABEL: func.func @reshape_roundtrip
// CHECK-NEXT:    func.return %x
func.func @reshape_roundtrip(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %a = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<512xf32>
  %b = tensorop.reshape %a : (tensor<512xf32>) -> tensor<8x64xf32>
  func.return %b : tensor<8x64xf32>
}

// CHECK-LABEL: func.func @reshape_same_type
// CHECK-NEXT:    func.return %x
func.func @reshape_same_type(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %a = tensorop.reshape %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return %a : tensor<?x64xf32>
}

// Negative: a single reshape to another type stays.
// CHECK-LABEL: func.func @reshape_kept
// CHECK-NEXT:    %a = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<512xf32>
// CHECK-NEXT:    func.return %a
func.func @reshape_kept(%x: tensor<8x64xf32>) -> tensor<512xf32> {
  %a = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<512xf32>
  func.return %a : tensor<512xf32>
}

// Negative: a reshape whose input has another user still folds the chain,
// but the inner reshape stays for that user.
// CHECK-LABEL: func.func @reshape_shared
// CHECK-NEXT:    %a = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<512xf32>
// CHECK-NEXT:    %b = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<64x8xf32>
// CHECK-NEXT:    func.return %a, %b
func.func @reshape_shared(%x: tensor<8x64xf32>) -> (tensor<512xf32>, tensor<64x8xf32>) {
  %a = tensorop.reshape %x : (tensor<8x64xf32>) -> tensor<512xf32>
  %b = tensorop.reshape %a : (tensor<512xf32>) -> tensor<64x8xf32>
  func.return %a, %b : tensor<512xf32>, tensor<64x8xf32>
}

// CHECK-LABEL: func.func @transpose_twice
// CHECK-NEXT:    func.return %x
func.func @transpose_twice(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %a = tensorop.transpose %x : (tensor<?x64xf32>) -> tensor<64x?xf32>
  %b = tensorop.transpose %a : (tensor<64x?xf32>) -> tensor<?x64xf32>
  func.return %b : tensor<?x64xf32>
}

// Negative: one transpose stays; three transposes leave one.
// CHECK-LABEL: func.func @transpose_kept
// CHECK-NEXT:    %c = tensorop.transpose %x : (tensor<8x64xf32>) -> tensor<64x8xf32>
// CHECK-NEXT:    func.return %c
func.func @transpose_kept(%x: tensor<8x64xf32>) -> tensor<64x8xf32> {
  %a = tensorop.transpose %x : (tensor<8x64xf32>) -> tensor<64x8xf32>
  %b = tensorop.transpose %a : (tensor<64x8xf32>) -> tensor<8x64xf32>
  %c = tensorop.transpose %b : (tensor<8x64xf32>) -> tensor<64x8xf32>
  func.return %c : tensor<64x8xf32>
}

// CHECK-LABEL: func.func @scale_one
// CHECK-NEXT:    %b = tensorop.scale %x {factor = 2.000000e+00 : f32}
// CHECK-NEXT:    func.return %x, %b
func.func @scale_one(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %a = tensorop.scale %x {factor = 1.0 : f32} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // Negative: a factor other than 1 stays.
  %b = tensorop.scale %x {factor = 2.0 : f32} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return %a, %b : tensor<?x64xf32>, tensor<?x64xf32>
}

// CHECK-LABEL: func.func @add_zeros
// CHECK-NEXT:    %c = tensorop.constant dense<1.000000e+00> : tensor<8x64xf32>
// CHECK-NEXT:    %d = tensorop.add %x, %c
// CHECK-NEXT:    func.return %x, %x, %x, %d
func.func @add_zeros(%x: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) {
  %z = tensorop.zeros : tensor<8x64xf32>
  %a = tensorop.add %x, %z : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %b = tensorop.add %z, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %zc = tensorop.constant dense<0.0> : tensor<8x64xf32>
  %e = tensorop.add %x, %zc : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  // Negative: a non-zero constant stays.
  %c = tensorop.constant dense<1.0> : tensor<8x64xf32>
  %d = tensorop.add %x, %c : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return %a, %b, %e, %d : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
}

// Dynamic token dim: zeros_like keeps the dynamic shape and still folds.
// CHECK-LABEL: func.func @add_zeros_like
// CHECK-NEXT:    func.return %x
func.func @add_zeros_like(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %z = tensorop.zeros_like %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %a = tensorop.add %x, %z : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return %a : tensor<?x64xf32>
}

// Negative: the operand's type differs from the result's (static zeros, dynamic x):
// replacing would change the result type, so the add stays.
// CHECK-LABEL: func.func @add_zeros_type_mismatch
// CHECK-NEXT:    %z = tensorop.zeros : tensor<8x64xf32>
// CHECK-NEXT:    %a = tensorop.add %x, %z : (tensor<?x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
func.func @add_zeros_type_mismatch(%x: tensor<?x64xf32>) -> tensor<8x64xf32> {
  %z = tensorop.zeros : tensor<8x64xf32>
  %a = tensorop.add %x, %z : (tensor<?x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return %a : tensor<8x64xf32>
}

// Gradient accumulation into a fresh zero accumulator is the gradient itself.
// CHECK-LABEL: func.func @accumulate_zeros
// CHECK-NEXT:    %b = tensorop.accumulate %g, %g
// CHECK-NEXT:    func.return %g, %b
func.func @accumulate_zeros(%g: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %z = tensorop.zeros : tensor<8x64xf32>
  %a = tensorop.accumulate %z, %g : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %b = tensorop.accumulate %g, %g : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return %a, %b : tensor<8x64xf32>, tensor<8x64xf32>
}

// CHECK-LABEL: func.func @mul_one
// CHECK-NEXT:    %z = tensorop.zeros : tensor<8x64xf32>
// CHECK-NEXT:    %b = tensorop.mul %x, %z
// CHECK-NEXT:    func.return %x, %b
func.func @mul_one(%x: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %one = tensorop.constant dense<1.0> : tensor<8x64xf32>
  %a = tensorop.mul %one, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  // Negative: x * 0 is not folded (x may hold inf or nan).
  %z = tensorop.zeros : tensor<8x64xf32>
  %b = tensorop.mul %x, %z : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return %a, %b : tensor<8x64xf32>, tensor<8x64xf32>
}

// CHECK-LABEL: func.func @shape_of_zeros
// CHECK-NEXT:    %a = tensorop.zeros : tensor<512xf32>
// CHECK-NEXT:    %b = tensorop.zeros : tensor<64x8xf32>
// CHECK-NEXT:    %c = tensorop.zeros : tensor<8x64xf32>
// CHECK-NEXT:    func.return %a, %b, %c
func.func @shape_of_zeros(%x: tensor<8x64xf32>) -> (tensor<512xf32>, tensor<64x8xf32>, tensor<8x64xf32>) {
  %z = tensorop.zeros : tensor<8x64xf32>
  %a = tensorop.reshape %z : (tensor<8x64xf32>) -> tensor<512xf32>
  %b = tensorop.transpose %z : (tensor<8x64xf32>) -> tensor<64x8xf32>
  %c = tensorop.zeros_like %x : (tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return %a, %b, %c : tensor<512xf32>, tensor<64x8xf32>, tensor<8x64xf32>
}

// Dead pure ops are removed; live ones and their inputs stay.
// CHECK-LABEL: func.func @dead_code
// CHECK-NEXT:    %w = tensorop.weight "output.weight" : tensor<256x64xf32>
// CHECK-NEXT:    %l = tensorop.matmul %x, %w {transpose_b}
// CHECK-NEXT:    func.return %l
func.func @dead_code(%x: tensor<?x64xf32>, %n: tensor<64xf32>) -> tensor<?x256xf32> {
  %unused_w = tensorop.weight "blk.0.ffn_up.weight" : tensor<128x64xf32>
  %h = tensorop.rmsnorm %x, %n {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %s = tensorop.silu %h : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %w = tensorop.weight "output.weight" : tensor<256x64xf32>
  %l = tensorop.matmul %x, %w {transpose_b} : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
  func.return %l : tensor<?x256xf32>
}

// CHECK-LABEL: func.func @shape_of_splat
// CHECK-NEXT:    %a = tensorop.constant dense<2.000000e+00> : tensor<512xf32>
// CHECK-NEXT:    %b = tensorop.constant dense<2.000000e+00> : tensor<64x8xf32>
// CHECK-NEXT:    %d = tensorop.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %e = tensorop.reshape %d : (tensor<2xf32>) -> tensor<1x2xf32>
// CHECK-NEXT:    %f = tensorop.reshape %c : (tensor<?x64xf32>) -> tensor<?x8x8xf32>
// CHECK-NEXT:    func.return %a, %b, %e, %f
func.func @shape_of_splat(%c: tensor<?x64xf32>) -> (tensor<512xf32>, tensor<64x8xf32>, tensor<1x2xf32>, tensor<?x8x8xf32>) {
  %s = tensorop.constant dense<2.0> : tensor<8x64xf32>
  %a = tensorop.reshape %s : (tensor<8x64xf32>) -> tensor<512xf32>
  %b = tensorop.transpose %s : (tensor<8x64xf32>) -> tensor<64x8xf32>
  // Negative: a constant that is not a splat keeps its reshape.
  %d = tensorop.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %e = tensorop.reshape %d : (tensor<2xf32>) -> tensor<1x2xf32>
  // Negative: a dynamic input is not a constant.
  %f = tensorop.reshape %c : (tensor<?x64xf32>) -> tensor<?x8x8xf32>
  func.return %a, %b, %e, %f : tensor<512xf32>, tensor<64x8xf32>, tensor<1x2xf32>, tensor<?x8x8xf32>
}

// CHECK-LABEL: func.func @last_rows_all
// CHECK-NEXT:    %b = tensorop.last_rows %x : (tensor<4x64xf32>) -> tensor<1x64xf32>
// CHECK-NEXT:    %c = tensorop.last_rows %y {count = 4 : i64} : (tensor<?x64xf32>) -> tensor<4x64xf32>
// CHECK-NEXT:    func.return %x, %b, %c
func.func @last_rows_all(%x: tensor<4x64xf32>, %y: tensor<?x64xf32>) -> (tensor<4x64xf32>, tensor<1x64xf32>, tensor<4x64xf32>) {
  %a = tensorop.last_rows %x {count = 4 : i64} : (tensor<4x64xf32>) -> tensor<4x64xf32>
  // Negative: fewer rows than x has, or x's row count unknown.
  %b = tensorop.last_rows %x : (tensor<4x64xf32>) -> tensor<1x64xf32>
  %c = tensorop.last_rows %y {count = 4 : i64} : (tensor<?x64xf32>) -> tensor<4x64xf32>
  func.return %a, %b, %c : tensor<4x64xf32>, tensor<1x64xf32>, tensor<4x64xf32>
}

// Unit properties are dropped: embedding scale 1.0, rotary_dim equal to head_dim.
// CHECK-LABEL: func.func @unit_properties
// CHECK-NEXT:    %e = tensorop.embedding %t, %tok : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
// CHECK-NEXT:    %e2 = tensorop.embedding %t, %tok {scale = 8.000000e+00 : f32}
// CHECK-NEXT:    %g = tensorop.embedding_grad %e, %tok {vocab = 256 : i64} :
// CHECK-NEXT:    %r = tensorop.rope %e, %p {heads = 2 : i64, head_dim = 32 : i64} :
// CHECK-NEXT:    %r2 = tensorop.rope %e, %p {heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} :
// CHECK-NEXT:    %rg = tensorop.rope_grad %e, %p {heads = 2 : i64, head_dim = 32 : i64} :
func.func @unit_properties(%t: tensor<256x64xf32>, %tok: tensor<?xi32>, %p: index) -> (tensor<?x64xf32>, tensor<256x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  %e = tensorop.embedding %t, %tok {scale = 1.0 : f32} : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %e2 = tensorop.embedding %t, %tok {scale = 8.0 : f32} : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %g = tensorop.embedding_grad %e, %tok {vocab = 256 : i64, scale = 1.0 : f32} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<256x64xf32>
  %r = tensorop.rope %e, %p {heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 32 : i64} : (tensor<?x64xf32>, index) -> tensor<?x64xf32>
  %r2 = tensorop.rope %e, %p {heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x64xf32>, index) -> tensor<?x64xf32>
  %rg = tensorop.rope_grad %e, %p {heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 32 : i64} : (tensor<?x64xf32>, index) -> tensor<?x64xf32>
  func.return %e2, %g, %r, %r2, %rg : tensor<?x64xf32>, tensor<256x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}
