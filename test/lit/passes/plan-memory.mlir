// plan-memory on a one-layer Llama-style model after bufferize (prefill + decode,
// context 16, max_tokens 8). Weights get their own arena (the mmapped file, laid out
// in IR order); KV cache and activations share @arena with a canary after each
// region; io buffers (tokens, logits) are the caller's memory and get no offset;
// activation buffers whose lifetimes do not intersect share bytes.

// RUN: ckc-opt %s -p plan-memory | filecheck %s
// RUN: ckc-opt %s -p 'plan-memory{reuse=false canaries=false}' | filecheck %s --check-prefix=NOREUSE
// RUN: ckc-opt %s -p 'plan-memory,plan-memory' | filecheck %s
// RUN: not ckc-opt %s -p 'plan-memory{align=48}' 2>&1 | filecheck %s --check-prefix=BADALIGN
// Alias buffers (bufferize's optimizer blocks, covers = [first, last]) get no bytes:
// each is placed over its members, and must span exactly them.
// RUN: ckc-opt %root/test/lit/inputs/plan-memory-alias.mlir -p plan-memory | filecheck %s --check-prefix=ALIAS
// RUN: not ckc-opt %root/test/lit/inputs/plan-memory-alias.mlir -p 'plan-memory{align=128}' 2>&1 | filecheck %s --check-prefix=ALIAS-ALIGN
// ALIAS:      buffer.arena @weights size 256 align 64 regions {weights at 0 size 256}
// ALIAS-NEXT: buffer.arena @arena size 320 align 64 regions {grads at 0 size 256} canaries [256]
// ALIAS-NEXT: buffer.buffer @w.a : tensor<40xf32> in weights size 160 align 64 offset 0
// ALIAS-NEXT: buffer.buffer @w.b : tensor<16xf32> in weights size 64 align 64 offset 192
// ALIAS-NEXT: buffer.buffer @params.all : tensor<64xf32> in weights size 256 align 64 offset 0 {covers = ["w.a", "w.b"]}
// ALIAS-NEXT: buffer.buffer @grad.w.a : tensor<40xf32> in grads size 160 align 64 offset 0
// ALIAS-NEXT: buffer.buffer @grad.w.b : tensor<16xf32> in grads size 64 align 64 offset 192
// ALIAS-NEXT: buffer.buffer @grads.all : tensor<64xf32> in grads size 256 align 64 offset 0 {covers = ["grad.w.a", "grad.w.b"]}
// ALIAS-ALIGN: plan-memory-alias.mlir:7:3: error: 'buffer.buffer' op plan-memory: alias @params.all is 256 bytes but @w.a .. @w.b span 320 (laid out with align=128; bufferize sizes aliases for 64)

// CHECK:       buffer.arena @weights size 13504 align 64 regions {weights at 0 size 13504}
// CHECK-NEXT:  buffer.arena @arena size 4736 align 64 regions {kv_cache at 0 size 1024, activations at 1088 size 3584} canaries [1024, 4672]
// CHECK-NEXT:  buffer.buffer @token_embd.weight : tensor<32x16xf32> in weights size 2048 align 64 offset 0
// CHECK-NEXT:  buffer.buffer @blk.0.attn_norm.weight : tensor<16xf32> in weights size 64 align 64 offset 2048
// CHECK:       buffer.buffer @output.weight : tensor<32x16xf32> in weights size 2048 align 64 offset 11456
// CHECK-NEXT:  buffer.buffer @blk.0.k_cache : tensor<16x8xf32> in kv_cache size 512 align 64 offset 0
// CHECK-NEXT:  buffer.buffer @blk.0.v_cache : tensor<16x8xf32> in kv_cache size 512 align 64 offset 512
// CHECK-NEXT:  buffer.buffer @tokens : tensor<?xi32> in io size 32 align 64{{$}}
// CHECK-NEXT:  buffer.buffer @logits : tensor<?x32xf32> in io size 1024 align 64{{$}}
// CHECK-LABEL: func.func @prefill
// CHECK-NEXT:  buffer.buffer @x_emb : tensor<?x16xf32> in activations size 512 align 64 offset 1088 live 0 to 9
// CHECK-NEXT:  buffer.buffer @l0_attn_norm : tensor<?x16xf32> in activations size 512 align 64 offset 1600 live 1 to 4
// CHECK-NEXT:  buffer.buffer @l0_q : tensor<?x16xf32> in activations size 512 align 64 offset 2112 live 2 to 5
// q_rot reuses attn_norm's bytes: attn_norm is dead after call 4, q_rot is born at call 5.
// CHECK-NEXT:  buffer.buffer @l0_k : tensor<?x8xf32> in activations size 256 align 64 offset 2624 live 3 to 6
// CHECK-NEXT:  buffer.buffer @l0_q_rot : tensor<?x16xf32> in activations size 512 align 64 offset 1600 live 5 to 7
// CHECK-LABEL: func.func @decode

