"""ckc-opt: xDSL's opt driver with every ckc dialect, pass and the `c` target.

Everything xdsl-opt does works the same (`-p` pipelines with options,
`--split-input-file`, `--verify-diagnostics`, `--print-between-passes`, upstream
dialects and passes). What ckc-opt adds:

- ``--load-plugin FILE.py`` (repeatable) loads passes, dialects or a whole
  ``Universe`` from a single Python file;
- bad input (a parse error, IR that does not verify, an unknown pass or a bad
  option) prints one diagnostic line naming the file, line, column and op, and
  exits 1: never a Python traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Dialect, Operation
from xdsl.parser import Parser
from xdsl.passes import ModulePass
from xdsl.universe import Universe
from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain



class UserError(Exception):
    """Bad input: reported as one line, exit status 1."""


class _LocatingParser(Parser):
    """A Parser that remembers where each operation starts in the source.

    xDSL ops carry no location unless the text spells `loc(...)`; diagnostics
    want `file:line:col` for the op that failed, so we record it while parsing.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.op_positions: dict[int, int] = {}

    def parse_operation(self) -> Operation:
        start = self._current_token.span.start
        op = super().parse_operation()
        self.op_positions[id(op)] = start
        return op


def load_plugin_file(path: str) -> Universe:
    """Import one Python file and collect what it contributes.

    The file may define a ``Universe`` instance; otherwise every ``ModulePass``
    subclass with a ``name`` and every ``Dialect`` object at module level is
    taken.
    """
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: plugin file not found")
    spec = importlib.util.spec_from_file_location(f"ckc_plugin_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # a plugin's own bug is still bad input to ckc-opt
        raise UserError(f"{path}: plugin failed to load: {type(err).__name__}: {err}")
    for value in vars(module).values():
        if isinstance(value, Universe):
            return value
    dialects: dict = {}
    passes: dict = {}
    for value in vars(module).values():
        if isinstance(value, Dialect):
            dialects[value.name] = lambda d=value: d
        elif (
            isinstance(value, type)
            and issubclass(value, ModulePass)
            and value is not ModulePass
            and isinstance(getattr(value, "name", None), str)
            and value.__module__ == module.__name__
        ):
            passes[value.name] = lambda p=value: p
    if not dialects and not passes:
        raise UserError(f"{path}: plugin defines no Universe, ModulePass or Dialect")
    return Universe(all_dialects=dialects, all_passes=passes)


class CkcOptMain(xDSLOptMain):
    version_format = "ckc-opt built on xdsl version {xdsl_version}"

    def __init__(self, args=None, plugins: list[Universe] = ()):
        self._plugins = list(plugins)
        self._positions: dict[int, int] = {}
        self._source = b""
        super().__init__(description="ckc modular optimizer driver", args=args)

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser):
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--load-plugin",
            action="append",
            default=[],
            metavar="FILE.py",
            help="load passes or dialects from a Python file (repeatable)",
        )

    def register_all_dialects(self):
        super().register_all_dialects()
        for plugin in self._plugins:
            for name, factory in plugin.all_dialects.items():
                self.ctx.register_dialect(name, factory)

    def register_all_passes(self):
        super().register_all_passes()
        for plugin in self._plugins:
            for name, factory in plugin.all_passes.items():
                self.register_pass(name, factory)

    def register_all_targets(self):
        super().register_all_targets()
        for plugin in self._plugins:
            self.available_targets.update(plugin.all_targets)

    def register_all_frontends(self):
        def parse_mlir(io: IO[bytes]) -> ModuleOp:
            self._source = io.read()
            parser = _LocatingParser(self.ctx, self._source, self.get_input_name())
            module = parser.parse_module(not self.args.no_implicit_module)
            self._positions = parser.op_positions
            return module

        self.available_frontends["mlir"] = parse_mlir

    def parse_chunk(self, chunk, file_extension, start_offset=0):
        self._line_offset = start_offset
        return super().parse_chunk(chunk, file_extension, start_offset)

    # -- diagnostics -------------------------------------------------------

    def where(self, op: Operation) -> str:
        """`file:line:col` of an op parsed from the input, else the file name."""
        pos = self._positions.get(id(op))
        name = self.get_input_name()
        if pos is None:
            return name
        before = self._source[:pos]
        line = before.count(b"\n") + 1 + getattr(self, "_line_offset", 0)
        col = pos - (before.rfind(b"\n") + 1) + 1
        return f"{name}:{line}:{col}"

    def first_failing_op(self, module: ModuleOp) -> tuple[Operation, str] | None:
        """The first op (in walk order) whose own verifier fails, with its message."""
        for op in module.walk():
            try:
                op.verify(verify_nested_ops=False)
            except Exception as err:  # noqa: BLE001 - we report, not handle
                return op, first_line(err)
        return None


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    # xDSL prefixes custom-verifier failures; keep the innermost message.
    msg = lines[0]
    for prefix in ("Operation does not verify: ",):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def _diagnose(main: CkcOptMain | None, err: BaseException) -> str:
    if isinstance(err, ParseError):
        # xdsl-opt already shifted the span by the --split-input-file offset.
        return f"{err.span.get_location()}: error: {err.msg}"
    if main is not None and isinstance(err, DiagnosticException):
        # A pass may name the culprit: a diagnostic carrying `.op` (e.g.
        # verify-shapes' ShapeMismatch) is located at that op.
        culprit = getattr(err, "op", None)
        if isinstance(culprit, Operation):
            return f"{main.where(culprit)}: error: '{culprit.name}' op {first_line(err)}"
        module = getattr(main, "_last_module", None)
        if module is not None:
            found = main.first_failing_op(module)
            if found is not None:
                op, msg = found
                return f"{main.where(op)}: error: '{op.name}' op {msg}"
        return f"{main.get_input_name()}: error: {first_line(err)}"
    return f"error: {first_line(err)}"


