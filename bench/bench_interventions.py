"""Interventions benchmark: keystroke cost with a steering vector on vs none; patching heatmap times.

Prints one JSON object. Run with
``uv run python bench/bench_interventions.py [--runs 10] [--threads 1 2] [--lengths 100 1000]``.
Each thread setting runs in its own process (torch's thread pool is fixed before any work).
Measured on the bundled SmolLM2-135M:
  append     one token appended and the view built, at prompt lengths 100 and 1000:
             plain Trace (no intervention) vs the session's paired stepper with one steering
             vector on (baseline + intervened as one batch of two). The issue's target: ≤ 1.5×.
  patching   a 20-token clean/corrupted pair: attribution patching (one forward + one backward)
             and the exact sweep (every layer × position), residual site.
Nothing here is asserted: numbers go to the README and the issue notes.
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

TEXT = ("Once upon a time, in a small village at the edge of a great forest, there lived a girl who loved to "
        "read. Every morning she walked to the old library, where the keeper told her stories. ")
CLEAN = "When Mary and John went to the market near the river that morning, John gave a small red apple to"
CORRUPT = "When Mary and John went to the market near the river that morning, Mary gave a small red apple to"


def _ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 3)


def child(threads: int, runs: int, lengths: list[int]) -> dict:
    import torch

    torch.set_num_threads(threads)
    from explorer.engine.interventions.hooks import InterventionHooks
    from explorer.engine.interventions.paired import PairedTrace, build_effect
    from explorer.engine.interventions.patching import attribution_patching, exact_patching, make_setup
    from explorer.engine.interventions.spec import Steer
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.trace import Trace
    from explorer.engine.view import build_view

    w = ModelWrapper.from_loaded(load_model("bundled"))
    ids_all = w.encode(TEXT * 80)
    d = w.model.config.hidden_size
    g = torch.Generator().manual_seed(0)
    steer = Steer(15, tuple((torch.randn(d, generator=g) * 2).tolist()), 4.0)
    out: dict = {"append": {}}
    for n in lengths:
        ids = ids_all[:n]
        plain = Trace(w)
        plain.extend(ids)
        nxt = int(plain.last_row().argmax())
        none_s, steer_s = [], []
        for _ in range(runs):
            t = time.perf_counter()
            plain.extend([nxt])
            build_view(plain, 30)
            none_s.append(time.perf_counter() - t)
            plain.truncate(n)
        with InterventionHooks(w.model, [steer]) as hooks:
            paired = PairedTrace(w, hooks)
            paired.sync(ids)
            for _ in range(runs):
                t = time.perf_counter()
                paired.extend([nxt])
                build_view(paired.intervened, 30)
                build_effect(paired, 30)
                steer_s.append(time.perf_counter() - t)
                paired.truncate(n)
        out["append"][str(n)] = {"none_ms": _ms(none_s), "one_steering_vector_ms": _ms(steer_s),
                                 "ratio": round(statistics.median(steer_s) / statistics.median(none_s), 3)}
    clean, corrupt = w.encode(CLEAN), w.encode(CORRUPT)
    target = w.tokenizer(" Mary", add_special_tokens=False)["input_ids"][0]
    contrast = w.tokenizer(" John", add_special_tokens=False)["input_ids"][0]
    setup = make_setup(w, clean, corrupt, target, contrast, "resid")
    attr = []
    for _ in range(max(1, runs // 3)):
        t = time.perf_counter()
        attribution_patching(w, setup)
        attr.append(time.perf_counter() - t)
    t = time.perf_counter()
    exact_patching(w, setup)
    exact_s = time.perf_counter() - t
    out["patching"] = {"tokens": len(corrupt), "layers": w.n_layers, "attribution_s": round(statistics.median(attr), 3),
                       "exact_sweep_s": round(exact_s, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--lengths", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--child", type=int, default=None)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.runs, args.lengths)))
        return
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
               "runs": args.runs, "by_threads": {}}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for k in args.threads:
        proc = subprocess.run([sys.executable, __file__, "--child", str(k), "--runs", str(args.runs), "--lengths",
                               *map(str, args.lengths)], capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            results["by_threads"][str(k)] = {"error": proc.stderr.strip().splitlines()[-1:]}
            continue
        results["by_threads"][str(k)] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
