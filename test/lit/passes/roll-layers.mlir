// roll-layers: repeated per-layer calls (after plan-memory and select-simd)
// become one buffer.loop, with a buffer.layers table for each operand that
// names another buffer in each layer. Layer 2 differs (another eps, as
// Gemma 3's global layer differs from its sliding ones) and stays unrolled;
// @down runs its layers downwards (a backward pass): the loop says which layer
// iteration l is. lower-to-c makes each table a static array of offsets.

// RUN: ckc-opt %s -p roll-layers | filecheck %s
// RUN: ckc-opt %s -p roll-layers | ckc-opt | filecheck %s
// RUN: ckc-opt %s -p 'roll-layers{enabled=false}' | filecheck %s --check-prefix=OFF
// RUN: ckc-opt %s -p 'lower-to-c{roll=true readable=true}' -t c | filecheck %s --check-prefix=C
// RUN: ckc-opt %s -p 'lower-to-c{roll=true}' -t c | filecheck %s --check-prefix=RAW

// CHECK-LABEL: func.func @prefill
// CHECK:      buffer.call embedding<avx2> ins(@tokens, @token_embd.weight) outs(@x_emb)
// CHECK-NEXT: buffer.layers @out_in = [@x_emb, @l0_out]
// CHECK-NEXT: buffer.layers @attn_norm.weight = [@blk.0.attn_norm.weight, @blk.1.attn_norm.weight]
// CHECK-NEXT: buffer.layers @h = [@l0_h, @l1_h]
// CHECK-NEXT: buffer.layers @out = [@l0_out, @l1_out]
// CHECK-NEXT: buffer.loop %l = 0 to 2 {
// CHECK-NEXT:   buffer.call rmsnorm<avx2> ins(@out_in[%l], @attn_norm.weight[%l]) outs(@h[%l]) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT:   buffer.call add<avx2> ins(@out_in[%l], @h[%l]) outs(@out[%l]) params(rows = %n : index, cols = 16 : i64)
// CHECK-NEXT: }
// CHECK-NEXT: buffer.call rmsnorm<avx2> ins(@l1_out, @blk.2.attn_norm.weight) outs(@l2_h) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-06 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT: buffer.call add<avx2> ins(@l1_out, @l2_h) outs(@l2_out)
// CHECK-LABEL: func.func @down
// CHECK:      buffer.layers @d_h = [@d_l1_h, @d_l0_h]
// CHECK-NEXT: buffer.layers @attn_norm.weight = [@blk.1.attn_norm.weight, @blk.0.attn_norm.weight]
// CHECK-NEXT: buffer.loop %l = 0 to 2 attributes {ckc.first_layer = 1 : i64, ckc.layer_step = -1 : i64} {
// CHECK-NEXT:   buffer.call scale<avx2> ins(@d_h[%l]) outs(@d_h[%l]) params(rows = %n : index, cols = 16 : i64, factor = 5.000000e-01 : f32)
// CHECK-NEXT:   buffer.call add<avx2> ins(@d_x, @attn_norm.weight[%l]) outs(@d_x) params(rows = 1 : i64, cols = 16 : i64)
// CHECK-NEXT: }

// OFF-NOT: buffer.loop
// OFF-NOT: buffer.layers

// C: static const size_t out_in_off[2] = {4096, 6144};
// C: static const size_t attn_norm_weight_off[2] = {2048, 2112};
// C: static const size_t h_off[2] = {8192, 4096};
// C: static const size_t out_off[2] = {6144, 8192};
// C: static const size_t d_h_off[2] = {8192, 4096};
// C: static const size_t down_attn_norm_weight_off[2] = {2112, 2048};
// C-LABEL: int ckc_gen_prefill(
// C-NEXT:   const float *token_embd_weight = (const float *)weights;
// C-NEXT:   float *x_emb = (float *)(arena + 4096);
// C:        /* embedding tokens[?], token_embd.weight[32,16] -> x_emb[?,16] */
// C:        /* layers 0..1 */
// C-NEXT:   for (int l = 0; l < 2; ++l) {
// C-NEXT:     float *out_in = (float *)(arena + out_in_off[l]);
// C-NEXT:     const float *attn_norm_weight = (const float *)(weights + attn_norm_weight_off[l]);
// C-NEXT:     float *h = (float *)(arena + h_off[l]);
// C-NEXT:     float *out = (float *)(arena + out_off[l]);
// C-NEXT:     /* layer l: rmsnorm out_in[l][?,16], attn_norm.weight[l][16] -> h[l][?,16] */
// C-NEXT:     ck_rmsnorm_f32_avx2(out_in, attn_norm_weight, h, 0, n, 16, 1.0e-05f, 0.0f, pool, nth);
// C-NEXT:     /* layer l: add out_in[l][?,16], h[l][?,16] -> out[l][?,16] */
// C-NEXT:     ck_add_f32_avx2(out_in, h, out, (((int64_t)n) * 16), pool, nth);
// C-NEXT:   }
// C-NEXT:   /* layer 2: rmsnorm l1_out[?,16], blk.2.attn_norm.weight[16] -> l2_h[?,16] */
// C-NEXT:   ck_rmsnorm_f32_avx2(l1_out, blk_2_attn_norm_weight, l2_h, 0, n, 16, 1.0e-06f, 0.0f, pool, nth);
// C-LABEL: int ckc_gen_down(
// C:        /* layers 1..0 */
// C-NEXT:   for (int l = 0; l < 2; ++l) {
// C-NEXT:     float *d_h = (float *)(arena + d_h_off[l]);
// C-NEXT:     const float *attn_norm_weight = (const float *)(weights + down_attn_norm_weight_off[l]);
// C-NEXT:     /* layer 1 - l: scale d_h[l][?,16] -> d_h[l][?,16] */