class _TrackingMain(CkcOptMain):
    """Keeps the module being processed so a failure can be located in it."""

    def apply_passes(self, prog: ModuleOp):
        """PassPipeline.apply, one pass at a time, so that a pass raising
        something other than a diagnostic (a plugin's bug) is named."""
        self._last_module = prog
        passes, callback = self.pipeline.passes, self.pipeline.callback
        if not passes:
            return super().apply_passes(prog)
        if callback is not None:
            callback(None, prog, passes[0])
        for i, p in enumerate(passes):
            try:
                p.apply(self.ctx, prog)
            except (DiagnosticException, ParseError):
                raise  # located at the failing op by _diagnose
            except Exception as err:  # noqa: BLE001 - one line naming the pass
                raise UserError(f"error: pass '{p.name}' failed: {type(err).__name__}: {first_line(err)}") from err
            if callback is not None:
                callback(p, prog, passes[i + 1] if i + 1 < len(passes) else None)


def _preload_plugins(argv: list[str]) -> list[Universe]:
    """Plugins must be loaded before the driver registers passes and parses -p."""
    plugins = []
    for i, arg in enumerate(argv):
        path = None
        if arg == "--load-plugin" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--load-plugin="):
            path = arg.split("=", 1)[1]
        if path is not None:
            plugins.append(load_plugin_file(path))
    return plugins


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    main_obj: CkcOptMain | None = None
    try:
        plugins = _preload_plugins(argv)
        main_obj = _TrackingMain(args=argv, plugins=plugins)
        main_obj.run()
    except UserError as err:
        print(f"ckc-opt: {err}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # argparse: its own one-line usage error
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        print("ckc-opt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except ArgSpecParseError as err:  # a BaseException in xDSL: bad -p/-t spec
        lines = [l.strip() for l in str(err).splitlines() if l.strip()]
        where = next((l for l in lines if l.startswith("pass-pipeline:")), "")
        print(f"ckc-opt: bad pass pipeline ({where}): {lines[-1]}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - every failure becomes one line
        try:
            line = _diagnose(main_obj, err)
        except Exception:  # noqa: BLE001 - never let reporting itself crash
            line = f"error: {type(err).__name__}: {first_line(err)}"
        print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
