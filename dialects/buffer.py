"""The `buffer` dialect: memory without values.

After `bufferize`, a model is kernel calls on named buffers; `plan-memory`
gives every buffer a byte offset in an arena, `select-simd` gives every call a
kernel variant, and `lower-to-c` turns calls into C calls at pointer offsets.

Pieces
------
- ``buffer.arena @NAME size S align A regions {KIND at OFF size N, ...}
  [canaries [OFF, ...]]`` (module level): one contiguous block of memory with
  named regions. A module may hold several arenas (e.g. ``@weights``, the
  mmapped weight file, and ``@arena``, the KV cache and activations); each
  region kind lives in exactly one arena. Region kinds: ``weights``,
  ``kv_cache``, ``activations``, ``grads``, ``adam_m`` / ``adam_v`` (AdamW's
  moments, laid out like ``grads``), ``opt_state``, ``scratch``, ``io``
  (buffers exchanged with the caller). Canaries are 8-byte words outside every
  region, checked by the runtime in debug builds.
- ``buffer.buffer @NAME : TYPE in KIND size BYTES align A [offset OFF]
  [live FIRST to LAST] [layers L stride S]``: a named buffer holding a tensor
  of TYPE (``?`` dims: the planned size covers the maximum). At module level it
  lives for the whole program (weights, KV cache, io); in a ``func.func`` body
  (top level of the body, before its uses) it is local to that function
  (activations, scratch, grads), and its lifetime is relative to that
  function. OFF is a byte offset from the start of the region's *arena*.
  ``layers L stride S`` declares L copies at OFF + l*S (per-layer weights, a
  per-layer KV cache, per-layer saved activations) addressed as ``@NAME[%l]``.
- ``buffer.call KERNEL[<VARIANT>] ins(...) outs(...) [params(...)]``: one
  kernel call (a ``func.func`` body op, possibly inside ``buffer.loop``). It
  reads `ins` and writes `outs` (a buffer both read and written, e.g. an
  in-place residual add or a KV cache append, appears in both). VARIANT is one
  of scalar|avx2|avx512|neon, absent until `select-simd`. Params are the
  kernel's scalars: static attributes (``cols = 576``, ``eps = 1.0e-05 : f32``)
  or SSA values of integer/index type (``rows = %n : index``, e.g. the token
  count argument of the function).
- ``buffer.loop %l = LB to UB { ... }``: a counted loop (over layers) in a
  function; ``@NAME[%l]`` in a call inside it picks layer %l of a layered
  buffer, or member %l of a table.
- ``buffer.layers @NAME = [@a, @b, ...]`` (function body): a per-layer table of
  buffers of one type, region and layout, each at its own planned offset
  (`roll-layers` makes them; lower-to-c: a static table of offsets).

Functions are plain ``func.func`` whose bodies hold ``buffer.buffer``,
``buffer.call``, ``buffer.loop`` and ``func.return``; their arguments are
runtime scalars (token count, position) of index or integer type.

Lifetimes
---------
Ops are numbered by `call_sequence` (in ``passes/plan_memory.py``): the ``buffer.call`` ops of a function in
program order (pre-order; a call inside a loop body counts once). A buffer's
``live FIRST to LAST`` is the inclusive range of call indices during which its
contents matter. `compute_lifetimes` derives it conservatively (a buffer used
inside a loop is live for the whole loop, since values flow between
iterations).

What the verifiers check (IR-local facts)
-----------------------------------------
arena: size > 0, power-of-two alignment, region kinds known and unique (also
across arenas), regions aligned, inside the arena and pairwise disjoint,
canaries 8-byte aligned, inside the arena and outside every region.
buffer: known region kind, size > 0, power-of-two alignment, offset a multiple
of the alignment, size at least the tensor's bytes (or a whole number of rows
for ``?`` shapes), lifetime 0 <= FIRST <= LAST, layered stride >= size and
aligned, placement (module or function body), unique names, and once an
offset is set: an arena declares the region and every copy lies inside it.
call: known variant, identifier kernel name, at least one output, every
buffer resolves, ``[%l]`` only on layered buffers and only with one index
value (which, if a ``buffer.loop`` variable, stays below the buffer's layer
count), unique param names, integer/index dynamic params.
Not checked by verifiers (whole-function facts): that buffers with
intersecting lifetimes do not overlap in memory, and that lifetimes match the
uses. `find_overlaps` and `compute_lifetimes` in ``passes/plan_memory.py``
check and compute those.

Example::

    buffer.arena @weights size 4096 align 64 regions {weights at 0 size 4096}
    buffer.arena @arena size 8256 align 64 regions {kv_cache at 0 size 4096, activations at 4160 size 4096} canaries [4096]
    buffer.buffer @"blk.attn_norm.weight" : tensor<16xf32> in weights size 64 align 64 offset 0 layers 2 stride 2048
    func.func @prefill(%n: index) {
      buffer.buffer @x : tensor<?x16xf32> in activations size 2048 align 64 offset 4160 live 0 to 1
      buffer.buffer @h : tensor<?x16xf32> in activations size 2048 align 64 offset 6208 live 0 to 1
      buffer.loop %l = 0 to 2 {
        buffer.call rmsnorm<avx512> ins(@x, @"blk.attn_norm.weight"[%l]) outs(@h) params(rows = %n : index, cols = 16 : i64, eps = 1.0e-05 : f32)
        buffer.call add ins(@x, @h) outs(@x) params(rows = %n : index, cols = 16 : i64)
      }
      func.return
    }
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping, Sequence

from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FloatAttr,
    IndexType,
    IntAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    TensorType,
    f32,
    i64,
)
from xdsl.ir import (
    Attribute,
    Block,
    BlockArgument,
    Dialect,
    Operation,
    ParametrizedAttribute,
    Region,
    SSAValue,
)
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import HasParent, NoTerminator
from xdsl.utils.exceptions import VerifyException

# An alias buffer (module level, attribute ``covers = [@first, @last]``) holds no
# bytes of its own: plan-memory places it over the module-level buffers of its
# region from @first to @last (laid out one after another), so one call can
# address many tensors as one flat block (bufferize: the optimizer's groups).
COVERS_ATTR = "covers"


def covers_attr(first: str, last: str) -> ArrayAttr:
    return ArrayAttr([StringAttr(first), StringAttr(last)])


def covers(b: "BufferOp") -> tuple[str, str] | None:
    """(first, last) member names of an alias buffer, or None for a buffer with bytes of its own."""
    a = b.attributes.get(COVERS_ATTR)
    if not isinstance(a, ArrayAttr) or len(a.data) != 2:
        return None
    return a.data[0].data, a.data[1].data


REGION_KINDS = ("weights", "kv_cache", "activations", "grads", "adam_m", "adam_v", "opt_state", "scratch", "io")
VARIANTS = ("scalar", "avx2", "avx512", "neon")
# Weight layouts other than row-major (BufferOp ``layout``): p32 = ck_gemm_pack_f32's panels;
# r8 = ck_qpack_<fmt>'s 8-row interleaved blocks of a GGUF block-format weight (pack-quant).
LAYOUTS = ("p32", "r8")
R8_FORMATS = ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")   # formats with a ck_qpack_<fmt>


def packed_p32_bytes(n: int, k: int) -> int:
    """Bytes of an [n, k] f32 weight in layout p32 (rows padded to a multiple of 32)."""
    return -(-n // 32) * 32 * k * 4


def packed_r8_bytes(el: Attribute, n: int, k: int) -> int:
    """Bytes of an [n, k] block-format weight in layout r8 (ck_qpacked_size: rows
    padded to a multiple of 8)."""
    from ckc.dialects import quant

    return -(-n // 8) * 8 * quant.row_bytes(el, k)
CANARY_BYTES = 8

_KERNEL = re.compile(r"^[a-z_][a-z0-9_]*$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _module_of(op: Operation) -> ModuleOp | None:
    p: Operation | None = op
    while p is not None and not isinstance(p, ModuleOp):
        p = p.parent_op()
    return p


def _func_of(op: Operation) -> func.FuncOp | None:
    p = op.parent_op()
    while p is not None and not isinstance(p, func.FuncOp):
        p = p.parent_op()
    return p


# --------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------


@irdl_attr_definition
class RegionAttr(ParametrizedAttribute):
    """A region of an arena: ``#buffer.region<activations at 4160 size 4096>``."""

    name = "buffer.region"

    kind: StringAttr
    offset: IntAttr
    size: IntAttr

    def __init__(self, kind: str, offset: int, size: int):
        super().__init__(StringAttr(kind), IntAttr(offset), IntAttr(size))

    @property
    def end(self) -> int:
        return self.offset.data + self.size.data

    def print_body(self, printer: Printer) -> None:
        printer.print_string(f"{self.kind.data} at {self.offset.data} size {self.size.data}")

    @classmethod
    def parse_body(cls, parser: AttrParser) -> RegionAttr:
        kind = parser.parse_identifier()
        parser.parse_keyword("at")
        off = parser.parse_integer(allow_boolean=False, allow_negative=False)
        parser.parse_keyword("size")
        size = parser.parse_integer(allow_boolean=False, allow_negative=False)
        return cls(kind, off, size)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self.print_body(printer)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[StringAttr, IntAttr, IntAttr]:
        with parser.in_angle_brackets():
            r = cls.parse_body(parser)
        return (r.kind, r.offset, r.size)

    def verify(self) -> None:
        if self.kind.data not in REGION_KINDS:
            raise VerifyException(
                f"unknown region kind '{self.kind.data}' (expected one of {', '.join(REGION_KINDS)})"
            )
        if self.size.data <= 0:
            raise VerifyException(f"region '{self.kind.data}' has size {self.size.data}")


