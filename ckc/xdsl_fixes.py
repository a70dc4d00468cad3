"""Fixes to the installed xDSL (0.75) that ckc's parsers need; imported by ckc.universe,
which ckc-opt, plain xdsl-opt (through the entry point) and ckc itself all load.

- The MLIR lexer's string-literal regex, ``"(?:[^"\\\\\\n\\v\\f]+|\\\\(?:...))*"``,
  nests a ``+`` inside a ``*``: on a string with no closing quote the regex
  engine backtracks exponentially in the line's length (ckc's fuzzer found an
  unterminated ``arch = "...`` in ``#transformer.config`` that took minutes).
  The same pattern with possessive quantifiers (Python >= 3.11) matches the same
  strings and fails in linear time, since its two alternatives never start
  with the same character.
"""

from __future__ import annotations

import re

from xdsl.utils.mlir_lexer import MLIRLexer

_STRING = re.compile(r'"(?:[^"\\\n\v\f]++|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*+"')


def apply() -> None:
    MLIRLexer._unescaped_characters_regex = _STRING


apply()