// Without reuse the activation region is the sum of prefill's buffers (8512 vs 3584).
// NOREUSE: buffer.arena @arena size 9536 align 64 regions {kv_cache at 0 size 1024, activations at 1024 size 8512}{{$}}
// NOREUSE-LABEL: func.func @prefill
// NOREUSE: buffer.buffer @l0_attn_norm : tensor<?x16xf32> in activations size 512 align 64 offset 4608 live 1 to 4
// NOREUSE: buffer.buffer @l0_q_rot : tensor<?x16xf32> in activations size 512 align 64 offset 5632 live 5 to 7

// BADALIGN: error: plan-memory: align=48 is not a power of two

builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 32, hidden = 16, layers = 1, heads = 2, kv_heads = 1, head_dim = 8, ffn = 32, context = 64, norm = "rms", norm_eps = 1.0e-05, norm_offset = 0.0, norm_bias = false, post_norms = false, mlp = "swiglu", act = "silu", mlp_bias = false, qkv_bias = false, o_bias = false, qk_norm = false, attn_scale = 0.3535533905932738, scale_by_inverse_layer = false, attn_softcap = 0.0, final_softcap = 0.0, rope_style = "neox", rope_theta = 10000.0, rotary_dim = 8, rope_scaling = "none", rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0, rope_original_context = 0, rope_local_theta = 10000.0, rope_local_scaling = true, learned_pos = false, embed_scale = 1.0, tied_embeddings = false, sliding_window = 0, sliding_layers = [], bos = 1, eos = 2>} {
  buffer.buffer @token_embd.weight : tensor<32x16xf32> in weights size 2048 align 64
  buffer.buffer @blk.0.attn_norm.weight : tensor<16xf32> in weights size 64 align 64
  buffer.buffer @blk.0.attn_q.weight : tensor<16x16xf32> in weights size 1024 align 64
  buffer.buffer @blk.0.attn_k.weight : tensor<8x16xf32> in weights size 512 align 64
  buffer.buffer @blk.0.attn_v.weight : tensor<8x16xf32> in weights size 512 align 64
  buffer.buffer @blk.0.attn_output.weight : tensor<16x16xf32> in weights size 1024 align 64
  buffer.buffer @blk.0.ffn_norm.weight : tensor<16xf32> in weights size 64 align 64
  buffer.buffer @blk.0.ffn_up.weight : tensor<32x16xf32> in weights size 2048 align 64
  buffer.buffer @blk.0.ffn_gate.weight : tensor<32x16xf32> in weights size 2048 align 64
  buffer.buffer @blk.0.ffn_down.weight : tensor<16x32xf32> in weights size 2048 align 64
  buffer.buffer @output_norm.weight : tensor<16xf32> in weights size 64 align 64
  buffer.buffer @output.weight : tensor<32x16xf32> in weights size 2048 align 64
  buffer.buffer @blk.0.k_cache : tensor<16x8xf32> in kv_cache size 512 align 64
  buffer.buffer @blk.0.v_cache : tensor<16x8xf32> in kv_cache size 512 align 64
  buffer.buffer @tokens : tensor<?xi32> in io size 32 align 64
  buffer.buffer @logits : tensor<?x32xf32> in io size 1024 align 64
  func.func @prefill(%n: index, %pos: index) {
    buffer.buffer @x_emb : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_attn_norm : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_q : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_k : tensor<?x8xf32> in activations size 256 align 64
    buffer.buffer @l0_q_rot : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_attn : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_attn_out : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_resid : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_ffn_norm : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_ffn_up : tensor<?x32xf32> in activations size 1024 align 64
    buffer.buffer @l0_ffn_gate : tensor<?x32xf32> in activations size 1024 align 64
    buffer.buffer @l0_ffn_act : tensor<?x32xf32> in activations size 1024 align 64
    buffer.buffer @l0_ffn_out : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @l0_resid_v2 : tensor<?x16xf32> in activations size 512 align 64
    buffer.buffer @output_norm : tensor<1x16xf32> in activations size 64 align 64
    %c1 = arith.constant 1 : index
    %n_minus1 = arith.subi %n, %c1 : index
    buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb) params(rows = %n : index, vocab = 32 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
    buffer.call rmsnorm ins(@x_emb, @blk.0.attn_norm.weight) outs(@l0_attn_norm) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_q.weight) outs(@l0_q) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_k.weight) outs(@l0_k) params(rows = %n : index, n = 8 : i64, k = 16 : i64)
    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_v.weight) outs(@blk.0.v_cache) params(rows = %n : index, out0_row = %pos : index, n = 8 : i64, k = 16 : i64)
    buffer.call rope ins(@l0_q) outs(@l0_q_rot) params(rows = %n : index, pos = %pos : index, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
    buffer.call rope ins(@l0_k) outs(@blk.0.k_cache) params(rows = %n : index, pos = %pos : index, out0_row = %pos : index, heads = 1 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
    buffer.call attention ins(@l0_q_rot, @blk.0.k_cache, @blk.0.v_cache) outs(@l0_attn) params(rows = %n : index, pos = %pos : index, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, window = 0 : i64, scale = 0.353553385 : f32, softcap = 0.000000e+00 : f32)
    buffer.call gemm ins(@l0_attn, @blk.0.attn_output.weight) outs(@l0_attn_out) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
    buffer.call add ins(@x_emb, @l0_attn_out) outs(@l0_resid) params(rows = %n : index, cols = 16 : i64)
    buffer.call rmsnorm ins(@l0_resid, @blk.0.ffn_norm.weight) outs(@l0_ffn_norm) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
    buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_up.weight) outs(@l0_ffn_up) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
    buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_gate.weight) outs(@l0_ffn_gate) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
    buffer.call swiglu ins(@l0_ffn_gate, @l0_ffn_up) outs(@l0_ffn_act) params(rows = %n : index, cols = 32 : i64)
    buffer.call gemm ins(@l0_ffn_act, @blk.0.ffn_down.weight) outs(@l0_ffn_out) params(rows = %n : index, n = 16 : i64, k = 32 : i64)
    buffer.call add ins(@l0_resid, @l0_ffn_out) outs(@l0_resid_v2) params(rows = %n : index, cols = 16 : i64)
    buffer.call rmsnorm ins(@l0_resid_v2, @output_norm.weight) outs(@output_norm) params(in0_row = %n_minus1 : index, rows = 1 : i64, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
    buffer.call gemm ins(@output_norm, @output.weight) outs(@logits) params(rows = 1 : i64, n = 32 : i64, k = 16 : i64)
    func.return
  }
  func.func @decode(%pos: index) {
    buffer.buffer @x_emb : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_attn_norm : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_q : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_k : tensor<1x8xf32> in activations size 32 align 64
    buffer.buffer @l0_q_rot : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_attn : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_attn_out : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_resid : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_ffn_norm : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_ffn_up : tensor<1x32xf32> in activations size 128 align 64
    buffer.buffer @l0_ffn_gate : tensor<1x32xf32> in activations size 128 align 64
    buffer.buffer @l0_ffn_act : tensor<1x32xf32> in activations size 128 align 64
    buffer.buffer @l0_ffn_out : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @l0_resid_v2 : tensor<1x16xf32> in activations size 64 align 64
    buffer.buffer @output_norm : tensor<1x16xf32> in activations size 64 align 64
    buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb) params(rows = 1 : i64, vocab = 32 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
    buffer.call rmsnorm ins(@x_emb, @blk.0.attn_norm.weight) outs(@l0_attn_norm) params(rows = 1 : i64, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_q.weight) outs(@l0_q) params(rows = 1 : i64, n = 16 : i64, k = 16 : i64)
    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_k.weight) outs(@l0_k) params(rows = 1 : i64, n = 8 : i64, k = 16 : i64)
    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_v.weight) outs(@blk.0.v_cache) params(out0_row = %pos : index, rows = 1 : i64, n = 8 : i64, k = 16 : i64)
    buffer.call rope ins(@l0_q) outs(@l0_q_rot) params(pos = %pos : index, rows = 1 : i64, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
    buffer.call rope ins(@l0_k) outs(@blk.0.k_cache) params(pos = %pos : index, out0_row = %pos : index, rows = 1 : i64, heads = 1 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
    buffer.call attention_decode ins(@l0_q_rot, @blk.0.k_cache, @blk.0.v_cache) outs(@l0_attn) params(pos = %pos : index, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, window = 0 : i64, scale = 0.353553385 : f32, softcap = 0.000000e+00 : f32)
    buffer.call gemm ins(@l0_attn, @blk.0.attn_output.weight) outs(@l0_attn_out) params(rows = 1 : i64, n = 16 : i64, k = 16 : i64)
    buffer.call add ins(@x_emb, @l0_attn_out) outs(@l0_resid) params(rows = 1 : i64, cols = 16 : i64)
    buffer.call rmsnorm ins(@l0_resid, @blk.0.ffn_norm.weight) outs(@l0_ffn_norm) params(rows = 1 : i64, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
    buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_up.weight) outs(@l0_ffn_up) params(rows = 1 : i64, n = 32 : i64, k = 16 : i64)
    buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_gate.weight) outs(@l0_ffn_gate) params(rows = 1 : i64, n = 32 : i64, k = 16 : i64)
    buffer.call swiglu ins(@l0_ffn_gate, @l0_ffn_up) outs(@l0_ffn_act) params(rows = 1 : i64, cols = 32 : i64)
    buffer.call gemm ins(@l0_ffn_act, @blk.0.ffn_down.weight) outs(@l0_ffn_out) params(rows = 1 : i64, n = 16 : i64, k = 32 : i64)
    buffer.call add ins(@l0_resid, @l0_ffn_out) outs(@l0_resid_v2) params(rows = 1 : i64, cols = 16 : i64)
    buffer.call rmsnorm ins(@l0_resid_v2, @output_norm.weight) outs(@output_norm) params(rows = 1 : i64, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
    buffer.call gemm ins(@output_norm, @output.weight) outs(@logits) params(rows = 1 : i64, n = 32 : i64, k = 16 : i64)
    func.return
  }
}

