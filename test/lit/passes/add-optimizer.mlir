// add-optimizer: next to a differentiated @train_step (autodiff's output: the
// loss, then one gradient per weight unit named by tensorop.grad [+ tensorop.offset]),
// @optimizer_step(%lr: f32, %step: index, grads, m, v) -> (params, m, v, grad_norm):
// [scale by 1/micro_batches], global_norm, [clip_by_norm], one adamw_update per unit
// on the parameter read with tensorop.weight (a row slice of a fused tensor keeps
// its offset). lr and step are runtime operands; betas, eps, weight decay,
// max_norm and micro_batches are options. Operand/result attributes name the
// buffers bufferize places: tensorop.grad (grads region), tensorop.adam_m /
// tensorop.adam_v (regions adam_m / adam_v), tensorop.param (the weight, updated in place).
//
// @train_step accumulates into gradient operands (in place, the same buffers
// across the micro-batches of a step) and @zero_grads resets them: a step is
// zero_grads, k x train_step, optimizer_step. Default options (prefix CHECK): one
// micro-batch, clipping at max_norm 1.0. The ACC prefix: four micro-batches, no
// clipping, weight decay 0.1, beta2 0.95; @optimizer_step averages (scale 0.25).
// The NODECAY prefix: weight decay reaches the matrices, never the 1-D parameters. The ERR prefixes: bad
// options and a second run.
// The model: a tied embedding (one token_embd.weight gradient), an RMSNorm and
// one projection reading rows 16..31 of a fused attn_qkv tensor.

// RUN: ckc-opt %s -p add-optimizer | filecheck %s
// RUN: ckc-opt %s -p add-optimizer | ckc-opt | filecheck %s
// RUN: ckc-opt %s -p 'add-optimizer{micro_batches=4 max_norm=0.0 weight_decay=0.1 beta2=0.95}' | filecheck %s --check-prefix=ACC
// RUN: ckc-opt %s -p 'add-optimizer{weight_decay=0.1}' | filecheck %s --check-prefix=NODECAY
// RUN: ckc-opt %s -p 'add-optimizer{weight_decay=0.1},bufferize{max_tokens=8},plan-memory' | filecheck %s --check-prefix=BUF
// RUN: ckc-opt %s -p 'add-optimizer{weight_decay=0.1},bufferize{max_tokens=8},plan-memory,select-simd{target=scalar},lower-to-c' -t c > %t.c
// RUN: filecheck %s --check-prefix=C < %t.c
// RUN: cc -std=c11 -Wall -Werror -c -I%root/kernels/include -I%root/runtime %t.c -o %t.o
// RUN: not ckc-opt %s -p 'add-optimizer{micro_batches=0}' 2>&1 | filecheck %s --check-prefix=ERR-MICRO
// RUN: not ckc-opt %s -p 'add-optimizer{beta1=1.0}' 2>&1 | filecheck %s --check-prefix=ERR-BETA
// RUN: not ckc-opt %s -p 'add-optimizer,add-optimizer' 2>&1 | filecheck %s --check-prefix=ERR-TWICE

// One weight-decay rule: matrices decay, 1-D parameters (norm weights, biases) do not.
// NODECAY-LABEL: func.func @optimizer_step(
// NODECAY:       = tensorop.adamw_update %w_token_embd, {{.*}} {weight_decay = 1.000000e-01 : f32}
// NODECAY:       = tensorop.adamw_update %w_output_norm, %g_output_norm_clipped, %m_output_norm, %v_output_norm, %lr, %step : (
// NODECAY:       = tensorop.adamw_update %w_l0_attn_qkv_off16, {{.*}} {weight_decay = 1.000000e-01 : f32}

