"""The one exception every part of ckc raises for bad user input.

The CLIs print it as one line and exit 1. It lives in its own module so that
`python -m ckc.cli` (where cli.py runs as __main__) still catches the class
the rest of ckc raises.
"""


class CkcError(Exception):
    """An error the user can act on: printed as one line, exit status 1."""


def utf8_argument(option: str, value: str) -> str:
    """``value`` (a command-line argument) if it is valid UTF-8, else a CkcError
    naming the option and the first bad byte. Python decodes argv with
    surrogateescape, so bytes that are not UTF-8 arrive as lone surrogates
    (U+DC80..U+DCFF) that no tokenizer should see."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raw = value.encode("utf-8", "surrogateescape")
        at = len(value[: err.start].encode("utf-8", "surrogateescape"))
        raise CkcError(f"{option} is not valid UTF-8: byte 0x{raw[at]:02x} at offset {at}") from None
    return value


def one_line(text: str, limit: int = 500) -> str:
    """``text`` made safe for a one-line message: control characters (a newline
    in a tensor name read from a corrupt file) escaped, and at most ``limit``
    characters (a megabyte-long name must not flood the terminal)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."
