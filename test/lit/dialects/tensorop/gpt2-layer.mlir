// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | ckc-opt | filecheck %s

// A one-layer GPT-2 in tensorop: learned positions, LayerNorm with bias, the
// fused attn_qkv weight and bias read as three row slices (weight offsets),
// biased projections, tanh GELU, tied output embedding, K/V caches of 16 rows.
// vocab 64, hidden 32, 4 heads x 8, ffn 128.
// test/py/test_tensorop_reference.py runs it against transformers' GPT2LMHeadModel.

// CHECK-LABEL: func.func @forward
// CHECK:         %wk = tensorop.weight "blk.0.attn_qkv.weight" offset 32 : tensor<32x32xf32>
// CHECK:         %ids = tensorop.positions %tok, %pos
// CHECK:         tensorop.layernorm %x, %ln1w, bias %ln1b
// CHECK:         tensorop.gelu %u {approximate = "tanh"}
// CHECK:         %logits = tensorop.matmul %hf, %wte {transpose_b}
func.func @forward(%tok: tensor<?xi32>, %pos: index, %kc: tensor<16x32xf32>, %vc: tensor<16x32xf32>)
    -> (tensor<?x64xf32>, tensor<16x32xf32>, tensor<16x32xf32>) {
  %wte = tensorop.weight "token_embd.weight" : tensor<64x32xf32>
  %wpe = tensorop.weight "position_embd.weight" : tensor<16x32xf32>
  %ln1w = tensorop.weight "blk.0.attn_norm.weight" : tensor<32xf32>
  %ln1b = tensorop.weight "blk.0.attn_norm.bias" : tensor<32xf32>
  %wq = tensorop.weight "blk.0.attn_qkv.weight" : tensor<32x32xf32>
  %wk = tensorop.weight "blk.0.attn_qkv.weight" offset 32 : tensor<32x32xf32>
  %wv = tensorop.weight "blk.0.attn_qkv.weight" offset 64 : tensor<32x32xf32>
  %bq = tensorop.weight "blk.0.attn_qkv.bias" : tensor<32xf32>
  %bk = tensorop.weight "blk.0.attn_qkv.bias" offset 32 : tensor<32xf32>
  %bv = tensorop.weight "blk.0.attn_qkv.bias" offset 64 : tensor<32xf32>
  %wo = tensorop.weight "blk.0.attn_output.weight" : tensor<32x32xf32>
  %bo = tensorop.weight "blk.0.attn_output.bias" : tensor<32xf32>
  %ln2w = tensorop.weight "blk.0.ffn_norm.weight" : tensor<32xf32>
  %ln2b = tensorop.weight "blk.0.ffn_norm.bias" : tensor<32xf32>
  %wup = tensorop.weight "blk.0.ffn_up.weight" : tensor<128x32xf32>
  %bup = tensorop.weight "blk.0.ffn_up.bias" : tensor<128xf32>
  %wdn = tensorop.weight "blk.0.ffn_down.weight" : tensor<32x128xf32>
  %bdn = tensorop.weight "blk.0.ffn_down.bias" : tensor<32xf32>
  %lnfw = tensorop.weight "output_norm.weight" : tensor<32xf32>
  %lnfb = tensorop.weight "output_norm.bias" : tensor<32xf32>

  %te = tensorop.embedding %wte, %tok : (tensor<64x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %ids = tensorop.positions %tok, %pos : (tensor<?xi32>, index) -> tensor<?xi32>
  %pe = tensorop.embedding %wpe, %ids : (tensor<16x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %x = tensorop.add %te, %pe : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  %h = tensorop.layernorm %x, %ln1w, bias %ln1b {eps = 1.000000e-05 : f32} : (tensor<?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %q = tensorop.matmul %h, %wq, bias %bq {transpose_b} : (tensor<?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %k = tensorop.matmul %h, %wk, bias %bk {transpose_b} : (tensor<?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %v = tensorop.matmul %h, %wv, bias %bv {transpose_b} : (tensor<?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %kc1 = tensorop.kv_write %kc, %k, %pos : (tensor<16x32xf32>, tensor<?x32xf32>, index) -> tensor<16x32xf32>
  %vc1 = tensorop.kv_write %vc, %v, %pos : (tensor<16x32xf32>, tensor<?x32xf32>, index) -> tensor<16x32xf32>
  %a = tensorop.causal_attention %q, %kc1, %vc1, pos %pos {heads = 4 : i64, kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, index) -> tensor<?x32xf32>
  %o = tensorop.matmul %a, %wo, bias %bo {transpose_b} : (tensor<?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %x2 = tensorop.add %x, %o : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  %h2 = tensorop.layernorm %x2, %ln2w, bias %ln2b {eps = 1.000000e-05 : f32} : (tensor<?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %u = tensorop.matmul %h2, %wup, bias %bup {transpose_b} : (tensor<?x32xf32>, tensor<128x32xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %g = tensorop.gelu %u {approximate = "tanh"} : (tensor<?x128xf32>) -> tensor<?x128xf32>
  %d = tensorop.matmul %g, %wdn, bias %bdn {transpose_b} : (tensor<?x128xf32>, tensor<32x128xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %x3 = tensorop.add %x2, %d : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  %hf = tensorop.layernorm %x3, %lnfw, bias %lnfb {eps = 1.000000e-05 : f32} : (tensor<?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %logits = tensorop.matmul %hf, %wte {transpose_b} : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>
  func.return %logits, %kc1, %vc1 : tensor<?x64xf32>, tensor<16x32xf32>, tensor<16x32xf32>
}
