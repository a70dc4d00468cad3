"""What `ckc profile` writes: the text table, profile.json and roofline.png.

The input is ckc.profiler.profile()'s dict. The table has one row per op kind
(kernel name, summed over its calls) with its time share, GFLOP/s, GB/s,
arithmetic intensity (FLOP per byte moved), fraction of this machine's
roofline, what bounds it at that intensity, the share of the pool threads'
time spent working and the thread imbalance (busiest thread / mean), then the
split of the end-to-end time and the slowest single calls. The PNG places
every op kind on the roofline (log-log: the bandwidth slope and the FMA
peak); a kind with no FLOPs (a copy) cannot sit on a log axis and is listed
in a note instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from ckc.atomic import replaced

PROFILE_JSON = "profile.json"
ROOFLINE_PNG = "roofline.png"


def _f(v, fmt: str, none: str = "-") -> str:
    return none if v is None else format(v, fmt)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:5.1f}%"


def table(p: dict, top: int = 10) -> str:
    r = p["roofline"]
    lines = [
        f"ckc profile: {Path(p['model']).name}, {p['mode']} x {p['tokens']} tokens"
        + (f" ({p['rounds']} rounds)" if p["mode"] == "prefill" else "")
        + f", {p['threads']} thread{'s' if p['threads'] != 1 else ''}, {p['simd']}",
        f"roofline ({'cached' if r['cached'] else 'measured'}): FMA peak {r['peak_gflops']:.1f} GFLOP/s, "
        f"stream read {r['read_gbs']:.1f} GB/s at {r['threads']} threads; ridge at "
        f"{r['peak_gflops'] / r['read_gbs']:.1f} FLOP/B",
        "",
        f"{'op':<20} {'calls':>6} {'runs':>7} {'ms':>9} {'share':>6} {'GFLOP/s':>8} {'GB/s':>7} "
        f"{'FLOP/B':>7} {'roofline':>8} {'bound':>7} {'busy':>6} {'imbal':>5}",
    ]
    for k in p["kinds"]:
        lines.append(
            f"{k['kernel']:<20} {k['calls']:>6} {k['executions']:>7} {k['seconds'] * 1e3:>9.3f} "
            f"{_pct(k['share'])} {_f(k['gflops'], '8.2f'):>8} {_f(k['gbs'], '7.2f'):>7} "
            f"{_f(k['intensity'], '7.2f'):>7} {_pct(k['roofline']):>8} {k['bound'] or '-':>7} "
            f"{_pct(k['threads_busy'])} {_f(k['imbalance'], '5.2f'):>5}")
    lines += ["", f"end to end {p['end_to_end_s'] * 1e3:.3f} ms:"]
    for s in p["split"]:
        lines.append(f"  {s['part']:<60} {s['seconds'] * 1e3:>9.3f} ms {_pct(s['share'])}")
    lines.append(f"  of the kernels' time, thread pool: {p['pool_overhead_s'] * 1e3:.3f} ms of the calling thread "
                 f"waking workers and waiting for the last task, over {p['pool_jobs']} jobs; "
                 f"{p['pool_jobs_joined']} jobs joined by a worker, after {_f(p['pool_join_s'] * 1e3, '.3f')} ms "
                 f"in all")
    lines += ["", f"slowest calls (of {len(p['calls'])}):"]
    for c in p["calls"][:top]:
        lines.append(
            f"  @{c['function']} #{c['index']:<4} {c['symbol']:<32} {c['seconds'] * 1e3:>9.3f} ms "
            f"{_pct(c['share'])} {_f(c['gflops'], '8.2f'):>8} GFLOP/s {_f(c['gbs'], '7.2f'):>7} GB/s "
            f"{_pct(c['roofline'])} roofline  {', '.join(c['ins'][:2])} -> {', '.join(c['outs'][:1])}")
    return "\n".join(lines) + "\n"


def write_json(p: dict, path: Path) -> Path:
    with replaced(path) as tmp:
        Path(tmp).write_text(json.dumps(p, indent=1) + "\n")
    return path


def plot_roofline(p: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = p["roofline"]
    peak, bw = r["peak_gflops"], r["read_gbs"]
    placed = [k for k in p["kinds"] if k["gflops"] and k["intensity"]]
    off = [k["kernel"] for k in p["kinds"] if k not in placed]
    ais = [k["intensity"] for k in placed] + [peak / bw]
    lo, hi = min(ais) / 4, max(ais) * 4
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    xs = [lo, peak / bw, hi]
    ax.plot(xs, [min(peak, x * bw) for x in xs], color="black", lw=1.5,
            label=f"roofline: {bw:.1f} GB/s read, {peak:.0f} GFLOP/s FMA ({r['threads']} threads)")
    total = sum(k["seconds"] for k in p["kinds"]) or 1.0
    markers = "osD^vP*Xhp<>"
    for i, k in enumerate(placed):  # a legend entry each: kinds often sit at one intensity
        size = 30 + 600 * k["seconds"] / total
        ax.scatter([k["intensity"]], [k["gflops"]], s=size, alpha=0.75, edgecolors="black", linewidths=0.5,
                   marker=markers[i % len(markers)], label=f"{k['kernel']} ({100 * k['share']:.0f}% of time)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"{Path(p['model']).name}: {p['mode']} x {p['tokens']} tokens "
                 f"(marker area: share of kernel time)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, markerscale=0.5)
    if off:
        ax.text(0.01, 0.99, "no FLOPs, not placed: " + ", ".join(off), transform=ax.transAxes,
                va="top", fontsize=8)
    fig.tight_layout()
    with replaced(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_all(p: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_json(p, out_dir / PROFILE_JSON), plot_roofline(p, out_dir / ROOFLINE_PNG)