@irdl_attr_definition
class BufRefAttr(ParametrizedAttribute):
    """A buffer operand of a call: ``#buffer.ref<@x>``, or one layer of a
    layered buffer ``#buffer.ref<@w[layer]>`` (the layer is the call's
    `layer` operand). In ``buffer.call`` syntax: ``@x`` and ``@w[%l]``."""

    name = "buffer.ref"

    buffer: SymbolRefAttr
    indexed: IntAttr

    def __init__(self, buffer: str, indexed: bool = False):
        super().__init__(SymbolRefAttr(buffer), IntAttr(int(indexed)))

    @property
    def buffer_name(self) -> str:
        return self.buffer.root_reference.data

    @property
    def is_indexed(self) -> bool:
        return bool(self.indexed.data)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_symbol_name(self.buffer_name)
            if self.is_indexed:
                printer.print_string("[layer]")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[SymbolRefAttr, IntAttr]:
        with parser.in_angle_brackets():
            name = parser.parse_symbol_name().data
            indexed = 0
            if parser.parse_optional_punctuation("[") is not None:
                parser.parse_keyword("layer")
                parser.parse_punctuation("]")
                indexed = 1
        return (SymbolRefAttr(name), IntAttr(indexed))

    def verify(self) -> None:
        if self.indexed.data not in (0, 1):
            raise VerifyException("buffer.ref indexed flag must be 0 or 1")
        if self.buffer.nested_references.data:
            raise VerifyException("buffer references are flat symbols")


# --------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------


