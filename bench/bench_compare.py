"""Comparison benchmark: an append with a second model stepping beside the first vs one model alone.

Prints one JSON object. Run with `uv run python bench/bench_compare.py [--runs 5] [--threads 1 2]
[--length 1000] [--steps 10]`. Every run is its own process (torch's thread pool is set before
any work, and memory figures are not polluted by earlier runs). Modes:

* ``single``  the bundled model alone (float32);
* ``fp32``    beside an exact float32 copy of itself: the cost of any second model of the same size;
* ``bf16``    beside its own weights cast to bfloat16 (``--compare-bf16``; CPUs without fast
  bfloat16 kernels run this copy slower than float32).

An append = ``session.append`` + ``session.compute()`` (+ ``comparison.view`` when comparing),
the work behind one `l` key. Target from issue 16: compare ≤ 2.2 × single at 1000 tokens.
Memory: resident set size after model A and the prompt, after model B is opened, and after B's
trace of the prompt exists. Nothing is asserted here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_core import TEXT  # the same text as the core benchmark, so the figures line up


def _rss_mb() -> float:
    """Current resident set size (not the peak), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def child(threads: int, mode: str, length: int, steps: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from explorer.config import Config, DisplaySection
    from explorer.engine.compare import Comparison
    from explorer.engine.compare_load import precision_copy
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.session import Session

    w = ModelWrapper.from_loaded(load_model("bundled"))
    ids = w.encode(TEXT * 60)[:length]
    session = Session(w, Config(display=DisplaySection(tokens_to_show=30, cache_size=8)), prompts=[ids])
    session.compute()
    out: dict = {"rss_a_mb": _rss_mb()}
    if mode != "single":
        session.comparison = Comparison(w, precision_copy(w, {"fp32": "float32", "bf16": "bfloat16"}[mode]))
        out["rss_b_loaded_mb"] = _rss_mb()
        t = time.perf_counter()
        session.compute()
        session.comparison.view(session)
        out["first_prompt_s"] = round(time.perf_counter() - t, 3)
        out["rss_b_traced_mb"] = _rss_mb()
    nxt = session.compute().candidates[0].id
    append = []
    for _ in range(steps):
        t = time.perf_counter()
        session.append(nxt)
        session.compute()
        if session.comparison is not None:
            session.comparison.view(session)
        append.append(time.perf_counter() - t)
        session.pop()
        session.compute()
    out["append_ms"] = round(1000 * statistics.median(append), 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5, help="processes per (threads, mode)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--length", type=int, default=1000, help="prompt tokens before the append")
    p.add_argument("--steps", type=int, default=10, help="appends timed per process (median kept)")
    p.add_argument("--modes", nargs="+", default=["single", "fp32", "bf16"])
    p.add_argument("--child", nargs=2, metavar=("THREADS", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.length, args.steps)))
        return
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "model": "SmolLM2-135M-Instruct (bundled, float32, CPU)", "length": args.length,
              "steps": args.steps, "runs": args.runs, "threads": {}}
    for k in args.threads:
        per_mode: dict = {}
        for mode in args.modes:
            runs = []
            for _ in range(args.runs):
                out = subprocess.run([sys.executable, __file__, "--child", str(k), mode, "--length", str(args.length),
                                      "--steps", str(args.steps)], capture_output=True, text=True, timeout=3600)
                if out.returncode != 0:
                    raise SystemExit(out.stderr[-3000:])
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps({"threads": k, "mode": mode, **runs[-1]}), file=sys.stderr, flush=True)  # partial results survive a kill
            per_mode[mode] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            per_mode[mode]["append_ms_runs"] = [r["append_ms"] for r in runs]
        single = per_mode.get("single", {}).get("append_ms")
        for mode, numbers in per_mode.items():
            if single and mode != "single":
                numbers["append_over_single"] = round(numbers["append_ms"] / single, 2)
                numbers["memory_growth_mb"] = round(numbers["rss_b_traced_mb"] - numbers["rss_a_mb"], 1)
        result["threads"][f"threads_{k}"] = per_mode
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
