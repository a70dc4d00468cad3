// c.elem (one element of a global array) and `static` globals: the layer
// tables lower-to-c{roll} writes; a !c.size c.ptr index is a byte offset.

// RUN: ckc-opt %s | filecheck %s
// RUN: ckc-opt %s | ckc-opt | filecheck %s
// RUN: ckc-opt %s -t c | filecheck %s --check-prefix=C

// CHECK: c.global static const @attn_norm_weight : !c.size = [64, 128]
// CHECK: %o = c.elem @attn_norm_weight[%l] : !c.size
// CHECK: c.ptr %weights[0 + %o * 1] bytes : !c.ptr<ui8, const> -> !c.ptr<f32, const>

// C: static const size_t attn_norm_weight[2] = {64, 128};
// C: for (int l = 0; l < 2; ++l) {
// C-NEXT:   ck_touch((const float *)(weights + attn_norm_weight[l]));

builtin.module {
  c.global static const @attn_norm_weight : !c.size = [64, 128]
  c.func @f(%weights: !c.ptr<ui8, const> as weights) -> !c.void {
    %c0 = c.constant 0 : !c.int
    %c2 = c.constant 2 : !c.int
    c.for %l = %c0 to %c2 as l {
      %o = c.elem @attn_norm_weight[%l] : !c.size
      %p = c.ptr %weights[0 + %o * 1] bytes : !c.ptr<ui8, const> -> !c.ptr<f32, const>
      c.call @ck_touch(%p) : (!c.ptr<f32, const>) -> ()
    }
    c.return
  }
}
