// RUN: not ckc-opt %s -t c 2>&1 | filecheck %s
// An op the C emitter cannot print is one line naming it, exit status 1.

builtin.module {
  c.include <"stdint.h">
  func.func @f() {
    func.return
  }
}

// CHECK: error: c emitter: cannot print 'func.func': not a c dialect top-level op
// CHECK-NOT: Traceback
