// --load-plugin loads passes from a single Python file.
// RUN: ckc-opt %s --load-plugin %root/examples/plugin/single_file_plugin.py -p 'mark-large-funcs{threshold=3}' | filecheck %s
// RUN: not ckc-opt %s --load-plugin %root/examples/plugin/no_such_file.py 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not ckc-opt %s -p no-such-pass 2>&1 | filecheck %s --check-prefix=UNKNOWN

// CHECK: func.func @big(%{{.*}}: i32) -> i32 attributes {example.large}
// CHECK: func.func @small() {
// MISSING: ckc-opt: {{.*}}no_such_file.py: plugin file not found
// UNKNOWN: error: Unrecognized passes: ['no-such-pass']
// UNKNOWN-NOT: Traceback
func.func @big(%a: i32) -> i32 {
  %b = arith.addi %a, %a : i32
  %c = arith.muli %b, %b : i32
  func.return %c : i32
}
func.func @small() {
  func.return
}