// Without readable, the same tables, addressed in each call:
// RAW: ck_rmsnorm_f32_avx2((const float *)(arena + out_in_off[l]), (const float *)(weights + attn_norm_weight_off[l]), (float *)(arena + h_off[l]), 0, n, 16, 1.0e-05f, 0.0f, pool, nth);

builtin.module {
  buffer.arena @weights size 2240 align 64 regions {weights at 0 size 2240}
  buffer.arena @arena size 10240 align 64 regions {activations at 4096 size 6144}
  buffer.buffer @token_embd.weight : tensor<32x16xf32> in weights size 2048 align 64 offset 0
  buffer.buffer @blk.0.attn_norm.weight : tensor<16xf32> in weights size 64 align 64 offset 2048
  buffer.buffer @blk.1.attn_norm.weight : tensor<16xf32> in weights size 64 align 64 offset 2112
  buffer.buffer @blk.2.attn_norm.weight : tensor<16xf32> in weights size 64 align 64 offset 2176
  buffer.buffer @tokens : tensor<?xi32> in io size 128 align 64
  func.func @prefill(%n: index) {
    buffer.buffer @x_emb : tensor<?x16xf32> in activations size 2048 align 64 offset 4096 live 0 to 2
    buffer.buffer @l0_h : tensor<?x16xf32> in activations size 2048 align 64 offset 8192 live 1 to 2
    buffer.buffer @l0_out : tensor<?x16xf32> in activations size 2048 align 64 offset 6144 live 2 to 4
    buffer.buffer @l1_h : tensor<?x16xf32> in activations size 2048 align 64 offset 4096 live 3 to 4
    buffer.buffer @l1_out : tensor<?x16xf32> in activations size 2048 align 64 offset 8192 live 4 to 6
    buffer.buffer @l2_h : tensor<?x16xf32> in activations size 2048 align 64 offset 4096 live 5 to 6
    buffer.buffer @l2_out : tensor<?x16xf32> in activations size 2048 align 64 offset 6144 live 6 to 6
    buffer.call embedding<avx2> ins(@tokens, @token_embd.weight) outs(@x_emb) params(rows = %n : index, vocab = 32 : i64, cols = 16 : i64, scale = 1.0 : f32)
    buffer.call rmsnorm<avx2> ins(@x_emb, @blk.0.attn_norm.weight) outs(@l0_h) params(rows = %n : index, cols = 16 : i64, eps = 1.0e-05 : f32, w_offset = 0.0 : f32)
    buffer.call add<avx2> ins(@x_emb, @l0_h) outs(@l0_out) params(rows = %n : index, cols = 16 : i64)
    buffer.call rmsnorm<avx2> ins(@l0_out, @blk.1.attn_norm.weight) outs(@l1_h) params(rows = %n : index, cols = 16 : i64, eps = 1.0e-05 : f32, w_offset = 0.0 : f32)
    buffer.call add<avx2> ins(@l0_out, @l1_h) outs(@l1_out) params(rows = %n : index, cols = 16 : i64)
    buffer.call rmsnorm<avx2> ins(@l1_out, @blk.2.attn_norm.weight) outs(@l2_h) params(rows = %n : index, cols = 16 : i64, eps = 1.0e-06 : f32, w_offset = 0.0 : f32)
    buffer.call add<avx2> ins(@l1_out, @l2_h) outs(@l2_out) params(rows = %n : index, cols = 16 : i64)
    func.return
  }
  func.func @down(%n: index) {
    buffer.buffer @d_x : tensor<1x16xf32> in activations size 64 align 64 offset 6144 live 0 to 3
    buffer.buffer @d_l1_h : tensor<?x16xf32> in activations size 2048 align 64 offset 8192 live 0 to 1
    buffer.buffer @d_l0_h : tensor<?x16xf32> in activations size 2048 align 64 offset 4096 live 2 to 3
    buffer.call scale<avx2> ins(@d_l1_h) outs(@d_l1_h) params(rows = %n : index, cols = 16 : i64, factor = 0.5 : f32)
    buffer.call add<avx2> ins(@d_x, @blk.1.attn_norm.weight) outs(@d_x) params(rows = 1 : i64, cols = 16 : i64)
    buffer.call scale<avx2> ins(@d_l0_h) outs(@d_l0_h) params(rows = %n : index, cols = 16 : i64, factor = 0.5 : f32)
    buffer.call add<avx2> ins(@d_x, @blk.0.attn_norm.weight) outs(@d_x) params(rows = 1 : i64, cols = 16 : i64)
    func.return
  }
}
