"""What a keystroke costs in every mode: append, pop and cursor move against a bare KV-cached forward.

Prints one JSON object ``{"rows": [{"mode", "tokens", "append_ms", "pop_ms", "cursor_ms",
"bare_step_ms", ...}], "machine": {...}}``: medians of ``--runs`` keystrokes, one row per
mode of the registry, prompt length and thread count, each measured in its own process
(bundled model, float32). A keystroke is timed as the app does it: the session step
(trace grows or shrinks by one token, StepView built) plus the mode's result for the new
prompt with the cursor on the last token; a cursor move is the mode's result for another
cursor position on the same prompt. Before timing, the mode is computed once (its first
fill, reported as ``first_fill_ms``), as when a user switches to it. ``peak_rss_mb`` is the
child process's peak resident memory. Wall-clock and process CPU time are both reported:
on a loaded machine CPU time is the steadier figure. Run from the repository root:

    uv run python bench/bench_keys.py --threads 1 --lengths 100,1000 --json
    uv run python bench/bench_keys.py --modes attention,residual --lengths 100 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = ("Once upon a time, in a small village by the sea, there lived an old fisherman who told stories "
        "to the children every evening. The stories were about storms, whales, lost ships and the stars "
        "that guided sailors home. ")


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 2)


class _Clock:
    """Wall and process-CPU seconds of a block, appended to two lists."""

    def __init__(self, wall: list[float], cpu: list[float]) -> None:
        self.wall, self.cpu = wall, cpu

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.wall.append(time.perf_counter() - self.w0)
        self.cpu.append(time.process_time() - self.c0)


def child(mode: str, tokens: int, threads: int, runs: int) -> dict:
    """One mode at one length in this process; returns the row."""
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, ROOT)
    from explorer.analyses.base import AnalysisContext
    from explorer.analyses.cache import ResultCache, compute_mode
    from explorer.analyses.registry import get_analysis
    from explorer.config import load_config
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.session import Session

    wrapper = ModelWrapper.from_loaded(load_model("bundled"))
    ids: list[int] = []
    while len(ids) < tokens + runs + 1:
        ids += wrapper.encode(TEXT)
    session = Session(wrapper, load_config(), prompts=[ids[:tokens]])
    analysis = get_analysis(mode)
    cache = ResultCache()

    def fill(cursor: int | None = None):
        view = session.compute()
        n = len(view.ids)
        ctx = AnalysisContext(view=view, wrapper=wrapper, cursor=n - 1 if cursor is None else cursor, params={})
        return compute_mode(analysis, ctx, cache)

    row = {"mode": mode, "tokens": tokens, "threads": threads, "runs": runs}
    t0 = time.perf_counter()
    try:
        fill()
    except Exception as exc:  # a mode that needs an option (an SAE) or cannot run on this model
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row["first_fill_ms"] = round(1000 * (time.perf_counter() - t0), 1)

    append_w, append_c, pop_w, pop_c, cur_w, cur_c = [], [], [], [], [], []
    for k in range(runs):
        with _Clock(append_w, append_c):
            session.append(ids[tokens + k])
            fill()
        with _Clock(pop_w, pop_c):
            session.pop()
            fill()
        with _Clock(cur_w, cur_c):  # a new cursor position each time: no cached result to hit
            fill(cursor=max(1, tokens // 2 - k - 1))
    # The app's peak, read before the bare-step setup below allocates anything of its own.
    peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    bare_w, bare_c = [], []
    cache_kv = wrapper.new_cache()
    for start in range(0, tokens, wrapper.chunk_size):  # chunked like Trace.extend
        wrapper.forward(ids[start : min(tokens, start + wrapper.chunk_size)], cache_kv)
    for k in range(runs):
        with _Clock(bare_w, bare_c):
            wrapper.forward([ids[tokens + k]], cache_kv)
        cache_kv.crop(-1)
    row.update(append_ms=_median_ms(append_w), pop_ms=_median_ms(pop_w), cursor_ms=_median_ms(cur_w),
               bare_step_ms=_median_ms(bare_w), append_cpu_ms=_median_ms(append_c), pop_cpu_ms=_median_ms(pop_c),
               cursor_cpu_ms=_median_ms(cur_c), bare_step_cpu_ms=_median_ms(bare_c),
               append_over_bare_cpu=round(statistics.median(append_c) / statistics.median(bare_c), 2),
               peak_rss_mb=peak_mb)
    return row


def markdown_table(rows: list[dict]) -> str:
    """The README's table: CPU milliseconds (steadier on a shared machine), wall in brackets."""
    lines = ["| mode | tokens | append | pop | cursor move | bare step | append ÷ bare (CPU) | first fill | peak RSS |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['mode']} | {r['tokens']} | {r['error'][:60]} | | | | | | |")
            continue
        lines.append(f"| {r['mode']} | {r['tokens']} | {r['append_cpu_ms']:.0f} ({r['append_ms']:.0f}) ms | "
                     f"{r['pop_cpu_ms']:.1f} ms | {r['cursor_cpu_ms']:.1f} ms | {r['bare_step_cpu_ms']:.0f} ms | "
                     f"{r['append_over_bare_cpu']:.2f} | {r['first_fill_ms'] / 1000:.1f} s | {r['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def _machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in load] if load else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="100,1000", help="comma-separated prompt lengths (tokens)")
    p.add_argument("--threads", default="1", help="comma-separated torch thread counts")
    p.add_argument("--modes", default=None, help="comma-separated mode names (default: every mode of the registry)")
    p.add_argument("--runs", type=int, default=5, help="keystrokes of each kind per row (medians)")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--table", metavar="JSON", help="print a saved result (or several, comma-separated) as a README table")
    p.add_argument("--child", nargs=3, metavar=("MODE", "TOKENS", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.table:
        rows = [r for path in args.table.split(",") for r in json.load(open(path))["rows"]]
        print(markdown_table(rows))
        return 0
    if args.child:
        mode, tokens, threads = args.child
        print(json.dumps(child(mode, int(tokens), int(threads), args.runs)))
        return 0
    sys.path.insert(0, ROOT)
    from explorer.analyses.registry import analysis_names

    modes = args.modes.split(",") if args.modes else analysis_names()
    rows = []
    machine = _machine()
    for threads in [int(t) for t in args.threads.split(",")]:
        for tokens in [int(n) for n in args.lengths.split(",")]:
            for mode in modes:
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", mode, str(tokens),
                                      str(threads), "--runs", str(args.runs)],
                                     capture_output=True, text=True, cwd=ROOT)
                if out.returncode != 0:
                    row = {"mode": mode, "tokens": tokens, "threads": threads,
                           "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
                else:
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                if not args.json:
                    print(" ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr, flush=True)
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    print(json.dumps({"rows": rows, "machine": machine, "model": "bundled SmolLM2-135M-Instruct, float32"},
                     indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
