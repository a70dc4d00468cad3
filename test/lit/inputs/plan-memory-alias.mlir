// Input of test/lit/passes/plan-memory.mlir (prefixes ALIAS*): two weights, their two
// gradients, and an alias spanning each pair (covers = [first, last]), as bufferize
// declares the optimizer's flat blocks.
builtin.module {
  buffer.buffer @w.a : tensor<40xf32> in weights size 160 align 64
  buffer.buffer @w.b : tensor<16xf32> in weights size 64 align 64
  buffer.buffer @params.all : tensor<64xf32> in weights size 256 align 64 {covers = ["w.a", "w.b"]}
  buffer.buffer @grad.w.a : tensor<40xf32> in grads size 160 align 64
  buffer.buffer @grad.w.b : tensor<16xf32> in grads size 64 align 64
  buffer.buffer @grads.all : tensor<64xf32> in grads size 256 align 64 {covers = ["grad.w.a", "grad.w.b"]}
}
