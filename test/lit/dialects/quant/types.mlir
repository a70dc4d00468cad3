// RUN: ckc-opt %s | ckc-opt | filecheck %s
// Every GGUF block format is an element type; the shape is the logical one.

// CHECK: %{{.*}} = transformer.weight "a" : tensor<64x32x!quant.q4_0>
// CHECK: %{{.*}} = transformer.weight "b" : tensor<64x32x!quant.q4_1>
// CHECK: %{{.*}} = transformer.weight "c" : tensor<64x32x!quant.q5_0>
// CHECK: %{{.*}} = transformer.weight "d" : tensor<64x32x!quant.q5_1>
// CHECK: %{{.*}} = transformer.weight "e" : tensor<64x32x!quant.q8_0>
// CHECK: %{{.*}} = transformer.weight "f" : tensor<8x256x!quant.q2_k>
// CHECK: %{{.*}} = transformer.weight "g" : tensor<8x256x!quant.q3_k>
// CHECK: %{{.*}} = transformer.weight "h" : tensor<8x256x!quant.q4_k>
// CHECK: %{{.*}} = transformer.weight "i" : tensor<8x256x!quant.q5_k>
// CHECK: %{{.*}} = transformer.weight "j" : tensor<8x256x!quant.q6_k>
// CHECK: %{{.*}} = transformer.weight "k" : tensor<8x7xf16>
// CHECK: %{{.*}} = transformer.weight "l" : tensor<8x7xbf16>
%a = transformer.weight "a" : tensor<64x32x!quant.q4_0>
%b = transformer.weight "b" : tensor<64x32x!quant.q4_1>
%c = transformer.weight "c" : tensor<64x32x!quant.q5_0>
%d = transformer.weight "d" : tensor<64x32x!quant.q5_1>
%e = transformer.weight "e" : tensor<64x32x!quant.q8_0>
%f = transformer.weight "f" : tensor<8x256x!quant.q2_k>
%g = transformer.weight "g" : tensor<8x256x!quant.q3_k>
%h = transformer.weight "h" : tensor<8x256x!quant.q4_k>
%i = transformer.weight "i" : tensor<8x256x!quant.q5_k>
%j = transformer.weight "j" : tensor<8x256x!quant.q6_k>
%k = transformer.weight "k" : tensor<8x7xf16>
%l = transformer.weight "l" : tensor<8x7xbf16>