@irdl_op_definition
class ArenaOp(IRDLOperation):
    """One contiguous block of memory with named regions (module level).

    ```mlir
    buffer.arena @arena size 8256 align 64 regions {kv_cache at 0 size 4096, activations at 4160 size 4096} canaries [4096]
    ```
    Offsets and sizes are bytes; region offsets are aligned to the arena's
    alignment; canaries are 8-byte words between regions.
    """

    name = "buffer.arena"

    sym_name = prop_def(StringAttr)
    size = prop_def(IntAttr)
    alignment = prop_def(IntAttr)
    arena_regions = prop_def(ArrayAttr[RegionAttr])
    canaries = opt_prop_def(ArrayAttr[IntAttr])

    traits = traits_def(HasParent(ModuleOp))

    def __init__(
        self,
        name: str,
        size: int,
        regions: Sequence[tuple[str, int, int] | RegionAttr],
        alignment: int = 64,
        canaries: Sequence[int] | None = None,
    ):
        """`regions` are (kind, offset, size) triples."""
        regs = [r if isinstance(r, RegionAttr) else RegionAttr(*r) for r in regions]
        props: dict[str, Attribute] = {
            "sym_name": StringAttr(name),
            "size": IntAttr(size),
            "alignment": IntAttr(alignment),
            "arena_regions": ArrayAttr(regs),
        }
        if canaries:
            props["canaries"] = ArrayAttr([IntAttr(c) for c in canaries])
        super().__init__(properties=props)

    def region(self, kind: str) -> RegionAttr | None:
        for r in self.arena_regions.data:
            if r.kind.data == kind:
                return r
        return None

    @property
    def canary_offsets(self) -> list[int]:
        return [c.data for c in self.canaries.data] if self.canaries is not None else []

    def verify_(self) -> None:
        name = self.sym_name.data
        size, align = self.size.data, self.alignment.data
        if size <= 0:
            raise VerifyException(f"arena @{name} has size {size}")
        if not _pow2(align):
            raise VerifyException(f"arena @{name} alignment {align} is not a power of two")
        seen: dict[str, RegionAttr] = {}
        for r in self.arena_regions.data:
            k = r.kind.data
            if k in seen:
                raise VerifyException(f"arena @{name} declares region '{k}' twice")
            if r.offset.data % align:
                raise VerifyException(
                    f"region '{k}' offset {r.offset.data} is not a multiple of {align}"
                )
            if r.end > size:
                raise VerifyException(
                    f"region '{k}' [{r.offset.data}, {r.end}) exceeds arena @{name} size {size}"
                )
            for o in seen.values():
                if r.offset.data < o.end and o.offset.data < r.end:
                    raise VerifyException(f"regions '{o.kind.data}' and '{k}' overlap")
            seen[k] = r
        for c in self.canary_offsets:
            if c % CANARY_BYTES or c < 0 or c + CANARY_BYTES > size:
                raise VerifyException(
                    f"canary at {c} must be 8-byte aligned and inside arena @{name}"
                )
            for r in seen.values():
                if c < r.end and r.offset.data < c + CANARY_BYTES:
                    raise VerifyException(f"canary at {c} lies inside region '{r.kind.data}'")
        module = self.parent_op()
        if module is not None:
            for other in module.ops:
                if isinstance(other, ArenaOp) and other is not self:
                    for r in other.arena_regions.data:
                        if r.kind.data in seen:
                            raise VerifyException(
                                f"region '{r.kind.data}' is declared by arenas "
                                f"@{other.sym_name.data} and @{name}"
                            )

    @classmethod
    def parse(cls, parser: Parser) -> ArenaOp:
        name = parser.parse_symbol_name().data
        parser.parse_keyword("size")
        size = parser.parse_integer(allow_boolean=False)
        parser.parse_keyword("align")
        align = parser.parse_integer(allow_boolean=False)
        parser.parse_keyword("regions")
        regions = parser.parse_comma_separated_list(
            parser.Delimiter.BRACES, lambda: RegionAttr.parse_body(parser)
        )
        canaries = None
        if parser.parse_optional_keyword("canaries") is not None:
            canaries = parser.parse_comma_separated_list(
                parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
            )
        op = cls(name, size, regions, align, canaries)
        if attrs := parser.parse_optional_attr_dict():
            op.attributes |= attrs
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string(f" size {self.size.data} align {self.alignment.data} regions {{")
        printer.print_list(self.arena_regions.data, lambda r: r.print_body(printer))
        printer.print_string("}")
        if self.canaries is not None:
            printer.print_string(" canaries [")
            printer.print_list(self.canary_offsets, lambda c: printer.print_string(str(c)))
            printer.print_string("]")
        printer.print_op_attributes(self.attributes)


def _tensor_bytes(t: TensorType) -> tuple[int, bool]:
    """(bytes of the static part, whether a dim is dynamic)."""
    from ckc.dialects import quant

    el = t.element_type
    if quant.is_quantized(el):  # GGUF blocks: rows of whole blocks (dialects/quant.py)
        shape = t.get_shape()
        dynamic = any(d < 0 for d in shape)
        return quant.tensor_bytes(el, [1 if d < 0 else d for d in shape]), dynamic
    width = getattr(el, "bitwidth", None)
    if width is None:
        width = el.width.data if isinstance(el, IntegerType) else 32
    n = 1
    dynamic = False
    for d in t.get_shape():
        if d < 0:
            dynamic = True
        else:
            n *= d
    return (n * width + 7) // 8, dynamic