// Through bufferize and plan-memory (BUF): the trained tensors lead the weights and
// lie in the same order in grads, adam_m and adam_v (parallel blocks); the matrices
// (token_embd) and the vectors (output_norm) form two groups, each spanned by four
// alias buffers (covers = [first, last]) and updated by ONE adamw_coef call; the
// qkv slice (rows 16..31 of a tensor whose other rows no unit updates) gets its own
// call at row 16. clip_norm is one call over @grads.all; the norm goes to the io
// buffer @grad_norm, the coefficient to a local @clip_coef.
// BUF:      buffer.arena @arena size {{[0-9]+}} align 64 regions {grads at 0 size 4160, adam_m at 4224 size 4160, adam_v at 8448 size 4160, activations at
// BUF:      buffer.buffer @token_embd.weight : tensor<32x16xf32> in weights size 2048 align 64 offset 0
// BUF-NEXT: buffer.buffer @output_norm.weight : tensor<16xf32> in weights size 64 align 64 offset 2048
// BUF-NEXT: buffer.buffer @blk.0.attn_qkv.weight : tensor<32x16xf32> in weights size 2048 align 64 offset 2112
// BUF-NEXT: buffer.buffer @params.decay : tensor<512xf32> in weights size 2048 align 64 offset 0 {covers = ["token_embd.weight", "token_embd.weight"]}
// BUF-NEXT: buffer.buffer @params.no_decay : tensor<16xf32> in weights size 64 align 64 offset 2048 {covers = ["output_norm.weight", "output_norm.weight"]}
// BUF:      buffer.buffer @grad_norm : tensor<f32> in io
// BUF:      buffer.buffer @grad.token_embd.weight : tensor<32x16xf32> in grads size 2048 align 64 offset 0
// BUF-NEXT: buffer.buffer @grad.output_norm.weight : tensor<16xf32> in grads size 64 align 64 offset 2048
// BUF-NEXT: buffer.buffer @grad.blk.0.attn_qkv.weight : tensor<32x16xf32> in grads size 2048 align 64 offset 2112
// BUF-NEXT: buffer.buffer @grads.all : tensor<1040xf32> in grads size 4160 align 64 offset 0 {covers = ["grad.token_embd.weight", "grad.blk.0.attn_qkv.weight"]}
// BUF:      buffer.buffer @adam_m.token_embd.weight : tensor<32x16xf32> in adam_m size 2048 align 64 offset 4224
// BUF-NEXT: buffer.buffer @adam_m.output_norm.weight : tensor<16xf32> in adam_m size 64 align 64 offset 6272
// BUF-NEXT: buffer.buffer @adam_m.blk.0.attn_qkv.weight : tensor<32x16xf32> in adam_m size 2048 align 64 offset 6336
// BUF:      buffer.buffer @adam_v.token_embd.weight : tensor<32x16xf32> in adam_v size 2048 align 64 offset 8448
// BUF-LABEL: func.func @train_step(%n: index) {
// BUF-LABEL: func.func @zero_grads() {
// BUF-NEXT:    buffer.call zero ins() outs(@grad.token_embd.weight) params(n = 512 : i64)
// BUF-NEXT:    buffer.call zero ins() outs(@grad.output_norm.weight) params(n = 16 : i64)
// BUF-NEXT:    buffer.call zero ins() outs(@grad.blk.0.attn_qkv.weight) params(n = 256 : i64, out0_row = 16 : i64)
// BUF-LABEL: func.func @optimizer_step(%lr: f32, %step: index) {
// BUF-NEXT:    buffer.buffer @clip_coef : tensor<1xf32> in activations
// BUF-NEXT:    buffer.call clip_norm ins(@grads.all) outs(@grad_norm, @clip_coef) params(n = 1040 : i64, max_norm = 1.000000e+00 : f32)
// BUF-NEXT:    buffer.call adamw_coef ins(@grads.decay, @clip_coef) outs(@params.decay, @adam_m.decay, @adam_v.decay) params(n = 512 : i64, beta1 = 9.000000e-01 : f32, beta2 = 9.990000e-01 : f32, eps = 1.000000e-08 : f32, weight_decay = 1.000000e-01 : f32)
// BUF-NEXT:    buffer.call adamw_coef ins(@grads.no_decay, @clip_coef) outs(@params.no_decay, @adam_m.no_decay, @adam_v.no_decay) params(n = 16 : i64, {{.*}} weight_decay = 0.000000e+00 : f32)
// BUF-NEXT:    buffer.call adamw_coef ins(@grad.blk.0.attn_qkv.weight, @clip_coef) outs(@blk.0.attn_qkv.weight, @adam_m.blk.0.attn_qkv.weight, @adam_v.blk.0.attn_qkv.weight) params(n = 256 : i64, {{.*}} weight_decay = 1.000000e-01 : f32, in0_row = 16 : i64, out0_row = 16 : i64, out1_row = 16 : i64, out2_row = 16 : i64)
// BUF-NEXT:    func.return

