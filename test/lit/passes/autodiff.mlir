// autodiff: reverse mode over @train_step. The function returns the loss and one
// gradient per weight unit (result attributes tensorop.grad = tensor name and, for
// a row slice of a fused tensor, tensorop.offset), in the order the forward reads
// the weights. Backward ops follow the forward in reverse order; several uses of a
// value sum their gradients with tensorop.accumulate; the root cross_entropy
// becomes cross_entropy_fused (loss and dlogits in one pass, logits never saved).
// Forward ops whose result the backward reads carry {autodiff.saved}: the saved set.
//
// Chunk 1: a one-layer Llama-style model (GQA 2/1 heads, RoPE, RMSNorm, SwiGLU),
// differentiated with recompute=none (prefix CHECK, the whole backward graph and
// saved set), recompute=attention (prefix ATT, the attention output is recomputed,
// not saved) and recompute=all (prefix ALL, only the residual stream and the fused
// loss are saved, every layer's activations are recomputed in its backward). Chunk 2: a one-layer
// GPT-2-style model: tied embeddings (one accumulated token_embd.weight gradient),
// LayerNorm/linear biases, fused attn_qkv slices (gradients at row offsets 16, 32),
// learned positions. The other functions of chunk 1 are the error cases (prefixes ERR-*).

// RUN: ckc-opt %s --split-input-file -p autodiff | filecheck %s
// RUN: ckc-opt %s --split-input-file -p autodiff | ckc-opt --split-input-file | filecheck %s
// RUN: ckc-opt %s --split-input-file -p 'autodiff{recompute=attention}' | filecheck %s --check-prefix=ATT
// RUN: ckc-opt %s --split-input-file -p 'autodiff{recompute=attention},cse' | filecheck %s --check-prefix=ATT
// RUN: ckc-opt %s --split-input-file -p 'autodiff{recompute=all}' | filecheck %s --check-prefix=ALL
// RUN: not ckc-opt %s --split-input-file -p 'autodiff{function=bad_step}' 2>&1 | filecheck %s --check-prefix=ERR-RULE
// RUN: not ckc-opt %s --split-input-file -p 'autodiff{function=cached_step}' 2>&1 | filecheck %s --check-prefix=ERR-CACHE
// RUN: not ckc-opt %s -p 'autodiff{recompute=some}' 2>&1 | filecheck %s --check-prefix=ERR-OPT

// ERR-RULE: error: autodiff: 'tensorop.last_rows' in @bad_step has no gradient rule (inference-only and backward ops cannot be differentiated)
// ERR-CACHE: error: autodiff: 'tensorop.causal_attention' with 'pos' (the KV-cache form) has no gradient
// ERR-OPT: error: autodiff: recompute must be one of none, attention, all, got 'some'

