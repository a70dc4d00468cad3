"""plan-memory and select-simd on a real-sized model (SmolLM2-135M's config:
30 layers), plus the placement routine on random lifetimes."""

import random

import pytest
from xdsl.passes import PassPipeline

from ckc.dialects.buffer import ArenaOp, BufferOp, CallOp
from ckc.passes.plan_memory import find_overlaps
from ckc.passes.plan_memory import align_up, place_with_reuse
from ckc.reports.memory import function_plans, memory_report
from ckc.universe import CKC_UNIVERSE, make_context


def run_pipeline(module, spec):
    passes = dict(CKC_UNIVERSE.all_passes)
    from xdsl.universe import Universe

    passes.update(Universe.get_multiverse().all_passes)
    PassPipeline.parse_spec(passes, spec).apply(make_context(), module)
    return module


@pytest.fixture(scope="module")
def smollm2_buffers():
    from ckc import assets
    from ckc.importers import load_model
    from ckc.importers.to_ir import build_module

    cfg, _ = load_model(assets.smollm2_gguf())
    module = build_module(cfg, train=False)
    return run_pipeline(
        module, "lower-transformer{modes=prefill,decode context=256},bufferize{max_tokens=32}"
    )


def planned(module, spec="plan-memory"):
    return run_pipeline(module.clone(), spec)


def test_no_live_buffers_overlap(smollm2_buffers):
    m = planned(smollm2_buffers)
    assert find_overlaps(m) == []
    m.verify()  # offsets aligned, inside their regions, canaries outside regions


def test_peak_close_to_live_set_bound(smollm2_buffers):
    m = planned(smollm2_buffers)
    for plan in function_plans(m):
        assert plan.bound > 0
        # Greedy-by-size packing: within 10% of the best any packing can do.
        assert plan.peak <= 1.10 * plan.bound, plan


def test_reuse_shrinks_activations(smollm2_buffers):
    with_reuse = planned(smollm2_buffers)
    without = planned(smollm2_buffers, "plan-memory{reuse=false}")
    assert find_overlaps(without) == []
    act = lambda m: next(
        r.size.data for a in m.ops if isinstance(a, ArenaOp) for r in a.arena_regions.data
        if r.kind.data == "activations"
    )
    # 30 layers of distinct activations vs a handful live at once.
    assert act(with_reuse) * 10 < act(without)


def test_weights_laid_out_in_ir_order(smollm2_buffers):
    m = planned(smollm2_buffers)
    weights = [b for b in m.ops if isinstance(b, BufferOp) and b.region.data == "weights"]
    offsets = [b.offset.data for b in weights]
    assert offsets == sorted(offsets)
    assert all(o % 64 == 0 for o in offsets)
    # 135M parameters in fp32, 64-byte aligned.
    total = next(a.size.data for a in m.ops if isinstance(a, ArenaOp) and a.sym_name.data == "weights")
    assert 134_000_000 * 4 < total < 136_000_000 * 4


def test_plan_is_deterministic(smollm2_buffers):
    assert str(planned(smollm2_buffers)) == str(planned(smollm2_buffers))


def test_memory_report(smollm2_buffers):
    text = memory_report(planned(smollm2_buffers), "smollm2")
    assert "arena @weights" in text and "arena @arena" in text
    assert "## Function @prefill" in text and "## Function @decode" in text
    assert "blk.29.k_cache" in text
    assert text.count("live-set bound") == 2


def test_select_simd_native_uses_this_cpu(smollm2_buffers):
    from ckc.kernels import available_variants

    m = planned(smollm2_buffers, "plan-memory,select-simd")
    have = set(available_variants())
    calls = [c for c in m.walk() if isinstance(c, CallOp)]
    assert calls and all(c.variant is not None and c.variant.data in have for c in calls)
    best = [v for v in ("avx512", "avx2", "scalar") if v in have][0]
    assert m.attributes["ckc.simd"].data == best
    # The GEMMs (nearly all the work) get the best variant this CPU has.
    assert all(c.variant.data == best for c in calls if c.kernel.data == "gemm")


@pytest.mark.parametrize("seed", range(20))
def test_placement_never_overlaps_live_items(seed):
    rng = random.Random(seed)
    items = []
    for i in range(40):
        first = rng.randrange(50)
        items.append((f"b{i}", rng.choice([64, 100, 512, 4000, 12345]), rng.choice([64, 128]),
                      (first, first + rng.randrange(10))))
    base = 192
    offsets = place_with_reuse(items, base)
    spans = {n: (offsets[n], offsets[n] + size, live) for n, size, _, live in items}
    for n, size, align, live in items:
        assert offsets[n] >= base and offsets[n] % align == 0
    names = list(spans)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            o1, e1, l1 = spans[a]
            o2, e2, l2 = spans[b]
            if not (l1[1] < l2[0] or l2[1] < l1[0]):
                assert e1 <= o2 or e2 <= o1, (a, b)


def test_align_up():
    assert [align_up(n, 64) for n in (0, 1, 64, 65)] == [0, 64, 64, 128]
