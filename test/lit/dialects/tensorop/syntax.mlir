// RUN: ckc-opt %s --split-input-file --parsing-diagnostics | filecheck %s

// Syntax errors in tensorop's custom format: each case reports where and why.


func.func @f(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  %y = tensorop.matmul %x, %w, pos %w {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  func.return
}
// CHECK: expected one of the optional operands bias

// -----

func.func @f(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %p: index) {
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %p, bv %nw, bk %nw {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: optional operand 'bk' repeated or out of order

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.add %x, %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: expected 1 operand types but had 2

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.add %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
// CHECK: 'tensorop.add' has 1 results, got 2 result types

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.add %x, %x : (tensor<?x32xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return
}
// CHECK: operand is used with type tensor<?x32xf32>, but has been previously used or defined with type tensor<?x64xf32>

// -----

%c = tensorop.constant 1.0 : f32
// CHECK: expected a dense elements attribute

// -----

func.func @f(%x: tensor<?x64xf32>) {
  %y = tensorop.silu %x : tensor<?x64xf32>
  func.return
}
// CHECK: function type expected
