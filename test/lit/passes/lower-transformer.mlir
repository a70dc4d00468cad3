// lower-transformer: the whole-model transformer ops of @forward (and @train_step)
// become tensorop graphs, one function per mode: @prefill (a chunk at %pos, KV
// caches in and out as values, logits of the last row), @prefill_all (logits of
// every row), @decode (one token, static shapes) and @train_step (forward without
// cache + cross_entropy). Chunk 1: a one-layer Llama-style model (GQA 2/1 heads,
// RoPE, RMSNorm, SwiGLU). Chunk 2: a one-layer GPT-2-style model (learned
// positions, LayerNorm with biases, fused attn_qkv read as row slices, GELU MLP,
// tied head). The third RUN picks modes and a shorter cache; the F16 run stores
// the caches in f16 (kv_type: the cache operands and results of @decode, its
// kv_write and causal_attention carry the element type); q8_0 needs head_dim a
// multiple of 32 (these models have 8) and is refused in one line.

// RUN: ckc-opt %s --split-input-file -p lower-transformer | filecheck %s
// RUN: ckc-opt %s --split-input-file -p lower-transformer | ckc-opt --split-input-file | filecheck %s
// RUN: ckc-opt %s --split-input-file -p 'lower-transformer{modes=decode context=16}' | filecheck %s --check-prefix=DEC
// RUN: ckc-opt %s --split-input-file -p 'lower-transformer{modes=decode_batch slots=4 context=16}' | filecheck %s --check-prefix=BATCH
// RUN: ckc-opt %s --split-input-file -p 'lower-transformer{modes=decode_batch}' --verify-diagnostics | filecheck %s --check-prefix=NOSLOTS

// The fourth run line: the slot-batched @decode_batch (rows of several sequences,
// slot caches [slots, context, W], per-row positions; logits of the rows
// out_rows, gathered before the final norm).
// BATCH-LABEL: func.func @decode_batch(%tokens: tensor<?xi32>, %slots: tensor<?xi32>, %positions: tensor<?xi32>, %out_rows: tensor<?xi32>, %kc0: tensor<4x16x8xf32>, %vc0: tensor<4x16x8xf32>) -> (tensor<?x32xf32>, tensor<4x16x8xf32>, tensor<4x16x8xf32>) {
// BATCH:         %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
// BATCH:         %l0_q_rot = tensorop.rope_rows %l0_q, %positions {heads = 2 : i64, head_dim = 8 : i64} : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
// BATCH-NEXT:    %l0_k_rot = tensorop.rope_rows %l0_k, %positions {heads = 1 : i64, head_dim = 8 : i64} : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
// BATCH-NEXT:    %kc0_new = tensorop.kv_scatter %kc0, %l0_k_rot, %slots, %positions : (tensor<4x16x8xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<4x16x8xf32>
// BATCH-NEXT:    %vc0_new = tensorop.kv_scatter %vc0, %l0_v, %slots, %positions : (tensor<4x16x8xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<4x16x8xf32>
// BATCH-NEXT:    %l0_attn = tensorop.slot_attention %l0_q_rot, %kc0_new, %vc0_new, %slots, %positions {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<4x16x8xf32>, tensor<4x16x8xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x16xf32>
// BATCH-NOT:     tensorop.last_rows
// BATCH:         %x_out = tensorop.gather_rows %l0_resid_v2, %out_rows : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
// BATCH:         %output_norm = tensorop.rmsnorm %x_out, %w_output_norm
// BATCH:         func.return %logits, %kc0_new, %vc0_new : tensor<?x32xf32>, tensor<4x16x8xf32>, tensor<4x16x8xf32>
// GPT-2: learned positions are a gather of each row's position.
// BATCH-LABEL: func.func @decode_batch(%tokens: tensor<?xi32>, %slots: tensor<?xi32>, %positions: tensor<?xi32>, %out_rows: tensor<?xi32>, %kc0: tensor<4x16x16xf32>, %vc0: tensor<4x16x16xf32>)
// BATCH:         %pos_emb = tensorop.embedding %w_position_embd, %positions : (tensor<64x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
// BATCH:         %kc0_new = tensorop.kv_scatter %kc0, %l0_k, %slots, %positions
// NOSLOTS: mode decode_batch needs slots >= 1, got slots=0
// RUN: ckc-opt %s --split-input-file -p 'lower-transformer{modes=decode context=16 kv_type=f16}' | filecheck %s --check-prefix=F16
// RUN: not ckc-opt %s --split-input-file -p 'lower-transformer{kv_type=q8_0}' 2>&1 | filecheck %s --check-prefix=Q8BAD

