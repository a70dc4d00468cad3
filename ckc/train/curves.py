"""Loss curves: a CSV and a PNG line plot (numpy + zlib, no plotting library).

    write_csv("loss.csv", rows)     # rows: dicts with step, loss, [eval_loss], lr, tokens_per_s, ...
    write_png("loss.png", rows)     # training loss (blue) and eval loss (orange dots + line)

The PNG is RGB, 8 bits per channel, one IDAT chunk; the plot has axes, five
ticks per axis with numeric labels (a built-in 3×5 pixel font), and a legend.
"""

from __future__ import annotations

import csv
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ckc.atomic import replaced

COLUMNS = ("step", "loss", "eval_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with replaced(path) as tmp:
        Path(tmp).write_bytes(data)


def write_csv(path, rows: list[dict]) -> Path:
    """One row per optimizer step (``eval_loss`` empty where no eval ran)."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        out = []
        for c in COLUMNS:
            v = r.get(c)
            out.append("" if v is None else (repr(float(v)) if isinstance(v, float) else str(v)))
        w.writerow(out)
    path = Path(path)
    _atomic_write_bytes(path, buf.getvalue().encode())
    return path


def read_csv(path) -> list[dict]:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append({k: (None if v == "" else (int(v) if k == "step" else float(v))) for k, v in r.items()})
    return rows


# --------------------------------------------------------------------------- PNG

def encode_png(img: np.ndarray) -> bytes:
    """``img``: uint8 [H, W, 3] -> PNG bytes."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w, c = img.shape
    assert c == 3
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_png` (filter 0 only; for tests)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    return raw[:, 1:].reshape(h, w, 3)


# 3x5 glyphs, rows top to bottom, 3 bits each (MSB = left)
_FONT = {
    "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7), "3": (7, 1, 7, 1, 7),
    "4": (5, 5, 7, 1, 1), "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7), "7": (7, 1, 1, 2, 2),
    "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7), ".": (0, 0, 0, 0, 2), "-": (0, 0, 7, 0, 0),
    "e": (0, 7, 7, 4, 7), "k": (4, 5, 6, 5, 5), "t": (2, 7, 2, 2, 3), "r": (0, 6, 5, 4, 4),
    "a": (0, 7, 1, 7, 7), "i": (2, 0, 2, 2, 2), "n": (0, 6, 5, 5, 5), "v": (0, 5, 5, 5, 2),
    "l": (2, 2, 2, 2, 3), "s": (0, 7, 6, 1, 7), "p": (0, 7, 5, 7, 4), "o": (0, 7, 5, 5, 7),
    " ": (0, 0, 0, 0, 0),
}


def _text(img, x: int, y: int, s: str, color, scale: int = 2) -> None:
    """Draw ``s`` with its top-left corner at (x, y)."""
    h, w, _ = img.shape
    for ch in s:
        rows = _FONT.get(ch, _FONT[" "])
        for r, bits in enumerate(rows):
            for c in range(3):
                if bits >> (2 - c) & 1:
                    y0, x0 = y + r * scale, x + c * scale
                    if 0 <= y0 and y0 + scale <= h and 0 <= x0 and x0 + scale <= w:
                        img[y0:y0 + scale, x0:x0 + scale] = color
        x += 4 * scale


def _text_width(s: str, scale: int = 2) -> int:
    return len(s) * 4 * scale - scale


def _line(img, x0: float, y0: float, x1: float, y1: float, color, width: int = 2) -> None:
    """Anti-alias-free thick segment by dense sampling."""
    h, w, _ = img.shape
    n = int(max(abs(x1 - x0), abs(y1 - y0))) * 2 + 1
    xs = np.rint(np.linspace(x0, x1, n)).astype(int)
    ys = np.rint(np.linspace(y0, y1, n)).astype(int)
    r0 = -(width // 2)
    for dy in range(r0, r0 + width):
        for dx in range(r0, r0 + width):
            xx, yy = xs + dx, ys + dy
            ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            img[yy[ok], xx[ok]] = color


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return f"{v / 1000:g}k"
    s = f"{v:.4g}"
    return s


BLUE, ORANGE, GRID, AXIS, BG = (31, 119, 180), (255, 127, 14), (225, 225, 225), (40, 40, 40), (255, 255, 255)


def render(rows: list[dict], width: int = 640, height: int = 400) -> np.ndarray:
    """The loss plot as uint8 [H, W, 3]."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BG
    left, right, top, bottom = 70, 20, 40, 40
    pw, ph = width - left - right, height - top - bottom
    tr = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None and math.isfinite(r["loss"])]
    ev = [(r["step"], r["eval_loss"]) for r in rows if r.get("eval_loss") is not None and math.isfinite(r["eval_loss"])]
    pts = tr + ev
    if pts:
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        x_lo, x_hi = min(xs), max(xs)
        y_lo, y_hi = min(ys), max(ys)
    else:
        x_lo, x_hi, y_lo, y_hi = 0, 1, 0, 1
    if x_hi <= x_lo:
        x_hi = x_lo + 1
    pad = (y_hi - y_lo) * 0.05 or max(abs(y_hi) * 0.05, 0.05)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    yt = _nice_ticks(y_lo, y_hi)
    xt = _nice_ticks(x_lo, x_hi)

    def X(s):
        return left + (s - x_lo) / (x_hi - x_lo) * (pw - 1)

    def Y(v):
        return top + (y_hi - v) / (y_hi - y_lo) * (ph - 1)

    for t in yt:
        y = int(round(Y(t)))
        img[y, left:left + pw] = GRID
        lab = _fmt(t)
        _text(img, left - 8 - _text_width(lab), y - 5, lab, AXIS)
    for t in xt:
        x = int(round(X(t)))
        img[top:top + ph, x] = GRID
        lab = _fmt(t)
        _text(img, x - _text_width(lab) // 2, top + ph + 8, lab, AXIS)
    img[top:top + ph, left] = AXIS
    img[top + ph - 1, left:left + pw] = AXIS
    _text(img, left + pw // 2 - _text_width("step") // 2, height - 16, "step", AXIS)
    _text(img, 8, 12, "loss", AXIS)
    for series, color, dots in ((tr, BLUE, False), (ev, ORANGE, True)):
        for (s0, v0), (s1, v1) in zip(series, series[1:]):
            _line(img, X(s0), Y(v0), X(s1), Y(v1), color)
        if dots or len(series) == 1:
            for s, v in series:
                _line(img, X(s), Y(v), X(s), Y(v), color, width=6)
    # legend
    lx = left + pw - 130
    img[14:18, lx:lx + 20] = BLUE
    _text(img, lx + 26, 11, "train", AXIS)
    if ev:
        img[14:18, lx + 72:lx + 92] = ORANGE
        _text(img, lx + 98, 11, "eval", AXIS)
    return img


def write_png(path, rows: list[dict], width: int = 640, height: int = 400) -> Path:
    path = Path(path)
    _atomic_write_bytes(path, encode_png(render(rows, width, height)))
    return path
