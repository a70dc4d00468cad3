// RUN: ckc-opt %s --split-input-file --verify-diagnostics | filecheck %s

c.include "a>b.h"
// CHECK: bad header name 'a>b.h'

// -----
c.opaque "struct"
// CHECK: opaque type name 'struct' is a C keyword

// -----
c.decl @f(!c.void) -> !c.void
// CHECK: @f: parameter #0 type !c.void is not a C type

// -----
c.decl @"not-an-ident"(!c.int) -> !c.void
// CHECK: function name 'not-an-ident' is not a C identifier

// -----
c.global const @g : !c.int = 2147483648
// CHECK: value 2147483648 out of range for !c.int [-2147483648, 2147483647]

// -----
c.global const @g : ui8 = [1, -1]
// CHECK: value -1 out of range for ui8 [0, 255]

// -----
c.global const @p : !c.ptr<f32> = 0
// CHECK: global element type !c.ptr<f32> must be an arithmetic C type or !c.ptr<!c.char, const>

// -----
c.comment "a */ b"
// CHECK: comment text must not contain '*/' or a newline

// -----
c.func @f(%a: !c.int as int) -> !c.void {
  c.return
}
// CHECK: @f: parameter name 'int' is a C keyword

// -----
c.func @f(%a: !c.int as a, %b: !c.int as a) -> !c.void {
  c.return
}
// CHECK: @f: duplicate C name 'a'

// -----
c.decl @k(!c.int) -> !c.void
c.func @f(%a: !c.int as k) -> !c.void {
  c.return
}
// CHECK: @f: C name 'k' shadows a top-level symbol

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %c0 = c.constant 0 : !c.int
  c.for %l = %c0 to %a as a {
  }
  c.return
}
// CHECK: @f: loop variable 'a' redeclares a visible C name

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %c0 = c.constant 0 : !c.int
  c.for %l = %c0 to %a as l {
    %v = c.var l = %a : !c.int
  }
  c.return
}
// CHECK: @f: local 'l' redeclares a visible C name

// -----
c.func @f(%a: !c.int as a) -> !c.int {
  c.return
}
// CHECK: must return a value of type !c.int

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  c.return %a : !c.int
}
// CHECK: returns a value from a function returning void

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %c0 = c.constant 0 : !c.int
}
// CHECK: Operation c.constant terminates block in single-block region but is not a terminator

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %c = c.constant 300 : ui8
  c.return
}
// CHECK: value 300 out of range for ui8 [0, 255]

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %c = c.constant 1 : !c.ptr<f32>
  c.return
}
// CHECK: constant type !c.ptr<f32> must be an arithmetic C type

// -----
c.func @f(%a: !c.ptr<f32> as a) -> !c.void {
  %p = c.ptr %a[0] : !c.ptr<f32> -> !c.ptr<f32>
  c.return
}
// CHECK: base must be a byte pointer (!c.ptr<ui8> or !c.ptr<i8>), got !c.ptr<f32>

// -----
c.func @f(%a: !c.ptr<ui8> as a) -> !c.void {
  %p = c.ptr %a[6] : !c.ptr<ui8> -> !c.ptr<f32>
  c.return
}
// CHECK: offset 6 is not a multiple of the 4-byte element

// -----
c.func @f(%a: !c.ptr<ui8> as a, %n: !c.int as n) -> !c.void {
  %p = c.ptr %a[8 + %n * 2] : !c.ptr<ui8> -> !c.ptr<f32>
  c.return
}
// CHECK: stride 2 is not a multiple of the 4-byte element

// -----
c.func @f(%a: !c.ptr<ui8, const> as a) -> !c.void {
  %p = c.ptr %a[8] : !c.ptr<ui8, const> -> !c.ptr<f32>
  c.return
}
// CHECK: cannot drop const from the base pointer

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %p = c.binop "^" %a, %a : !c.int
  c.return
}
// CHECK: unknown operator '^' (expected one of + - * / % == != < <= > >= && ||)

// -----
c.func @f(%a: f32 as a) -> !c.void {
  %p = c.binop "%" %a, %a : f32
  c.return
}
// CHECK: '%' needs integer operands