@irdl_op_definition
class BufferOp(IRDLOperation):
    """A named buffer: a region kind, a size, an alignment, and once planned an
    offset (bytes from the start of the region's arena) and a lifetime.

    ```mlir
    buffer.buffer @"token_embd.weight" : tensor<32x16xf32> in weights size 2048 align 64 offset 0
    buffer.buffer @h : tensor<?x16xf32> in activations size 2048 align 64 offset 4160 live 0 to 3
    buffer.buffer @"blk.attn_q.weight" : tensor<16x16xf32> in weights size 1024 align 64 layers 2 stride 1024
    buffer.buffer @"blk.0.ffn_up.weight" : tensor<40x16xf32> in weights size 4096 align 64 layout p32
    ```
    At module level: program lifetime. In a ``func.func`` body: local to the
    function. ``layers L stride S``: L copies at offset + l*S. ``layout p32``
    (weights only, 2-D f32 [N, K]): stored prepacked for ``gemm_packed``, in
    panels of 32 rows, k-major, N padded to a multiple of 32 (size
    ceil(N/32)*32*K*4; the .bump dtype f32p32; set by ``pack-weights``).
    """

    name = "buffer.buffer"

    sym_name = prop_def(StringAttr)
    type = prop_def(TensorType)
    region = prop_def(StringAttr)
    size = prop_def(IntAttr)
    alignment = prop_def(IntAttr)
    offset = opt_prop_def(IntAttr)
    live_first = opt_prop_def(IntAttr)
    live_last = opt_prop_def(IntAttr)
    layers = opt_prop_def(IntAttr)
    stride = opt_prop_def(IntAttr)
    layout = opt_prop_def(StringAttr)

    def __init__(
        self,
        name: str,
        type: TensorType,
        region: str,
        size: int,
        alignment: int = 64,
        offset: int | None = None,
        live: tuple[int, int] | None = None,
        layers: int | None = None,
        stride: int | None = None,
        layout: str | None = None,
    ):
        props: dict[str, Attribute] = {
            "sym_name": StringAttr(name),
            "type": type,
            "region": StringAttr(region),
            "size": IntAttr(size),
            "alignment": IntAttr(alignment),
        }
        if offset is not None:
            props["offset"] = IntAttr(offset)
        if live is not None:
            props["live_first"] = IntAttr(live[0])
            props["live_last"] = IntAttr(live[1])
        if layers is not None:
            props["layers"] = IntAttr(layers)
        if stride is not None:
            props["stride"] = IntAttr(stride)
        if layout is not None:
            props["layout"] = StringAttr(layout)
        super().__init__(properties=props)

    # -- convenient accessors for passes ------------------------------------

    @property
    def buffer_name(self) -> str:
        return self.sym_name.data

    @property
    def live(self) -> tuple[int, int] | None:
        if self.live_first is None or self.live_last is None:
            return None
        return self.live_first.data, self.live_last.data

    @property
    def num_layers(self) -> int:
        return self.layers.data if self.layers is not None else 1

    @property
    def footprint(self) -> int:
        """Bytes from the offset to the end of the last layer copy."""
        if self.layers is None or self.stride is None:
            return self.size.data
        return (self.layers.data - 1) * self.stride.data + self.size.data

    @property
    def is_local(self) -> bool:
        """Declared in a function (else module level, live for the program)."""
        return isinstance(self.parent_op(), func.FuncOp)

    def set_offset(self, offset: int) -> None:
        self.properties["offset"] = IntAttr(offset)

    def set_live(self, first: int, last: int) -> None:
        self.properties["live_first"] = IntAttr(first)
        self.properties["live_last"] = IntAttr(last)

    def verify_(self) -> None:
        name = self.sym_name.data
        if not name:
            raise VerifyException("buffer name must not be empty")
        kind = self.region.data
        if kind not in REGION_KINDS:
            raise VerifyException(
                f"unknown region kind '{kind}' (expected one of {', '.join(REGION_KINDS)})"
            )
        size, align = self.size.data, self.alignment.data
        if size <= 0:
            raise VerifyException(f"buffer @{name} has size {size}")
        if not _pow2(align):
            raise VerifyException(f"buffer @{name} alignment {align} is not a power of two")
        nbytes, dynamic = _tensor_bytes(self.type)
        if self.layout is not None:
            lay = self.layout.data
            if lay not in LAYOUTS:
                raise VerifyException(f"buffer @{name}: unknown layout '{lay}' (expected {', '.join(LAYOUTS)})")
            shape = self.type.get_shape()
            el = self.type.element_type
            if lay == "r8":
                from ckc.dialects import quant

                if kind != "weights" or len(shape) != 2 or dynamic or quant.format_name(el) not in R8_FORMATS:
                    raise VerifyException(f"buffer @{name}: layout r8 needs a static 2-D weights buffer in one of "
                                          f"{', '.join(R8_FORMATS)}")
                nbytes = packed_r8_bytes(el, shape[0], shape[1])
            elif kind != "weights" or len(shape) != 2 or dynamic or el != f32:
                raise VerifyException(f"buffer @{name}: layout {lay} needs a static 2-D f32 weights buffer")
            else:
                nbytes = packed_p32_bytes(shape[0], shape[1])
            if size < nbytes:
                raise VerifyException(f"buffer @{name} size {size} < {nbytes} bytes of {self.type} in layout {lay}")
        if dynamic:
            if nbytes == 0 or size % nbytes:
                raise VerifyException(
                    f"buffer @{name} size {size} is not a whole number of {nbytes}-byte rows of {self.type}"
                )
        elif size < nbytes:
            raise VerifyException(f"buffer @{name} size {size} < {nbytes} bytes of {self.type}")
        if self.offset is not None and self.offset.data % align:
            raise VerifyException(
                f"buffer @{name} offset {self.offset.data} is not a multiple of its alignment {align}"
            )
        if (self.live_first is None) != (self.live_last is None):
            raise VerifyException(f"buffer @{name}: live needs both first and last")
        if self.live is not None:
            first, last = self.live
            if not 0 <= first <= last:
                raise VerifyException(f"buffer @{name} lifetime [{first}, {last}] is empty or negative")
        if (self.layers is None) != (self.stride is None):
            raise VerifyException(f"buffer @{name}: layers and stride come together")
        if self.layers is not None:
            if self.layers.data < 1:
                raise VerifyException(f"buffer @{name} has {self.layers.data} layers")
            if self.stride.data < size:
                raise VerifyException(
                    f"buffer @{name} layer stride {self.stride.data} < size {size}: copies overlap"
                )
            if self.stride.data % align:
                raise VerifyException(
                    f"buffer @{name} layer stride {self.stride.data} is not a multiple of its alignment {align}"
                )
        parent = self.parent_op()
        if not isinstance(parent, (ModuleOp, func.FuncOp)):
            raise VerifyException(
                f"buffer @{name} must be declared at module level or in a func.func body"
            )
        # Shadowing is checked from both sides with non-rebuilding lookups:
        # each side first puts itself in its own block's index (_namesakes),
        # so whichever of the two is verified second sees the other.
        if isinstance(parent, func.FuncOp):
            if len(_namesakes(self, parent.body.block)) > 1:
                raise VerifyException(f"buffer @{name} is declared twice")
            module = _module_of(parent)
            if module is not None and _peek(module.body.block, name) is not None:
                raise VerifyException(f"buffer @{name} shadows a module-level buffer")
        else:
            if len(_namesakes(self, parent.body.block)) > 1:
                raise VerifyException(f"buffer @{name} is declared twice")
            for f in _block_index(parent.body.block)[2]:
                if _in_block(f, parent.body.block) and f.body.blocks:
                    if _peek(f.body.block, name) is not None:
                        raise VerifyException(
                            f"buffer @{name} is shadowed by a local buffer of @{f.sym_name.data}"
                        )
        module = _module_of(self)
        if self.offset is not None and module is not None:
            arena = find_region(module, kind)
            if arena is None:
                raise VerifyException(
                    f"buffer @{name} has an offset but no arena declares region '{kind}'"
                )
            reg = arena.region(kind)
            start, end = self.offset.data, self.offset.data + self.footprint
            if start < reg.offset.data or end > reg.end:
                raise VerifyException(
                    f"buffer @{name} [{start}, {end}) lies outside region '{kind}' "
                    f"[{reg.offset.data}, {reg.end}) of arena @{arena.sym_name.data}"
                )

    @classmethod
    def parse(cls, parser: Parser) -> BufferOp:
        name = parser.parse_symbol_name().data
        parser.parse_punctuation(":")
        t = parser.parse_type()
        if not isinstance(t, TensorType):
            parser.raise_error(f"buffer type must be a tensor type, got {t}")
        parser.parse_keyword("in")
        kind = parser.parse_identifier()
        parser.parse_keyword("size")
        size = parser.parse_integer(allow_boolean=False)
        parser.parse_keyword("align")
        align = parser.parse_integer(allow_boolean=False)
        offset = live = layers = stride = None
        if parser.parse_optional_keyword("offset") is not None:
            offset = parser.parse_integer(allow_boolean=False)
        if parser.parse_optional_keyword("live") is not None:
            first = parser.parse_integer(allow_boolean=False)
            parser.parse_keyword("to")
            live = (first, parser.parse_integer(allow_boolean=False))
        if parser.parse_optional_keyword("layers") is not None:
            layers = parser.parse_integer(allow_boolean=False)
            parser.parse_keyword("stride")
            stride = parser.parse_integer(allow_boolean=False)
        layout = None
        if parser.parse_optional_keyword("layout") is not None:
            layout = parser.parse_identifier()
        op = cls(name, t, kind, size, align, offset, live, layers, stride, layout)
        if attrs := parser.parse_optional_attr_dict():
            op.attributes |= attrs
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string(" : ")
        printer.print_attribute(self.type)
        printer.print_string(
            f" in {self.region.data} size {self.size.data} align {self.alignment.data}"
        )
        if self.offset is not None:
            printer.print_string(f" offset {self.offset.data}")
        if self.live_first is not None and self.live_last is not None:
            printer.print_string(f" live {self.live_first.data} to {self.live_last.data}")
        if self.layers is not None and self.stride is not None:
            printer.print_string(f" layers {self.layers.data} stride {self.stride.data}")
        if self.layout is not None:
            printer.print_string(f" layout {self.layout.data}")
        printer.print_op_attributes(self.attributes)


