// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s --print-op-generic | ckc-opt | filecheck %s

builtin.module {
  c.include <"stddef.h">
  c.include <"stdint.h">
  c.include "ckernels.h"
  c.opaque "ck_pool"
  c.comment "kernels"
  c.decl @ck_rmsnorm_f32_avx512(!c.ptr<f32, const>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, f32) -> !c.void
  c.decl @ck_matmul_f32_avx512(!c.ptr<f32, const>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, !c.int, !c.ptr<!c.named<"ck_pool">>, !c.int) -> !c.void
  c.decl @ck_canaries_ok(!c.ptr<!c.void, const>) -> !c.int
  c.global const @ck_arena_size : !c.size = 12288
  c.global @ck_offsets : i64 = [0, 4096, -8]
  c.global const @ck_scales : f32 = [1.0e-05, 2.5]
  c.func @prefill(%arena: !c.ptr<ui8> as arena, %n: !c.int as n_tokens, %pool: !c.ptr<!c.named<"ck_pool">> as pool, %nth: !c.int as nth) -> !c.void {
    %c0 = c.constant 0 : !c.int
    %c2 = c.constant 2 : !c.int
    %c64 = c.constant 64 : !c.int
    %eps = c.constant 1.0e-05 : f32
    %x = c.ptr %arena[8192] : !c.ptr<ui8> -> !c.ptr<f32>
    c.for %l = %c0 to %c2 as l {
      %w = c.ptr %arena[0 + %l * 2304] : !c.ptr<ui8> -> !c.ptr<f32, const>
      %y = c.ptr %arena[9216] : !c.ptr<ui8> -> !c.ptr<f32>
      c.call @ck_rmsnorm_f32_avx512(%x, %w, %y, %n, %c64, %eps) : (!c.ptr<f32>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, f32) -> ()
      c.call @ck_matmul_f32_avx512(%y, %w, %x, %n, %c64, %c64, %pool, %nth) : (!c.ptr<f32>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, !c.int, !c.ptr<!c.named<"ck_pool">>, !c.int) -> ()
    }
    %t = c.binop "+" %n, %c64 : !c.int
    %end = c.var end = %t : !c.int
    %wide = c.cast %n : !c.int to i64
    %ok = c.call @ck_canaries_ok(%arena) as ok : (!c.ptr<ui8>) -> !c.int
    c.return
  }
  c.func static @helper(%a: !c.int as a) -> !c.int {
    c.return %a : !c.int
  }
  c.global const @ck_arch : !c.ptr<!c.char, const> = "llama"
  c.global @ck_names : !c.ptr<!c.char, const> = ["a.weight", "q\"\\\0A"]
  c.func @check(%ok: !c.int as ok, %x: f32 as x) -> !c.int {
    %c0 = c.constant 0 : !c.int
    %c4 = c.constant 4 : !c.int
    %bad = c.binop "!=" %ok, %c0 : !c.int
    %neg = c.binop "<" %x, %x : f32
    %any = c.binop "||" %bad, %neg : !c.int
    c.if %any : !c.int {
      c.return %c4 : !c.int
    }
    c.if %bad : !c.int {
      %v = c.var v = %c4 : !c.int
    } else {
      %v = c.var v = %c0 : !c.int
    }
    c.return %c0 : !c.int
  }
}

