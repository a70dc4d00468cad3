// bufferize of stored (GGUF) weight types: a matmul whose b is !quant.<fmt>, f16
// or bf16 becomes `buffer.call qgemm_<fmt>` (ck_qgemm_<fmt>: x quantized on the
// fly to 8-bit blocks), an embedding from such a table `qembedding_<fmt>`; the
// tied LM head reads the embedding in its own type. Weight buffers are sized in
// their format (quant.tensor_bytes: 40 rows x 2 Q8_0 blocks of 34 bytes = 2720).
// Through pack-quant and lower-to-c: repackable formats become qgemm_packed_<fmt>
// (r8 dtypes), K-quants and f16 stay as stored, weights are byte pointers, and
// the workspace table lists each format's largest n, k (ck_qtype numbers).

// RUN: ckc-opt %s -p bufferize | filecheck %s
// RUN: ckc-opt %s -p 'bufferize{max_tokens=8},pack-quant,plan-memory,select-simd{target=avx2},lower-to-c' -t c | filecheck %s --check-prefix=C

// CHECK:      buffer.buffer @token_embd.weight : tensor<40x64x!quant.q8_0> in weights size 2720 align 64
// CHECK-NEXT: buffer.buffer @blk.0.attn_q.weight : tensor<64x64x!quant.q4_1> in weights size 2560 align 64
// CHECK-NEXT: buffer.buffer @blk.0.attn_output.weight : tensor<64x64xf16> in weights size 8192 align 64
// CHECK-NEXT: buffer.buffer @blk.0.ffn_up.weight : tensor<256x64x!quant.q5_0> in weights size 11264 align 64
// CHECK-NEXT: buffer.buffer @blk.0.ffn_down.weight : tensor<64x256x!quant.q4_k> in weights size 9216 align 64
// CHECK:      buffer.call qembedding_q8_0 ins(@tokens, @token_embd.weight) outs(@x) params(rows = %n : index, vocab = 40 : i64, cols = 64 : i64, scale = 1.000000e+00 : f32)
// CHECK-NEXT: buffer.call qgemm_q4_1 ins(@x, @blk.0.attn_q.weight) outs(@q) params(rows = %n : index, n = 64 : i64, k = 64 : i64)
// CHECK-NEXT: buffer.call qgemm_f16 ins(@q, @blk.0.attn_output.weight) outs(@o)
// CHECK-NEXT: buffer.call qgemm_q5_0 ins(@o, @blk.0.ffn_up.weight) outs(@u)
// CHECK-NEXT: buffer.call qgemm_q4_k ins(@u, @blk.0.ffn_down.weight) outs(@d) params(rows = %n : index, n = 64 : i64, k = 256 : i64)
// CHECK-NEXT: buffer.call qgemm_q8_0 ins(@d, @token_embd.weight) outs(@logits)

// q8_0, q4_1r8, f16, q5_0r8, q4_k (ckc/weights.py codes)
// C: const int ckc_gen_weight_dtypes[5] = {2, 16, 1, 17, 11};
// C: const int ckc_gen_n_qgemm = 5;
// C-NEXT: const int ckc_gen_qgemm_fmts[5] = {1, 3, 12, 6, 8};
// C-NEXT: const int ckc_gen_qgemm_max_n[5] = {64, 64, 64, 256, 40};
// C-NEXT: const int ckc_gen_qgemm_max_k[5] = {64, 64, 256, 64, 64};
// C: ck_qembedding_q8_0_avx2(tokens, (const uint8_t *)weights, (float *)arena, n, 40, 64, 1.0f, pool, nth);
// C: ck_qgemm_packed_q4_1_avx2((const float *)arena, (const uint8_t *)(weights + 2752), 0,
// C: ck_qgemm_f16_avx2(
// C: ck_qgemm_packed_q5_0_avx2(
// C: ck_qgemm_q4_k_avx2(
// C: ck_qgemm_q8_0_avx2((const float *)(arena + 8192), (const uint8_t *)weights, 0, logits, n, 40, 64, 0, ws, ws_size, pool, nth);

builtin.module {
  func.func @prefill_all(%tokens : tensor<?xi32>, %pos : index) -> tensor<?x40xf32> {
    %emb = tensorop.weight "token_embd.weight" : tensor<40x64x!quant.q8_0>
    %wq = tensorop.weight "blk.0.attn_q.weight" : tensor<64x64x!quant.q4_1>
    %wo = tensorop.weight "blk.0.attn_output.weight" : tensor<64x64xf16>
    %wu = tensorop.weight "blk.0.ffn_up.weight" : tensor<256x64x!quant.q5_0>
    %wd = tensorop.weight "blk.0.ffn_down.weight" : tensor<64x256x!quant.q4_k>
    %x = tensorop.embedding %emb, %tokens : (tensor<40x64x!quant.q8_0>, tensor<?xi32>) -> tensor<?x64xf32>
    %q = tensorop.matmul %x, %wq {transpose_b} : (tensor<?x64xf32>, tensor<64x64x!quant.q4_1>) -> tensor<?x64xf32>
    %o = tensorop.matmul %q, %wo {transpose_b} : (tensor<?x64xf32>, tensor<64x64xf16>) -> tensor<?x64xf32>
    %u = tensorop.matmul %o, %wu {transpose_b} : (tensor<?x64xf32>, tensor<256x64x!quant.q5_0>) -> tensor<?x256xf32>
    %d = tensorop.matmul %u, %wd {transpose_b} : (tensor<?x256xf32>, tensor<64x256x!quant.q4_k>) -> tensor<?x64xf32>
    %logits = tensorop.matmul %d, %emb {transpose_b} : (tensor<?x64xf32>, tensor<40x64x!quant.q8_0>) -> tensor<?x40xf32>
    func.return %logits : tensor<?x40xf32>
  }
}