_StaticParam = IntegerAttr | FloatAttr | StringAttr


@irdl_op_definition
class CallOp(IRDLOperation):
    """A kernel call on buffers, in a function body or a ``buffer.loop``.

    ```mlir
    buffer.call rmsnorm ins(@x, @"blk.attn_norm.weight"[%l]) outs(@h) params(rows = %n : index, cols = 16 : i64, eps = 1.0e-05 : f32)
    buffer.call matmul<avx512> ins(@h, @"output.weight") outs(@logits) params(m = %n : index, n = 32 : i64, k = 16 : i64, transpose_b = true)
    ```
    The kernel name is the op family of the C library (``ck_<kernel>_f32_<variant>``);
    the variant (``<avx512>``) is absent until select-simd. Dynamic params
    print first, then static ones.
    """

    name = "buffer.call"

    kernel = prop_def(StringAttr)
    variant = opt_prop_def(StringAttr)
    ins = prop_def(ArrayAttr[BufRefAttr])
    outs = prop_def(ArrayAttr[BufRefAttr])
    params = prop_def(DictionaryAttr)
    dyn_names = prop_def(ArrayAttr[StringAttr])

    layer = opt_operand_def(IndexType)
    dyn_params = var_operand_def()

    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(
        self,
        kernel: str,
        ins: Iterable[str | tuple[str, bool] | BufRefAttr],
        outs: Iterable[str | tuple[str, bool] | BufRefAttr],
        params: Mapping[str, Attribute | SSAValue | Operation | int | float] | None = None,
        variant: str | None = None,
        layer: SSAValue | Operation | None = None,
    ):
        """`ins`/`outs`: buffer names, or (name, True) for layer `layer` of a
        layered buffer. `params`: ints become i64, floats f32, SSA values are
        dynamic params."""
        static: dict[str, Attribute] = {}
        dyn_names: list[StringAttr] = []
        dyn_vals: list[SSAValue | Operation] = []
        for k, v in (params or {}).items():
            if isinstance(v, (SSAValue, Operation)):
                dyn_names.append(StringAttr(k))
                dyn_vals.append(v)
            elif isinstance(v, bool):
                static[k] = IntegerAttr(int(v), 1)
            elif isinstance(v, int):
                static[k] = IntegerAttr(v, i64)
            elif isinstance(v, float):
                static[k] = FloatAttr(v, 32)
            else:
                static[k] = v
        props: dict[str, Attribute] = {
            "kernel": StringAttr(kernel),
            "ins": ArrayAttr([_ref(r) for r in ins]),
            "outs": ArrayAttr([_ref(r) for r in outs]),
            "params": DictionaryAttr(static),
            "dyn_names": ArrayAttr(dyn_names),
        }
        if variant is not None:
            props["variant"] = StringAttr(variant)
        super().__init__(
            operands=[[layer] if layer is not None else [], dyn_vals],
            properties=props,
        )

    # -- accessors for passes ----------------------------------------------

    @property
    def in_refs(self) -> list[BufRefAttr]:
        return list(self.ins.data)

    @property
    def out_refs(self) -> list[BufRefAttr]:
        return list(self.outs.data)

    def param(self, name: str) -> Attribute | SSAValue | None:
        """A static param attribute, a dynamic param value, or None."""
        if name in self.params.data:
            return self.params.data[name]
        for n, v in zip(self.dyn_names.data, self.dyn_params):
            if n.data == name:
                return v
        return None

    def set_variant(self, variant: str) -> None:
        self.properties["variant"] = StringAttr(variant)

    def verify_(self) -> None:
        k = self.kernel.data
        if not _KERNEL.match(k):
            raise VerifyException(f"kernel name '{k}' must match [a-z_][a-z0-9_]*")
        if self.variant is not None and self.variant.data not in VARIANTS:
            raise VerifyException(
                f"unknown variant '{self.variant.data}' (expected one of {', '.join(VARIANTS)})"
            )
        if not self.outs.data:
            raise VerifyException(f"{k}: a kernel call writes at least one buffer")
        names = [n.data for n in self.dyn_names.data]
        if len(names) != len(self.dyn_params):
            raise VerifyException(
                f"{k}: {len(names)} dynamic param names for {len(self.dyn_params)} values"
            )
        for n in list(names) + list(self.params.data):
            if not _PARAM.match(n):
                raise VerifyException(f"{k}: param name '{n}' is not an identifier")
        if len(set(names)) != len(names) or set(names) & set(self.params.data):
            raise VerifyException(f"{k}: duplicate param name")
        for n, v in zip(names, self.dyn_params):
            if not isinstance(v.type, (IndexType, IntegerType)):
                raise VerifyException(f"{k}: dynamic param '{n}' must be an integer or index, got {v.type}")
        for n, a in self.params.data.items():
            if not isinstance(a, (IntegerAttr, FloatAttr, StringAttr)):
                raise VerifyException(f"{k}: param '{n}' must be an integer, float or string, got {a}")
        if _func_of(self) is None:
            raise VerifyException(f"{k}: buffer.call must be inside a func.func")
        indexed = False
        for ref in self.in_refs + self.out_refs:
            grp = lookup_layers(self, ref.buffer_name) if ref.is_indexed else None
            buf = lookup_buffer(self, ref.buffer_name) if grp is None else None
            if grp is not None:
                indexed = True  # a buffer.layers table: @name[%l] is its member l
                if self.layer is None:
                    raise VerifyException(f"{k}: @{ref.buffer_name}[...] needs a layer index")
                bound = _loop_bound(self.layer)
                if bound is not None and bound > len(grp.members):
                    raise VerifyException(
                        f"{k}: layer index runs to {bound - 1} but @{ref.buffer_name} has {len(grp.members)} members"
                    )
                continue
            if buf is None:
                raise VerifyException(f"{k}: unknown buffer @{ref.buffer_name}")
            if ref.is_indexed:
                indexed = True
                if buf.layers is None:
                    raise VerifyException(f"{k}: @{ref.buffer_name}[...] indexes a buffer without layers")
                if self.layer is None:
                    raise VerifyException(f"{k}: @{ref.buffer_name}[...] needs a layer index")
                bound = _loop_bound(self.layer)
                if bound is not None and bound > buf.num_layers:
                    raise VerifyException(
                        f"{k}: layer index runs to {bound - 1} but @{ref.buffer_name} has {buf.num_layers} layers"
                    )
        if self.layer is not None and not indexed:
            raise VerifyException(f"{k}: a layer index but no indexed buffer")

    @classmethod
    def parse(cls, parser: Parser) -> CallOp:
        kernel = parser.parse_identifier()
        variant = None
        if parser.parse_optional_punctuation("<") is not None:
            variant = parser.parse_identifier()
            parser.parse_punctuation(">")
        layer_name: list = []

        def one_ref() -> BufRefAttr:
            name = parser.parse_symbol_name().data
            if parser.parse_optional_punctuation("[") is not None:
                op = parser.parse_unresolved_operand()
                parser.parse_punctuation("]")
                if layer_name and layer_name[0].operand_name != op.operand_name:
                    parser.raise_error("all [index] of a call use the same value")
                layer_name[:] = [op]
                return BufRefAttr(name, True)
            return BufRefAttr(name)

        parser.parse_keyword("ins")
        ins = parser.parse_comma_separated_list(parser.Delimiter.PAREN, one_ref)
        parser.parse_keyword("outs")
        outs = parser.parse_comma_separated_list(parser.Delimiter.PAREN, one_ref)
        static: dict[str, Attribute] = {}
        dyn: list[tuple[str, SSAValue]] = []
        if parser.parse_optional_keyword("params") is not None:

            def one_param() -> None:
                key = parser.parse_identifier()
                if key in static or any(k == key for k, _ in dyn):
                    parser.raise_error(f"duplicate param '{key}'")
                parser.parse_punctuation("=")
                v = parser.parse_optional_unresolved_operand()
                if v is not None:
                    parser.parse_punctuation(":")
                    dyn.append((key, parser.resolve_operand(v, parser.parse_type())))
                else:
                    static[key] = parser.parse_attribute()

            parser.parse_comma_separated_list(parser.Delimiter.PAREN, one_param)
        layer = parser.resolve_operand(layer_name[0], IndexType()) if layer_name else None
        params: dict[str, Attribute | SSAValue] = {k: v for k, v in dyn}
        params.update(static)
        op = cls(kernel, ins, outs, params, variant, layer)
        if attrs := parser.parse_optional_attr_dict():
            op.attributes |= attrs
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.kernel.data}")
        if self.variant is not None:
            printer.print_string(f"<{self.variant.data}>")

        def one_ref(ref: BufRefAttr) -> None:
            printer.print_symbol_name(ref.buffer_name)
            if ref.is_indexed and self.layer is not None:
                printer.print_string("[")
                printer.print_operand(self.layer)
                printer.print_string("]")

        printer.print_string(" ins(")
        printer.print_list(self.in_refs, one_ref)
        printer.print_string(") outs(")
        printer.print_list(self.out_refs, one_ref)
        printer.print_string(")")
        items: list = list(zip(self.dyn_names.data, self.dyn_params)) + list(
            self.params.data.items()
        )
        if items:

            def one_param(item) -> None:
                key, v = item
                printer.print_string(f"{key.data if isinstance(key, StringAttr) else key} = ")
                if isinstance(v, SSAValue):
                    printer.print_operand(v)
                    printer.print_string(" : ")
                    printer.print_attribute(v.type)
                else:
                    printer.print_attribute(v)

            printer.print_string(" params(")
            printer.print_list(items, one_param)
            printer.print_string(")")
        printer.print_op_attributes(self.attributes)


