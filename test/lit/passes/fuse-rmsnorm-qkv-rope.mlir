// fuse-rmsnorm-qkv-rope on the two-layer Llama (lower-transformer's decode): per
// layer, rmsnorm + the q/k/v matmuls + the two ropes become one
// tensorop.rmsnorm_qkv_rope; kv_write and attention read its results. bufferize
// makes it one kernel call whose k and v outputs are the KV-cache rows at %pos and
// whose last out is the normalized-x scratch; pack-weights packs its three weights
// and sets packed = 1. GPT-2 (LayerNorm, fused qkv weight) has nothing to fuse.
// Quantized projections (a GGUF's !quant.q8_0 Wq/Wk/Wv: the fused kernel reads
// f32 weights) stay unfused: their matmuls become qgemm calls.

// RUN: ckc-opt %S/../models/llama-2layer.mlir -p 'lower-transformer{modes=decode},fuse-rmsnorm-qkv-rope' | filecheck %s
// RUN: ckc-opt %S/../models/llama-2layer.mlir -p 'lower-transformer{modes=decode},fuse-rmsnorm-qkv-rope' | ckc-opt | filecheck %s
// RUN: ckc-opt %S/../models/llama-2layer.mlir -p 'lower-transformer{modes=decode},fuse-rmsnorm-qkv-rope,bufferize{max_tokens=8},pack-weights' | filecheck %s --check-prefix=BUF
// RUN: ckc-opt %S/../models/gpt2-2layer.mlir -p 'lower-transformer,fuse-rmsnorm-qkv-rope' | filecheck %s --check-prefix=GPT2
// RUN: sed 's/tensor<64x64xf32>/tensor<64x64x!quant.q8_0>/g; s/tensor<32x64xf32>/tensor<32x64x!quant.q8_0>/g' %S/../models/llama-2layer.mlir | ckc-opt -p 'lower-transformer{modes=decode},fuse-rmsnorm-qkv-rope' | filecheck %s --check-prefix=QUANT

// CHECK-LABEL: func.func @decode
// CHECK:       %[[X:.*]] = tensorop.embedding
// CHECK-NOT:   tensorop.rmsnorm %[[X]]
// CHECK:       %l0_q_rot, %l0_k_rot, %l0_v = tensorop.rmsnorm_qkv_rope %[[X]], %w_l0_attn_norm, %w_l0_attn_q, %w_l0_attn_k, %w_l0_attn_v, %pos {heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, eps = 1.000000e-05 : f32}
// CHECK-NEXT:  tensorop.kv_write %kc0, %l0_k_rot, %pos
// CHECK-NEXT:  tensorop.kv_write %vc0, %l0_v, %pos
// CHECK-NEXT:  tensorop.causal_attention %l0_q_rot
// the MLP's rmsnorm and matmuls are not an attention input: left alone
// CHECK:       tensorop.rmsnorm %l0_resid
// CHECK:       tensorop.rmsnorm_qkv_rope %l0_resid_v2, %w_l1_attn_norm
// CHECK-NOT:   tensorop.rope

// BUF:       buffer.buffer @blk.0.attn_q.weight : tensor<64x64xf32> in weights size 16384 align 64 layout p32
// BUF-NEXT:  buffer.buffer @blk.0.attn_k.weight : tensor<32x64xf32> in weights size 8192 align 64 layout p32
// BUF-LABEL: func.func @decode
// BUF:       buffer.call rmsnorm_qkv_rope ins(@x_emb, @blk.0.attn_norm.weight, @blk.0.attn_q.weight, @blk.0.attn_k.weight, @blk.0.attn_v.weight) outs(@l0_q_rot, @blk.0.k_cache, @blk.0.v_cache, @l0_attn_norm) params(pos = %pos : index, out1_row = %pos : index, out2_row = %pos : index, rows = 1 : i64, cols = 64 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 16 : i64, rotary_dim = 16 : i64, theta = 1.000000e+04 : f32, style = 0 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32, packed = 1 : i64)
// BUF-NOT:   buffer.call rope

// GPT2-NOT: rmsnorm_qkv_rope
// GPT2:     tensorop.layernorm

// QUANT-NOT: rmsnorm_qkv_rope
// QUANT:     %l0_attn_norm = tensorop.rmsnorm %x_emb
// QUANT:      %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<1x64xf32>, tensor<64x64x!quant.q8_0>)
// QUANT-NOT: rmsnorm_qkv_rope