// The C (compiled by the last RUN line against ckernels.h): the optimizer writes the
// weights, takes lr and step at run time, and the runtime finds tensor i's gradient
// and moments at the block offsets + its weight's relative offset.
// C:      const int ckc_gen_n_params = 3;
// C-NEXT: const int64_t ckc_gen_grads_offset = 0;
// C-NEXT: const int64_t ckc_gen_adam_m_offset = 4224;
// C-NEXT: const int64_t ckc_gen_adam_v_offset = 8448;
// C:      int ckc_gen_zero_grads(uint8_t *arena, uint8_t *weights, float lr, int step, float *grad_norm, ck_pool *pool, int nth) {
// C-NEXT:   ck_zero_f32_scalar((float *)arena, 512, pool, nth);
// C:      int ckc_gen_optimizer_step(uint8_t *arena, uint8_t *weights, float lr, int step, float *grad_norm, ck_pool *pool, int nth) {
// C-NEXT:   ck_clip_norm_f32_scalar((const float *)arena, 1040, 1.0f, grad_norm, (float *)(arena + {{[0-9]+}}), pool, nth);
// C-NEXT:   ck_adamw_coef_f32_scalar((float *)weights, (const float *)arena, (float *)(arena + 4224), (float *)(arena + 8448), (const float *)(arena + {{[0-9]+}}), 512, lr, 0.9f, 0.999f, 1.0e-08f, 0.1f, step, pool, nth);
// C-NEXT:   ck_adamw_coef_f32_scalar((float *)(weights + 2048), (const float *)(arena + 2048), (float *)(arena + 6272), (float *)(arena + 10496), (const float *)(arena + {{[0-9]+}}), 16, lr, 0.9f, 0.999f, 1.0e-08f, 0.0f, step, pool, nth);
// C-NEXT:   ck_adamw_coef_f32_scalar((float *)(weights + 3136), (const float *)(arena + 3136), (float *)(arena + 7360), (float *)(arena + 11584), (const float *)(arena + {{[0-9]+}}), 256, lr, 0.9f, 0.999f, 1.0e-08f, 0.1f, step, pool, nth);

// ERR-MICRO: error: add-optimizer: micro_batches must be at least 1, got 0
// ERR-BETA: error: add-optimizer: beta1 must be in [0, 1), got 1.0
// ERR-TWICE: error: add-optimizer: the module already has a function @optimizer_step

