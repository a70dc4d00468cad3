// quantize-weights: the 2-D weights read only by Linear layers (attention q/k/v/o,
// mlp up/down/gate), the LM head and the token embedding table get a GGUF format;
// norms, biases and learned position embeddings keep f32 (llama-quantize's choice).
// A row not a whole number of blocks falls back as llama-quantize does (K-quant ->
// a 32-block legacy format, then f16), recorded in quantize.fallbacks; fallback=false
// refuses it naming the tensor. type=keep changes nothing.

// RUN: ckc-opt %s --split-input-file -p quantize-weights | filecheck %s
// RUN: ckc-opt %s --split-input-file -p quantize-weights,quantize-weights | filecheck %s
// RUN: ckc-opt %s --split-input-file -p 'quantize-weights{type=q4_k output=q6_k}' | filecheck %s --check-prefix=K4
// RUN: ckc-opt %s --split-input-file -p 'quantize-weights{type=keep}' | filecheck %s --check-prefix=KEEP
// RUN: not ckc-opt %s --split-input-file -p 'quantize-weights{type=q4_k fallback=false}' 2>&1 | filecheck %s --check-prefix=NOFB
// RUN: not ckc-opt %s --split-input-file -p 'quantize-weights{type=q9}' 2>&1 | filecheck %s --check-prefix=BAD

// Llama-style, untied head. q8_0: every Linear weight, the table and the head.
// CHECK:      %emb = transformer.weight "token_embd.weight" : tensor<128x64x!quant.q8_0>
// CHECK:      transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<128x64x!quant.q8_0>)
// CHECK:      transformer.weight "blk.0.attn_norm.weight" : tensor<64xf32>
// CHECK:      transformer.weight "blk.0.attn_q.weight" : tensor<64x64x!quant.q8_0>
// CHECK:      transformer.weight "blk.0.attn_k.weight" : tensor<32x64x!quant.q8_0>
// CHECK:      transformer.weight "blk.0.attn_v.weight" : tensor<32x64x!quant.q8_0>
// CHECK:      transformer.weight "blk.0.attn_output.weight" : tensor<64x64x!quant.q8_0>
// CHECK:      transformer.weight "blk.0.attn_q.bias" : tensor<64xf32>
// CHECK:      transformer.weight "blk.0.ffn_gate.weight" : tensor<256x64x!quant.q8_0>
// CHECK:      transformer.weight "blk.0.ffn_up.weight" : tensor<256x64x!quant.q8_0>
// CHECK:      transformer.weight "blk.0.ffn_down.weight" : tensor<64x256x!quant.q8_0>
// CHECK:      transformer.weight "output_norm.weight" : tensor<64xf32>
// CHECK:      transformer.weight "output.weight" : tensor<128x64x!quant.q8_0>
// CHECK:      transformer.lm_head %xf, %wout : (tensor<?x64xf32>, tensor<128x64x!quant.q8_0>) -> tensor<?x128xf32>

// q4_k: only ffn_down has 256-value rows; the rest fall back to q5_0, and the
// head asked as q6_k to q8_0 (llama-quantize's tensor_type_fallback).
// K4:      builtin.module attributes {quantize.fallbacks = {blk.0.attn_k.weight = "q5_0", blk.0.attn_output.weight = "q5_0", blk.0.attn_q.weight = "q5_0", blk.0.attn_v.weight = "q5_0", blk.0.ffn_gate.weight = "q5_0", blk.0.ffn_up.weight = "q5_0", output.weight = "q8_0", token_embd.weight = "q5_0"}}
// K4:      transformer.weight "token_embd.weight" : tensor<128x64x!quant.q5_0>
// K4:      transformer.weight "blk.0.attn_norm.weight" : tensor<64xf32>
// K4:      transformer.weight "blk.0.attn_q.weight" : tensor<64x64x!quant.q5_0>
// K4:      transformer.weight "blk.0.ffn_down.weight" : tensor<64x256x!quant.q4_k>
// K4:      transformer.weight "output.weight" : tensor<128x64x!quant.q8_0>

// KEEP:     transformer.weight "token_embd.weight" : tensor<128x64xf32>
// KEEP:     transformer.weight "blk.0.ffn_down.weight" : tensor<64x256xf32>
// KEEP:     transformer.weight "output.weight" : tensor<128x64xf32>

// NOFB: error: quantize-weights: tensor 'token_embd.weight' [128, 64]: row length 64 is not a multiple of the q4_k block (256 values) (fallback=false)
// BAD: error: quantize-weights: type=q9 is not a weight format (expected keep or one of f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k)