// CHECK:      builtin.module {
// CHECK-NEXT:   c.include <"stddef.h">
// CHECK-NEXT:   c.include <"stdint.h">
// CHECK-NEXT:   c.include "ckernels.h"
// CHECK-NEXT:   c.opaque "ck_pool"
// CHECK-NEXT:   c.comment "kernels"
// CHECK-NEXT:   c.decl @ck_rmsnorm_f32_avx512(!c.ptr<f32, const>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, f32) -> !c.void
// CHECK-NEXT:   c.decl @ck_matmul_f32_avx512(!c.ptr<f32, const>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, !c.int, !c.ptr<!c.named<"ck_pool">>, !c.int) -> !c.void
// CHECK-NEXT:   c.decl @ck_canaries_ok(!c.ptr<!c.void, const>) -> !c.int
// CHECK-NEXT:   c.global const @ck_arena_size : !c.size = 12288
// CHECK-NEXT:   c.global @ck_offsets : i64 = [0, 4096, -8]
// CHECK-NEXT:   c.global const @ck_scales : f32 = [1.0e-05, 2.5]
// CHECK-NEXT:   c.func @prefill(%arena: !c.ptr<ui8> as arena, %n: !c.int as n_tokens, %pool: !c.ptr<!c.named<"ck_pool">> as pool, %nth: !c.int as nth) -> !c.void {
// CHECK-NEXT:     %c0 = c.constant 0 : !c.int
// CHECK-NEXT:     %c2 = c.constant 2 : !c.int
// CHECK-NEXT:     %c64 = c.constant 64 : !c.int
// CHECK-NEXT:     %eps = c.constant 1.0e-05 : f32
// CHECK-NEXT:     %x = c.ptr %arena[8192] : !c.ptr<ui8> -> !c.ptr<f32>
// CHECK-NEXT:     c.for %l = %c0 to %c2 as l {
// CHECK-NEXT:       %w = c.ptr %arena[0 + %l * 2304] : !c.ptr<ui8> -> !c.ptr<f32, const>
// CHECK-NEXT:       %y = c.ptr %arena[9216] : !c.ptr<ui8> -> !c.ptr<f32>
// CHECK-NEXT:       c.call @ck_rmsnorm_f32_avx512(%x, %w, %y, %n, %c64, %eps) : (!c.ptr<f32>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, f32) -> ()
// CHECK-NEXT:       c.call @ck_matmul_f32_avx512(%y, %w, %x, %n, %c64, %c64, %pool, %nth) : (!c.ptr<f32>, !c.ptr<f32, const>, !c.ptr<f32>, !c.int, !c.int, !c.int, !c.ptr<!c.named<"ck_pool">>, !c.int) -> ()
// CHECK-NEXT:     }
// CHECK-NEXT:     %t = c.binop "+" %n, %c64 : !c.int
// CHECK-NEXT:     %end = c.var end = %t : !c.int
// CHECK-NEXT:     %wide = c.cast %n : !c.int to i64
// CHECK-NEXT:     %ok = c.call @ck_canaries_ok(%arena) as ok : (!c.ptr<ui8>) -> !c.int
// CHECK-NEXT:     c.return
// CHECK-NEXT:   }
// CHECK-NEXT:   c.func static @helper(%a: !c.int as a) -> !c.int {
// CHECK-NEXT:     c.return %a : !c.int
// CHECK-NEXT:   }
// CHECK-NEXT:   c.global const @ck_arch : !c.ptr<!c.char, const> = "llama"
// CHECK-NEXT:   c.global @ck_names : !c.ptr<!c.char, const> = ["a.weight", "q\22\\\0A"]
// CHECK-NEXT:   c.func @check(%ok: !c.int as ok, %x: f32 as x) -> !c.int {
// CHECK-NEXT:     %c0 = c.constant 0 : !c.int
// CHECK-NEXT:     %c4 = c.constant 4 : !c.int
// CHECK-NEXT:     %bad = c.binop "!=" %ok, %c0 : !c.int
// CHECK-NEXT:     %neg = c.binop "<" %x, %x : f32
// CHECK-NEXT:     %any = c.binop "||" %bad, %neg : !c.int
// CHECK-NEXT:     c.if %any : !c.int {
// CHECK-NEXT:       c.return %c4 : !c.int
// CHECK-NEXT:     }
// CHECK-NEXT:     c.if %bad : !c.int {
// CHECK-NEXT:       %v = c.var v = %c4 : !c.int
// CHECK-NEXT:     } else {
// CHECK-NEXT:       %v_1 = c.var v = %c0 : !c.int
// CHECK-NEXT:     }
// CHECK-NEXT:     c.return %c0 : !c.int
// CHECK-NEXT:   }
// CHECK-NEXT: }