// CHECK-LABEL: func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>, %acc_token_embd: tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, %acc_output_norm: tensor<16xf32> {tensorop.grad = "output_norm.weight"}, %acc_l0_attn_qkv_off16: tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) -> (tensor<f32>, tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, tensor<16xf32> {tensorop.grad = "output_norm.weight"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) attributes {autodiff.recompute = "none"} {
// CHECK:       %acc_token_embd_new = tensorop.accumulate %acc_token_embd, %d_w_token_embd_2 : (tensor<32x16xf32>, tensor<32x16xf32>) -> tensor<32x16xf32>
// CHECK:       %acc_output_norm_new = tensorop.accumulate %acc_output_norm, %d_w_norm : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
// CHECK:       %acc_l0_attn_qkv_off16_new = tensorop.accumulate %acc_l0_attn_qkv_off16, %d_w_k : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
// CHECK:       func.return %loss, %acc_token_embd_new, %acc_output_norm_new, %acc_l0_attn_qkv_off16_new : tensor<f32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>
// CHECK-LABEL: func.func @zero_grads() -> (tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, tensor<16xf32> {tensorop.grad = "output_norm.weight"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) {
// CHECK-NEXT:      %g_token_embd = tensorop.zeros : tensor<32x16xf32>
// CHECK-NEXT:      %g_output_norm = tensorop.zeros : tensor<16xf32>
// CHECK-NEXT:      %g_l0_attn_qkv_off16 = tensorop.zeros : tensor<16x16xf32>
// CHECK-NEXT:      func.return %g_token_embd, %g_output_norm, %g_l0_attn_qkv_off16 : tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>
// CHECK-NEXT:    }
// CHECK-LABEL: func.func @optimizer_step(%lr: f32, %step: index, %g_token_embd: tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, %g_output_norm: tensor<16xf32> {tensorop.grad = "output_norm.weight"}, %g_l0_attn_qkv_off16: tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}, %m_token_embd: tensor<32x16xf32> {tensorop.adam_m = "token_embd.weight"}, %m_output_norm: tensor<16xf32> {tensorop.adam_m = "output_norm.weight"}, %m_l0_attn_qkv_off16: tensor<16x16xf32> {tensorop.adam_m = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}, %v_token_embd: tensor<32x16xf32> {tensorop.adam_v = "token_embd.weight"}, %v_output_norm: tensor<16xf32> {tensorop.adam_v = "output_norm.weight"}, %v_l0_attn_qkv_off16: tensor<16x16xf32> {tensorop.adam_v = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) -> (tensor<32x16xf32> {tensorop.param = "token_embd.weight"}, tensor<16xf32> {tensorop.param = "output_norm.weight"}, tensor<16x16xf32> {tensorop.param = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}, tensor<32x16xf32> {tensorop.adam_m = "token_embd.weight"}, tensor<16xf32> {tensorop.adam_m = "output_norm.weight"}, tensor<16x16xf32> {tensorop.adam_m = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}, tensor<32x16xf32> {tensorop.adam_v = "token_embd.weight"}, tensor<16xf32> {tensorop.adam_v = "output_norm.weight"}, tensor<16x16xf32> {tensorop.adam_v = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}, tensor<f32> {tensorop.grad_norm}) {
// CHECK-NEXT:      %grad_norm = tensorop.global_norm %g_token_embd, %g_output_norm, %g_l0_attn_qkv_off16 : (tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>) -> tensor<f32>
// CHECK-NEXT:      %g_token_embd_clipped = tensorop.clip_by_norm %g_token_embd, %grad_norm : (tensor<32x16xf32>, tensor<f32>) -> tensor<32x16xf32>
// CHECK-NEXT:      %g_output_norm_clipped = tensorop.clip_by_norm %g_output_norm, %grad_norm : (tensor<16xf32>, tensor<f32>) -> tensor<16xf32>
// CHECK-NEXT:      %g_l0_attn_qkv_off16_clipped = tensorop.clip_by_norm %g_l0_attn_qkv_off16, %grad_norm : (tensor<16x16xf32>, tensor<f32>) -> tensor<16x16xf32>
// CHECK-NEXT:      %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
// CHECK-NEXT:      %w_token_embd_new, %m_token_embd_new, %v_token_embd_new = tensorop.adamw_update %w_token_embd, %g_token_embd_clipped, %m_token_embd, %v_token_embd, %lr, %step : (tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>, f32, index) -> (tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>)
// CHECK-NEXT:      %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
// CHECK-NEXT:      %w_output_norm_new, %m_output_norm_new, %v_output_norm_new = tensorop.adamw_update %w_output_norm, %g_output_norm_clipped, %m_output_norm, %v_output_norm, %lr, %step : (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, f32, index) -> (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>)
// CHECK-NEXT:      %w_l0_attn_qkv_off16 = tensorop.weight "blk.0.attn_qkv.weight" offset 16 : tensor<16x16xf32>
// CHECK-NEXT:      %w_l0_attn_qkv_off16_new, %m_l0_attn_qkv_off16_new, %v_l0_attn_qkv_off16_new = tensorop.adamw_update %w_l0_attn_qkv_off16, %g_l0_attn_qkv_off16_clipped, %m_l0_attn_qkv_off16, %v_l0_attn_qkv_off16, %lr, %step : (tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, f32, index) -> (tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>)
// CHECK-NEXT:      func.return %w_token_embd_new, %w_output_norm_new, %w_l0_attn_qkv_off16_new, %m_token_embd_new, %m_output_norm_new, %m_l0_attn_qkv_off16_new, %v_token_embd_new, %v_output_norm_new, %v_l0_attn_qkv_off16_new, %grad_norm : tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<f32>
// CHECK-NEXT:    }