// CHECK-LABEL: func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> (tensor<f32>, tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.attn_norm.weight"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_q.weight"}, tensor<8x16xf32> {tensorop.grad = "blk.0.attn_k.weight"}, tensor<8x16xf32> {tensorop.grad = "blk.0.attn_v.weight"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_output.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.ffn_norm.weight"}, tensor<32x16xf32> {tensorop.grad = "blk.0.ffn_up.weight"}, tensor<32x16xf32> {tensorop.grad = "blk.0.ffn_gate.weight"}, tensor<16x32xf32> {tensorop.grad = "blk.0.ffn_down.weight"}, tensor<16xf32> {tensorop.grad = "output_norm.weight"}, tensor<32x16xf32> {tensorop.grad = "output.weight"}) attributes {autodiff.recompute = "none"} {
// CHECK-NEXT:      %pos = arith.constant 0 : index
// CHECK-NEXT:      %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
// CHECK-NEXT:      %x_emb = tensorop.embedding %w_token_embd, %tokens {autodiff.saved} : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_l0_attn_norm = tensorop.weight "blk.0.attn_norm.weight" : tensor<16xf32>
// CHECK-NEXT:      %l0_attn_norm = tensorop.rmsnorm %x_emb, %w_l0_attn_norm {eps = 1.000000e-05 : f32, autodiff.saved} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_l0_attn_q = tensorop.weight "blk.0.attn_q.weight" : tensor<16x16xf32>
// CHECK-NEXT:      %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_l0_attn_k = tensorop.weight "blk.0.attn_k.weight" : tensor<8x16xf32>
// CHECK-NEXT:      %l0_k = tensorop.matmul %l0_attn_norm, %w_l0_attn_k {transpose_b} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
// CHECK-NEXT:      %w_l0_attn_v = tensorop.weight "blk.0.attn_v.weight" : tensor<8x16xf32>
// CHECK-NEXT:      %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_v {transpose_b, autodiff.saved} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
// CHECK-NEXT:      %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64, autodiff.saved} : (tensor<?x16xf32>, index) -> tensor<?x16xf32>
// CHECK-NEXT:      %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64, autodiff.saved} : (tensor<?x8xf32>, index) -> tensor<?x8xf32>
// CHECK-NEXT:      %l0_attn = tensorop.causal_attention %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32, autodiff.saved} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_l0_attn_output = tensorop.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
// CHECK-NEXT:      %l0_attn_out = tensorop.matmul %l0_attn, %w_l0_attn_output {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %l0_resid = tensorop.add %x_emb, %l0_attn_out {autodiff.saved} : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
// CHECK-NEXT:      %l0_ffn_norm = tensorop.rmsnorm %l0_resid, %w_l0_ffn_norm {eps = 1.000000e-05 : f32, autodiff.saved} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_l0_ffn_up = tensorop.weight "blk.0.ffn_up.weight" : tensor<32x16xf32>
// CHECK-NEXT:      %l0_ffn_up = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_up {transpose_b, autodiff.saved} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
// CHECK-NEXT:      %w_l0_ffn_gate = tensorop.weight "blk.0.ffn_gate.weight" : tensor<32x16xf32>
// CHECK-NEXT:      %l0_ffn_gate = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_gate {transpose_b, autodiff.saved} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
// CHECK-NEXT:      %l0_ffn_act = tensorop.swiglu %l0_ffn_gate, %l0_ffn_up {autodiff.saved} : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
// CHECK-NEXT:      %w_l0_ffn_down = tensorop.weight "blk.0.ffn_down.weight" : tensor<16x32xf32>
// CHECK-NEXT:      %l0_ffn_out = tensorop.matmul %l0_ffn_act, %w_l0_ffn_down {transpose_b} : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out {autodiff.saved} : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
// CHECK-NEXT:      %output_norm = tensorop.rmsnorm %l0_resid_v2, %w_output_norm {eps = 1.000000e-05 : f32, autodiff.saved} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
// CHECK-NEXT:      %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
// CHECK-NEXT:      %loss, %d_logits = tensorop.cross_entropy_fused %logits, %targets {autodiff.saved} : (tensor<?x32xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x32xf32>)
// CHECK-NEXT:      %d_output_norm, %d_w_output = tensorop.matmul_grad %d_logits, %output_norm, %w_output {transpose_b} : (tensor<?x32xf32>, tensor<?x16xf32>, tensor<32x16xf32>) -> (tensor<?x16xf32>, tensor<32x16xf32>)
// CHECK-NEXT:      %d_l0_resid_v2, %d_w_output_norm = tensorop.rmsnorm_grad %d_output_norm, %l0_resid_v2, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16xf32>) -> (tensor<?x16xf32>, tensor<16xf32>)
// CHECK-NEXT:      %d_l0_ffn_act, %d_w_l0_ffn_down = tensorop.matmul_grad %d_l0_resid_v2, %l0_ffn_act, %w_l0_ffn_down {transpose_b} : (tensor<?x16xf32>, tensor<?x32xf32>, tensor<16x32xf32>) -> (tensor<?x32xf32>, tensor<16x32xf32>)
// CHECK-NEXT:      %d_l0_ffn_gate, %d_l0_ffn_up = tensorop.swiglu_grad %d_l0_ffn_act, %l0_ffn_gate, %l0_ffn_up : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>)
// CHECK-NEXT:      %d_l0_ffn_norm, %d_w_l0_ffn_gate = tensorop.matmul_grad %d_l0_ffn_gate, %l0_ffn_norm, %w_l0_ffn_gate {transpose_b} : (tensor<?x32xf32>, tensor<?x16xf32>, tensor<32x16xf32>) -> (tensor<?x16xf32>, tensor<32x16xf32>)
// CHECK-NEXT:      %d_l0_ffn_norm_1, %d_w_l0_ffn_up = tensorop.matmul_grad %d_l0_ffn_up, %l0_ffn_norm, %w_l0_ffn_up {transpose_b} : (tensor<?x32xf32>, tensor<?x16xf32>, tensor<32x16xf32>) -> (tensor<?x16xf32>, tensor<32x16xf32>)
// CHECK-NEXT:      %d_l0_ffn_norm_2 = tensorop.accumulate %d_l0_ffn_norm, %d_l0_ffn_norm_1 : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %d_l0_resid, %d_w_l0_ffn_norm = tensorop.rmsnorm_grad %d_l0_ffn_norm_2, %l0_resid, %w_l0_ffn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16xf32>) -> (tensor<?x16xf32>, tensor<16xf32>)
// CHECK-NEXT:      %d_l0_resid_1 = tensorop.accumulate %d_l0_resid, %d_l0_resid_v2 : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %d_l0_attn, %d_w_l0_attn_output = tensorop.matmul_grad %d_l0_resid_1, %l0_attn, %w_l0_attn_output {transpose_b} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16x16xf32>) -> (tensor<?x16xf32>, tensor<16x16xf32>)
// CHECK-NEXT:      %d_l0_q_rot, %d_l0_k_rot, %d_l0_v = tensorop.causal_attention_grad %d_l0_attn, %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>)
// CHECK-NEXT:      %d_l0_k = tensorop.rope_grad %d_l0_k_rot, %pos {heads = 1 : i64, head_dim = 8 : i64} : (tensor<?x8xf32>, index) -> tensor<?x8xf32>
// CHECK-NEXT:      %d_l0_q = tensorop.rope_grad %d_l0_q_rot, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<?x16xf32>, index) -> tensor<?x16xf32>
// CHECK-NEXT:      %d_l0_attn_norm, %d_w_l0_attn_v = tensorop.matmul_grad %d_l0_v, %l0_attn_norm, %w_l0_attn_v {transpose_b} : (tensor<?x8xf32>, tensor<?x16xf32>, tensor<8x16xf32>) -> (tensor<?x16xf32>, tensor<8x16xf32>)
// CHECK-NEXT:      %d_l0_attn_norm_1, %d_w_l0_attn_k = tensorop.matmul_grad %d_l0_k, %l0_attn_norm, %w_l0_attn_k {transpose_b} : (tensor<?x8xf32>, tensor<?x16xf32>, tensor<8x16xf32>) -> (tensor<?x16xf32>, tensor<8x16xf32>)
// CHECK-NEXT:      %d_l0_attn_norm_2, %d_w_l0_attn_q = tensorop.matmul_grad %d_l0_q, %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16x16xf32>) -> (tensor<?x16xf32>, tensor<16x16xf32>)
// CHECK-NEXT:      %d_l0_attn_norm_3 = tensorop.accumulate %d_l0_attn_norm, %d_l0_attn_norm_1 : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %d_l0_attn_norm_4 = tensorop.accumulate %d_l0_attn_norm_3, %d_l0_attn_norm_2 : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %d_x_emb, %d_w_l0_attn_norm = tensorop.rmsnorm_grad %d_l0_attn_norm_4, %x_emb, %w_l0_attn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16xf32>) -> (tensor<?x16xf32>, tensor<16xf32>)
// CHECK-NEXT:      %d_x_emb_1 = tensorop.accumulate %d_x_emb, %d_l0_resid_1 : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:      %d_w_token_embd = tensorop.embedding_grad %d_x_emb_1, %tokens {vocab = 32 : i64} : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<32x16xf32>
// CHECK-NEXT:      func.return %loss, %d_w_token_embd, %d_w_l0_attn_norm, %d_w_l0_attn_q, %d_w_l0_attn_k, %d_w_l0_attn_v, %d_w_l0_attn_output, %d_w_l0_ffn_norm, %d_w_l0_ffn_up, %d_w_l0_ffn_gate, %d_w_l0_ffn_down, %d_w_output_norm, %d_w_output : tensor<f32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<16x32xf32>, tensor<16xf32>, tensor<32x16xf32>
// CHECK-NEXT:    }
// CHECK:       func.func @bad_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {

// The attention output is no longer saved; it is recomputed from the saved q/k/v
// just before the output projection's gradient needs it ({autodiff.recomputed}
// keeps cse from merging the clone back into the forward op).
// ATT-LABEL: func.func @train_step(
// ATT-SAME:  attributes {autodiff.recompute = "attention"}
// ATT:       %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_v {transpose_b, autodiff.saved}
// ATT:       %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64, autodiff.saved}
// ATT:       %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64, autodiff.saved}
// ATT-NEXT:  %l0_attn = tensorop.causal_attention %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} :
// ATT:       %d_l0_resid_1 = tensorop.accumulate %d_l0_resid, %d_l0_resid_v2
// ATT-NEXT:  %l0_attn_re = tensorop.causal_attention %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32, autodiff.recomputed} :
// ATT-NEXT:  %d_l0_attn, %d_w_l0_attn_output = tensorop.matmul_grad %d_l0_resid_1, %l0_attn_re, %w_l0_attn_output {transpose_b}
// ATT-NEXT:  %d_l0_q_rot, %d_l0_k_rot, %d_l0_v = tensorop.causal_attention_grad %d_l0_attn, %l0_q_rot, %l0_k_rot, %l0_v

// Activation checkpointing: exactly the residual stream (x_emb, l0_resid,
// l0_resid_v2) and the fused loss are saved; each layer's activations are
// recomputed (the *_re clones) in that layer's backward.
// ALL-LABEL: func.func @train_step(
// ALL-SAME:  attributes {autodiff.recompute = "all"}
// ALL:       %x_emb = tensorop.embedding %w_token_embd, %tokens {autodiff.saved}
// ALL-NOT:   {{= tensorop.(rmsnorm|matmul|rope|causal_attention|swiglu) .*autodiff.saved}}
// ALL:       %l0_resid = tensorop.add %x_emb, %l0_attn_out {autodiff.saved}
// ALL-NOT:   {{= tensorop.(rmsnorm|matmul|rope|causal_attention|swiglu) .*autodiff.saved}}
// ALL:       %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out {autodiff.saved}
// ALL-NOT:   {{= tensorop.(rmsnorm|matmul|rope|causal_attention|swiglu) .*autodiff.saved}}
// ALL:       %loss, %d_logits = tensorop.cross_entropy_fused %logits, %targets {autodiff.saved}
// ALL-NOT:   {{= tensorop.(rmsnorm|matmul|rope|causal_attention|swiglu) .*autodiff.saved}}
// ALL:       %output_norm_re = tensorop.rmsnorm %l0_resid_v2, %w_output_norm
// ALL-NEXT:  %d_output_norm, %d_w_output = tensorop.matmul_grad %d_logits, %output_norm_re, %w_output
// ALL-NEXT:  %d_l0_resid_v2, %d_w_output_norm = tensorop.rmsnorm_grad %d_output_norm, %l0_resid_v2, %w_output_norm
// ALL-NEXT:  %l0_ffn_norm_re = tensorop.rmsnorm %l0_resid, %w_l0_ffn_norm
// ALL-NEXT:  %l0_ffn_gate_re = tensorop.matmul %l0_ffn_norm_re, %w_l0_ffn_gate
// ALL-NEXT:  %l0_ffn_up_re = tensorop.matmul %l0_ffn_norm_re, %w_l0_ffn_up
// ALL-NEXT:  %l0_ffn_act_re = tensorop.swiglu %l0_ffn_gate_re, %l0_ffn_up_re
// ALL-NEXT:  %d_l0_ffn_act, %d_w_l0_ffn_down = tensorop.matmul_grad %d_l0_resid_v2, %l0_ffn_act_re, %w_l0_ffn_down
// ALL:       %l0_attn_norm_re = tensorop.rmsnorm %x_emb, %w_l0_attn_norm
// ALL-NEXT:  %l0_q_re = tensorop.matmul %l0_attn_norm_re, %w_l0_attn_q
// ALL-NEXT:  %l0_q_rot_re = tensorop.rope %l0_q_re, %pos
// ALL-NEXT:  %l0_k_re = tensorop.matmul %l0_attn_norm_re, %w_l0_attn_k
// ALL-NEXT:  %l0_k_rot_re = tensorop.rope %l0_k_re, %pos
// ALL-NEXT:  %l0_v_re = tensorop.matmul %l0_attn_norm_re, %w_l0_attn_v
// ALL-NEXT:  %l0_attn_re = tensorop.causal_attention %l0_q_rot_re, %l0_k_rot_re, %l0_v_re
// ALL-NEXT:  %d_l0_attn, %d_w_l0_attn_output = tensorop.matmul_grad %d_l0_resid_1, %l0_attn_re, %w_l0_attn_output
// ALL-NEXT:  %d_l0_q_rot, %d_l0_k_rot, %d_l0_v = tensorop.causal_attention_grad %d_l0_attn, %l0_q_rot_re, %l0_k_rot_re, %l0_v_re
// ALL-NOT:   {{= tensorop.(rmsnorm|matmul|rope|causal_attention|swiglu) .*autodiff.saved}}
// ALL:       func.return

