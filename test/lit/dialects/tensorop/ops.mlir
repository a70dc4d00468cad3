// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

// Every tensorop op, in custom syntax; both RUN lines must print it back the same.

// CHECK-LABEL: func.func @values
func.func @values(%x: tensor<?x64xf32>) -> (tensor<128x64xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<2xf32>, tensor<?x64xf32>) {
  // CHECK-NEXT: %w = tensorop.weight "blk.0.attn_q.weight" : tensor<128x64xf32>
  // GENERIC: "tensorop.weight"() <{tensor_name = "blk.0.attn_q.weight"{{.*}}}> : () -> tensor<128x64xf32>
  %w = tensorop.weight "blk.0.attn_q.weight" : tensor<128x64xf32>
  // CHECK-NEXT: %wk = tensorop.weight "blk.0.attn_qkv.weight" offset 64 : tensor<64x64xf32>
  // GENERIC: "tensorop.weight"() <{tensor_name = "blk.0.attn_qkv.weight", offset = 64 : i64}> : () -> tensor<64x64xf32>
  %wk = tensorop.weight "blk.0.attn_qkv.weight" offset 64 : tensor<64x64xf32>
  // CHECK-NEXT: %c = tensorop.constant dense<5.000000e-01> : tensor<4x8xf32>
  // GENERIC: "tensorop.constant"() <{value = dense<5.000000e-01> : tensor<4x8xf32>}> : () -> tensor<4x8xf32>
  %c = tensorop.constant dense<0.5> : tensor<4x8xf32>
  // CHECK-NEXT: %c2 = tensorop.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
  %c2 = tensorop.constant dense<[1.0, 2.0]> : tensor<2xf32>
  // CHECK-NEXT: %z = tensorop.zeros : tensor<4x8xf32>
  // GENERIC: "tensorop.zeros"() : () -> tensor<4x8xf32>
  %z = tensorop.zeros : tensor<4x8xf32>
  // CHECK-NEXT: %zl = tensorop.zeros_like %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %zl = tensorop.zeros_like %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  func.return %w, %c, %z, %c2, %zl : tensor<128x64xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<2xf32>, tensor<?x64xf32>
}

