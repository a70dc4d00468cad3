"""ckc: the user-facing command line.

    ckc compile MODEL -o DIR        compile a model to DIR/model.so (+ model.c, weights, memory.txt)
    ckc run MODEL --prompt TEXT     compile on first use (cached), then generate
    ckc ir MODEL --stage S          print the IR of one stage
    ckc tokenize MODEL TEXT         print token ids and pieces
    ckc profile MODEL --mode decode time every kernel call (table, profile.json, roofline.png)
    ckc serve MODEL [--port 8080]   an OpenAI-compatible server (/v1/chat/completions, ...)
    ckc chat MODEL                  chat in the terminal with the model's chat template
    ckc parity MODEL --against ir   every kernel call's outputs vs a reference; the first divergent op

Every failure a user can cause (a missing file, a malformed model, a bad
option) prints one line `ckc: error: ...` and exits non-zero; a Python
traceback means a bug in ckc.
"""

from __future__ import annotations

import argparse
import importlib
import sys


from ckc.errors import CkcError  # noqa: F401 - re-exported: `from ckc.cli import CkcError`


# subcommand -> "module:function" taking the parsed namespace, returning an exit code.
# Each module adds its own arguments through `add_arguments(parser)`.
COMMANDS = {
    "compile": ("ckc.commands.compile", "compile a model into a shared object"),
    "run": ("ckc.commands.run", "generate text with a model (compiles on first use)"),
    "ir": ("ckc.commands.ir", "print a model's IR at one stage"),
    "tokenize": ("ckc.commands.tokenize", "print a text's token ids and pieces"),
    "train": ("ckc.commands.train", "train or fine-tune a model"),
    "profile": ("ckc.commands.profile", "time every kernel call of a model against this machine's roofline"),
    "serve": ("ckc.commands.serve", "serve a model over an OpenAI-compatible HTTP API"),
    "chat": ("ckc.commands.chat", "chat with a model in the terminal"),
    "parity": ("ckc.commands.parity", "compare every kernel call's outputs with a reference; name the first divergence"),
}


def _available() -> dict[str, object]:
    """Subcommands whose module exists in this checkout."""
    found = {}
    for name, (module, _help) in COMMANDS.items():
        try:
            found[name] = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and module.startswith(err.name):
                continue  # not built yet
            raise
    return found


def build_parser(modules: dict[str, object]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckc", description="ckc: a CPU-native compiler for transformer language models"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in modules.items():
        p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
        module.add_arguments(p)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input, from every part of ckc."""
    errors: list[type[BaseException]] = [CkcError, FileNotFoundError, IsADirectoryError,
                                         PermissionError]
    for module, name in (
        ("ckc.importers", "ModelImportError"),
        ("ckc.build", "BuildError"),
        ("ckc.assets", "AssetError"),
        ("ckc.weights", "WeightsError"),
        ("ckc.session", "SessionError"),
        ("ckc.tokenizer", "TokenizerError"),
        ("ckc.chat_template", "ChatTemplateError"),
    ):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    modules = _available()
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].main(args) or 0)
    except KeyboardInterrupt:
        print("ckc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except user_errors() as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, (FileNotFoundError, IsADirectoryError, PermissionError)) and err.filename:
            msg = f"{err.filename}: {err.strerror}"
        print(f"ckc: error: {msg}", file=sys.stderr)
        return 1
    except OSError as err:
        from ckc.atomic import disk_full

        if not disk_full(err):
            raise
        # a full disk is the user's to fix; every writer removed its temporary file
        print(f"ckc: error: {err.filename or 'writing output'}: {err.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
