"""verify-shapes accepts a differentiated train step (grad ops carry the norm
weight as their third operand) and still catches a wrong one."""

import pytest
from xdsl.passes import PassPipeline
from xdsl.universe import Universe
from xdsl.utils.exceptions import DiagnosticException

from ckc.universe import make_context


def pipeline(module, spec):
    PassPipeline.parse_spec(Universe.get_multiverse().all_passes, spec).apply(make_context(), module)
    return module


@pytest.fixture(scope="module")
def differentiated():
    from ckc import modelzoo
    from ckc.importers import load_model
    from ckc.importers.to_ir import build_module

    cfg, _ = load_model(modelzoo.hf_dir("llama"))
    return pipeline(build_module(cfg, train=True), "lower-transformer{modes=train_step},autodiff")


def test_differentiated_module_passes(differentiated):
    names = {op.name for op in differentiated.walk()}
    assert "tensorop.rmsnorm_grad" in names
    pipeline(differentiated.clone(), "verify-shapes")


def test_wrong_eps_on_a_grad_op_is_caught(differentiated):
    from xdsl.dialects.builtin import FloatAttr, f32

    m = differentiated.clone()
    op = next(o for o in m.walk() if o.name == "tensorop.rmsnorm_grad")
    op.properties["eps"] = FloatAttr(0.5, f32)
    with pytest.raises(DiagnosticException, match="eps"):
        pipeline(m, "verify-shapes")
