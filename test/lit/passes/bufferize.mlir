// bufferize: tensorop functions -> kernel calls on named buffers (ckc/kernel_abi.py).
// Weights become module-level `weights` buffers named by tensor, the KV caches
// module-level `kv_cache` buffers (one K and one V per layer), tokens/logits `io`
// buffers; activations are function-local, `?` rows sized for max_tokens (default
// 64). Views are aliases: kv_write makes the producer of the new rows write them
// into the cache at row %pos (out0_row), last_rows reads at row n-1 (in0_row),
// fused-qkv slices read the whole tensor at a row (in1_row/in2_row), learned
// positions read position_embd.weight from row %pos. No offsets, no variants.
// Chunk 1: one-layer Llama-style @prefill and @decode (from lower-transformer).
// Chunk 2: one-layer GPT-2-style @prefill_all.
// Chunk 3: a @decode with q8_0 KV caches (--kv-type q8_0): the caches are sized
// in blocks (16 rows x 34 bytes), kv_write converts the fp32 rows with
// kv_write_q8_0 at out0_row = %pos (no in-place producer write), attention reads
// the stored format (attention_decode_kvq8_0).

// RUN: ckc-opt %s --split-input-file -p bufferize | filecheck %s
// RUN: ckc-opt %s --split-input-file -p bufferize | ckc-opt --split-input-file | filecheck %s
// RUN: ckc-opt %s --split-input-file -p 'bufferize{max_tokens=8}' | filecheck %s --check-prefix=MAX8