// ACC-LABEL: func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>, %acc_token_embd: tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, %acc_output_norm: tensor<16xf32> {tensorop.grad = "output_norm.weight"}, %acc_l0_attn_qkv_off16: tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) -> (tensor<f32>, tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, tensor<16xf32> {tensorop.grad = "output_norm.weight"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) attributes {autodiff.recompute = "none"} {
// ACC:       %acc_token_embd_new = tensorop.accumulate %acc_token_embd, %d_w_token_embd_2 : (tensor<32x16xf32>, tensor<32x16xf32>) -> tensor<32x16xf32>
// ACC:       %acc_output_norm_new = tensorop.accumulate %acc_output_norm, %d_w_norm : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
// ACC:       %acc_l0_attn_qkv_off16_new = tensorop.accumulate %acc_l0_attn_qkv_off16, %d_w_k : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
// ACC:       func.return %loss, %acc_token_embd_new, %acc_output_norm_new, %acc_l0_attn_qkv_off16_new : tensor<f32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>
// ACC-LABEL: func.func @zero_grads() -> (tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, tensor<16xf32> {tensorop.grad = "output_norm.weight"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) {
// ACC-NEXT:      %g_token_embd = tensorop.zeros : tensor<32x16xf32>
// ACC-NEXT:      %g_output_norm = tensorop.zeros : tensor<16xf32>
// ACC-NEXT:      %g_l0_attn_qkv_off16 = tensorop.zeros : tensor<16x16xf32>
// ACC-NEXT:      func.return %g_token_embd, %g_output_norm, %g_l0_attn_qkv_off16 : tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>
// ACC-NEXT:    }
// ACC-LABEL: func.func @optimizer_step(
// ACC:           %g_token_embd_mean = tensorop.scale %g_token_embd {factor = 2.500000e-01 : f32} : (tensor<32x16xf32>) -> tensor<32x16xf32>
// ACC-NEXT:      %g_output_norm_mean = tensorop.scale %g_output_norm {factor = 2.500000e-01 : f32} : (tensor<16xf32>) -> tensor<16xf32>
// ACC-NEXT:      %g_l0_attn_qkv_off16_mean = tensorop.scale %g_l0_attn_qkv_off16 {factor = 2.500000e-01 : f32} : (tensor<16x16xf32>) -> tensor<16x16xf32>
// ACC-NEXT:      %grad_norm = tensorop.global_norm %g_token_embd_mean, %g_output_norm_mean, %g_l0_attn_qkv_off16_mean : (tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>) -> tensor<f32>
// ACC-NEXT:      %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
// ACC-NEXT:      %w_token_embd_new, %m_token_embd_new, %v_token_embd_new = tensorop.adamw_update %w_token_embd, %g_token_embd_mean, %m_token_embd, %v_token_embd, %lr, %step {beta2 = 9.500000e-01 : f32, weight_decay = 1.000000e-01 : f32} : (tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>, f32, index) -> (tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>)
// ACC-NEXT:      %w_output_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
// ACC-NEXT:      %w_output_norm_new, %m_output_norm_new, %v_output_norm_new = tensorop.adamw_update %w_output_norm, %g_output_norm_mean, %m_output_norm, %v_output_norm, %lr, %step {beta2 = 9.500000e-01 : f32} : (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, f32, index) -> (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>)
// ACC-NEXT:      %w_l0_attn_qkv_off16 = tensorop.weight "blk.0.attn_qkv.weight" offset 16 : tensor<16x16xf32>
// ACC-NEXT:      %w_l0_attn_qkv_off16_new, %m_l0_attn_qkv_off16_new, %v_l0_attn_qkv_off16_new = tensorop.adamw_update %w_l0_attn_qkv_off16, %g_l0_attn_qkv_off16_mean, %m_l0_attn_qkv_off16, %v_l0_attn_qkv_off16, %lr, %step {beta2 = 9.500000e-01 : f32, weight_decay = 1.000000e-01 : f32} : (tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>, f32, index) -> (tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xf32>)
// ACC-NEXT:      func.return %w_token_embd_new, %w_output_norm_new, %w_l0_attn_qkv_off16_new, %m_token_embd_new, %m_output_norm_new, %m_l0_attn_qkv_off16_new, %v_token_embd_new, %v_output_norm_new, %v_l0_attn_qkv_off16_new, %grad_norm : tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>, tensor<f32>
// ACC-NEXT:    }
// ACC-NOT:   clip_by_norm