// -----
c.decl @k(!c.ptr<f32>, !c.int) -> !c.void
c.func @f(%a: !c.int as a) -> !c.void {
  c.call @k(%a) : (!c.int) -> ()
  c.return
}
// CHECK: @k takes 2 arguments, 1 given

// -----
c.decl @k(!c.ptr<f32>) -> !c.void
c.func @f(%a: !c.ptr<f32, const> as a) -> !c.void {
  c.call @k(%a) : (!c.ptr<f32, const>) -> ()
  c.return
}
// CHECK: argument #0 of @k: !c.ptr<f32, const> does not match !c.ptr<f32>

// -----
c.decl @k() -> !c.int
c.func @f(%a: !c.int as a) -> !c.void {
  %r = c.call @k() as r : () -> f32
  c.return
}
// CHECK: @k returns !c.int, not f32

// -----
c.decl @k() -> !c.void
c.func @f(%a: !c.int as a) -> !c.void {
  %r = c.call @k() as r : () -> !c.int
  c.return
}
// CHECK: @k returns void

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  c.call @f(%a, %a) : (!c.int, !c.int) -> ()
  c.return
}
// CHECK: @f takes 1 arguments, 2 given

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %c = c.constant 2.5 : !c.int
  c.return
}
// CHECK: expected an integer value for !c.int, got 2.500000e+00 : f64

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %c = "c.constant"() <{value = 1 : i64}> : () -> f32
  c.return
}
// CHECK: expected a float value for f32, got 1 : i64

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  "c.for"(%a, %a) <{var_name = "i"}> ({
  ^bb0(%i: !c.int, %j: !c.int):
  }) : (!c.int, !c.int) -> ()
  c.return
}
// CHECK: body must have exactly one !c.int argument (the induction variable)

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %p = "c.ptr"(%a) <{offset = #builtin.int<0>}> : (!c.int) -> !c.ptr<f32>
  c.return
}
// CHECK: operand 'base' at position 0 does not verify

// -----
c.func @f(%a: !c.ptr<ui8> as a) -> !c.void {
  %p = "c.ptr"(%a) <{offset = #builtin.int<0>, stride = #builtin.int<4>}> : (!c.ptr<ui8>) -> !c.ptr<f32>
  c.return
}
// CHECK: index and stride come together

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %v = c.var v = %a : !c.int
  c.return %v : !c.int
}
// CHECK: returns a value from a function returning void

// -----
"c.return"() : () -> ()
// CHECK: c.return must be inside a c.func

// -----
c.include "stdint.h" {x}
c.func @f() -> !c.void {
  c.return
}
c.func @g(%p: !c.ptr<!c.named<"9bad">> as p) -> !c.void {
  c.return
}
// CHECK: !c.named type name '9bad' is not a C identifier

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %r = c.call @ext() : () -> !c.int
  c.return
}
// CHECK: a call result needs a C name ('as NAME') and vice versa

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %v = "c.var"(%a) <{var_name = "2x"}> : (!c.int) -> !c.int
  c.return
}
// CHECK: variable name '2x' is not a C identifier

// -----
c.global const @s : !c.ptr<!c.char, const> = 3
// CHECK: expected a string value for !c.ptr<!c.char, const>, got 3 : i64

// -----
c.global const @s : !c.int = "three"
// CHECK: string value for non-string type !c.int

// -----
c.func @f(%a: f32 as a) -> !c.void {
  %p = "c.binop"(%a, %a) <{kind = "<"}> : (f32, f32) -> f32
  c.return
}
// CHECK: '<' on f32 gives !c.int, not f32

// -----
c.func @f(%a: f32 as a, %b: !c.int as b) -> !c.void {
  %p = "c.binop"(%a, %b) <{kind = "+"}> : (f32, !c.int) -> f32
  c.return
}
// CHECK: both operands must have the same type

// -----
c.func @f(%a: !c.ptr<f32> as a) -> !c.void {
  c.if %a : !c.ptr<f32> {
  }
  c.return
}
// CHECK: condition must have an arithmetic C type, got !c.ptr<f32>

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  c.if %a : !c.int {
    %x = c.var a = %a : !c.int
  }
  c.return
}
// CHECK: @f: local 'a' redeclares a visible C name

// -----
c.decl @f() -> !c.named<"ck_pool">
c.decl @g(!c.int) -> !c.ptr<!c.void>
c.decl @h() -> tensor<4xf32>
// CHECK: @h: return type tensor<4xf32> is not a C type