// The last run (seq_len=4, a batched train step): rope, causal_attention and
// positions of @train_step carry seq_len, nothing else changes.
// RUN: ckc-opt %s --split-input-file -p 'lower-transformer{modes=train_step seq_len=4}' | filecheck %s --check-prefix=SEQ
// SEQ-LABEL: func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
// SEQ:         %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64, seq_len = 4 : i64} : (tensor<?x16xf32>, index) -> tensor<?x16xf32>
// SEQ:         %l0_attn = tensorop.causal_attention %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32, seq_len = 4 : i64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x16xf32>
// SEQ:         %loss = tensorop.cross_entropy %logits, %targets

// CHECK: builtin.module attributes {transformer.config = #transformer.config<arch = "llama"
// CHECK-LABEL: func.func @prefill(%tokens: tensor<?xi32>, %pos: index, %kc0: tensor<64x8xf32>, %vc0: tensor<64x8xf32>) -> (tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>) {
// CHECK-NEXT:    %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
// CHECK-NEXT:    %x_emb = tensorop.embedding %w_token_embd, %tokens : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_norm = tensorop.weight "blk.0.attn_norm.weight" : tensor<16xf32>
// CHECK-NEXT:    %l0_attn_norm = tensorop.rmsnorm %x_emb, %w_l0_attn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_q = tensorop.weight "blk.0.attn_q.weight" : tensor<16x16xf32>
// CHECK-NEXT:    %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_k = tensorop.weight "blk.0.attn_k.weight" : tensor<8x16xf32>
// CHECK-NEXT:    %l0_k = tensorop.matmul %l0_attn_norm, %w_l0_attn_k {transpose_b} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
// CHECK-NEXT:    %w_l0_attn_v = tensorop.weight "blk.0.attn_v.weight" : tensor<8x16xf32>
// CHECK-NEXT:    %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_v {transpose_b} : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
// CHECK-NEXT:    %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<?x16xf32>, index) -> tensor<?x16xf32>
// CHECK-NEXT:    %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64} : (tensor<?x8xf32>, index) -> tensor<?x8xf32>
// CHECK-NEXT:    %kc0_new = tensorop.kv_write %kc0, %l0_k_rot, %pos : (tensor<64x8xf32>, tensor<?x8xf32>, index) -> tensor<64x8xf32>
// CHECK-NEXT:    %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<64x8xf32>, tensor<?x8xf32>, index) -> tensor<64x8xf32>
// CHECK-NEXT:    %l0_attn = tensorop.causal_attention %l0_q_rot, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<64x8xf32>, tensor<64x8xf32>, index) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_output = tensorop.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
// CHECK-NEXT:    %l0_attn_out = tensorop.matmul %l0_attn, %w_l0_attn_output {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %l0_resid = tensorop.add %x_emb, %l0_attn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
// CHECK-NEXT:    %l0_ffn_norm = tensorop.rmsnorm %l0_resid, %w_l0_ffn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_ffn_up = tensorop.weight "blk.0.ffn_up.weight" : tensor<32x16xf32>
// CHECK-NEXT:    %l0_ffn_up = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_up {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
// CHECK-NEXT:    %w_l0_ffn_gate = tensorop.weight "blk.0.ffn_gate.weight" : tensor<32x16xf32>
// CHECK-NEXT:    %l0_ffn_gate = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_gate {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
// CHECK-NEXT:    %l0_ffn_act = tensorop.swiglu %l0_ffn_gate, %l0_ffn_up : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
// CHECK-NEXT:    %w_l0_ffn_down = tensorop.weight "blk.0.ffn_down.weight" : tensor<16x32xf32>
// CHECK-NEXT:    %l0_ffn_out = tensorop.matmul %l0_ffn_act, %w_l0_ffn_down {transpose_b} : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %x_last = tensorop.last_rows %l0_resid_v2 : (tensor<?x16xf32>) -> tensor<1x16xf32>
// CHECK-NEXT:    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
// CHECK-NEXT:    %output_norm = tensorop.rmsnorm %x_last, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
// CHECK-NEXT:    %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
// CHECK-NEXT:    %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
// CHECK-NEXT:    func.return %logits, %kc0_new, %vc0_new : tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>
// CHECK-NEXT:  }
// CHECK-LABEL: func.func @prefill_all(%tokens: tensor<?xi32>, %pos: index, %kc0: tensor<64x8xf32>, %vc0: tensor<64x8xf32>) -> (tensor<?x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>) {
// CHECK-NOT:     tensorop.last_rows
// CHECK:         %kc0_new = tensorop.kv_write %kc0, %l0_k_rot, %pos : (tensor<64x8xf32>, tensor<?x8xf32>, index) -> tensor<64x8xf32>
// CHECK:         %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<64x8xf32>, tensor<?x8xf32>, index) -> tensor<64x8xf32>
// CHECK:         %l0_attn = tensorop.causal_attention %l0_q_rot, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<64x8xf32>, tensor<64x8xf32>, index) -> tensor<?x16xf32>
// CHECK:         %output_norm = tensorop.rmsnorm %l0_resid_v2, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK:         %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
// CHECK:         func.return %logits, %kc0_new, %vc0_new : tensor<?x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>
// CHECK-LABEL: func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<64x8xf32>, %vc0: tensor<64x8xf32>) -> (tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>) {
// CHECK:         %x_emb = tensorop.embedding %w_token_embd, %tokens : (tensor<32x16xf32>, tensor<1xi32>) -> tensor<1x16xf32>
// CHECK:         %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<1x16xf32>, index) -> tensor<1x16xf32>
// CHECK:         %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64} : (tensor<1x8xf32>, index) -> tensor<1x8xf32>
// CHECK:         %kc0_new = tensorop.kv_write %kc0, %l0_k_rot, %pos : (tensor<64x8xf32>, tensor<1x8xf32>, index) -> tensor<64x8xf32>
// CHECK:         %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<64x8xf32>, tensor<1x8xf32>, index) -> tensor<64x8xf32>
// CHECK:         %l0_attn = tensorop.causal_attention %l0_q_rot, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<1x16xf32>, tensor<64x8xf32>, tensor<64x8xf32>, index) -> tensor<1x16xf32>
// CHECK:         %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
// CHECK:         func.return %logits, %kc0_new, %vc0_new : tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>
// CHECK-LABEL: func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
// CHECK-NEXT:    %pos = arith.constant 0 : index
// CHECK:         %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64} : (tensor<?x8xf32>, index) -> tensor<?x8xf32>
// CHECK:         %l0_attn = tensorop.causal_attention %l0_q_rot, %l0_k_rot, %l0_v {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x16xf32>
// CHECK:         %loss = tensorop.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
// CHECK:         func.return %loss : tensor<f32>
// CHECK-NOT:     = transformer.

