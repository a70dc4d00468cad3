// Import: a tiny Llama GGUF (written by test/py/gguf_util.py) to transformer IR.
// The config comes from the GGUF metadata (heads, kv_heads, ffn, context,
// eps, theta) and the tensors (vocab, tied embeddings: no output.weight);
// GGUF stores RoPE pairs interleaved. One op per block of the model.
//
// RUN: python %root/test/py/gguf_util.py tiny-llama %t.gguf
// RUN: ckc ir %t.gguf --stage transformer | filecheck %s
// RUN: ckc ir %t.gguf --stage transformer | ckc-opt | filecheck %s
// RUN: python %root/test/py/gguf_util.py tiny-llama %t.2.gguf 2
// RUN: ckc ir %t.2.gguf --stage transformer | filecheck %s --check-prefix=TWO
// RUN: head -c 100 %t.gguf > %t.cut.gguf
// RUN: not ckc ir %t.cut.gguf 2>&1 | filecheck %s --check-prefix=ERR

// CHECK:      builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 12, hidden = 8, layers = 1, heads = 2, kv_heads = 1, head_dim = 4, ffn = 16, context = 32, norm = "rms", norm_eps = 1.0e-05,
// CHECK-SAME: mlp = "swiglu", act = "silu",
// CHECK-SAME: rope_style = "interleaved", rope_theta = 10000.0, rotary_dim = 4,
// CHECK-SAME: tied_embeddings = true,
// CHECK-SAME: bos = 1
// CHECK-NEXT:   func.func @forward(%tokens: tensor<?xi32>) -> tensor<?x12xf32> {
// CHECK-NEXT:     %[[EMB_W:.*]] = transformer.weight "token_embd.weight" : tensor<12x8xf32>
// CHECK-NEXT:     %[[X:.*]] = transformer.embedding %tokens, %[[EMB_W]] : (tensor<?xi32>, tensor<12x8xf32>) -> tensor<?x8xf32>
// CHECK-NEXT:     %[[N1W:.*]] = transformer.weight "blk.0.attn_norm.weight" : tensor<8xf32>
// CHECK-NEXT:     %[[N1:.*]] = transformer.norm %[[X]], %[[N1W]] {kind = "rms", eps = 1.000000e-05 : f64}
// CHECK-NEXT:     %[[WQ:.*]] = transformer.weight "blk.0.attn_q.weight" : tensor<8x8xf32>
// CHECK-NEXT:     %[[WK:.*]] = transformer.weight "blk.0.attn_k.weight" : tensor<4x8xf32>
// CHECK-NEXT:     %[[WV:.*]] = transformer.weight "blk.0.attn_v.weight" : tensor<4x8xf32>
// CHECK-NEXT:     %[[WO:.*]] = transformer.weight "blk.0.attn_output.weight" : tensor<8x8xf32>
// CHECK-NEXT:     %[[A:.*]] = transformer.attention %[[N1]], %[[WQ]], %[[WK]], %[[WV]], %[[WO]] {heads = 2 : i64, kv_heads = 1 : i64, head_dim = 4 : i64, layer = 0 : i64, scale = 5.000000e-01 : f64, rope_style = "interleaved"}
// CHECK-NEXT:     %[[R1:.*]] = transformer.residual %[[X]], %[[A]] : tensor<?x8xf32>
// CHECK-NEXT:     %[[N2W:.*]] = transformer.weight "blk.0.ffn_norm.weight" : tensor<8xf32>
// CHECK-NEXT:     %[[N2:.*]] = transformer.norm %[[R1]], %[[N2W]]
// CHECK-NEXT:     %[[UP:.*]] = transformer.weight "blk.0.ffn_up.weight" : tensor<16x8xf32>
// CHECK-NEXT:     %[[DOWN:.*]] = transformer.weight "blk.0.ffn_down.weight" : tensor<8x16xf32>
// CHECK-NEXT:     %[[GATE:.*]] = transformer.weight "blk.0.ffn_gate.weight" : tensor<16x8xf32>
// CHECK-NEXT:     %[[M:.*]] = transformer.mlp %[[N2]], %[[UP]], %[[DOWN]], gate %[[GATE]] {kind = "swiglu"}
// CHECK-NEXT:     %[[R2:.*]] = transformer.residual %[[R1]], %[[M]] : tensor<?x8xf32>
// CHECK-NEXT:     %[[NFW:.*]] = transformer.weight "output_norm.weight" : tensor<8xf32>
// CHECK-NEXT:     %[[NF:.*]] = transformer.norm %[[R2]], %[[NFW]]
// CHECK-NEXT:     %[[LOGITS:.*]] = transformer.lm_head %[[NF]], %[[EMB_W]] {tied = true} : (tensor<?x8xf32>, tensor<12x8xf32>) -> tensor<?x12xf32>
// CHECK-NEXT:     func.return %[[LOGITS]] : tensor<?x12xf32>
// CHECK-NEXT:   }
// CHECK-NEXT: }

// TWO:     layers = 2,
// TWO:     transformer.attention {{.*}} layer = 0 : i64
// TWO:     transformer.attention {{.*}} layer = 1 : i64
// TWO-NOT: transformer.attention
// TWO:     transformer.lm_head

// ERR: ckc: error: {{.*}}.cut.gguf: {{.+}}
// ERR-NOT: Traceback
