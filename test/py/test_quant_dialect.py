"""The quant dialect's format table agrees with the gguf package's block sizes."""

import gguf
import pytest

from ckc.dialects import quant


@pytest.mark.parametrize("fmt", sorted(quant.FORMATS))
def test_format_table_matches_gguf(fmt):
    ggml, block, size = quant.FORMATS[fmt]
    assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml)] == (block, size)
    el = quant.element_type(fmt)
    assert quant.format_name(el) == fmt
    assert quant.format_of_ggml(ggml) == fmt
    assert quant.tensor_bytes(el, [3, 2 * block]) == 3 * 2 * size


def test_shape_and_unknown_errors():
    assert quant.check_shape(quant.element_type("q8_0"), [4, 64]) is None
    assert "multiple of the q8_0 block" in quant.check_shape(quant.element_type("q8_0"), [4, 65])
    assert quant.check_shape(quant.element_type("f16"), [4, 65]) is None
    assert quant.format_of_ggml(16) is None   # IQ2_XXS: no kernel here
    with pytest.raises(ValueError, match="unknown weight format 'q3_0'"):
        quant.element_type("q3_0")