builtin.module {
  func.func @train_step(%tokens: tensor<?xi32>, %targets: tensor<?xi32>) -> (tensor<f32>, tensor<32x16xf32> {tensorop.grad = "token_embd.weight"}, tensor<16xf32> {tensorop.grad = "output_norm.weight"}, tensor<16x16xf32> {tensorop.grad = "blk.0.attn_qkv.weight", tensorop.offset = 16 : i64}) attributes {autodiff.recompute = "none"} {
    %w_token_embd = tensorop.weight "token_embd.weight" : tensor<32x16xf32>
    %x_emb = tensorop.embedding %w_token_embd, %tokens {autodiff.saved} : (tensor<32x16xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    %w_norm = tensorop.weight "output_norm.weight" : tensor<16xf32>
    %h = tensorop.rmsnorm %x_emb, %w_norm {eps = 1.000000e-05 : f32, autodiff.saved} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
    %w_k = tensorop.weight "blk.0.attn_qkv.weight" offset 16 : tensor<16x16xf32>
    %k = tensorop.matmul %h, %w_k {transpose_b} : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    %r = tensorop.add %x_emb, %k {autodiff.saved} : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %logits = tensorop.matmul %r, %w_token_embd {transpose_b} : (tensor<?x16xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
    %loss, %d_logits = tensorop.cross_entropy_fused %logits, %targets {autodiff.saved} : (tensor<?x32xf32>, tensor<?xi32>) -> (tensor<f32>, tensor<?x32xf32>)
    %d_r, %d_w_token_embd = tensorop.matmul_grad %d_logits, %r, %w_token_embd {transpose_b} : (tensor<?x32xf32>, tensor<?x16xf32>, tensor<32x16xf32>) -> (tensor<?x16xf32>, tensor<32x16xf32>)
    %d_h, %d_w_k = tensorop.matmul_grad %d_r, %h, %w_k {transpose_b} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16x16xf32>) -> (tensor<?x16xf32>, tensor<16x16xf32>)
    %d_x_emb, %d_w_norm = tensorop.rmsnorm_grad %d_h, %x_emb, %w_norm {eps = 1.000000e-05 : f32} : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16xf32>) -> (tensor<?x16xf32>, tensor<16xf32>)
    %d_x_emb_1 = tensorop.accumulate %d_x_emb, %d_r : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
    %d_w_token_embd_1 = tensorop.embedding_grad %d_x_emb_1, %tokens {vocab = 32 : i64} : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<32x16xf32>
    %d_w_token_embd_2 = tensorop.accumulate %d_w_token_embd, %d_w_token_embd_1 : (tensor<32x16xf32>, tensor<32x16xf32>) -> tensor<32x16xf32>
    func.return %loss, %d_w_token_embd_2, %d_w_norm, %d_w_k : tensor<f32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x16xf32>
  }
}

