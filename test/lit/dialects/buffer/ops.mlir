// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | ckc-opt | filecheck %s

// A planned two-layer prefill: weights in their own (mmapped) arena, KV cache
// and activations in the main arena with a canary between them; per-layer
// weights and KV cache are layered buffers addressed inside the layer loop.
builtin.module {
  buffer.arena @weights size 8192 align 64 regions {weights at 0 size 8192}
  buffer.arena @arena size 12352 align 64 regions {kv_cache at 0 size 4096, activations at 4160 size 8192} canaries [4096, 4104]
  buffer.buffer @"token_embd.weight" : tensor<32x16xf32> in weights size 2048 align 64 offset 0
  buffer.buffer @"blk.attn_norm.weight" : tensor<16xf32> in weights size 64 align 64 offset 2048 layers 2 stride 1088
  buffer.buffer @"blk.attn_q.weight" : tensor<16x16xf32> in weights size 1024 align 64 offset 2112 layers 2 stride 1088
  buffer.buffer @"output_norm.weight" : tensor<16xf32> in weights size 64 align 64 offset 4288
  buffer.buffer @cache_k : tensor<32x16xf32> in kv_cache size 2048 align 64 offset 0 layers 2 stride 2048
  // Prepacked for gemm_packed (pack-weights): 40 rows padded to 64, 64*16*4 bytes.
  buffer.buffer @"ffn_up.weight" : tensor<40x16xf32> in weights size 4096 align 64 layout p32
  func.func @prefill(%n: index, %pos: index) {
    buffer.buffer @tokens : tensor<?xi32> in activations size 128 align 64 offset 4160 live 0 to 0
    buffer.buffer @x : tensor<?x16xf32> in activations size 2048 align 64 offset 4288 live 0 to 5
    buffer.buffer @h : tensor<?x16xf32> in activations size 2048 align 64 offset 6336 live 1 to 4
    buffer.buffer @q : tensor<?x16xf32> in activations size 2048 align 64 offset 8384 live 1 to 4
    buffer.buffer @logits : tensor<?x32xf32> in activations size 4096 align 64 offset 8256 live 5 to 5
    buffer.call embedding ins(@tokens, @"token_embd.weight") outs(@x) params(rows = %n : index, dim = 16 : i64)
    buffer.loop %l = 0 to 2 {
      buffer.call rmsnorm<avx512> ins(@x, @"blk.attn_norm.weight"[%l]) outs(@h) params(rows = %n : index, cols = 16 : i64, eps = 1.0e-05 : f32)
      buffer.call matmul<avx2> ins(@h, @"blk.attn_q.weight"[%l]) outs(@q) params(m = %n : index, n = 16 : i64, k = 16 : i64, transpose_b = true)
      buffer.call kv_append<scalar> ins(@q) outs(@cache_k[%l]) params(rows = %n : index, pos = %pos : index, layout = "tokens_major")
      buffer.call add<neon> ins(@x, @q) outs(@x) params(rows = %n : index, cols = 16 : i64)
    }
    buffer.call lm_head ins(@x, @"token_embd.weight") outs(@logits) params(rows = %n : index, vocab = 32 : i64)
    func.return
  }
  // Before plan-memory and select-simd: no arena, offsets, lifetimes or variants.
  func.func @decode(%pos: i32) {
    buffer.buffer @y : tensor<1x16xf32> in scratch size 64 align 64
    buffer.call scale ins(@y) outs(@y) params(n = 16 : i64, alpha = 5.000000e-01 : f32, pos = %pos : i32)
    func.return
  }
}

// CHECK:      builtin.module {
// CHECK-NEXT:   buffer.arena @weights size 8192 align 64 regions {weights at 0 size 8192}
// CHECK-NEXT:   buffer.arena @arena size 12352 align 64 regions {kv_cache at 0 size 4096, activations at 4160 size 8192} canaries [4096, 4104]
// CHECK-NEXT:   buffer.buffer @token_embd.weight : tensor<32x16xf32> in weights size 2048 align 64 offset 0
// CHECK-NEXT:   buffer.buffer @blk.attn_norm.weight : tensor<16xf32> in weights size 64 align 64 offset 2048 layers 2 stride 1088
// CHECK-NEXT:   buffer.buffer @blk.attn_q.weight : tensor<16x16xf32> in weights size 1024 align 64 offset 2112 layers 2 stride 1088
// CHECK-NEXT:   buffer.buffer @output_norm.weight : tensor<16xf32> in weights size 64 align 64 offset 4288
// CHECK-NEXT:   buffer.buffer @cache_k : tensor<32x16xf32> in kv_cache size 2048 align 64 offset 0 layers 2 stride 2048
// CHECK-NEXT:   buffer.buffer @ffn_up.weight : tensor<40x16xf32> in weights size 4096 align 64 layout p32
// CHECK-NEXT:   func.func @prefill(%n: index, %pos: index) {
// CHECK-NEXT:     buffer.buffer @tokens : tensor<?xi32> in activations size 128 align 64 offset 4160 live 0 to 0
// CHECK-NEXT:     buffer.buffer @x : tensor<?x16xf32> in activations size 2048 align 64 offset 4288 live 0 to 5
// CHECK-NEXT:     buffer.buffer @h : tensor<?x16xf32> in activations size 2048 align 64 offset 6336 live 1 to 4
// CHECK-NEXT:     buffer.buffer @q : tensor<?x16xf32> in activations size 2048 align 64 offset 8384 live 1 to 4
// CHECK-NEXT:     buffer.buffer @logits : tensor<?x32xf32> in activations size 4096 align 64 offset 8256 live 5 to 5
// CHECK-NEXT:     buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x) params(rows = %n : index, dim = 16 : i64)
// CHECK-NEXT:     buffer.loop %l = 0 to 2 {
// CHECK-NEXT:       buffer.call rmsnorm<avx512> ins(@x, @blk.attn_norm.weight[%l]) outs(@h) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32)
// CHECK-NEXT:       buffer.call matmul<avx2> ins(@h, @blk.attn_q.weight[%l]) outs(@q) params(m = %n : index, n = 16 : i64, k = 16 : i64, transpose_b = true)
// CHECK-NEXT:       buffer.call kv_append<scalar> ins(@q) outs(@cache_k[%l]) params(rows = %n : index, pos = %pos : index, layout = "tokens_major")
// CHECK-NEXT:       buffer.call add<neon> ins(@x, @q) outs(@x) params(rows = %n : index, cols = 16 : i64)
// CHECK-NEXT:     }
// CHECK-NEXT:     buffer.call lm_head ins(@x, @token_embd.weight) outs(@logits) params(rows = %n : index, vocab = 32 : i64)
// CHECK-NEXT:     func.return
// CHECK-NEXT:   }
// CHECK-NEXT:   func.func @decode(%pos: i32) {
// CHECK-NEXT:     buffer.buffer @y : tensor<1x16xf32> in scratch size 64 align 64
// CHECK-NEXT:     buffer.call scale ins(@y) outs(@y) params(pos = %pos : i32, n = 16 : i64, alpha = 5.000000e-01 : f32)
// CHECK-NEXT:     func.return
// CHECK-NEXT:   }
// CHECK-NEXT: }
