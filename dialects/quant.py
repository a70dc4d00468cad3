"""The `quant` dialect: GGUF block formats as tensor element types.

A quantized weight keeps its file's storage format through every dialect:
``tensor<576x576x!quant.q4_1>`` is a logical 576x576 matrix whose rows are
stored as 576/32 Q4_1 blocks of 20 bytes each, exactly the bytes of the GGUF
tensor. The shape is the logical (dequantized) shape, so shape rules and
verifiers read as for fp32; the element type says how a row is stored and
which kernel reads it. F16 and BF16 are builtin ``f16`` / ``bf16``, F32 is
``f32``.

Formats (``ggml`` type number, values per block, bytes per block; block
layouts are documented next to the kernels in ``kernels/include/ckernels.h``
and ``kernels/internal/quant_k.h``, the reference is gguf-py's ``quants.py``):

==========  =====  =====  =====
type        ggml   block  bytes
==========  =====  =====  =====
q4_0           2     32     18
q4_1           3     32     20
q5_0           6     32     22
q5_1           7     32     24
q8_0           8     32     34
q2_k          10    256     84
q3_k          11    256    110
q4_k          12    256    144
q5_k          13    256    176
q6_k          14    256    210
==========  =====  =====  =====

A row (the last dimension) must be a whole number of blocks:
:func:`check_shape` says why not, for the verifiers of the ops that carry
these types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type, bf16, f16, f32
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import irdl_attr_definition


class BlockQuantType(ParametrizedAttribute, TypeAttribute):
    """A GGUF block format: ``BLOCK`` values stored in ``TYPE_SIZE`` bytes."""

    GGML_TYPE: ClassVar[int]
    BLOCK: ClassVar[int]
    TYPE_SIZE: ClassVar[int]

    @classmethod
    def short_name(cls) -> str:
        return cls.name.split(".", 1)[1]


@irdl_attr_definition
class Q4_0Type(BlockQuantType):
    name = "quant.q4_0"
    GGML_TYPE, BLOCK, TYPE_SIZE = 2, 32, 18


@irdl_attr_definition
class Q4_1Type(BlockQuantType):
    name = "quant.q4_1"
    GGML_TYPE, BLOCK, TYPE_SIZE = 3, 32, 20


@irdl_attr_definition
class Q5_0Type(BlockQuantType):
    name = "quant.q5_0"
    GGML_TYPE, BLOCK, TYPE_SIZE = 6, 32, 22


@irdl_attr_definition
class Q5_1Type(BlockQuantType):
    name = "quant.q5_1"
    GGML_TYPE, BLOCK, TYPE_SIZE = 7, 32, 24


@irdl_attr_definition
class Q8_0Type(BlockQuantType):
    name = "quant.q8_0"
    GGML_TYPE, BLOCK, TYPE_SIZE = 8, 32, 34


@irdl_attr_definition
class Q2_KType(BlockQuantType):
    name = "quant.q2_k"
    GGML_TYPE, BLOCK, TYPE_SIZE = 10, 256, 84


@irdl_attr_definition
class Q3_KType(BlockQuantType):
    name = "quant.q3_k"
    GGML_TYPE, BLOCK, TYPE_SIZE = 11, 256, 110


@irdl_attr_definition
class Q4_KType(BlockQuantType):
    name = "quant.q4_k"
    GGML_TYPE, BLOCK, TYPE_SIZE = 12, 256, 144


@irdl_attr_definition
class Q5_KType(BlockQuantType):
    name = "quant.q5_k"
    GGML_TYPE, BLOCK, TYPE_SIZE = 13, 256, 176


@irdl_attr_definition
class Q6_KType(BlockQuantType):
    name = "quant.q6_k"
    GGML_TYPE, BLOCK, TYPE_SIZE = 14, 256, 210


BLOCK_TYPES: tuple[type[BlockQuantType], ...] = (
    Q4_0Type, Q4_1Type, Q5_0Type, Q5_1Type, Q8_0Type,
    Q2_KType, Q3_KType, Q4_KType, Q5_KType, Q6_KType,
)

# format name -> (ggml type number, values per block, bytes per block)
FORMATS: dict[str, tuple[int, int, int]] = {
    "f32": (0, 1, 4),
    "f16": (1, 1, 2),
    "bf16": (30, 1, 2),
    **{t.short_name(): (t.GGML_TYPE, t.BLOCK, t.TYPE_SIZE) for t in BLOCK_TYPES},
}
_BY_NAME: dict[str, Attribute] = {"f32": f32, "f16": f16, "bf16": bf16,
                                  **{t.short_name(): t() for t in BLOCK_TYPES}}
_BY_GGML: dict[int, str] = {v[0]: k for k, v in FORMATS.items()}


def element_type(fmt: str) -> Attribute:
    """The element type of a format name (``"q4_1"`` -> ``!quant.q4_1``)."""
    try:
        return _BY_NAME[fmt]
    except KeyError:
        raise ValueError(f"unknown weight format '{fmt}' (expected one of {', '.join(FORMATS)})") from None


def format_name(el: Attribute) -> str | None:
    """``"q4_1"``, ``"f16"``, ``"bf16"``, ``"f32"``; None for any other element type."""
    if isinstance(el, BlockQuantType):
        return el.short_name()
    if isinstance(el, Float32Type):
        return "f32"
    if isinstance(el, Float16Type):
        return "f16"
    if isinstance(el, BFloat16Type):
        return "bf16"
    return None


def format_of_ggml(ggml_type: int) -> str | None:
    """The format name of a GGUF tensor type number; None if ckc has no such format."""
    return _BY_GGML.get(int(ggml_type))


def is_quantized(el: Attribute) -> bool:
    """True for a block format (not f32/f16/bf16)."""
    return isinstance(el, BlockQuantType)


def row_bytes(el: Attribute, n: int) -> int:
    """Bytes of a row of n values (n a whole number of blocks)."""
    name = format_name(el)
    if name is None:
        raise ValueError(f"{el} is not a weight format")
    _, block, size = FORMATS[name]
    return (n // block) * size


def tensor_bytes(el: Attribute, shape: Sequence[int]) -> int:
    """Bytes of a row-major tensor: rows of ``shape[-1]`` values each."""
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows * row_bytes(el, shape[-1] if shape else 1)


def check_shape(el: Attribute, shape: Sequence[int]) -> str | None:
    """Why ``shape`` cannot hold ``el`` (a row not a whole number of blocks), or None."""
    if not isinstance(el, BlockQuantType):
        return None
    if not shape:
        return f"a {el.short_name()} tensor needs at least one dimension"
    k = shape[-1]
    if k >= 0 and k % el.BLOCK:
        return (f"row length {k} is not a multiple of the {el.short_name()} block "
                f"({el.BLOCK} values)")
    return None


Quant = Dialect("quant", [], list(BLOCK_TYPES))
