// RUN: ckc-opt %s --split-input-file --verify-diagnostics | filecheck %s
// buffer.layers and its uses: what the verifiers reject.
buffer.buffer @a : tensor<16xf32> in weights size 64 align 64
func.func @f() {
  buffer.layers @t = [@a, @nope]
  func.return
}
// CHECK: buffer.layers @t: unknown buffer @nope

// -----
buffer.buffer @a : tensor<16xf32> in weights size 64 align 64
buffer.buffer @b : tensor<8xf32> in weights size 64 align 64
func.func @f() {
  buffer.layers @t = [@a, @b]
  func.return
}
// CHECK: buffer.layers @t: member @b differs from @a in type, region or layout

// -----
buffer.buffer @a : tensor<16xf32> in weights size 64 align 64
func.func @f() {
  buffer.layers @a = [@a]
  func.return
}
// CHECK: buffer.layers @a has the name of a buffer

// -----
buffer.buffer @a : tensor<16xf32> in weights size 64 align 64
func.func @f() {
  buffer.layers @t = [@a]
  buffer.layers @t = [@a]
  func.return
}
// CHECK: buffer.layers @t is declared twice

// -----
buffer.buffer @a : tensor<16xf32> in weights size 64 align 64
buffer.buffer @b : tensor<16xf32> in weights size 64 align 64
func.func @f(%n: index) {
  buffer.buffer @x : tensor<?x16xf32> in activations size 1024 align 64
  buffer.layers @t = [@a, @b]
  buffer.loop %l = 0 to 3 {
    buffer.call rmsnorm ins(@x, @t[%l]) outs(@x) params(rows = %n : index, cols = 16 : i64)
  }
  func.return
}
// CHECK: rmsnorm: layer index runs to 2 but @t has 2 members

// -----
buffer.buffer @a : tensor<16xf32> in weights size 64 align 64
func.func @f(%n: index) {
  buffer.buffer @x : tensor<?x16xf32> in activations size 1024 align 64
  buffer.layers @t = [@a]
  buffer.call rmsnorm ins(@x, @t) outs(@x) params(rows = %n : index, cols = 16 : i64)
  func.return
}
// CHECK: rmsnorm: unknown buffer @t
