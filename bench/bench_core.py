"""Core benchmark: start-up, keystroke latency (append / pop) vs a full recompute, peak memory.

Prints one JSON object. Run with `uv run python bench/bench_core.py [--runs 20] [--threads 1 2]`.
Each thread setting runs in its own process so torch's thread pool is set before any work.
Nothing here is asserted: numbers go to the README and the issue notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT = (
    "Once upon a time, in a small village at the edge of a great forest, there lived a girl who loved "
    "to read. Every morning she walked to the old library, where the keeper told her stories about the "
    "mountains, the sea, and the stars. "
)


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 3)


def latency(threads: int, runs: int, lengths: list[int]) -> dict:
    import torch

    torch.set_num_threads(threads)
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.trace import Trace
    from explorer.engine.view import build_view

    w = ModelWrapper.from_loaded(load_model("bundled"))
    ids_all = w.encode(TEXT * 60)
    out = {}
    for n in lengths:
        ids = ids_all[:n]
        trace = Trace(w)
        trace.extend(ids)
        build_view(trace, 30)
        nxt = int(trace.last_row().argmax())
        append, pop, bare, full = [], [], [], []
        for _ in range(runs):
            t = time.perf_counter()
            trace.extend([nxt])
            build_view(trace, 30)
            append.append(time.perf_counter() - t)
            t = time.perf_counter()
            trace.truncate(n)
            build_view(trace, 30)
            pop.append(time.perf_counter() - t)
        # A bare one-token forward pass with the KV cache: the floor an append can reach.
        cache = w.new_cache()
        w.forward(ids, cache)
        for _ in range(runs):
            t = time.perf_counter()
            w.forward([nxt], cache)
            bare.append(time.perf_counter() - t)
            cache.crop(-1)
        # The same step done as a full-prompt recompute (what a cache-less tool does).
        for _ in range(max(3, runs // 4)):
            t = time.perf_counter()
            w.forward(ids + [nxt], w.new_cache())
            full.append(time.perf_counter() - t)
        out[str(n)] = {
            "append_ms": _median_ms(append), "pop_ms": _median_ms(pop),
            "bare_forward_ms": _median_ms(bare), "full_recompute_ms": _median_ms(full),
            "append_over_bare": round(statistics.median(append) / statistics.median(bare), 2),
            "full_over_append": round(statistics.median(full) / statistics.median(append), 1),
        }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


FIRST_SCREEN = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from explorer.ui.app import ExplorerApp
class Probe(ExplorerApp):
    def on_mount(self):
        self.call_after_refresh(self._painted)
    def _painted(self):
        self.painted = time.perf_counter() - t0
        self.exit()
app = Probe(loader=lambda progress: time.sleep(30), autosave=False)
app.run(headless=True)
print(round(app.painted, 3))
"""

TO_TABLE = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from explorer.config import load_config
from explorer.engine.session_builder import build_session
cfg = load_config()
session = build_session(cfg, progress=lambda m: None)
view = session.compute()
print(round(time.perf_counter() - t0, 3))
"""


def _timed_script(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", code.format(root=str(ROOT))], capture_output=True, text=True,
                         env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def startup(runs: int) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    first = [_timed_script(FIRST_SCREEN, env) for _ in range(runs)]
    warm = [_timed_script(TO_TABLE, env) for _ in range(runs)]
    cold_dir = tempfile.mkdtemp(prefix="te-bench-cache-")
    try:
        cold = _timed_script(TO_TABLE, dict(env, TOKEN_EXPLORER_CACHE_DIR=cold_dir))
    finally:
        shutil.rmtree(cold_dir, ignore_errors=True)
    return {"first_screen_s": statistics.median(first), "warm_start_to_table_s": statistics.median(warm),
            "cold_start_to_table_s": cold, "runs": runs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--lengths", type=int, nargs="+", default=[10, 100, 500, 1000])
    p.add_argument("--startup-runs", type=int, default=3)
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(latency(args.child, args.runs, args.lengths)))
        return
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "model": "SmolLM2-135M-Instruct (bundled, float32, CPU)", "runs": args.runs, "latency": {}}
    for k in args.threads:
        out = subprocess.run([sys.executable, __file__, "--child", str(k), "--runs", str(args.runs),
                              "--lengths", *map(str, args.lengths)], capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        result["latency"][f"threads_{k}"] = json.loads(out.stdout.strip().splitlines()[-1])
    result["startup"] = startup(args.startup_runs)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
