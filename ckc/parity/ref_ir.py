"""The `ir` reference: the model's tensorop IR (right after lower-transformer,
before any rewrite) executed by the dialect's reference semantics
(ckc/interpreters/tensorop.py, PyTorch fp32), every value kept under its SSA
name. The runs are the compiled model's own (same function, tokens and
position, KV caches threaded through), so the names line up one to one with
the record build's buffers (bufferize names buffers after the values); a KV
cache's written rows are the `kv_write`'s new rows (``l3_k_cache``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from ckc.errors import CkcError

_CACHE = re.compile(r"^([kv])c(\d+)$")


class _Weights(Mapping):
    """The weight store as torch tensors, converted on first use."""

    def __init__(self, store):
        self.store, self.cache = store, {}

    def __getitem__(self, name):
        import torch

        if name not in self.cache:
            self.cache[name] = torch.from_numpy(np.array(self.store.get(name), dtype=np.float32))
        return self.cache[name]

    def __iter__(self):
        return iter(self.cache)

    def __len__(self):
        return len(self.cache)

    def __bool__(self):  # eval_op treats an empty mapping as "no weights"
        return True


def name_of(v) -> str | None:
    return v.name_hint


def eval_function(fn: func.FuncOp, args: dict, weights, keep: dict) -> list:
    """Runs one tensorop function (arguments by name); every named result goes
    into `keep` (numpy), a kv_write's new rows as ``l<L>_<k|v>_cache``."""
    from ckc.interpreters.tensorop import evaluate

    for a in fn.body.block.args:
        if a.name_hint not in args:
            raise CkcError(f"@{fn.sym_name.data}: no value for argument %{a.name_hint}")
    if not any(isinstance(op, func.ReturnOp) for op in fn.body.block.ops):
        raise CkcError(f"@{fn.sym_name.data} has no func.return")

    def observe(op, ins: list, outs: tuple) -> None:
        if op.name == "tensorop.kv_write":  # the rows it writes, named before the whole cache
            m = _CACHE.match(op.operands[0].name_hint or "")
            if m:
                from ckc.dialects import quant
                from ckc.interpreters.tensorop import kv_round  # the rows as stored (an f16 / q8_0 cache rounds)

                fmt = quant.format_name(op.operands[0].type.element_type) or "f32"
                keep[f"l{m.group(2)}_{m.group(1)}_cache"] = kv_round(ins[1], fmt).detach().numpy()
        for r, v in zip(op.results, outs):
            if r.name_hint and hasattr(v, "detach") and op.name != "tensorop.weight":
                keep[r.name_hint] = v.detach().numpy()

    return evaluate(fn, [args[a.name_hint] for a in fn.body.block.args], weights, observe=observe)


class IRReference:
    name = "ir"

    def __init__(self, module: ModuleOp, store):
        self.funcs = {f.sym_name.data: f for f in module.ops if isinstance(f, func.FuncOp)}
        self.weights = _Weights(store)

    @classmethod
    def load(cls, path, kv_type: str = "f32"):
        from ckc import pipeline

        module, _, store = pipeline.import_model(path)
        pipeline.run_passes(module, pipeline.CompileOptions(kv_type=kv_type), stop_after="lower-transformer")
        return cls(module, store)

    def capture(self, runs) -> list[dict]:
        """One {value name: array} per run, the runs replayed in order."""
        import torch

        caches: dict[str, object] = {}
        out = []
        for run in runs:
            fn = self.funcs.get(run.function)
            if fn is None:
                raise CkcError(f"the tensorop IR has no @{run.function}")
            if run.pos == 0:
                caches = {}
            args = {"tokens": torch.tensor(run.tokens, dtype=torch.int32), "pos": run.pos}
            for a in fn.body.block.args:
                if _CACHE.match(a.name_hint or ""):
                    if a.name_hint not in caches:
                        caches[a.name_hint] = torch.zeros(a.type.get_shape(), dtype=torch.float32)
                    args[a.name_hint] = caches[a.name_hint]
            keep: dict = {}
            with torch.no_grad():
                results = eval_function(fn, args, self.weights, keep)
            ret = next(o for o in fn.body.block.ops if isinstance(o, func.ReturnOp))
            for v, val in zip(ret.operands, results):
                m = re.match(r"^([kv]c\d+)_new$", v.name_hint or "")
                if m:
                    caches[m.group(1)] = val
            out.append(keep)
        return out

    def mapping(self, value: str) -> str | None:
        return value
