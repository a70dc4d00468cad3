"""Interpreters of ckc's dialects: executable reference semantics, kept apart
from the dialect definitions (as xDSL keeps `xdsl/interpreters/`)."""