// CHECK: builtin.module attributes {transformer.config = #transformer.config<arch = "llama"
// CHECK-NEXT:    buffer.buffer @token_embd.weight : tensor<32x16xf32> in weights size 2048 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.attn_norm.weight : tensor<16xf32> in weights size 64 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.attn_q.weight : tensor<16x16xf32> in weights size 1024 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.attn_k.weight : tensor<8x16xf32> in weights size 512 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.attn_v.weight : tensor<8x16xf32> in weights size 512 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.attn_output.weight : tensor<16x16xf32> in weights size 1024 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.ffn_norm.weight : tensor<16xf32> in weights size 64 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.ffn_up.weight : tensor<32x16xf32> in weights size 2048 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.ffn_gate.weight : tensor<32x16xf32> in weights size 2048 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.ffn_down.weight : tensor<16x32xf32> in weights size 2048 align 64
// CHECK-NEXT:    buffer.buffer @output_norm.weight : tensor<16xf32> in weights size 64 align 64
// CHECK-NEXT:    buffer.buffer @output.weight : tensor<32x16xf32> in weights size 2048 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.k_cache : tensor<64x8xf32> in kv_cache size 2048 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.v_cache : tensor<64x8xf32> in kv_cache size 2048 align 64
// CHECK-NEXT:    buffer.buffer @tokens : tensor<?xi32> in io size 256 align 64
// CHECK-NEXT:    buffer.buffer @logits : tensor<?x32xf32> in io size 8192 align 64
// CHECK-NEXT:  func.func @prefill(%n: index, %pos: index) {
// CHECK-NEXT:    buffer.buffer @x_emb : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_attn_norm : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_q : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_k : tensor<?x8xf32> in activations size 2048 align 64
// CHECK-NEXT:    buffer.buffer @l0_q_rot : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_attn : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_attn_out : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_resid : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_ffn_norm : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_ffn_up : tensor<?x32xf32> in activations size 8192 align 64
// CHECK-NEXT:    buffer.buffer @l0_ffn_gate : tensor<?x32xf32> in activations size 8192 align 64
// CHECK-NEXT:    buffer.buffer @l0_ffn_act : tensor<?x32xf32> in activations size 8192 align 64
// CHECK-NEXT:    buffer.buffer @l0_ffn_out : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @l0_resid_v2 : tensor<?x16xf32> in activations size 4096 align 64
// CHECK-NEXT:    buffer.buffer @output_norm : tensor<1x16xf32> in activations size 64 align 64
// CHECK-NEXT:    %c1 = arith.constant 1 : index
// CHECK-NEXT:    %n_minus1 = arith.subi %n, %c1 : index
// CHECK-NEXT:    buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb) params(rows = %n : index, vocab = 32 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
// CHECK-NEXT:    buffer.call rmsnorm ins(@x_emb, @blk.0.attn_norm.weight) outs(@l0_attn_norm) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT:    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_q.weight) outs(@l0_q) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
// CHECK-NEXT:    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_k.weight) outs(@l0_k) params(rows = %n : index, n = 8 : i64, k = 16 : i64)
// CHECK-NEXT:    buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_v.weight) outs(@blk.0.v_cache) params(rows = %n : index, out0_row = %pos : index, n = 8 : i64, k = 16 : i64)
// CHECK-NEXT:    buffer.call rope ins(@l0_q) outs(@l0_q_rot) params(rows = %n : index, pos = %pos : index, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT:    buffer.call rope ins(@l0_k) outs(@blk.0.k_cache) params(rows = %n : index, pos = %pos : index, out0_row = %pos : index, heads = 1 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK-NEXT:    buffer.call attention ins(@l0_q_rot, @blk.0.k_cache, @blk.0.v_cache) outs(@l0_attn) params(rows = %n : index, pos = %pos : index, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, window = 0 : i64, scale = 0.353553385 : f32, softcap = 0.000000e+00 : f32)
// CHECK-NEXT:    buffer.call gemm ins(@l0_attn, @blk.0.attn_output.weight) outs(@l0_attn_out) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
// CHECK-NEXT:    buffer.call add ins(@x_emb, @l0_attn_out) outs(@l0_resid) params(rows = %n : index, cols = 16 : i64)
// CHECK-NEXT:    buffer.call rmsnorm ins(@l0_resid, @blk.0.ffn_norm.weight) outs(@l0_ffn_norm) params(rows = %n : index, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT:    buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_up.weight) outs(@l0_ffn_up) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
// CHECK-NEXT:    buffer.call gemm ins(@l0_ffn_norm, @blk.0.ffn_gate.weight) outs(@l0_ffn_gate) params(rows = %n : index, n = 32 : i64, k = 16 : i64)
// CHECK-NEXT:    buffer.call swiglu ins(@l0_ffn_gate, @l0_ffn_up) outs(@l0_ffn_act) params(rows = %n : index, cols = 32 : i64)
// CHECK-NEXT:    buffer.call gemm ins(@l0_ffn_act, @blk.0.ffn_down.weight) outs(@l0_ffn_out) params(rows = %n : index, n = 16 : i64, k = 32 : i64)
// CHECK-NEXT:    buffer.call add ins(@l0_resid, @l0_ffn_out) outs(@l0_resid_v2) params(rows = %n : index, cols = 16 : i64)
// CHECK-NEXT:    buffer.call rmsnorm ins(@l0_resid_v2, @output_norm.weight) outs(@output_norm) params(in0_row = %n_minus1 : index, rows = 1 : i64, cols = 16 : i64, eps = 1.000000e-05 : f32, w_offset = 0.000000e+00 : f32)
// CHECK-NEXT:    buffer.call gemm ins(@output_norm, @output.weight) outs(@logits) params(rows = 1 : i64, n = 32 : i64, k = 16 : i64)
// CHECK-NEXT:    func.return
// CHECK-NEXT:    }
// CHECK-LABEL: func.func @decode(%pos: index) {
// CHECK:         buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_v.weight) outs(@blk.0.v_cache) params(out0_row = %pos : index, rows = 1 : i64, n = 8 : i64, k = 16 : i64)
// CHECK:         buffer.call rope ins(@l0_q) outs(@l0_q_rot) params(pos = %pos : index, rows = 1 : i64, heads = 2 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK:         buffer.call rope ins(@l0_k) outs(@blk.0.k_cache) params(pos = %pos : index, out0_row = %pos : index, rows = 1 : i64, heads = 1 : i64, head_dim = 8 : i64, rotary_dim = 8 : i64, theta = 1.000000e+04 : f32, style = 0 : i64)
// CHECK:         buffer.call attention_decode ins(@l0_q_rot, @blk.0.k_cache, @blk.0.v_cache) outs(@l0_attn) params(pos = %pos : index, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, window = 0 : i64, scale = 0.353553385 : f32, softcap = 0.000000e+00 : f32)
// CHECK:         buffer.call gemm ins(@output_norm, @output.weight) outs(@logits) params(rows = 1 : i64, n = 32 : i64, k = 16 : i64)
// CHECK:         func.return