// CHECK-LABEL: func.func @forward
func.func @forward(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<128xf32>, %n: tensor<64xf32>,
                   %tok: tensor<?xi32>, %pos: index, %table: tensor<256x64xf32>) {
  // CHECK-NEXT: %y = tensorop.matmul %x, %w, bias %b {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  // GENERIC: "tensorop.matmul"(%x, %w, %b) <{transpose_b}> : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %y = tensorop.matmul %x, %w, bias %b {transpose_b} : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %y2 = tensorop.matmul %w, %y {transpose_a, transpose_b} : (tensor<128x64xf32>, tensor<?x128xf32>) -> tensor<64x?xf32>
  %y2 = tensorop.matmul %w, %y {transpose_a, transpose_b} : (tensor<128x64xf32>, tensor<?x128xf32>) -> tensor<64x?xf32>
  // CHECK-NEXT: %y4 = tensorop.matmul %x, %x {transpose_a} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<64x64xf32>
  %y4 = tensorop.matmul %x, %x {transpose_a} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<64x64xf32>
  // CHECK-NEXT: %y5 = tensorop.matmul %y, %w : (tensor<?x128xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
  %y5 = tensorop.matmul %y, %w : (tensor<?x128xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %y3 = tensorop.matmul %x, %x {transpose_b} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x?xf32>
  %y3 = tensorop.matmul %x, %x {transpose_b} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x?xf32>
  // CHECK-NEXT: %a = tensorop.add %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %a = tensorop.add %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %m = tensorop.mul %x, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %m = tensorop.mul %x, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %s = tensorop.scale %x {factor = 8.000000e+00 : f32} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // GENERIC: "tensorop.scale"(%x) <{factor = 8.000000e+00 : f32}> : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %s = tensorop.scale %x {factor = 8.0 : f32} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %rn = tensorop.rmsnorm %x, %n {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %rn = tensorop.rmsnorm %x, %n {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %rg = tensorop.rmsnorm %y, %n {eps = 1.000000e-06 : f32, offset = 1.000000e+00 : f32} : (tensor<?x128xf32>, tensor<64xf32>) -> tensor<?x128xf32>
  %rg = tensorop.rmsnorm %y, %n {eps = 1.0e-06 : f32, offset = 1.0 : f32} : (tensor<?x128xf32>, tensor<64xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %ln = tensorop.layernorm %x, %n, bias %n {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %ln = tensorop.layernorm %x, %n, bias %n {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %ln2 = tensorop.layernorm %x, %n {eps = 1.000000e-06 : f32, offset = 1.000000e+00 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %ln2 = tensorop.layernorm %x, %n {eps = 1.0e-06 : f32, offset = 1.0 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %r = tensorop.rope %y, %pos {theta = 1.000000e+06 : f32, style = "interleaved", heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  // GENERIC: "tensorop.rope"(%y, %pos) <{theta = 1.000000e+06 : f32, style = "interleaved", heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64{{.*}}}> : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  %r = tensorop.rope %y, %pos {theta = 1.0e+06 : f32, style = "interleaved", heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  // CHECK-NEXT: %f = tensorop.constant dense<[1.000000e+00, 5.000000e-01, 2.500000e-01, 1.250000e-01, 6.250000e-02, 3.125000e-02, 1.562500e-02, 7.812500e-03]> : tensor<8xf32>
  %f = tensorop.constant dense<[1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125]> : tensor<8xf32>
  // CHECK-NEXT: %rf = tensorop.rope %y, %pos, inv_freq %f {heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x128xf32>, index, tensor<8xf32>) -> tensor<?x128xf32>
  %rf = tensorop.rope %y, %pos, inv_freq %f {heads = 4 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x128xf32>, index, tensor<8xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %sm = tensorop.softmax %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %sm = tensorop.softmax %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %at = tensorop.causal_attention %y, %x, %x {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32, window = 16 : i64} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  %at = tensorop.causal_attention %y, %x, %x {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, window = 16 : i64} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %at2 = tensorop.causal_attention %y, %x, %x {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32, softcap = 5.000000e+01 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  %at2 = tensorop.causal_attention %y, %x, %x {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, softcap = 50.0 : f32} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %si = tensorop.silu %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %si = tensorop.silu %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %ge = tensorop.gelu %x {approximate = "tanh"} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %ge = tensorop.gelu %x {approximate = "tanh"} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %ge2 = tensorop.gelu %x : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %ge2 = tensorop.gelu %x {approximate = "none"} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %sw = tensorop.swiglu %x, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %sw = tensorop.swiglu %x, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %gg = tensorop.geglu %x, %a {approximate = "tanh"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %gg = tensorop.geglu %x, %a {approximate = "tanh"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %e = tensorop.embedding %table, %tok : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %e = tensorop.embedding %table, %tok : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %es = tensorop.embedding %table, %tok {scale = 8.000000e+00 : f32} : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %es = tensorop.embedding %table, %tok {scale = 8.0 : f32} : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %rs = tensorop.reshape %y : (tensor<?x128xf32>) -> tensor<?x4x32xf32>
  %rs = tensorop.reshape %y : (tensor<?x128xf32>) -> tensor<?x4x32xf32>
  // CHECK-NEXT: %rs2 = tensorop.reshape %w : (tensor<128x64xf32>) -> tensor<8192xf32>
  %rs2 = tensorop.reshape %w : (tensor<128x64xf32>) -> tensor<8192xf32>
  // CHECK-NEXT: %tr = tensorop.transpose %x : (tensor<?x64xf32>) -> tensor<64x?xf32>
  %tr = tensorop.transpose %x : (tensor<?x64xf32>) -> tensor<64x?xf32>
  // CHECK-NEXT: %lr = tensorop.last_rows %x {count = 2 : i64} : (tensor<?x64xf32>) -> tensor<2x64xf32>
  %lr = tensorop.last_rows %x {count = 2 : i64} : (tensor<?x64xf32>) -> tensor<2x64xf32>
  // CHECK-NEXT: %lr1 = tensorop.last_rows %x : (tensor<?x64xf32>) -> tensor<1x64xf32>
  %lr1 = tensorop.last_rows %x : (tensor<?x64xf32>) -> tensor<1x64xf32>
  // CHECK-NEXT: %sc = tensorop.softcap %y {cap = 3.000000e+01 : f32} : (tensor<?x128xf32>) -> tensor<?x128xf32>
  %sc = tensorop.softcap %y {cap = 30.0 : f32} : (tensor<?x128xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %ids = tensorop.positions %tok, %pos : (tensor<?xi32>, index) -> tensor<?xi32>
  %ids = tensorop.positions %tok, %pos : (tensor<?xi32>, index) -> tensor<?xi32>
  // CHECK-NEXT: %pe = tensorop.embedding %table, %ids : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %pe = tensorop.embedding %table, %ids : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK-NEXT: func.return
  func.return
}

// A training batch: 4 sequences of 16 tokens as [64, C] rows.
// CHECK-LABEL: func.func @batch
func.func @batch(%q: tensor<64x128xf32>, %kv: tensor<64x64xf32>, %tok: tensor<64xi32>, %pos: index) {
  // CHECK-NEXT: %r = tensorop.rope %q, %pos {heads = 4 : i64, head_dim = 32 : i64, seq_len = 16 : i64} : (tensor<64x128xf32>, index) -> tensor<64x128xf32>
  %r = tensorop.rope %q, %pos {heads = 4 : i64, head_dim = 32 : i64, seq_len = 16 : i64} : (tensor<64x128xf32>, index) -> tensor<64x128xf32>
  // CHECK-NEXT: %o = tensorop.causal_attention %r, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32, seq_len = 16 : i64} : (tensor<64x128xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x128xf32>
  %o = tensorop.causal_attention %r, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, seq_len = 16 : i64} : (tensor<64x128xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x128xf32>
  // CHECK-NEXT: %dq, %dk, %dv = tensorop.causal_attention_grad %o, %r, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32, seq_len = 16 : i64} : (tensor<64x128xf32>, tensor<64x128xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> (tensor<64x128xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  %dq, %dk, %dv = tensorop.causal_attention_grad %o, %r, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, seq_len = 16 : i64} : (tensor<64x128xf32>, tensor<64x128xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> (tensor<64x128xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  // CHECK-NEXT: %dr = tensorop.rope_grad %dq, %pos {heads = 4 : i64, head_dim = 32 : i64, seq_len = 16 : i64} : (tensor<64x128xf32>, index) -> tensor<64x128xf32>
  %dr = tensorop.rope_grad %dq, %pos {heads = 4 : i64, head_dim = 32 : i64, seq_len = 16 : i64} : (tensor<64x128xf32>, index) -> tensor<64x128xf32>
  // CHECK-NEXT: %ids = tensorop.positions %tok, %pos {seq_len = 16 : i64} : (tensor<64xi32>, index) -> tensor<64xi32>
  %ids = tensorop.positions %tok, %pos {seq_len = 16 : i64} : (tensor<64xi32>, index) -> tensor<64xi32>
  func.return
}

// CHECK-LABEL: func.func @kv_cache
func.func @kv_cache(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>,
                    %kc: tensor<512x64xf32>, %vc: tensor<512x64xf32>, %pos: index) -> tensor<?x128xf32> {
  // CHECK-NEXT: %kc1 = tensorop.kv_write %kc, %k, %pos : (tensor<512x64xf32>, tensor<?x64xf32>, index) -> tensor<512x64xf32>
  %kc1 = tensorop.kv_write %kc, %k, %pos : (tensor<512x64xf32>, tensor<?x64xf32>, index) -> tensor<512x64xf32>
  // CHECK-NEXT: %vc1 = tensorop.kv_write %vc, %v, %pos : (tensor<512x64xf32>, tensor<?x64xf32>, index) -> tensor<512x64xf32>
  %vc1 = tensorop.kv_write %vc, %v, %pos : (tensor<512x64xf32>, tensor<?x64xf32>, index) -> tensor<512x64xf32>
  // CHECK-NEXT: %o = tensorop.causal_attention %q, %kc1, %vc1, pos %pos {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32} : (tensor<?x128xf32>, tensor<512x64xf32>, tensor<512x64xf32>, index) -> tensor<?x128xf32>
  // GENERIC: "tensorop.causal_attention"(%q, %kc1, %vc1, %pos) <{{.*}}heads = 4 : i64{{.*}}}> : (tensor<?x128xf32>, tensor<512x64xf32>, tensor<512x64xf32>, index) -> tensor<?x128xf32>
  %o = tensorop.causal_attention %q, %kc1, %vc1, pos %pos {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32} : (tensor<?x128xf32>, tensor<512x64xf32>, tensor<512x64xf32>, index) -> tensor<?x128xf32>
  // CHECK-NEXT: %p32 = arith.constant 3 : i32
  %p32 = arith.constant 3 : i32
  // CHECK-NEXT: %kc2 = tensorop.kv_write %kc1, %k, %p32 : (tensor<512x64xf32>, tensor<?x64xf32>, i32) -> tensor<512x64xf32>
  %kc2 = tensorop.kv_write %kc1, %k, %p32 : (tensor<512x64xf32>, tensor<?x64xf32>, i32) -> tensor<512x64xf32>
  func.return %o : tensor<?x128xf32>
}

// CHECK-LABEL: func.func @losses
func.func @losses(%logits: tensor<?x256xf32>, %t: tensor<?xi32>, %dl: tensor<f32>) {
  // CHECK-NEXT: %l = tensorop.cross_entropy %logits, %t : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
  %l = tensorop.cross_entropy %logits, %t : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
  // CHECK-NEXT: %l2 = tensorop.cross_entropy %logits, %t {ignore_index = -1 : i64} : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
  %l2 = tensorop.cross_entropy %logits, %t {ignore_index = -1 : i64} : (tensor<?x256xf32>, tensor<?xi32>) -> tensor<f32>
  // CHECK-NEXT: %lf, %dlf = tensorop.cross_entropy_fused %logits, %t {grad_scale = 5.000000e-01 : f32} : (tensor<?x256xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x256xf32>)
  // GENERIC: %lf, %dlf = "tensorop.cross_entropy_fused"(%logits, %t) <{{.*}}grad_scale = 5.000000e-01 : f32{{.*}}}> : (tensor<?x256xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x256xf32>)
  %lf, %dlf = tensorop.cross_entropy_fused %logits, %t {grad_scale = 0.5 : f32} : (tensor<?x256xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x256xf32>)
  // CHECK-NEXT: %g = tensorop.cross_entropy_grad %dl, %logits, %t : (tensor<f32>, tensor<?x256xf32>, tensor<?xi32>) -> tensor<?x256xf32>
  %g = tensorop.cross_entropy_grad %dl, %logits, %t : (tensor<f32>, tensor<?x256xf32>, tensor<?xi32>) -> tensor<?x256xf32>
  func.return
}

// CHECK-LABEL: func.func @backward
func.func @backward(%dy: tensor<?x128xf32>, %x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %n: tensor<64xf32>,
                    %d64: tensor<?x64xf32>, %q: tensor<?x128xf32>, %kv: tensor<?x64xf32>, %tok: tensor<?xi32>,
                    %pos: index) {
  // CHECK-NEXT: %dx, %dw, %db = tensorop.matmul_grad %dy, %x, %w {transpose_b, has_bias} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>)
  // GENERIC: "tensorop.matmul_grad"(%dy, %x, %w) <{transpose_b, has_bias}> : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>)
  %dx, %dw, %db = tensorop.matmul_grad %dy, %x, %w {transpose_b, has_bias} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>)
  // CHECK-NEXT: %dx2, %dw2 = tensorop.matmul_grad %dy, %x, %w {transpose_b} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>)
  %dx2, %dw2 = tensorop.matmul_grad %dy, %x, %w {transpose_b} : (tensor<?x128xf32>, tensor<?x64xf32>, tensor<128x64xf32>) -> (tensor<?x64xf32>, tensor<128x64xf32>)
  // CHECK-NEXT: %da, %dbb = tensorop.mul_grad %d64, %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %da, %dbb = tensorop.mul_grad %d64, %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %rdx, %rdw = tensorop.rmsnorm_grad %d64, %x, %n {eps = 1.000000e-05 : f32, offset = 1.000000e+00 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>)
  %rdx, %rdw = tensorop.rmsnorm_grad %d64, %x, %n {eps = 1.0e-05 : f32, offset = 1.0 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>)
  // CHECK-NEXT: %ldx, %ldw, %ldb = tensorop.layernorm_grad %d64, %x, %n {eps = 1.000000e-05 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
  %ldx, %ldw, %ldb = tensorop.layernorm_grad %d64, %x, %n {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
  // CHECK-NEXT: %ldx2, %ldw2, %ldb2 = tensorop.layernorm_grad %d64, %x, %n {eps = 1.000000e-05 : f32, offset = 1.000000e+00 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
  %ldx2, %ldw2, %ldb2 = tensorop.layernorm_grad %d64, %x, %n {eps = 1.0e-05 : f32, offset = 1.0 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
  // CHECK-NEXT: %rpdx = tensorop.rope_grad %dy, %pos {heads = 4 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  %rpdx = tensorop.rope_grad %dy, %pos {heads = 4 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, index) -> tensor<?x128xf32>
  // CHECK-NEXT: %f = tensorop.constant dense<1.000000e+00> : tensor<16xf32>
  %f = tensorop.constant dense<1.0> : tensor<16xf32>
  // CHECK-NEXT: %rpdx2 = tensorop.rope_grad %dy, %pos, inv_freq %f {style = "interleaved", heads = 4 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, index, tensor<16xf32>) -> tensor<?x128xf32>
  %rpdx2 = tensorop.rope_grad %dy, %pos, inv_freq %f {style = "interleaved", heads = 4 : i64, head_dim = 32 : i64} : (tensor<?x128xf32>, index, tensor<16xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %smdx = tensorop.softmax_grad %d64, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %smdx = tensorop.softmax_grad %d64, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %dq, %dk, %dv = tensorop.causal_attention_grad %dy, %q, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32, window = 8 : i64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  %dq, %dk, %dv = tensorop.causal_attention_grad %dy, %q, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, window = 8 : i64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %dq2, %dk2, %dv2 = tensorop.causal_attention_grad %dy, %q, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 1.250000e-01 : f32, softcap = 2.000000e+01 : f32} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  %dq2, %dk2, %dv2 = tensorop.causal_attention_grad %dy, %q, %kv, %kv {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.125 : f32, softcap = 20.0 : f32} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %scdx = tensorop.softcap_grad %dy, %dy {cap = 3.000000e+01 : f32} : (tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  %scdx = tensorop.softcap_grad %dy, %dy {cap = 30.0 : f32} : (tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  // CHECK-NEXT: %sidx = tensorop.silu_grad %d64, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %sidx = tensorop.silu_grad %d64, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %gedx = tensorop.gelu_grad %d64, %x {approximate = "tanh"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %gedx = tensorop.gelu_grad %d64, %x {approximate = "tanh"} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK-NEXT: %swg, %swu = tensorop.swiglu_grad %d64, %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %swg, %swu = tensorop.swiglu_grad %d64, %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %ggg, %ggu = tensorop.geglu_grad %d64, %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %ggg, %ggu = tensorop.geglu_grad %d64, %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %edt = tensorop.embedding_grad %d64, %tok {vocab = 256 : i64, scale = 8.000000e+00 : f32} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<256x64xf32>
  %edt = tensorop.embedding_grad %d64, %tok {vocab = 256 : i64, scale = 8.0 : f32} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<256x64xf32>
  func.return
}

// CHECK-LABEL: func.func @optimizer
func.func @optimizer(%p: tensor<128x64xf32>, %g: tensor<128x64xf32>, %m: tensor<128x64xf32>, %v: tensor<128x64xf32>,
                     %b: tensor<128xf32>, %lr: f32, %step: index) -> tensor<128x64xf32> {
  // CHECK-NEXT: %acc = tensorop.accumulate %g, %g : (tensor<128x64xf32>, tensor<128x64xf32>) -> tensor<128x64xf32>
  %acc = tensorop.accumulate %g, %g : (tensor<128x64xf32>, tensor<128x64xf32>) -> tensor<128x64xf32>
  // CHECK-NEXT: %n = tensorop.global_norm %acc, %b : (tensor<128x64xf32>, tensor<128xf32>) -> tensor<f32>
  %n = tensorop.global_norm %acc, %b : (tensor<128x64xf32>, tensor<128xf32>) -> tensor<f32>
  // CHECK-NEXT: %n1 = tensorop.global_norm %b : (tensor<128xf32>) -> tensor<f32>
  %n1 = tensorop.global_norm %b : (tensor<128xf32>) -> tensor<f32>
  // CHECK-NEXT: %gc = tensorop.clip_by_norm %acc, %n {max_norm = 5.000000e-01 : f32} : (tensor<128x64xf32>, tensor<f32>) -> tensor<128x64xf32>
  %gc = tensorop.clip_by_norm %acc, %n {max_norm = 0.5 : f32} : (tensor<128x64xf32>, tensor<f32>) -> tensor<128x64xf32>
  // CHECK-NEXT: %p1, %m1, %v1 = tensorop.adamw_update %p, %gc, %m, %v, %lr, %step {beta2 = 9.500000e-01 : f32, weight_decay = 1.000000e-01 : f32} : (tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, f32, index) -> (tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>)
  // GENERIC: "tensorop.adamw_update"(%p, %gc, %m, %v, %lr, %step) <{{.*}}beta2 = 9.500000e-01 : f32{{.*}}}>
  %p1, %m1, %v1 = tensorop.adamw_update %p, %gc, %m, %v, %lr, %step {beta2 = 0.95 : f32, weight_decay = 0.1 : f32} : (tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>, f32, index) -> (tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>)
  func.return %p1 : tensor<128x64xf32>
}

// CHECK-LABEL: func.func @fused
func.func @fused(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>,
                 %bq: tensor<128xf32>, %bk: tensor<64xf32>, %pos: index) {
  // CHECK-NEXT: %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos {eps = 1.000000e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  %q, %k, %v = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %q2, %k2, %v2 = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos, bq %bq, bk %bk, bv %bk {eps = 1.000000e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<128xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  // GENERIC: "tensorop.rmsnorm_qkv_rope"(%x, %nw, %wq, %wk, %wk, %pos, %bq, %bk, %bk) <{{.*}}operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 1, 1, 0>{{.*}}}>
  %q2, %k2, %v2 = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos, bq %bq, bk %bk, bv %bk {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<128xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %f = tensorop.constant dense<1.000000e+00> : tensor<16xf32>
  %f = tensorop.constant dense<1.0> : tensor<16xf32>
  // CHECK-NEXT: %q4, %k4, %v4 = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos, inv_freq %f {eps = 1.000000e-05 : f32, offset = 1.000000e+00 : f32, theta = 1.000000e+06 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<16xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  %q4, %k4, %v4 = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos, inv_freq %f {eps = 1.0e-05 : f32, offset = 1.0 : f32, theta = 1.0e+06 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<16xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK-NEXT: %q3, %k3, %v3 = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos, bk %bk {eps = 1.000000e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  %q3, %k3, %v3 = tensorop.rmsnorm_qkv_rope %x, %nw, %wq, %wk, %wk, %pos, bk %bk {eps = 1.0e-05 : f32, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, index, tensor<64xf32>) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>)
  func.return
}