def _ref(r: str | tuple[str, bool] | BufRefAttr) -> BufRefAttr:
    if isinstance(r, BufRefAttr):
        return r
    if isinstance(r, tuple):
        return BufRefAttr(r[0], r[1])
    return BufRefAttr(r)


def _loop_bound(v: SSAValue) -> int | None:
    if isinstance(v, BlockArgument):
        owner = v.block.parent_op()
        if isinstance(owner, LoopOp):
            return owner.ub.data
    return None


@irdl_op_definition
class LoopOp(IRDLOperation):
    """A counted loop in a function body (the loop over layers). The body block
    has one ``index`` argument and no terminator.

    ```mlir
    buffer.loop %l = 0 to 30 {
      buffer.call rmsnorm ins(@x, @"blk.attn_norm.weight"[%l]) outs(@h) params(rows = %n : index, cols = 576 : i64, eps = 1.0e-05 : f32)
    }
    ```
    """

    name = "buffer.loop"

    lb = prop_def(IntAttr)
    ub = prop_def(IntAttr)
    body = region_def("single_block")

    traits = traits_def(NoTerminator())

    def __init__(self, lb: int, ub: int, body: Region | None = None):
        """Without `body`, an empty block with the index argument is made."""
        if body is None:
            body = Region(Block(arg_types=[IndexType()]))
        super().__init__(properties={"lb": IntAttr(lb), "ub": IntAttr(ub)}, regions=[body])

    @property
    def index(self) -> BlockArgument:
        return self.body.block.args[0]

    def verify_(self) -> None:
        if not 0 <= self.lb.data < self.ub.data:
            raise VerifyException(f"loop bounds {self.lb.data} to {self.ub.data}: need 0 <= lb < ub")
        args = self.body.block.args
        if len(args) != 1 or not isinstance(args[0].type, IndexType):
            raise VerifyException("loop body must have exactly one index argument")
        if _func_of(self) is None:
            raise VerifyException("buffer.loop must be inside a func.func")
        for op in self.body.block.ops:
            if isinstance(op, BufferOp):
                raise VerifyException("buffers are declared in the function body, not in a loop")

    @classmethod
    def parse(cls, parser: Parser) -> LoopOp:
        arg = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        lb = parser.parse_integer(allow_boolean=False)
        parser.parse_keyword("to")
        ub = parser.parse_integer(allow_boolean=False)
        attrs = parser.parse_optional_attr_dict_with_keyword()
        region = parser.parse_region([arg.resolve(IndexType())])
        op = cls(lb, ub, region)
        if attrs is not None:
            op.attributes |= attrs.data
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.index)
        printer.print_string(f" = {self.lb.data} to {self.ub.data}")
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=True)


