"""The one exception every part of ckc raises for bad user input.

The CLIs print it as one line and exit 1. It lives in its own module so that
`python -m ckc.cli` (where cli.py runs as __main__) still catches the class
the rest of ckc raises.
"""


class CkcError(Exception):
    """An error the user can act on: printed as one line, exit status 1."""


def one_line(text: str, limit: int = 500) -> str:
    """``text`` made safe for a one-line message: control characters (a newline
    in a tensor name read from a corrupt file) escaped, and at most ``limit``
    characters (a megabyte-long name must not flood the terminal)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."
