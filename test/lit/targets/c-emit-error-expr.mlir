// RUN: not ckc-opt %s -t c 2>&1 | filecheck %s
// A value defined by another dialect has no C spelling: one line naming the op.

c.func @f(%a: !c.int as a) -> !c.void {
  %x = arith.constant 3 : i32
  %v = c.var v = %x : i32
  c.return
}

// CHECK: error: c emitter: cannot print 'arith.constant': not a c dialect statement
// CHECK-NOT: Traceback
