"""The one runtime and its one ABI (runtime/library/ckc_runtime.c, runtime/ckc_abi.h,
ckc/binding.py) on real compiled libraries: an inference library and a
training library report the functions their IR had, refuse the others with
CKC_ERR_UNSUPPORTED and one line, read their weight table through the same
ckc_tensor_* calls, and a library built by an older ckc (the inference ABI 1,
the separate training ABI) is refused with a line saying to recompile.
"""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest

from ckc import binding, modelzoo
from ckc.build import ROOT, cc
from ckc.session import Session, SessionError

CHUNK = 8


@pytest.fixture(scope="module")
def infer_dir():
    from ckc.commands.run import compiled_dir
    from ckc.pipeline import CompileOptions

    return compiled_dir(modelzoo.hf_dir("llama"), CompileOptions(max_tokens=CHUNK))


@pytest.fixture(scope="module")
def train_so():
    from ckc.importers import load_model
    from ckc.train.ckc_backend import compile_train

    cfg, _ = load_model(modelzoo.hf_dir("llama"), rope_style="neox")
    so, _ = compile_train(cfg, CHUNK)
    return so


def _open(so, weights=None):
    lib = binding.load_library(so)
    err = ctypes.create_string_buffer(256)
    h = lib.ckc_model_create(None if weights is None else str(weights).encode(), 1, err, len(err))
    assert h, err.value
    return lib, h


def _error(lib, h) -> str:
    return lib.ckc_last_error(h).decode()


def test_each_library_has_the_functions_of_its_ir(infer_dir, train_so):
    lib, h = _open(infer_dir / "model.so", infer_dir / "weights.bump")
    try:
        info = binding.info(lib, h).as_dict()
        assert info["functions"] == ["prefill", "prefill_all", "decode"]
        assert (info["n_params"], info["weights_owned"], info["slots"]) == (0, 0, 0)
        assert info["max_batch"] == info["seq_len"] == CHUNK and info["batch"] == 1
        tok = np.arange(1, 4, dtype=np.int32)
        tgt = np.arange(2, 5, dtype=np.int32)
        loss, norm = ctypes.c_float(), ctypes.c_float()
        assert lib.ckc_train_step(h, tok.ctypes.data, tgt.ctypes.data, 3, 1.0, ctypes.byref(loss)) \
            == binding.ERR_UNSUPPORTED
        assert _error(lib, h) == "this library has no @train_step (compiled for inference)"
        assert lib.ckc_optimizer_step(h, 1e-3, ctypes.byref(norm)) == binding.ERR_UNSUPPORTED
        assert _error(lib, h) == "this library has no @optimizer_step (compiled for inference)"
        assert lib.ckc_batch(h, None, None, 1, None, 0, None) == binding.ERR_UNSUPPORTED
        assert _error(lib, h) == "this library has no @decode_batch (compiled for inference)"
        # the weight table: the same calls as training; mapped weights read, never written
        name = lib.ckc_tensor_name(h, 0).decode()
        shape = (ctypes.c_int64 * 4)()
        nd = lib.ckc_tensor_shape(h, 0, shape)
        w = np.empty([shape[d] for d in range(nd)], np.float32)
        assert lib.ckc_tensor_read(h, binding.WEIGHT, name.encode(), w.ctypes.data, w.nbytes) == binding.OK
        from ckc.weights import read_bump

        np.testing.assert_array_equal(w, read_bump(infer_dir / "weights.bump")[name])  # exact: the same bytes
        assert lib.ckc_tensor_write(h, binding.WEIGHT, name.encode(), w.ctypes.data, w.nbytes) == binding.ERR_INVALID
        assert "mapped read-only" in _error(lib, h)
        assert lib.ckc_tensor_read(h, binding.GRAD, name.encode(), w.ctypes.data, w.nbytes) == binding.ERR_INVALID
        assert _error(lib, h) == f"tensor '{name}' is not trained (no gradient)"
    finally:
        lib.ckc_model_destroy(h)

    lib, h = _open(train_so)
    try:
        info = binding.info(lib, h).as_dict()
        assert info["functions"] == ["train_step", "eval_loss", "optimizer_step", "zero_grads"]
        assert info["n_params"] > 0 and info["weights_owned"] == 1 and info["seq_len"] == CHUNK
        logits = np.empty(info["vocab"], np.float32)
        tok = np.arange(1, 4, dtype=np.int32)
        assert lib.ckc_prefill(h, binding.i32p(tok), 3, binding.f32p(logits)) == binding.ERR_UNSUPPORTED
        assert _error(lib, h) == "this library has no @prefill (compiled for training)"
        assert lib.ckc_decode(h, 1, binding.f32p(logits)) == binding.ERR_UNSUPPORTED
        assert lib.ckc_position(h) == 0
    finally:
        lib.ckc_model_destroy(h)

    from ckc.train.ckc_backend import CkcTrainError, CompiledModel

    with pytest.raises(CkcTrainError, match=r"has no @train_step \(it has prefill, prefill_all, decode\)"):
        CompiledModel(infer_dir / "model.so")


def _old_source(path: str) -> str | None:
    """``path`` as it was before the runtimes were merged (the parent of the
    commit that deleted it), or None outside a git checkout with that history."""
    try:
        gone = subprocess.run(["git", "-C", str(ROOT), "rev-list", "-1", "HEAD", "--", path],
                              capture_output=True, text=True, check=True).stdout.strip()
        if not gone:
            return None
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{gone}^:{path}"],
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def _build_old(tmp_path, name: str, model_c, runtime: str, headers: list[str]):
    """A real library of an older ckc: the generated model.c + that ckc's runtime."""
    from ckc import kernels

    d = tmp_path / name
    d.mkdir()
    files = [runtime, *headers]
    for f in files:
        text = _old_source(f)
        if text is None:
            pytest.skip(f"no git history holding {f}")
        (d / f.split("/")[-1]).write_text(text)
    so = d / "model.so"
    subprocess.run([cc(), "-std=c11", "-O1", "-fPIC", "-shared", f"-I{d}", *[f"-I{p}" for p in kernels.include_dirs()],
                    "-o", str(so), str(model_c), str(d / runtime.split("/")[-1]),
                    str(kernels.static_library_path()), "-lpthread", "-lm"], check=True, capture_output=True)
    return so


def test_libraries_of_the_old_abis_are_refused(tmp_path, infer_dir, train_so):
    old = _build_old(tmp_path, "infer", infer_dir / "model.c", "runtime/model/model_runtime.c",
                     ["runtime/model_abi.h", "runtime/model/model_gen.h"])
    with pytest.raises(binding.BindingError) as err:
        binding.load_library(old)
    assert str(err.value) == f"{old}: model ABI version 1, this ckc speaks 2: recompile the model"
    with pytest.raises(SessionError, match="model ABI version 1, this ckc speaks 2: recompile the model"):
        Session(infer_dir, library=old, weights=infer_dir / "weights.bump")

    from ckc.train.ckc_backend import CkcTrainError, CompiledModel

    old = _build_old(tmp_path, "train", train_so.parent / "model.c", "runtime/train/train_runtime.c",
                     ["runtime/train_abi.h", "runtime/record.h"])
    with pytest.raises(CkcTrainError) as err:
        CompiledModel(old)
    assert str(err.value) == f"{old}: a training library of the old training ABI (version 3), this ckc speaks ABI 2: " \
                             "recompile it"
