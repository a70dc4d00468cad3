"""The one exception every part of ckc raises for bad user input.

The CLIs print it as one line and exit 1. It lives in its own module so that
`python -m ckc.cli` (where cli.py runs as __main__) still catches the class
the rest of ckc raises.
"""


class CkcError(Exception):
    """An error the user can act on: printed as one line, exit status 1."""