builtin.module {
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %pos = arith.constant 0 : index
    %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
    %x_emb = tensorop.embedding %w_token_embd, %tokens : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %w_l0_attn_norm = tensorop.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %l0_attn_norm = tensorop.rmsnorm %x_emb, %w_l0_attn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_q = tensorop.weight "blk.0.attn_q.weight" : tensor<16x16xf32>
    %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_k = tensorop.weight "blk.0.attn_k.weight" : tensor<8x16xf32>
    %l0_k = tensorop.matmul %l0_attn_norm, %w_l0_attn_k {transpose_b} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
    %w_l0_attn_v = tensorop.weight "blk.0.attn_v.weight" : tensor<8x16xf32>
    %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_v {transpose_b} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
    %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<?x16xf32>, index) -> tensor<?x16xf32>
    %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64} : (tensor<?x8xf32>, index) -> tensor<?x8xf32>
    %l0_attn = tensorop.causal_attention %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x16xf32>
    %w_l0_attn_output = tensorop.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %l0_attn_out = tensorop.matmul %l0_attn, %w_l0_attn_output {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %l0_resid = tensorop.add %x_emb, %l0_attn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %l0_ffn_norm = tensorop.rmsnorm %l0_resid, %w_l0_ffn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_ffn_up = tensorop.weight "blk.0.ffn_up.weight" : tensor<32x16xf32>
    %l0_ffn_up = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_up {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %w_l0_ffn_gate = tensorop.weight "blk.0.ffn_gate.weight" : tensor<32x16xf32>
    %l0_ffn_gate = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_gate {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %l0_ffn_act = tensorop.swiglu %l0_ffn_gate, %l0_ffn_up : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %w_l0_ffn_down = tensorop.weight "blk.0.ffn_down.weight" : tensor<16x32xf32>
    %l0_ffn_out = tensorop.matmul %l0_ffn_act, %w_l0_ffn_down {transpose_b} : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x16xf32>
    %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %output_norm = tensorop.rmsnorm %l0_resid_v2, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
    %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %loss = tensorop.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
  func.func @bad_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %w = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
    %x = tensorop.embedding %w, %tokens : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %h = tensorop.last_rows %x : (tensor<?x16xf32>) -> tensor<1x16xf32>
    %logits = tensorop.matmul %h, %w {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
    %loss = tensorop.cross_entropy %logits, %targets : (tensor<1x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
  func.func @cached_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>, %kc: tensor<64x16xf32>, %vc: tensor<64x16xf32>) -> tensor<f32> {
    %pos = arith.constant 0 : index
    %w = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
    %x = tensorop.embedding %w, %tokens : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %o = tensorop.causal_attention %x, %kc, %vc, pos %pos {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<64x16xf32>, tensor<64x16xf32>, index) -> tensor<?x16xf32>
    %logits = tensorop.matmul %o, %w {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %loss = tensorop.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
}

// -----

// CHECK-LABEL: func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> (tensor<f32>, tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, tensor<64x16xf32> {tensorop.grad = "position_embd.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.attn_norm.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.attn_norm.bias"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.attn_qkv.bias"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}, tensor<16xf32> {tensorop.grad = "blk.0.attn_qkv.bias", tensorop.offset = 16 : i64}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 32 : i64}, tensor<16xf32> {tensorop.grad = "blk.0.attn_qkv.bias", tensorop.offset = 32 : i64}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_output.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.attn_output.bias"}, tensor<16xf32> {tensorop.grad = "blk.0.ffn_norm.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.ffn_norm.bias"}, tensor<64x16xf32> {tensorop.grad = "blk.0.ffn_up.weight"}, tensor<64xf32> {tensorop.grad = "blk.0.ffn_up.bias"}, tensor<16x64xf32> {tensorop.grad = "blk.0.ffn_down.weight"}, tensor<16xf32> {tensorop.grad = "blk.0.ffn_down.bias"}, tensor<16xf32> {tensorop.grad = "output_norm.weight"}, tensor<16xf32> {tensorop.grad = "output_norm.bias"}) attributes {autodiff.recompute = "none"} {
// CHECK:       %logits = tensorop.matmul %output_norm, %w_token_embd {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
// CHECK:       %loss, %d_logits = tensorop.cross_entropy_fused %logits, %targets {autodiff.saved} : (tensor<?x32xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x32xf32>)
// CHECK:       %d_l0_attn_norm_1, %d_w_l0_attn_qkv_off16, %d_b_l0_attn_qkv_off16 = tensorop.matmul_grad %d_l0_k, %l0_attn_norm, %w_l0_attn_qkv_off16 {transpose_b, has_bias} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16x16xf32>) -> (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>)
// CHECK:       %d_w_position_embd = tensorop.embedding_grad %d_x_pos_1, %pos_ids {vocab = 64 : i64} : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<64x16xf32>
// CHECK:       %d_w_token_embd_1 = tensorop.embedding_grad %d_x_pos_1, %tokens {vocab = 32 : i64} : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<32x16xf32>
// CHECK:       %d_w_token_embd_2 = tensorop.accumulate %d_w_token_embd, %d_w_token_embd_1 : (tensor<32x16xf32>, tensor<32x16xf32>) -> tensor<32x16xf32>
// CHECK:       func.return %loss, %d_w_token_embd_2, %d_w_position_embd, %d_w_l0_attn_norm, %d_b_l0_attn_norm, %d_w_l0_attn_qkv, %d_b_l0_attn_qkv, %d_w_l0_attn_qkv_off16, %d_b_l0_attn_qkv_off16, %d_w_l0_attn_qkv_off32, %d_b_l0_attn_qkv_off32, %d_w_l0_attn_output, %d_b_l0_attn_output, %d_w_l0_ffn_norm, %d_b_l0_ffn_norm, %d_w_l0_ffn_up, %d_b_l0_ffn_up, %d_w_l0_ffn_down, %d_b_l0_ffn_down, %d_w_output_norm, %d_b_output_norm : tensor<f32>, tensor<32x16xf32>, tensor<64x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<64x16xf32>, tensor<64xf32>, tensor<16x64xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>

builtin.module {
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %pos = arith.constant 0 : index
    %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
    %x_emb = tensorop.embedding %w_token_embd, %tokens : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %pos_ids = tensorop.positions %tokens, %pos : (tensor<?xi32>, index) -> tensor<?xi32>
    %w_position_embd = tensorop.weight "position_embd.weight" : tensor<64x16xf32>
    %pos_emb = tensorop.embedding %w_position_embd, %pos_ids : (tensor<64x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %x_pos = tensorop.add %x_emb, %pos_emb : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_norm = tensorop.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %b_l0_attn_norm = tensorop.weight "blk.0.attn_norm.bias" : tensor<16xf32>
    %l0_attn_norm = tensorop.layernorm %x_pos, %w_l0_attn_norm, bias %b_l0_attn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_qkv = tensorop.weight "blk.0.attn_qkv.weight" : tensor<16x16xf32>
    %b_l0_attn_qkv = tensorop.weight "blk.0.attn_qkv.bias" : tensor<16xf32>
    %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_qkv, bias %b_l0_attn_qkv {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_qkv_off16 = tensorop.weight "blk.0.attn_qkv.weight" offset 16 : tensor<16x16xf32>
    %b_l0_attn_qkv_off16 = tensorop.weight "blk.0.attn_qkv.bias" offset 16 : tensor<16xf32>
    %l0_k = tensorop.matmul %l0_attn_norm, %w_l0_attn_qkv_off16, bias %b_l0_attn_qkv_off16 {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_qkv_off32 = tensorop.weight "blk.0.attn_qkv.weight" offset 32 : tensor<16x16xf32>
    %b_l0_attn_qkv_off32 = tensorop.weight "blk.0.attn_qkv.bias" offset 32 : tensor<16xf32>
    %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_qkv_off32, bias %b_l0_attn_qkv_off32 {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %l0_attn = tensorop.causal_attention %l0_q, %l0_k, %l0_v {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_l0_attn_output = tensorop.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %b_l0_attn_output = tensorop.weight "blk.0.attn_output.bias" : tensor<16xf32>
    %l0_attn_out = tensorop.matmul %l0_attn, %w_l0_attn_output, bias %b_l0_attn_output {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %l0_resid = tensorop.add %x_pos, %l0_attn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %b_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.bias" : tensor<16xf32>
    %l0_ffn_norm = tensorop.layernorm %l0_resid, %w_l0_ffn_norm, bias %b_l0_ffn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_l0_ffn_up = tensorop.weight "blk.0.ffn_up.weight" : tensor<64x16xf32>
    %b_l0_ffn_up = tensorop.weight "blk.0.ffn_up.bias" : tensor<64xf32>
    %l0_ffn_up = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_up, bias %b_l0_ffn_up {transpose_b} : (tensor<?x16xf32>, tensor<64x16xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %l0_ffn_act = tensorop.gelu %l0_ffn_up {approximate = "tanh"} : (tensor<?x64xf32>) -> tensor<?x64xf32>
    %w_l0_ffn_down = tensorop.weight "blk.0.ffn_down.weight" : tensor<16x64xf32>
    %b_l0_ffn_down = tensorop.weight "blk.0.ffn_down.bias" : tensor<16xf32>
    %l0_ffn_out = tensorop.matmul %l0_ffn_act, %w_l0_ffn_down, bias %b_l0_ffn_down {transpose_b} : (tensor<?x64xf32>, tensor<16x64xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %b_output_norm = tensorop.weight "output_norm.bias" : tensor<16xf32>
    %output_norm = tensorop.layernorm %l0_resid_v2, %w_output_norm, bias %b_output_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %logits = tensorop.matmul %output_norm, %w_token_embd {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %loss = tensorop.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
}
