// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s -p canonicalize,cse | filecheck %s --check-prefix=CANON

// A one-layer Llama in tensorop, the shape lower-transformer produces: one
// function serves prefill (pos = 0, T tokens) and decode (pos = tokens seen,
// T = 1), with per-layer K/V caches of 16 rows updated by kv_write.
// vocab 64, hidden 32, 4 heads x 8 (2 kv heads), ffn 48.
// test/py/test_tensorop_reference.py runs it against transformers' LlamaForCausalLM.

// CHECK-LABEL: func.func @forward
// CHECK:         tensorop.embedding
// CHECK:         tensorop.rmsnorm
// CHECK-COUNT-3: tensorop.matmul
// CHECK-COUNT-2: tensorop.rope
// CHECK-COUNT-2: tensorop.kv_write
// CHECK:         tensorop.causal_attention {{.*}}, pos %pos
// CHECK:         tensorop.swiglu
// CHECK:         func.return
// CANON-LABEL: func.func @forward
// CANON-COUNT-7: tensorop.matmul
func.func @forward(%tok: tensor<?xi32>, %pos: index, %kc: tensor<16x16xf32>, %vc: tensor<16x16xf32>)
    -> (tensor<?x64xf32>, tensor<16x16xf32>, tensor<16x16xf32>) {
  %emb = tensorop.weight "token_embd.weight" : tensor<64x32xf32>
  %an = tensorop.weight "blk.0.attn_norm.weight" : tensor<32xf32>
  %wq = tensorop.weight "blk.0.attn_q.weight" : tensor<32x32xf32>
  %wk = tensorop.weight "blk.0.attn_k.weight" : tensor<16x32xf32>
  %wv = tensorop.weight "blk.0.attn_v.weight" : tensor<16x32xf32>
  %wo = tensorop.weight "blk.0.attn_output.weight" : tensor<32x32xf32>
  %fn = tensorop.weight "blk.0.ffn_norm.weight" : tensor<32xf32>
  %wg = tensorop.weight "blk.0.ffn_gate.weight" : tensor<48x32xf32>
  %wu = tensorop.weight "blk.0.ffn_up.weight" : tensor<48x32xf32>
  %wd = tensorop.weight "blk.0.ffn_down.weight" : tensor<32x48xf32>
  %on = tensorop.weight "output_norm.weight" : tensor<32xf32>
  %out = tensorop.weight "output.weight" : tensor<64x32xf32>

  %x = tensorop.embedding %emb, %tok : (tensor<64x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %h = tensorop.rmsnorm %x, %an {eps = 1.000000e-05 : f32} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %q = tensorop.matmul %h, %wq {transpose_b} : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %k = tensorop.matmul %h, %wk {transpose_b} : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x16xf32>
  %v = tensorop.matmul %h, %wv {transpose_b} : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x16xf32>
  %qr = tensorop.rope %q, %pos {heads = 4 : i64, head_dim = 8 : i64} : (tensor<?x32xf32>, index) -> tensor<?x32xf32>
  %kr = tensorop.rope %k, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<?x16xf32>, index) -> tensor<?x16xf32>
  %kc1 = tensorop.kv_write %kc, %kr, %pos : (tensor<16x16xf32>, tensor<?x16xf32>, index) -> tensor<16x16xf32>
  %vc1 = tensorop.kv_write %vc, %v, %pos : (tensor<16x16xf32>, tensor<?x16xf32>, index) -> tensor<16x16xf32>
  %a = tensorop.causal_attention %qr, %kc1, %vc1, pos %pos {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x32xf32>, tensor<16x16xf32>, tensor<16x16xf32>, index) -> tensor<?x32xf32>
  %o = tensorop.matmul %a, %wo {transpose_b} : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %x2 = tensorop.add %x, %o : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  %h2 = tensorop.rmsnorm %x2, %fn {eps = 1.000000e-05 : f32} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %g = tensorop.matmul %h2, %wg {transpose_b} : (tensor<?x32xf32>, tensor<48x32xf32>) -> tensor<?x48xf32>
  %u = tensorop.matmul %h2, %wu {transpose_b} : (tensor<?x32xf32>, tensor<48x32xf32>) -> tensor<?x48xf32>
  %s = tensorop.swiglu %g, %u : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
  %d = tensorop.matmul %s, %wd {transpose_b} : (tensor<?x48xf32>, tensor<32x48xf32>) -> tensor<?x32xf32>
  %x3 = tensorop.add %x2, %d : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  %hf = tensorop.rmsnorm %x3, %on {eps = 1.000000e-05 : f32} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %logits = tensorop.matmul %hf, %out {transpose_b} : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>
  func.return %logits, %kc1, %vc1 : tensor<?x64xf32>, tensor<16x16xf32>, tensor<16x16xf32>
}
