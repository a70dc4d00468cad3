// The example plugin package adds its pass through the xdsl.universe entry
// point: ckc-opt and plain xdsl-opt both see it.
// RUN: ckc-opt %s -p annotate-op-count | filecheck %s
// RUN: xdsl-opt %s -p annotate-op-count | filecheck %s
// RUN: ckc-opt %s -p 'annotate-op-count{dialect="arith"}' | filecheck %s --check-prefix=ARITH

// CHECK: func.func @two(%{{.*}}: i32) -> i32 attributes {example.op_count = 3 : i64}
// ARITH: func.func @two(%{{.*}}: i32) -> i32 attributes {example.op_count = 2 : i64}
func.func @two(%a: i32) -> i32 {
  %b = arith.addi %a, %a : i32
  %c = arith.muli %b, %b : i32
  func.return %c : i32
}
