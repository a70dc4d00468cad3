// RUN: ckc-opt %s --split-input-file --verify-diagnostics | filecheck %s

buffer.arena @a size 0 align 64 regions {weights at 0 size 64}
// CHECK: arena @a has size 0

// -----
buffer.arena @a size 4096 align 48 regions {weights at 0 size 64}
// CHECK: arena @a alignment 48 is not a power of two

// -----
buffer.arena @a size 4096 align 64 regions {heap at 0 size 64}
// CHECK: unknown region kind 'heap' (expected one of weights, kv_cache, activations, grads, adam_m, adam_v, opt_state, scratch, io)

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 64, weights at 64 size 64}
// CHECK: arena @a declares region 'weights' twice

// -----
buffer.arena @a size 4096 align 64 regions {weights at 32 size 64}
// CHECK: region 'weights' offset 32 is not a multiple of 64

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 4160}
// CHECK: region 'weights' [0, 4160) exceeds arena @a size 4096

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 128, activations at 64 size 128}
// CHECK: regions 'weights' and 'activations' overlap

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 128} canaries [100]
// CHECK: canary at 100 must be 8-byte aligned and inside arena @a

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 128} canaries [120]
// CHECK: canary at 120 lies inside region 'weights'

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 128}
buffer.arena @b size 4096 align 64 regions {weights at 0 size 128}
// CHECK: region 'weights' is declared by arenas @b and @a

// -----
buffer.buffer @w : tensor<4xf32> in heap size 16 align 64
// CHECK: unknown region kind 'heap'

// -----
buffer.buffer @w : tensor<4xf32> in weights size 0 align 64
// CHECK: buffer @w has size 0

// -----
buffer.buffer @w : tensor<4xf32> in weights size 16 align 3
// CHECK: buffer @w alignment 3 is not a power of two

// -----
buffer.buffer @w : tensor<4x4xf32> in weights size 32 align 64
// CHECK: buffer @w size 32 < 64 bytes of tensor<4x4xf32>

// -----
buffer.buffer @w : tensor<?x4xf32> in weights size 40 align 64
// CHECK: buffer @w size 40 is not a whole number of 16-byte rows of tensor<?x4xf32>

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 4096}
buffer.buffer @w : tensor<4xf32> in weights size 16 align 64 offset 32
// CHECK: buffer @w offset 32 is not a multiple of its alignment 64

// -----
buffer.buffer @w : tensor<4xf32> in weights size 16 align 64 live 5 to 2
// CHECK: buffer @w lifetime [5, 2] is empty or negative

// -----
buffer.buffer @w : tensor<4xf32> in weights size 64 align 64 layers 2 stride 32
// CHECK: buffer @w layer stride 32 < size 64: copies overlap

// -----
buffer.buffer @w : tensor<4xf32> in weights size 16 align 64 layers 2 stride 80
// CHECK: buffer @w layer stride 80 is not a multiple of its alignment 64

// -----
"buffer.buffer"() <{sym_name = "w", type = tensor<4xf32>, region = "weights", size = #builtin.int<16>, alignment = #builtin.int<64>, layers = #builtin.int<2>}> : () -> ()
// CHECK: buffer @w: layers and stride come together

// -----
buffer.buffer @w : tensor<4xf32> in weights size 16 align 64 offset 0
// CHECK: buffer @w has an offset but no arena declares region 'weights'

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 128}
buffer.buffer @w : tensor<16xf32> in weights size 64 align 64 offset 64 layers 2 stride 64
// CHECK: buffer @w [64, 192) lies outside region 'weights' [0, 128) of arena @a

// -----
buffer.arena @a size 4096 align 64 regions {activations at 0 size 128}
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64 offset 128
  func.return
}
// CHECK: buffer @x [128, 144) lies outside region 'activations' [0, 128) of arena @a

// -----
buffer.buffer @w : tensor<4xf32> in weights size 16 align 64
func.func @f() {
  buffer.buffer @w : tensor<4xf32> in activations size 16 align 64
  func.return
}
// CHECK: buffer @w is shadowed by a local buffer of @f

// -----
func.func @f() {
  buffer.buffer @w : tensor<4xf32> in activations size 16 align 64
  func.return
}
buffer.buffer @w : tensor<4xf32> in weights size 16 align 64
// CHECK: buffer @w shadows a module-level buffer

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  func.return
}
// CHECK: buffer @x is declared twice

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.loop %l = 0 to 2 {
    buffer.buffer @y : tensor<4xf32> in activations size 16 align 64
  }
  func.return
}
// CHECK: buffer @y must be declared at module level or in a func.func body

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.call Matmul ins(@x) outs(@x)
  func.return
}
// CHECK: kernel name 'Matmul' must match [a-z_][a-z0-9_]*

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.call scale<sse2> ins(@x) outs(@x)
  func.return
}
// CHECK: unknown variant 'sse2' (expected one of scalar, avx2, avx512, neon)

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.call scale ins(@x) outs()
  func.return
}
// CHECK: scale: a kernel call writes at least one buffer

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.call scale ins(@x) outs(@nope)
  func.return
}
// CHECK: scale: unknown buffer @nope