// CHECK: builtin.module attributes {transformer.config = #transformer.config<arch = "gpt2"
// CHECK:         buffer.buffer @position_embd.weight : tensor<64x16xf32> in weights size 4096 align 64
// CHECK:         buffer.buffer @blk.0.attn_qkv.weight : tensor<48x16xf32> in weights size 3072 align 64
// CHECK:         buffer.buffer @blk.0.attn_qkv.bias : tensor<48xf32> in weights size 192 align 64
// CHECK:         buffer.buffer @tokens : tensor<?xi32> in io size 256 align 64
// CHECK:         buffer.buffer @logits : tensor<?x32xf32> in io size 8192 align 64
// CHECK:         func.func @prefill_all(%n: index, %pos: index) {
// CHECK:         buffer.call embedding ins(@tokens, @token_embd.weight) outs(@x_emb) params(rows = %n : index, vocab = 32 : i64, cols = 16 : i64, scale = 1.000000e+00 : f32)
// CHECK:         buffer.call add ins(@x_emb, @position_embd.weight) outs(@x_pos) params(rows = %n : index, in1_row = %pos : index, cols = 16 : i64)
// CHECK:         buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_qkv.weight, @blk.0.attn_qkv.bias) outs(@l0_q) params(rows = %n : index, n = 16 : i64, k = 16 : i64)
// CHECK:         buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_qkv.weight, @blk.0.attn_qkv.bias) outs(@blk.0.k_cache) params(rows = %n : index, out0_row = %pos : index, n = 16 : i64, k = 16 : i64, in1_row = 16 : i64, in2_row = 16 : i64)
// CHECK:         buffer.call gemm ins(@l0_attn_norm, @blk.0.attn_qkv.weight, @blk.0.attn_qkv.bias) outs(@blk.0.v_cache) params(rows = %n : index, out0_row = %pos : index, n = 16 : i64, k = 16 : i64, in1_row = 32 : i64, in2_row = 32 : i64)
// CHECK:         buffer.call gelu ins(@l0_ffn_up) outs(@l0_ffn_act) params(rows = %n : index, cols = 64 : i64, approx = 1 : i64)
// CHECK:         buffer.call gemm ins(@output_norm, @token_embd.weight) outs(@logits) params(rows = %n : index, n = 32 : i64, k = 16 : i64)

// MAX8: buffer.buffer @tokens : tensor<?xi32> in io size 32 align 64
// MAX8: buffer.buffer @logits : tensor<?x32xf32> in io size 1024 align 64
// MAX8: buffer.buffer @x_emb : tensor<?x16xf32> in activations size 512 align 64
// MAX8: buffer.buffer @x_emb : tensor<1x16xf32> in activations size 64 align 64

builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 32, hidden = 16, layers = 1, heads = 2, kv_heads = 1, head_dim = 8, ffn = 32, context = 64, norm = "rms", norm_eps = 1.0e-05, norm_offset = 0.0, norm_bias = false, post_norms = false, mlp = "swiglu", act = "silu", mlp_bias = false, qkv_bias = false, o_bias = false, qk_norm = false, attn_scale = 0.3535533905932738, scale_by_inverse_layer = false, attn_softcap = 0.0, final_softcap = 0.0, rope_style = "neox", rope_theta = 10000.0, rotary_dim = 8, rope_scaling = "none", rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0, rope_original_context = 0, rope_local_theta = 10000.0, rope_local_scaling = true, learned_pos = false, embed_scale = 1.0, tied_embeddings = false, sliding_window = 0, sliding_layers = [], bos = 1, eos = 2>} {
  func.func @prefill(%tokens: tensor<?xi32>, %pos: index, %kc0: tensor<64x8xf32>, %vc0: tensor<64x8xf32>) -> (tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>) {
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
    %kc0_new = tensorop.kv_write %kc0, %l0_k_rot, %pos : (tensor<64x8xf32>, tensor<?x8xf32>, index) -> tensor<64x8xf32>
    %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<64x8xf32>, tensor<?x8xf32>, index) -> tensor<64x8xf32>
    %l0_attn = tensorop.causal_attention %l0_q_rot, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<64x8xf32>, tensor<64x8xf32>, index) -> tensor<?x16xf32>
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
    %x_last = tensorop.last_rows %l0_resid_v2 : (tensor<?x16xf32>) -> tensor<1x16xf32>
    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %output_norm = tensorop.rmsnorm %x_last, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
    %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
    %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
    func.return %logits, %kc0_new, %vc0_new : tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>
  }
  func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<64x8xf32>, %vc0: tensor<64x8xf32>) -> (tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>) {
    %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
    %x_emb = tensorop.embedding %w_token_embd, %tokens : (tensor<32x16xf32>, tensor<1xi32>) -> tensor<1x16xf32>
    %w_l0_attn_norm = tensorop.weight "blk.0.attn_norm.weight" : tensor<16xf32>
    %l0_attn_norm = tensorop.rmsnorm %x_emb, %w_l0_attn_norm {eps = 1.000000e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
    %w_l0_attn_q = tensorop.weight "blk.0.attn_q.weight" : tensor<16x16xf32>
    %l0_q = tensorop.matmul %l0_attn_norm, %w_l0_attn_q {transpose_b} : (tensor<1x16xf32>, tensor<16x16xf32>) -> tensor<1x16xf32>
    %w_l0_attn_k = tensorop.weight "blk.0.attn_k.weight" : tensor<8x16xf32>
    %l0_k = tensorop.matmul %l0_attn_norm, %w_l0_attn_k {transpose_b} : (tensor<1x16xf32>, tensor<8x16xf32>) -> tensor<1x8xf32>
    %w_l0_attn_v = tensorop.weight "blk.0.attn_v.weight" : tensor<8x16xf32>
    %l0_v = tensorop.matmul %l0_attn_norm, %w_l0_attn_v {transpose_b} : (tensor<1x16xf32>, tensor<8x16xf32>) -> tensor<1x8xf32>
    %l0_q_rot = tensorop.rope %l0_q, %pos {heads = 2 : i64, head_dim = 8 : i64} : (tensor<1x16xf32>, index) -> tensor<1x16xf32>
    %l0_k_rot = tensorop.rope %l0_k, %pos {heads = 1 : i64, head_dim = 8 : i64} : (tensor<1x8xf32>, index) -> tensor<1x8xf32>
    %kc0_new = tensorop.kv_write %kc0, %l0_k_rot, %pos : (tensor<64x8xf32>, tensor<1x8xf32>, index) -> tensor<64x8xf32>
    %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<64x8xf32>, tensor<1x8xf32>, index) -> tensor<64x8xf32>
    %l0_attn = tensorop.causal_attention %l0_q_rot, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<1x16xf32>, tensor<64x8xf32>, tensor<64x8xf32>, index) -> tensor<1x16xf32>
    %w_l0_attn_output = tensorop.weight "blk.0.attn_output.weight" : tensor<16x16xf32>
    %l0_attn_out = tensorop.matmul %l0_attn, %w_l0_attn_output {transpose_b} : (tensor<1x16xf32>, tensor<16x16xf32>) -> tensor<1x16xf32>
    %l0_resid = tensorop.add %x_emb, %l0_attn_out : (tensor<1x16xf32>, tensor<1x16xf32>) -> tensor<1x16xf32>
    %w_l0_ffn_norm = tensorop.weight "blk.0.ffn_norm.weight" : tensor<16xf32>
    %l0_ffn_norm = tensorop.rmsnorm %l0_resid, %w_l0_ffn_norm {eps = 1.000000e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
    %w_l0_ffn_up = tensorop.weight "blk.0.ffn_up.weight" : tensor<32x16xf32>
    %l0_ffn_up = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_up {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
    %w_l0_ffn_gate = tensorop.weight "blk.0.ffn_gate.weight" : tensor<32x16xf32>
    %l0_ffn_gate = tensorop.matmul %l0_ffn_norm, %w_l0_ffn_gate {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
    %l0_ffn_act = tensorop.swiglu %l0_ffn_gate, %l0_ffn_up : (tensor<1x32xf32>, tensor<1x32xf32>) -> tensor<1x32xf32>
    %w_l0_ffn_down = tensorop.weight "blk.0.ffn_down.weight" : tensor<16x32xf32>
    %l0_ffn_out = tensorop.matmul %l0_ffn_act, %w_l0_ffn_down {transpose_b} : (tensor<1x32xf32>, tensor<16x32xf32>) -> tensor<1x16xf32>
    %l0_resid_v2 = tensorop.add %l0_resid, %l0_ffn_out : (tensor<1x16xf32>, tensor<1x16xf32>) -> tensor<1x16xf32>
    %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %output_norm = tensorop.rmsnorm %l0_resid_v2, %w_output_norm {eps = 1.000000e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
    %w_output = tensorop.weight "output.weight" : tensor<32x16xf32>
    %logits = tensorop.matmul %output_norm, %w_output {transpose_b} : (tensor<1x16xf32>, tensor<32x16xf32>) -> tensor<1x32xf32>
    func.return %logits, %kc0_new, %vc0_new : tensor<1x32xf32>, tensor<64x8xf32>, tensor<64x8xf32>
  }
}


// -----

builtin.module attributes {transformer.config = #transformer.config<arch = "gpt2", vocab = 32, hidden = 16, layers = 1, heads = 2, kv_heads = 2, head_dim = 8, ffn = 64, context = 64, norm = "layer", norm_eps = 1.0e-05, norm_offset = 0.0, norm_bias = true, post_norms = false, mlp = "gelu", act = "gelu_tanh", mlp_bias = true, qkv_bias = true, o_bias = true, qk_norm = false, attn_scale = 0.3535533905932738, scale_by_inverse_layer = false, attn_softcap = 0.0, final_softcap = 0.0, rope_style = "none", rope_theta = 10000.0, rotary_dim = 8, rope_scaling = "none", rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0, rope_original_context = 0, rope_local_theta = 10000.0, rope_local_scaling = true, learned_pos = true, embed_scale = 1.0, tied_embeddings = true, sliding_window = 0, sliding_layers = [], bos = -1, eos = -1>} {
  func.func @prefill_all(%tokens: tensor<?xi32>, %pos: index, %kc0: tensor<64x16xf32>, %vc0: tensor<64x16xf32>) -> (tensor<?x32xf32>, tensor<64x16xf32>, tensor<64x16xf32>) {
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
    %kc0_new = tensorop.kv_write %kc0, %l0_k, %pos : (tensor<64x16xf32>, tensor<?x16xf32>, index) -> tensor<64x16xf32>
    %vc0_new = tensorop.kv_write %vc0, %l0_v, %pos : (tensor<64x16xf32>, tensor<?x16xf32>, index) -> tensor<64x16xf32>
    %l0_attn = tensorop.causal_attention %l0_q, %kc0_new, %vc0_new, pos %pos {heads = 2 : i64, kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32} : (tensor<?x16xf32>, tensor<64x16xf32>, tensor<64x16xf32>, index) -> tensor<?x16xf32>
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
    func.return %logits, %kc0_new, %vc0_new : tensor<?x32xf32>, tensor<64x16xf32>, tensor<64x16xf32>
  }
}

// -----

// CHECK-LABEL: builtin.module {
// CHECK:         buffer.buffer @blk.0.k_cache : tensor<16x32x!quant.q8_0> in kv_cache size 544 align 64
// CHECK-NEXT:    buffer.buffer @blk.0.v_cache : tensor<16x32x!quant.q8_0> in kv_cache size 544 align 64
// CHECK:         func.func @decode(%pos: index) {
// CHECK:           buffer.call gemm ins(@x, @blk.0.attn_k.weight) outs(@k) params(rows = 1 : i64, n = 32 : i64, k = 32 : i64)
// CHECK-NEXT:      buffer.call kv_write_q8_0 ins(@k) outs(@blk.0.k_cache) params(out0_row = %pos : index, rows = 1 : i64, cols = 32 : i64)
// CHECK-NEXT:      buffer.call kv_write_q8_0 ins(@x) outs(@blk.0.v_cache) params(out0_row = %pos : index, rows = 1 : i64, cols = 32 : i64)
// CHECK-NEXT:      buffer.call attention_decode_kvq8_0 ins(@x, @blk.0.k_cache, @blk.0.v_cache) outs(@attn) params(pos = %pos : index, heads = 1 : i64, kv_heads = 1 : i64, head_dim = 32 : i64, window = 0 : i64, scale = 0.176776692 : f32, softcap = 0.000000e+00 : f32)

builtin.module {
  func.func @decode(%tokens: tensor<1xi32>, %pos: index, %kc0: tensor<16x32x!quant.q8_0>, %vc0: tensor<16x32x!quant.q8_0>) -> (tensor<1x32xf32>, tensor<16x32x!quant.q8_0>, tensor<16x32x!quant.q8_0>) {
    %w_emb = tensorop.weight "token_embd.weight" : tensor<32x32xf32>
    %x = tensorop.embedding %w_emb, %tokens : (tensor<32x32xf32>, tensor<1xi32>) -> tensor<1x32xf32>
    %w_k = tensorop.weight "blk.0.attn_k.weight" : tensor<32x32xf32>
    %k = tensorop.matmul %x, %w_k {transpose_b} : (tensor<1x32xf32>, tensor<32x32xf32>) -> tensor<1x32xf32>
    %kc0_new = tensorop.kv_write %kc0, %k, %pos : (tensor<16x32x!quant.q8_0>, tensor<1x32xf32>, index) -> tensor<16x32x!quant.q8_0>
    %vc0_new = tensorop.kv_write %vc0, %x, %pos : (tensor<16x32x!quant.q8_0>, tensor<1x32xf32>, index) -> tensor<16x32x!quant.q8_0>
    %attn = tensorop.causal_attention %x, %kc0_new, %vc0_new, pos %pos {heads = 1 : i64, kv_heads = 1 : i64, head_dim = 32 : i64, scale = 0.176776692 : f32} : (tensor<1x32xf32>, tensor<16x32x!quant.q8_0>, tensor<16x32x!quant.q8_0>, index) -> tensor<1x32xf32>
    %logits = tensorop.matmul %attn, %w_emb {transpose_b} : (tensor<1x32xf32>, tensor<32x32xf32>) -> tensor<1x32xf32>
    func.return %logits, %kc0_new, %vc0_new : tensor<1x32xf32>, tensor<16x32x!quant.q8_0>, tensor<16x32x!quant.q8_0>
  }
}
