// buffer.layers: a per-layer table of buffers (roll-layers makes them); @T[%l]
// in a call of a buffer.loop is member %l (layers-invalid.mlir: what the verifiers reject).

// RUN: ckc-opt %s --split-input-file | filecheck %s
// RUN: ckc-opt %s --split-input-file | ckc-opt --split-input-file | filecheck %s

buffer.buffer @blk.0.w : tensor<16xf32> in weights size 64 align 64
buffer.buffer @blk.1.w : tensor<16xf32> in weights size 64 align 64
func.func @f(%n: index) {
  buffer.buffer @x : tensor<?x16xf32> in activations size 1024 align 64
  buffer.buffer @l0_h : tensor<?x16xf32> in activations size 1024 align 64
  buffer.buffer @l1_h : tensor<?x16xf32> in activations size 1024 align 64
  buffer.layers @w = [@blk.0.w, @blk.1.w]
  buffer.layers @h = [@l0_h, @l1_h]
  buffer.loop %l = 0 to 2 {
    buffer.call rmsnorm ins(@x, @w[%l]) outs(@h[%l]) params(rows = %n : index, cols = 16 : i64)
  }
  func.return
}
// CHECK:      buffer.layers @w = [@blk.0.w, @blk.1.w]
// CHECK-NEXT: buffer.layers @h = [@l0_h, @l1_h]
// CHECK-NEXT: buffer.loop %l = 0 to 2 {
// CHECK-NEXT:   buffer.call rmsnorm ins(@x, @w[%l]) outs(@h[%l]) params(rows = %n : index, cols = 16 : i64)
