// pack-weights: a weight whose only readers are Linear layers (ins #1 of
// buffer.call gemm) is stored prepacked (layout p32, 32-row panels, N padded to a
// multiple of 32) and its calls become gemm_packed. A tied embedding (also read
// by `embedding`), a weight read by another kernel, and weights already laid out
// keep their layout. Runs before plan-memory.

// RUN: ckc-opt %s -p pack-weights | filecheck %s
// RUN: ckc-opt %s -p pack-weights,pack-weights | filecheck %s
// RUN: ckc-opt %s -p pack-weights,plan-memory | filecheck %s --check-prefix=PLAN
// RUN: not ckc-opt %s -p plan-memory,pack-weights 2>&1 | filecheck %s --check-prefix=PLANNED

// q: N = 16 rows -> one 32-row panel: 32*16*4 = 2048 bytes.
// CHECK:      buffer.buffer @token_embd.weight : tensor<40x16xf32> in weights size 2560 align 64{{$}}
// CHECK-NEXT: buffer.buffer @blk.0.attn_q.weight : tensor<16x16xf32> in weights size 2048 align 64 layout p32
// CHECK-NEXT: buffer.buffer @blk.0.attn_norm.weight : tensor<16xf32> in weights size 64 align 64{{$}}
// up: N = 40 -> two panels: 64*16*4 = 4096 bytes.
// CHECK-NEXT: buffer.buffer @blk.0.ffn_up.weight : tensor<40x16xf32> in weights size 4096 align 64 layout p32
// CHECK-NEXT: buffer.buffer @blk.0.odd.weight : tensor<16x16xf32> in weights size 1024 align 64{{$}}
// CHECK-LABEL: func.func @prefill
// CHECK:      buffer.call embedding ins(@tokens, @token_embd.weight)
// CHECK-NEXT: buffer.call gemm_packed ins(@x, @blk.0.attn_q.weight) outs(@q)
// CHECK-NEXT: buffer.call gemm_packed ins(@x, @blk.0.ffn_up.weight) outs(@up)
// odd.weight is this gemm's x operand (not a Linear weight use): it stays
// row-major; the call reads attn_q as W, so it is a gemm_packed too
// CHECK-NEXT: buffer.call gemm_packed ins(@blk.0.odd.weight, @blk.0.attn_q.weight)
// CHECK-NEXT: buffer.call gemm ins(@x, @token_embd.weight) outs(@logits)

// PLAN: buffer.arena @weights size 9792 align 64
// PLAN: buffer.buffer @blk.0.ffn_up.weight : tensor<40x16xf32> in weights size 4096 align 64 offset {{[0-9]+}} layout p32

// PLANNED: pack-weights: @token_embd.weight is already planned; run pack-weights before plan-memory

builtin.module {
  buffer.buffer @token_embd.weight : tensor<40x16xf32> in weights size 2560 align 64
  buffer.buffer @blk.0.attn_q.weight : tensor<16x16xf32> in weights size 1024 align 64
  buffer.buffer @blk.0.attn_norm.weight : tensor<16xf32> in weights size 64 align 64
  buffer.buffer @blk.0.ffn_up.weight : tensor<40x16xf32> in weights size 2560 align 64
  buffer.buffer @blk.0.odd.weight : tensor<16x16xf32> in weights size 1024 align 64
  buffer.buffer @tokens : tensor<?xi32> in io size 32 align 64
  buffer.buffer @logits : tensor<?x40xf32> in io size 1280 align 64
  func.func @prefill(%n: index, %pos: index) {
    buffer.buffer @x : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @q : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @up : tensor<?x40xf32> in activations size 1280 align 64
    buffer.buffer @sq : tensor<16x16xf32> in activations size 1024 align 64
    buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x) params(rows = %n : index, dim = 16 : i64)
    buffer.call gemm ins(@x, @blk.0.attn_q.weight) outs(@q) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
    buffer.call gemm ins(@x, @blk.0.ffn_up.weight) outs(@up) params(rows = %n : index, n = 40 : i64, k = 16 : i64)
    buffer.call gemm ins(@blk.0.odd.weight, @blk.0.attn_q.weight) outs(@sq) params(rows = 16 : i64, n = 16 : i64, k = 16 : i64)
    buffer.call gemm ins(@x, @token_embd.weight) outs(@logits) params(rows = %n : index, n = 40 : i64, k = 16 : i64)
    func.return
  }
}
