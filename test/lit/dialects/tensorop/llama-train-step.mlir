// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s -p canonicalize | filecheck %s

// A hand-written train step for the one-layer Llama of llama-layer.mlir (8
// tokens, one sequence): forward, fused cross-entropy, then the backward
// graph of *_grad ops (what `autodiff` should produce), with gradients
// accumulated where a value has several uses (residual stream, the three
// q/k/v projections of one normalized input). Returns the loss and one
// gradient per weight. test/py/test_tensorop_reference.py compares them with
// torch autograd on transformers' LlamaForCausalLM.

// CHECK-LABEL: func.func @train_step
// CHECK:         %loss, %dlogits = tensorop.cross_entropy_fused %logits, %targets
// CHECK:         tensorop.matmul_grad %dlogits, %hf, %out {transpose_b}
// CHECK:         tensorop.swiglu_grad
// CHECK:         tensorop.causal_attention_grad
// CHECK-COUNT-2: tensorop.rope_grad
// CHECK:         %demb = tensorop.embedding_grad %dx, %tok {vocab = 64 : i64}
// CHECK:         func.return %loss, %demb, %dan, %dwq, %dwk, %dwv, %dwo, %dfn, %dwg, %dwu, %dwd, %don, %dout
func.func @train_step(%tok: tensor<8xi32>, %targets: tensor<8xi32>)
    -> (tensor<f32>, tensor<64x32xf32>, tensor<32xf32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>,
        tensor<32x32xf32>, tensor<32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32>, tensor<32xf32>,
        tensor<64x32xf32>) {
  %pos = arith.constant 0 : index
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

  // forward
  %x = tensorop.embedding %emb, %tok : (tensor<64x32xf32>, tensor<8xi32>) -> tensor<8x32xf32>
  %h = tensorop.rmsnorm %x, %an {eps = 1.000000e-05 : f32} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %q = tensorop.matmul %h, %wq {transpose_b} : (tensor<8x32xf32>, tensor<32x32xf32>) -> tensor<8x32xf32>
  %k = tensorop.matmul %h, %wk {transpose_b} : (tensor<8x32xf32>, tensor<16x32xf32>) -> tensor<8x16xf32>
  %v = tensorop.matmul %h, %wv {transpose_b} : (tensor<8x32xf32>, tensor<16x32xf32>) -> tensor<8x16xf32>
  %qr = tensorop.rope %q, %pos {heads = 4 : i64, head_dim = 8 : i64} : (tensor<8x32xf32>, index) -> tensor<8x32xf32>
  %kr = tensorop.rope %k, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<8x16xf32>, index) -> tensor<8x16xf32>
  %a = tensorop.causal_attention %qr, %kr, %v {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<8x32xf32>, tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x32xf32>
  %o = tensorop.matmul %a, %wo {transpose_b} : (tensor<8x32xf32>, tensor<32x32xf32>) -> tensor<8x32xf32>
  %x2 = tensorop.add %x, %o : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %h2 = tensorop.rmsnorm %x2, %fn {eps = 1.000000e-05 : f32} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %g = tensorop.matmul %h2, %wg {transpose_b} : (tensor<8x32xf32>, tensor<48x32xf32>) -> tensor<8x48xf32>
  %u = tensorop.matmul %h2, %wu {transpose_b} : (tensor<8x32xf32>, tensor<48x32xf32>) -> tensor<8x48xf32>
  %s = tensorop.swiglu %g, %u : (tensor<8x48xf32>, tensor<8x48xf32>) -> tensor<8x48xf32>
  %d = tensorop.matmul %s, %wd {transpose_b} : (tensor<8x48xf32>, tensor<32x48xf32>) -> tensor<8x32xf32>
  %x3 = tensorop.add %x2, %d : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %hf = tensorop.rmsnorm %x3, %on {eps = 1.000000e-05 : f32} : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %logits = tensorop.matmul %hf, %out {transpose_b} : (tensor<8x32xf32>, tensor<64x32xf32>) -> tensor<8x64xf32>
  %loss, %dlogits = tensorop.cross_entropy_fused %logits, %targets : (tensor<8x64xf32>, tensor<8xi32>) -> (tensor<f32>, tensor<8x64xf32>)

  // backward
  %dhf, %dout = tensorop.matmul_grad %dlogits, %hf, %out {transpose_b} : (tensor<8x64xf32>, tensor<8x32xf32>, tensor<64x32xf32>) -> (tensor<8x32xf32>, tensor<64x32xf32>)
  %dx3, %don = tensorop.rmsnorm_grad %dhf, %x3, %on {eps = 1.000000e-05 : f32} : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> (tensor<8x32xf32>, tensor<32xf32>)
  %ds, %dwd = tensorop.matmul_grad %dx3, %s, %wd {transpose_b} : (tensor<8x32xf32>, tensor<8x48xf32>, tensor<32x48xf32>) -> (tensor<8x48xf32>, tensor<32x48xf32>)
  %dg, %du = tensorop.swiglu_grad %ds, %g, %u : (tensor<8x48xf32>, tensor<8x48xf32>, tensor<8x48xf32>) -> (tensor<8x48xf32>, tensor<8x48xf32>)
  %dh2g, %dwg = tensorop.matmul_grad %dg, %h2, %wg {transpose_b} : (tensor<8x48xf32>, tensor<8x32xf32>, tensor<48x32xf32>) -> (tensor<8x32xf32>, tensor<48x32xf32>)
  %dh2u, %dwu = tensorop.matmul_grad %du, %h2, %wu {transpose_b} : (tensor<8x48xf32>, tensor<8x32xf32>, tensor<48x32xf32>) -> (tensor<8x32xf32>, tensor<48x32xf32>)
  %dh2 = tensorop.add %dh2g, %dh2u : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %dx2n, %dfn = tensorop.rmsnorm_grad %dh2, %x2, %fn {eps = 1.000000e-05 : f32} : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> (tensor<8x32xf32>, tensor<32xf32>)
  %dx2 = tensorop.add %dx3, %dx2n : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %da, %dwo = tensorop.matmul_grad %dx2, %a, %wo {transpose_b} : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<32x32xf32>) -> (tensor<8x32xf32>, tensor<32x32xf32>)
  %dqr, %dkr, %dv = tensorop.causal_attention_grad %da, %qr, %kr, %v {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x16xf32>, tensor<8x16xf32>) -> (tensor<8x32xf32>, tensor<8x16xf32>, tensor<8x16xf32>)
  %dq = tensorop.rope_grad %dqr, %pos {heads = 4 : i64, head_dim = 8 : i64} : (tensor<8x32xf32>, index) -> tensor<8x32xf32>
  %dk = tensorop.rope_grad %dkr, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<8x16xf32>, index) -> tensor<8x16xf32>
  %dhq, %dwq = tensorop.matmul_grad %dq, %h, %wq {transpose_b} : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<32x32xf32>) -> (tensor<8x32xf32>, tensor<32x32xf32>)
  %dhk, %dwk = tensorop.matmul_grad %dk, %h, %wk {transpose_b} : (tensor<8x16xf32>, tensor<8x32xf32>, tensor<16x32xf32>) -> (tensor<8x32xf32>, tensor<16x32xf32>)
  %dhv, %dwv = tensorop.matmul_grad %dv, %h, %wv {transpose_b} : (tensor<8x16xf32>, tensor<8x32xf32>, tensor<16x32xf32>) -> (tensor<8x32xf32>, tensor<16x32xf32>)
  %dhqk = tensorop.add %dhq, %dhk : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %dh = tensorop.add %dhqk, %dhv : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %dxn, %dan = tensorop.rmsnorm_grad %dh, %x, %an {eps = 1.000000e-05 : f32} : (tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> (tensor<8x32xf32>, tensor<32xf32>)
  %dx = tensorop.add %dx2, %dxn : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %demb = tensorop.embedding_grad %dx, %tok {vocab = 64 : i64} : (tensor<8x32xf32>, tensor<8xi32>) -> tensor<64x32xf32>
  func.return %loss, %demb, %dan, %dwq, %dwk, %dwv, %dwo, %dfn, %dwg, %dwu, %dwd, %don, %dout
    : tensor<f32>, tensor<64x32xf32>, tensor<32xf32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>,
      tensor<32x32xf32>, tensor<32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32>, tensor<32xf32>,
      tensor<64x32xf32>
}