builtin.module {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x128xf32> {
    %emb = transformer.weight "token_embd.weight" : tensor<128x64xf32>
    %x0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<128x64xf32>) -> tensor<?x64xf32>
    %n0 = transformer.weight "blk.0.attn_norm.weight" : tensor<64xf32>
    %h0 = transformer.norm %x0, %n0 {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq0 = transformer.weight "blk.0.attn_q.weight" : tensor<64x64xf32>
    %wk0 = transformer.weight "blk.0.attn_k.weight" : tensor<32x64xf32>
    %wv0 = transformer.weight "blk.0.attn_v.weight" : tensor<32x64xf32>
    %wo0 = transformer.weight "blk.0.attn_output.weight" : tensor<64x64xf32>
    %bq0 = transformer.weight "blk.0.attn_q.bias" : tensor<64xf32>
    %bk0 = transformer.weight "blk.0.attn_k.bias" : tensor<32xf32>
    %bv0 = transformer.weight "blk.0.attn_v.bias" : tensor<32xf32>
    %a0 = transformer.attention %h0, %wq0, %wk0, %wv0, %wo0, q_bias %bq0, k_bias %bk0, v_bias %bv0 {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
    %r0 = transformer.residual %x0, %a0 : tensor<?x64xf32>
    %wg0 = transformer.weight "blk.0.ffn_gate.weight" : tensor<256x64xf32>
    %wu0 = transformer.weight "blk.0.ffn_up.weight" : tensor<256x64xf32>
    %wd0 = transformer.weight "blk.0.ffn_down.weight" : tensor<64x256xf32>
    %m0 = transformer.mlp %r0, %wu0, %wd0, gate %wg0 {kind = "swiglu"} : (tensor<?x64xf32>, tensor<256x64xf32>, tensor<64x256xf32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    %x1 = transformer.residual %r0, %m0 : tensor<?x64xf32>
    %nf = transformer.weight "output_norm.weight" : tensor<64xf32>
    %xf = transformer.norm %x1, %nf {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wout = transformer.weight "output.weight" : tensor<128x64xf32>
    %logits = transformer.lm_head %xf, %wout : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
    func.return %logits : tensor<?x128xf32>
  }
}

// -----

// GPT-2-style: tied table (lookup and head read one tensor), learned positions
// (kept f32), Q/K/V as row slices of one fused tensor, biases (kept f32). Rows of
// 48 values fit no 32-value block: f16, as llama-quantize falls back; ffn_down's
// 192-value rows are whole q8_0 blocks.
// CHECK:      builtin.module attributes {quantize.fallbacks = {blk.0.attn_output.weight = "f16", blk.0.attn_qkv.weight = "f16", blk.0.ffn_up.weight = "f16", token_embd.weight = "f16"}}
// CHECK:      %wte = transformer.weight "token_embd.weight" : tensor<100x48xf16>
// CHECK-NEXT: %wpe = transformer.weight "position_embd.weight" : tensor<64x48xf32>
// CHECK:      %wq = transformer.weight "blk.0.attn_qkv.weight" : tensor<48x48xf16>
// CHECK-NEXT: %wk = transformer.weight "blk.0.attn_qkv.weight" offset 48 : tensor<48x48xf16>
// CHECK-NEXT: %wv = transformer.weight "blk.0.attn_qkv.weight" offset 96 : tensor<48x48xf16>
// CHECK:      %wproj = transformer.weight "blk.0.ffn_down.weight" : tensor<48x192x!quant.q8_0>
// CHECK-NEXT: %bfc = transformer.weight "blk.0.ffn_up.bias" : tensor<192xf32>
// CHECK:      transformer.lm_head %m0, %wte {tied = true} : (tensor<?x48xf32>, tensor<100x48xf16>)
builtin.module {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x100xf32> {
    %wte = transformer.weight "token_embd.weight" : tensor<100x48xf32>
    %wpe = transformer.weight "position_embd.weight" : tensor<64x48xf32>
    %x0 = transformer.embedding %tokens, %wte, positions %wpe : (tensor<?xi32>, tensor<100x48xf32>, tensor<64x48xf32>) -> tensor<?x48xf32>
    %wq = transformer.weight "blk.0.attn_qkv.weight" : tensor<48x48xf32>
    %wk = transformer.weight "blk.0.attn_qkv.weight" offset 48 : tensor<48x48xf32>
    %wv = transformer.weight "blk.0.attn_qkv.weight" offset 96 : tensor<48x48xf32>
    %wo = transformer.weight "blk.0.attn_output.weight" : tensor<48x48xf32>
    %a0 = transformer.attention %x0, %wq, %wk, %wv, %wo {heads = 3 : i64, kv_heads = 3 : i64, head_dim = 16 : i64, layer = 0 : i64, scale = 0.25 : f64, rope_style = "none"} : (tensor<?x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>, tensor<48x48xf32>) -> tensor<?x48xf32>
    %wfc = transformer.weight "blk.0.ffn_up.weight" : tensor<192x48xf32>
    %wproj = transformer.weight "blk.0.ffn_down.weight" : tensor<48x192xf32>
    %bfc = transformer.weight "blk.0.ffn_up.bias" : tensor<192xf32>
    %m0 = transformer.mlp %a0, %wfc, %wproj, up_bias %bfc {kind = "gelu"} : (tensor<?x48xf32>, tensor<192x48xf32>, tensor<48x192xf32>, tensor<192xf32>) -> tensor<?x48xf32>
    %logits = transformer.lm_head %m0, %wte {tied = true} : (tensor<?x48xf32>, tensor<100x48xf32>) -> tensor<?x100xf32>
    func.return %logits : tensor<?x100xf32>
  }
}
