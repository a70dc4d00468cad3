// RUN: ckc-opt %s --split-input-file --verify-diagnostics | filecheck %s
// c.elem and byte-offset c.ptr indexes: what the verifiers reject.

builtin.module {
  c.global const @t : !c.size = 64
  c.func @f(%i: !c.int as i) -> !c.void {
    %o = c.elem @t[%i] : !c.size
    c.return
  }
}
// CHECK: @t is not a global array

// -----
builtin.module {
  c.global const @t : !c.size = [64]
  c.func @f(%i: !c.int as i) -> !c.void {
    %o = c.elem @t[%i] : !c.int
    c.return
  }
}
// CHECK: @t holds !c.size, not !c.int

// -----
builtin.module {
  c.func @f(%i: !c.int as i) -> !c.void {
    %o = c.elem @nope[%i] : !c.size
    c.return
  }
}
// CHECK: @nope is not a global of the module

// -----
builtin.module {
  c.global const @t : !c.size = [64]
  c.func @f(%w: !c.ptr<ui8> as w, %i: !c.int as i) -> !c.void {
    %o = c.elem @t[%i] : !c.size
    %p = c.ptr %w[0 + %o * 4] bytes : !c.ptr<ui8> -> !c.ptr<f32>
    c.return
  }
}
// CHECK: a !c.size index is a byte offset: its stride is 1