// CHECK:       builtin.module attributes {transformer.config = #transformer.config<arch = "gpt2"
// CHECK-LABEL: func.func @prefill(%tokens: tensor<?xi32>, %pos: index, %kc0: tensor<64x16xf32>, %vc0: tensor<64x16xf32>) -> (tensor<1x32xf32>, tensor<64x16xf32>, tensor<64x16xf32>) {
// CHECK-NEXT:    %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
// CHECK-NEXT:    %x_emb = tensorop.embedding %w_token_embd, %tokens : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %pos_ids = tensorop.positions %tokens, %pos : (tensor<?xi32>, index) -> tensor<?xi32>
// CHECK-NEXT:    %w_position_embd = tensorop.weight "position_embd.weight" : tensor<64x16xf32>
// CHECK-NEXT:    %pos_emb = tensorop.embedding %w_position_embd, %pos_ids : (tensor<64x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %x_pos = tensorop.add %x_emb, %pos_emb : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_norm = tensorop.weight "blk.0.attn_norm.weight" : tensor<16xf32>
// CHECK-NEXT:    %b_l0_attn_norm = tensorop.weight "blk.0.attn_norm.bias" : tensor<16xf32>
// CHECK-NEXT:    %l0_attn_norm = tensorop.layernorm %x_pos, %w_l0_attn_norm, bias %b_l0_attn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_qkv = tensorop.weight "blk.0.attn_qkv.weight" : tensor<16x16xf32>
// CHECK-NEXT:    %b_l0_attn_qkv = tensorop.weight "blk.0.attn_qkv.bias" : tensor<16xf32>
// CHECK-NEXT:    %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_qkv, bias %b_l0_attn_qkv {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_qkv_off16 = tensorop.weight "blk.0.attn_qkv.weight" offset 16 : tensor<16x16xf32>
// CHECK-NEXT:    %b_l0_attn_qkv_off16 = tensorop.weight "blk.0.attn_qkv.bias" offset 16 : tensor<16xf32>
// CHECK-NEXT:    %l0_k = tensorop.matmul %l0_attn_norm, %w_l0_attn_qkv_off16, bias %b_l0_attn_qkv_off16 {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_qkv_off32 = tensorop.weight "blk.0.attn_qkv.weight" offset 32 : tensor<16x16xf32>
// CHECK-NEXT:    %b_l0_attn_qkv_off32 = tensorop.weight "blk.0.attn_qkv.bias" offset 32 : tensor<16xf32>
// CHECK-NEXT:    %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_qkv_off32, bias %b_l0_attn_qkv_off32 {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %kc0_new = tensorop.kv_write %kc0, %l0_k, %pos : (tensor<64x16xf32>, tensor<?x16xf32>, index) -> tensor<64x16xf32>
// CHECK-NEXT:    %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<64x16xf32>, tensor<?x16xf32>, index) -> tensor<64x16xf32>
// CHECK-NEXT:    %l0_attn = tensorop.causal_attention %l0_q, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<64x16xf32>, tensor<64x16xf32>, index) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_attn_output = tensorop.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
// CHECK-NEXT:    %b_l0_attn_output = tensorop.weight "blk.0.attn_output.bias" : tensor<16xf32>
// CHECK-NEXT:    %l0_attn_out = tensorop.matmul %l0_attn, %w_l0_attn_output, bias %b_l0_attn_output {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %l0_resid = tensorop.add %x_pos, %l0_attn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
// CHECK-NEXT:    %b_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.bias" : tensor<16xf32>
// CHECK-NEXT:    %l0_ffn_norm = tensorop.layernorm %l0_resid, %w_l0_ffn_norm, bias %b_l0_ffn_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %w_l0_ffn_up = tensorop.weight "blk.0.ffn_up.weight" : tensor<64x16xf32>
// CHECK-NEXT:    %b_l0_ffn_up = tensorop.weight "blk.0.ffn_up.bias" : tensor<64xf32>
// CHECK-NEXT:    %l0_ffn_up = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_up, bias %b_l0_ffn_up {transpose_b} : (tensor<?x16xf32>, tensor<64x16xf32>, tensor<64xf32>) -> tensor<?x64xf32>
// CHECK-NEXT:    %l0_ffn_act = tensorop.gelu %l0_ffn_up {approximate = "tanh"} : (tensor<?x64xf32>) -> tensor<?x64xf32>
// CHECK-NEXT:    %w_l0_ffn_down = tensorop.weight "blk.0.ffn_down.weight" : tensor<16x64xf32>
// CHECK-NEXT:    %b_l0_ffn_down = tensorop.weight "blk.0.ffn_down.bias" : tensor<16xf32>
// CHECK-NEXT:    %l0_ffn_out = tensorop.matmul %l0_ffn_act, %w_l0_ffn_down, bias %b_l0_ffn_down {transpose_b} : (tensor<?x64xf32>, tensor<16x64xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// CHECK-NEXT:    %x_last = tensorop.last_rows %l0_resid_v2 : (tensor<?x16xf32>) -> tensor<1x16xf32>
// CHECK-NEXT:    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
// CHECK-NEXT:    %b_output_norm = tensorop.weight "output_norm.bias" : tensor<16xf32>
// CHECK-NEXT:    %output_norm = tensorop.layernorm %x_last, %w_output_norm, bias %b_output_norm {eps = 1.000000e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
// CHECK-NEXT:    %logits = tensorop.matmul %output_norm, %w_token_embd {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
// CHECK-NEXT:    func.return %logits, %kc0_new, %vc0_new : tensor<1x32xf32>, tensor<64x16xf32>, tensor<64x16xf32>
// CHECK-NEXT:  }
// CHECK-LABEL: func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<64x16xf32>, %vc0: tensor<64x16xf32>) -> (tensor<1x32xf32>, tensor<64x16xf32>, tensor<64x16xf32>) {
// CHECK:         %pos_ids = tensorop.positions %tokens, %pos : (tensor<1xi32>, index) -> tensor<1xi32>
// CHECK:         %l0_attn = tensorop.causal_attention %l0_q, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<1x16xf32>, tensor<64x16xf32>, tensor<64x16xf32>, index) -> tensor<1x16xf32>
// CHECK:         %logits = tensorop.matmul %output_norm, %w_token_embd {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>