@irdl_op_definition
class LayersOp(IRDLOperation):
    """A per-layer table of buffers in a function body: ``@NAME[%l]`` in a
    call is member %l. `roll-layers` makes them when it rolls repeated
    per-layer calls into a ``buffer.loop``: each layer's calls used their own
    planned buffers (weights, KV cache, activations at offsets plan-memory
    chose), and the table keeps exactly those (lower-to-c: a table of their
    offsets). Members share a type, a region and a layout.

    ```mlir
    buffer.layers @attn_norm.weight = [@blk.0.attn_norm.weight, @blk.1.attn_norm.weight]
    buffer.loop %l = 0 to 2 {
      buffer.call rmsnorm ins(@x, @attn_norm.weight[%l]) outs(@h) params(rows = %n : index, cols = 16 : i64, eps = 1.0e-05 : f32)
    }
    ```
    """

    name = "buffer.layers"

    sym_name = prop_def(StringAttr)
    members = prop_def(ArrayAttr[SymbolRefAttr])

    traits = traits_def(HasParent(func.FuncOp))

    def __init__(self, name: str, members: Sequence[str]):
        super().__init__(properties={
            "sym_name": StringAttr(name),
            "members": ArrayAttr([SymbolRefAttr(m) for m in members]),
        })

    @property
    def member_names(self) -> list[str]:
        return [m.root_reference.data for m in self.members.data]

    def verify_(self) -> None:
        name = self.sym_name.data
        names = self.member_names
        if not names:
            raise VerifyException(f"buffer.layers @{name} has no members")
        f = _func_of(self)
        module = _module_of(self)
        if (f is not None and _peek(f.body.block, name) is not None) or (
                module is not None and _peek(module.body.block, name) is not None):
            raise VerifyException(f"buffer.layers @{name} has the name of a buffer")
        if f is not None:
            found = lookup_layers(self, name)
            if found is not None and found is not self:
                raise VerifyException(f"buffer.layers @{name} is declared twice")
        first = None
        for m in names:
            b = lookup_buffer(self, m)
            if b is None:
                raise VerifyException(f"buffer.layers @{name}: unknown buffer @{m}")
            if b.layers is not None:
                raise VerifyException(f"buffer.layers @{name}: member @{m} is itself layered")
            key = (b.type, b.region.data, b.layout.data if b.layout is not None else None)
            if first is None:
                first = key
            elif key != first:
                raise VerifyException(
                    f"buffer.layers @{name}: member @{m} differs from @{names[0]} in type, region or layout"
                )

    @classmethod
    def parse(cls, parser: Parser) -> LayersOp:
        name = parser.parse_symbol_name().data
        parser.parse_punctuation("=")
        members = parser.parse_comma_separated_list(
            parser.Delimiter.SQUARE, lambda: parser.parse_symbol_name().data
        )
        op = cls(name, members)
        if attrs := parser.parse_optional_attr_dict():
            op.attributes |= attrs
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string(" = [")
        printer.print_list(self.member_names, printer.print_symbol_name)
        printer.print_string("]")
        printer.print_op_attributes(self.attributes)