// -----
func.func @f(%n: index) {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  "buffer.call"(%n) <{kernel = "scale", ins = [#buffer.ref<@x>], outs = [#buffer.ref<@x>], params = {n = 4 : i64}, dyn_names = ["n"], operandSegmentSizes = array<i32: 0, 1>}> : (index) -> ()
  func.return
}
// CHECK: scale: duplicate param name

// -----
func.func @f(%n: f32) {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.call scale ins(@x) outs(@x) params(alpha = %n : f32)
  func.return
}
// CHECK: scale: dynamic param 'alpha' must be an integer or index, got f32

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.call scale ins(@x) outs(@x) params(shape = [1, 2])
  func.return
}
// CHECK: scale: param 'shape' must be an integer, float or string, got [1 : i64, 2 : i64]

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.loop %l = 0 to 2 {
    buffer.call scale ins(@x[%l]) outs(@x)
  }
  func.return
}
// CHECK: scale: @x[...] indexes a buffer without layers

// -----
buffer.buffer @w : tensor<4xf32> in weights size 64 align 64 layers 2 stride 64
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  buffer.loop %l = 0 to 3 {
    buffer.call scale ins(@w[%l]) outs(@x)
  }
  func.return
}
// CHECK: scale: layer index runs to 2 but @w has 2 layers

// -----
func.func @f(%i: index) {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  "buffer.call"(%i) <{kernel = "scale", ins = [#buffer.ref<@x>], outs = [#buffer.ref<@x>], params = {}, dyn_names = [], operandSegmentSizes = array<i32: 1, 0>}> : (index) -> ()
  func.return
}
// CHECK: scale: a layer index but no indexed buffer

// -----
buffer.buffer @w : tensor<4xf32> in weights size 64 align 64 layers 2 stride 64
func.func @f() {
  "buffer.call"() <{kernel = "scale", ins = [#buffer.ref<@w[layer]>], outs = [#buffer.ref<@w>], params = {}, dyn_names = [], operandSegmentSizes = array<i32: 0, 0>}> : () -> ()
  func.return
}
// CHECK: scale: @w[...] needs a layer index

// -----
buffer.buffer @w : tensor<4xf32> in weights size 64 align 64
"buffer.call"() <{kernel = "scale", ins = [], outs = [#buffer.ref<@w>], params = {}, dyn_names = [], operandSegmentSizes = array<i32: 0, 0>}> : () -> ()
// CHECK: scale: buffer.call must be inside a func.func

// -----
func.func @f() {
  buffer.loop %l = 2 to 2 {
  }
  func.return
}
// CHECK: loop bounds 2 to 2: need 0 <= lb < ub

// -----
func.func @f() {
  "buffer.loop"() <{lb = #builtin.int<0>, ub = #builtin.int<2>}> ({
  ^bb0(%l: i32):
  }) : () -> ()
  func.return
}
// CHECK: loop body must have exactly one index argument

// -----
buffer.arena @a size 4096 align 64 regions {weights at 0 size 0}
// CHECK: region 'weights' has size 0

// -----
"buffer.buffer"() <{sym_name = "w", type = tensor<4xf32>, region = "weights", size = #builtin.int<16>, alignment = #builtin.int<64>, live_first = #builtin.int<0>}> : () -> ()
// CHECK: buffer @w: live needs both first and last

// -----
buffer.buffer @w : tensor<4xf32> in weights size 16 align 64 layers 0 stride 64
// CHECK: buffer @w has 0 layers

// -----
"buffer.buffer"() <{sym_name = "", type = tensor<4xf32>, region = "weights", size = #builtin.int<16>, alignment = #builtin.int<64>}> : () -> ()
// CHECK: buffer name must not be empty

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  "buffer.call"() <{kernel = "scale", ins = [], outs = [#buffer.ref<@x>], params = {"bad name" = 1 : i64}, dyn_names = [], operandSegmentSizes = array<i32: 0, 0>}> : () -> ()
  func.return
}
// CHECK: scale: param name 'bad name' is not an identifier

// -----
func.func @f(%n: index) {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  "buffer.call"(%n) <{kernel = "scale", ins = [], outs = [#buffer.ref<@x>], params = {}, dyn_names = [], operandSegmentSizes = array<i32: 0, 1>}> : (index) -> ()
  func.return
}
// CHECK: scale: 0 dynamic param names for 1 values

// -----
"buffer.loop"() <{lb = #builtin.int<0>, ub = #builtin.int<2>}> ({
^bb0(%l: index):
}) : () -> ()
// CHECK: buffer.loop must be inside a func.func

// -----
func.func @f() {
  buffer.buffer @x : tensor<4xf32> in activations size 16 align 64
  "buffer.call"() <{kernel = "scale", ins = [], outs = [#buffer.ref<@x>], params = {}, dyn_names = [], operandSegmentSizes = array<i32: 0, 0>}> {r = #buffer.region<heap at 0 size 4>} : () -> ()
  func.return
}
// CHECK: unknown region kind 'heap'

// -----
buffer.buffer @w : tensor<40x16xf32> in weights size 4096 align 64 layout p64
// CHECK: buffer @w: unknown layout 'p64' (expected p32, r8)

// -----
buffer.buffer @w : tensor<40x16xf32> in weights size 2560 align 64 layout p32
// CHECK: buffer @w size 2560 < 4096 bytes of tensor<40x16xf32> in layout p32

// -----
buffer.buffer @w : tensor<40x16xf32> in activations size 4096 align 64 layout p32
// CHECK: buffer @w: layout p32 needs a static 2-D f32 weights buffer

// -----
buffer.buffer @w : tensor<4x4x4xf32> in weights size 4096 align 64 layout p32
// CHECK: buffer @w: layout p32 needs a static 2-D f32 weights buffer