// -----
"c.func"() <{sym_name = "f", function_type = (!c.int, !c.int) -> !c.void, arg_names = ["a"]}> ({
^bb0(%a: !c.int, %b: !c.int):
  "c.return"() : () -> ()
}) : () -> ()
// CHECK: @f: 1 parameter names for 2 parameters

// -----
"c.func"() <{sym_name = "f", function_type = (!c.int) -> !c.void, arg_names = ["a"]}> ({
^bb0(%a: f32):
  "c.return"() : () -> ()
}) : () -> ()
// CHECK: @f: entry block argument types differ from the signature

// -----
"c.decl"() <{sym_name = "f", function_type = (!c.int) -> (!c.int, !c.int)}> : () -> ()
// CHECK: c.decl: function_type must have exactly one result type (use !c.void for none), got 2

// -----
c.global const @g : f32 = []
// CHECK: global array initializer must not be empty

// -----
c.global const @g : f32 = 1.0e+39
// CHECK: 1e+39 overflows f32

// -----
c.decl @g() -> !c.void
c.global const @v : !c.int = 1
c.func @f(%a: !c.int as a) -> !c.void {
  c.call @v() : () -> ()
  c.return
}
// CHECK: @v is not a function

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  "c.call"() <{callee = @m::@k}> : () -> ()
  c.return
}
// CHECK: callee must be a flat symbol

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %r = c.call @ext() as r : () -> tensor<4xf32>
  c.return
}
// CHECK: result type tensor<4xf32> is not a C type

// -----
c.func @f(%a: !c.int as a) -> !c.void {
  %t = "test.op"() : () -> tensor<4xf32>
  c.call @ext(%t) : (tensor<4xf32>) -> ()
  c.return
}
// CHECK: argument #0 type tensor<4xf32> is not a C type

// -----
c.func @f(%a: !c.ptr<ui8> as a, %i: i32 as i) -> !c.void {
  %p = "c.ptr"(%a, %i) <{offset = #builtin.int<0>, stride = #builtin.int<4>}> : (!c.ptr<ui8>, i32) -> !c.ptr<f32>
  c.return
}
// CHECK: index must be a !c.int, got i32

// -----
c.func @f(%a: !c.ptr<ui8> as a, %i: !c.int as i) -> !c.void {
  %p = c.ptr %a[0 + %i * -4] : !c.ptr<ui8> -> !c.ptr<f32>
  c.return
}
// CHECK: stride -4 must be positive

// -----
c.func @f(%a: !c.ptr<ui8> as a) -> !c.void {
  %p = c.ptr %a[-4] : !c.ptr<ui8> -> !c.ptr<f32>
  c.return
}
// CHECK: offset -4 must be non-negative

// -----
%c0 = "test.op"() : () -> !c.int
"c.for"(%c0, %c0) <{var_name = "i"}> ({
^bb0(%i: !c.int):
}) : (!c.int, !c.int) -> ()
// CHECK: c.for must be inside a c.func

// -----
%c0 = "test.op"() : () -> !c.int
%v = c.var v = %c0 : !c.int
// CHECK: c.var must be inside a c.func

// -----
%c0 = "test.op"() : () -> !c.int
c.call @k(%c0) : (!c.int) -> ()
// CHECK: c.call must be inside a c.func

// -----
%c0 = "test.op"() : () -> !c.int
c.if %c0 : !c.int {
}
// CHECK: c.if must be inside a c.func

// -----
c.func @f(%a: !c.int as a, %p: !c.ptr<f32> as p) -> !c.void {
  %v = "c.var"(%a) <{var_name = "v"}> : (!c.int) -> f32
  c.return
}
// CHECK: initializer type must equal the variable type

// -----
c.func @f(%a: !c.ptr<!c.ptr<f32, const>> as a) -> !c.void {
  c.return
}
c.decl @g(!c.ptr<tensor<4xf32>>) -> !c.void
// CHECK: !c.ptr pointee tensor<4xf32> is not a C type

// -----
c.func @f(%a: !c.ptr<f32> as a) -> !c.void {
  %p = c.cast %a : !c.ptr<f32> to i64
  c.return
}
// CHECK: operand must have an arithmetic C type, got !c.ptr<f32>