// DEC-LABEL: func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<16x8xf32>, %vc0: tensor<16x8xf32>) -> (tensor<1x32xf32>, tensor<16x8xf32>, tensor<16x8xf32>)
// DEC-NOT:   func.func @prefill
// DEC:       func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<16x16xf32>, %vc0: tensor<16x16xf32>)
// DEC-NOT:   func.func @prefill

builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 32, hidden = 16, layers = 1, heads = 2, kv_heads = 1, ffn = 32, context = 64, bos = 1, eos = 2>} {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x32xf32> {
    %emb = transformer.weight "token_embd.weight" : tensor<32x16xf32>
    %x0 = transformer.embedding %tokens, %emb : (tensor<?xi32>, tensor<32x16xf32>) -> tensor<?x16xf32>
    %n_attn = transformer.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %h = transformer.norm %x0, %n_attn {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wq = transformer.weight "blk.0.attn_q.weight" : tensor<16x16xf32>
    %wk = transformer.weight "blk.0.attn_k.weight" : tensor<8x16xf32>
    %wv = transformer.weight "blk.0.attn_v.weight" : tensor<8x16xf32>
    %wo = transformer.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %a = transformer.attention %h, %wq, %wk, %wv, %wo {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, layer = 0 : i64, scale = 0.35355339059327379 : f64} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %r = transformer.residual %x0, %a : tensor<?x16xf32>
    %n_ffn = transformer.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %g = transformer.norm %r, %n_ffn {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wu = transformer.weight "blk.0.ffn_up.weight" : tensor<32x16xf32>
    %wd = transformer.weight "blk.0.ffn_down.weight" : tensor<16x32xf32>
    %wg = transformer.weight "blk.0.ffn_gate.weight" : tensor<32x16xf32>
    %m = transformer.mlp %g, %wu, %wd, gate %wg {kind = "swiglu"} : (tensor<?x16xf32>, tensor<32x16xf32>, tensor<16x32xf32>, tensor<32x16xf32>) -> tensor<?x16xf32>
    %x1 = transformer.residual %r, %m : tensor<?x16xf32>
    %n_out = transformer.weight "output_norm.weight" : tensor<16xf32>
    %xf = transformer.norm %x1, %n_out {kind = "rms", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %out = transformer.weight "output.weight" : tensor<32x16xf32>
    %logits = transformer.lm_head %xf, %out : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    func.return %logits : tensor<?x32xf32>
  }
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?xi32>) -> tensor<?x32xf32>
    %loss = transformer.cross_entropy %logits, %targets : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<f32>
    func.return %loss : tensor<f32>
  }
}

// -----

builtin.module attributes {transformer.config = #transformer.config<arch = "gpt2", vocab = 32, hidden = 16, layers = 1, heads = 2, ffn = 64, context = 64, norm = "layer", mlp = "gelu", qkv_bias = true, o_bias = true, mlp_bias = true, rope_style = "none", learned_pos = true, tied_embeddings = true>} {
  func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x32xf32> {
    %wte = transformer.weight "token_embd.weight" : tensor<32x16xf32>
    %wpe = transformer.weight "position_embd.weight" : tensor<64x16xf32>
    %x0 = transformer.embedding %tokens, %wte, positions %wpe : (tensor<?xi32>, tensor<32x16xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    %ln1_w = transformer.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %ln1_b = transformer.weight "blk.0.attn_norm.bias" : tensor<16xf32>
    %h = transformer.norm %x0, %ln1_w, bias %ln1_b {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wq = transformer.weight "blk.0.attn_qkv.weight" : tensor<16x16xf32>
    %wk = transformer.weight "blk.0.attn_qkv.weight" offset 16 : tensor<16x16xf32>
    %wv = transformer.weight "blk.0.attn_qkv.weight" offset 32 : tensor<16x16xf32>
    %bq = transformer.weight "blk.0.attn_qkv.bias" : tensor<16xf32>
    %bk = transformer.weight "blk.0.attn_qkv.bias" offset 16 : tensor<16xf32>
    %bv = transformer.weight "blk.0.attn_qkv.bias" offset 32 : tensor<16xf32>
    %wo = transformer.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %bo = transformer.weight "blk.0.attn_output.bias" : tensor<16xf32>
    %a = transformer.attention %h, %wq, %wk, %wv, %wo, q_bias %bq, k_bias %bk, v_bias %bv, o_bias %bo {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, layer = 0 : i64, scale = 0.35355339059327379 : f64, rope_style = "none"} : (tensor<?x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %r = transformer.residual %x0, %a : tensor<?x16xf32>
    %ln2_w = transformer.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %ln2_b = transformer.weight "blk.0.ffn_norm.bias" : tensor<16xf32>
    %g = transformer.norm %r, %ln2_w, bias %ln2_b {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %wfc = transformer.weight "blk.0.ffn_up.weight" : tensor<64x16xf32>
    %wproj = transformer.weight "blk.0.ffn_down.weight" : tensor<16x64xf32>
    %bfc = transformer.weight "blk.0.ffn_up.bias" : tensor<64xf32>
    %bproj = transformer.weight "blk.0.ffn_down.bias" : tensor<16xf32>
    %m = transformer.mlp %g, %wfc, %wproj, up_bias %bfc, down_bias %bproj {kind = "gelu"} : (tensor<?x16xf32>, tensor<64x16xf32>, tensor<16x64xf32>, tensor<64xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %x1 = transformer.residual %r, %m : tensor<?x16xf32>
    %lnf_w = transformer.weight "output_norm.weight" : tensor<16xf32>
    %lnf_b = transformer.weight "output_norm.bias" : tensor<16xf32>
    %xf = transformer.norm %x1, %lnf_w, bias %lnf_b {kind = "layer", eps = 1.0e-05 : f64} : (tensor<?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %logits = transformer.lm_head %xf, %wte {tied = true} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    func.return %logits : tensor<?x32xf32>
  }
}

// F16-LABEL: func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<16x8xf16>, %vc0: tensor<16x8xf16>) -> (tensor<1x32xf32>, tensor<16x8xf16>, tensor<16x8xf16>)
// F16:         %kc0_new = tensorop.kv_write %kc0, %l0_k_rot, %pos : (tensor<16x8xf16>, tensor<1x8xf32>, index) -> tensor<16x8xf16>
// F16-NEXT:    %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<16x8xf16>, tensor<1x8xf32>, index) -> tensor<16x8xf16>
// F16-NEXT:    %l0_attn = tensorop.causal_attention %l0_q_rot, %kc0_new, %vc0_new, pos %pos {{.*}} : (tensor<1x16xf32>, tensor<16x8xf16>, tensor<16x8xf16>, index) -> tensor<1x16xf32>
// F16:         func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<16x16xf16>, %vc0: tensor<16x16xf16>)

// Q8BAD: lower-transformer: kv_type q8_0 needs head_dim a multiple of 32 (the q8_0 block); this model's head_dim is 8
