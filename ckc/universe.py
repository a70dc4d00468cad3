"""ckc's contribution to xDSL's universe: its dialects, passes and the `c` target.

Registered through the ``xdsl.universe`` entry point (pyproject.toml), so both
``ckc-opt`` and plain ``xdsl-opt`` see them. Discovery is by file name, without
importing anything until a dialect or pass is asked for:

- ``dialects/<name>.py`` defines the dialect ``<name>`` (a ``Dialect`` object
  whose ``.name`` is ``<name>``);
- ``passes/<pass_name>.py`` defines the pass ``<pass-name>`` (one
  ``ModulePass`` subclass whose ``name`` is the kebab-case module name).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe

import ckc.xdsl_fixes  # noqa: F401,E402 - every parser of ckc IR (ckc-opt, xdsl-opt, ckc): no exponential string lexing

_HERE = Path(__file__).resolve().parent
_DIALECTS_DIR = _HERE.parent / "dialects"
_PASSES_DIR = _HERE.parent / "passes"


def _modules(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def load_dialect(module: str) -> Dialect:
    mod = importlib.import_module(f"ckc.dialects.{module}")
    for value in vars(mod).values():
        if isinstance(value, Dialect) and value.name == module:
            return value
    raise ImportError(f"ckc.dialects.{module} defines no Dialect named '{module}'")


def load_pass(module: str) -> type[ModulePass]:
    mod = importlib.import_module(f"ckc.passes.{module}")
    name = module.replace("_", "-")
    for value in vars(mod).values():
        if (
            isinstance(value, type)
            and issubclass(value, ModulePass)
            and getattr(value, "name", None) == name
        ):
            return value
    raise ImportError(f"ckc.passes.{module} defines no ModulePass named '{name}'")


def _dialect_factory(module: str) -> Callable[[], Dialect]:
    return lambda: load_dialect(module)


def _pass_factory(module: str) -> Callable[[], type[ModulePass]]:
    return lambda: load_pass(module)


def _c_target():
    from ckc.emit_c import CTarget

    return CTarget


def all_dialects() -> dict[str, Callable[[], Dialect]]:
    return {m: _dialect_factory(m) for m in _modules(_DIALECTS_DIR)}


def all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    return {m.replace("_", "-"): _pass_factory(m) for m in _modules(_PASSES_DIR)}


CKC_UNIVERSE = Universe(
    all_dialects=all_dialects(),
    all_passes=all_passes(),
    all_targets={"c": _c_target},
)


def make_context():
    """An xDSL Context with upstream and ckc dialects registered (lazily)."""
    from xdsl.context import Context
    from xdsl.universe import Universe as U

    ctx = Context()
    for name, factory in U.get_multiverse().all_dialects.items():
        ctx.register_dialect(name, factory)
    return ctx