_LAYERS: weakref.WeakKeyDictionary[Block, dict[str, LayersOp]] = weakref.WeakKeyDictionary()


def lookup_layers(op: Operation, name: str, rebuild: bool = True) -> LayersOp | None:
    """The buffer.layers @name of `op`'s function, if any. Indexed per block
    like the buffers (an entry is trusted while the op still sits in that
    block under that name; a miss rescans once, unless `rebuild` is false)."""
    f = op if isinstance(op, func.FuncOp) else _func_of(op)
    if f is None or not f.body.blocks:
        return None
    block = f.body.block
    for refresh in (False, True) if rebuild else (False,):
        idx = None if refresh else _LAYERS.get(block)
        if idx is None:
            idx = {o.sym_name.data: o for o in block.ops if isinstance(o, LayersOp)}
            _LAYERS[block] = idx
        o = idx.get(name)
        if o is not None and o.parent_block() is block and o.sym_name.data == name:
            return o
    return None


# --------------------------------------------------------------------------
# Helpers for passes
# --------------------------------------------------------------------------


# Name lookups run once per buffer reference during verification; scanning a
# function body each time is quadratic (seconds for a 30-layer model). Each
# block gets a lazily built index name -> [BufferOp]. An index entry is trusted
# only while the op still sits in that block under that name; a miss rebuilds
# the index once, so the answer is always what a full scan would give.
_Index = tuple[dict[str, list["BufferOp"]], list["ArenaOp"], list[func.FuncOp]]
_INDEX: weakref.WeakKeyDictionary[Block, _Index] = weakref.WeakKeyDictionary()


def _block_index(block: Block, refresh: bool = False):
    idx = None if refresh else _INDEX.get(block)
    if idx is None:
        names: dict[str, list[BufferOp]] = {}
        arenas: list[ArenaOp] = []
        funcs: list[func.FuncOp] = []
        for op in block.ops:
            if isinstance(op, BufferOp):
                names.setdefault(op.sym_name.data, []).append(op)
            elif isinstance(op, ArenaOp):
                arenas.append(op)
            elif isinstance(op, func.FuncOp):
                funcs.append(op)
        idx = (names, arenas, funcs)
        _INDEX[block] = idx
    return idx


def _in_block(op: Operation, block: Block, name: str | None = None) -> bool:
    return op.parent_block() is block and (name is None or op.sym_name.data == name)


def _find(blocks: Sequence[Block], name: str) -> BufferOp | None:
    for refresh in (False, True):
        for b in blocks:
            for o in _block_index(b, refresh)[0].get(name, ()):
                if _in_block(o, b, name):
                    return o
    return None


def _namesakes(op: BufferOp, block: Block) -> list[BufferOp]:
    """Every buffer in `block` named like `op` (op included)."""
    name = op.sym_name.data
    ops = _block_index(block)[0].get(name, [])
    if op not in ops or not all(_in_block(o, block, name) for o in ops):
        ops = _block_index(block, True)[0].get(name, [])
    return ops


def _peek(block: Block, name: str) -> BufferOp | None:
    """Like `_find` but without rebuilding on a miss (for checks that expect
    a miss; see BufferOp.verify_ for why they stay exact)."""
    for o in _block_index(block)[0].get(name, ()):
        if _in_block(o, block, name):
            return o
    return None


def _top_buffer(module: ModuleOp, name: str) -> BufferOp | None:
    return _find([module.body.block], name)


def lookup_buffer(op: Operation, name: str) -> BufferOp | None:
    """The buffer @name visible from `op`: its function's local buffers first,
    then the module's."""
    blocks: list[Block] = []
    f = op if isinstance(op, func.FuncOp) else _func_of(op)
    if f is not None and f.body.blocks:
        blocks.append(f.body.block)
    module = op if isinstance(op, ModuleOp) else _module_of(op)
    if module is not None:
        blocks.append(module.body.block)
    return _find(blocks, name)


def find_region(module: ModuleOp, kind: str) -> ArenaOp | None:
    """The arena declaring region `kind`, if any."""
    block = module.body.block
    for refresh in (False, True):
        for a in _block_index(block, refresh)[1]:
            if _in_block(a, block) and a.region(kind) is not None:
                return a
    return None


Buffer = Dialect(
    "buffer",
    [ArenaOp, BufferOp, CallOp, LoopOp, LayersOp],
    [RegionAttr, BufRefAttr],
)
