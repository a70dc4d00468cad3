// pack-quant: a Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 weight whose only readers are
// quantized GEMMs of its format (ins #1 of buffer.call qgemm_<fmt>, from row 0)
// is stored repacked (layout r8: groups of 8 rows interleaved, N padded to a
// multiple of 8) and its calls become qgemm_packed_<fmt>. A tied embedding (also
// read by qembedding), a slice read at a row offset, K-quants and f16 (no repack
// kernel) and weights already laid out keep the GGUF layout. Runs before plan-memory.

// RUN: ckc-opt %s -p pack-quant | filecheck %s
// RUN: ckc-opt %s -p pack-quant,pack-quant | filecheck %s
// RUN: ckc-opt %s -p pack-quant,plan-memory | filecheck %s --check-prefix=PLAN
// RUN: not ckc-opt %s -p plan-memory,pack-quant 2>&1 | filecheck %s --check-prefix=PLANNED

// token_embd: tied (qembedding + the LM head's qgemm): as stored, 40 rows x 34 bytes.
// CHECK:      buffer.buffer @token_embd.weight : tensor<40x32x!quant.q8_0> in weights size 1360 align 64{{$}}
// q: 16 rows of 2 Q4_1 blocks (40 bytes) -> two groups of 8: 640 bytes, as unpacked.
// CHECK-NEXT: buffer.buffer @blk.0.attn_q.weight : tensor<16x64x!quant.q4_1> in weights size 640 align 64 layout r8
// up: N = 20 -> 24 rows x 2 Q4_0 blocks (36 bytes) = 864 bytes (720 unpacked).
// CHECK-NEXT: buffer.buffer @blk.0.ffn_up.weight : tensor<20x64x!quant.q4_0> in weights size 864 align 64 layout r8
// CHECK-NEXT: buffer.buffer @blk.0.ffn_down.weight : tensor<16x256x!quant.q4_k> in weights size 2304 align 64{{$}}
// CHECK-NEXT: buffer.buffer @blk.0.attn_output.weight : tensor<16x64xf16> in weights size 2048 align 64{{$}}
// CHECK-NEXT: buffer.buffer @blk.0.attn_qkv.weight : tensor<48x64x!quant.q8_0> in weights size 3264 align 64{{$}}
// CHECK-LABEL: func.func @prefill
// CHECK:      buffer.call qembedding_q8_0 ins(@tokens, @token_embd.weight)
// CHECK-NEXT: buffer.call qgemm_packed_q4_1 ins(@x, @blk.0.attn_q.weight) outs(@q)
// CHECK-NEXT: buffer.call qgemm_packed_q4_0 ins(@x, @blk.0.ffn_up.weight) outs(@up)
// CHECK-NEXT: buffer.call qgemm_q4_k ins(@h, @blk.0.ffn_down.weight)
// CHECK-NEXT: buffer.call qgemm_f16 ins(@x, @blk.0.attn_output.weight)
// CHECK-NEXT: buffer.call qgemm_q8_0 ins(@x, @blk.0.attn_qkv.weight) outs(@q) params(rows = %n : index, in1_row = 16 : i64
// CHECK-NEXT: buffer.call qgemm_q8_0 ins(@x32, @token_embd.weight) outs(@logits)

// PLAN: buffer.arena @weights size 10560 align 64
// PLAN: buffer.buffer @blk.0.ffn_up.weight : tensor<20x64x!quant.q4_0> in weights size 864 align 64 offset {{[0-9]+}} layout r8

// PLANNED: pack-quant: @token_embd.weight is already planned; run pack-quant before plan-memory

builtin.module {
  buffer.buffer @token_embd.weight : tensor<40x32x!quant.q8_0> in weights size 1360 align 64
  buffer.buffer @blk.0.attn_q.weight : tensor<16x64x!quant.q4_1> in weights size 640 align 64
  buffer.buffer @blk.0.ffn_up.weight : tensor<20x64x!quant.q4_0> in weights size 720 align 64
  buffer.buffer @blk.0.ffn_down.weight : tensor<16x256x!quant.q4_k> in weights size 2304 align 64
  buffer.buffer @blk.0.attn_output.weight : tensor<16x64xf16> in weights size 2048 align 64
  buffer.buffer @blk.0.attn_qkv.weight : tensor<48x64x!quant.q8_0> in weights size 3264 align 64
  buffer.buffer @tokens : tensor<?xi32> in io size 32 align 64
  buffer.buffer @logits : tensor<?x40xf32> in io size 1280 align 64
  func.func @prefill(%n: index, %pos: index) {
    buffer.buffer @x : tensor<?x64xf32> in activations size 2048 align 64
    buffer.buffer @x32 : tensor<?x32xf32> in activations size 1024 align 64
    buffer.buffer @h : tensor<?x256xf32> in activations size 8192 align 64
    buffer.buffer @q : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @up : tensor<?x20xf32> in activations size 640 align 64
    buffer.call qembedding_q8_0 ins(@tokens, @token_embd.weight) outs(@x32) params(rows = %n : index, vocab = 40 : i64, cols = 32 : i64, scale = 1.0 : f32)
    buffer.call qgemm_q4_1 ins(@x, @blk.0.attn_q.weight) outs(@q) params(rows = %n : index, n = 16 : i64, k = 64 : i64)
    buffer.call qgemm_q4_0 ins(@x, @blk.0.ffn_up.weight) outs(@up) params(rows = %n : index, n = 20 : i64, k = 64 : i64)
    buffer.call qgemm_q4_k ins(@h, @blk.0.ffn_down.weight) outs(@q) params(rows = %n : index, n = 16 : i64, k = 256 : i64)
    buffer.call qgemm_f16 ins(@x, @blk.0.attn_output.weight) outs(@q) params(rows = %n : index, n = 16 : i64, k = 64 : i64)
    buffer.call qgemm_q8_0 ins(@x, @blk.0.attn_qkv.weight) outs(@q) params(rows = %n : index, in1_row = 16 : i64, n = 16 : i64, k = 64 : i64)
    buffer.call qgemm_q8_0 ins(@x32, @token_embd.weight) outs(@logits) params(rows = %n : index, n = 40 : i64, k = 32 : i64)
    func.return
  }
}
