"""bfloat16 against float32 on the CPU: one-token step time and the cost in exactness.

Prints one JSON object: per dtype the median wall and CPU milliseconds of a KV-cached
one-token forward at ``--tokens`` tokens (one torch thread), whether the CPU reports native
bf16 (``avx512_bf16`` / ``amx_bf16`` in /proc/cpuinfo), and per prompt the largest
``|log p_bf16 − log p_f32|`` over the whole vocabulary at every position. Models are loaded
one after the other (never both in memory). Run from the repository root:

    uv run python bench/bench_bf16.py --tokens 200 --runs 10
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROMPTS = ["The capital of France is", "def fibonacci(n):\n    if n < 2:\n        return n\n",
           "Once upon a time, in a small village by the sea, there lived an old fisherman who"]


def _native_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def measure(bf16: bool, tokens: int, runs: int) -> tuple[dict, list]:
    import torch

    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper

    w = ModelWrapper.from_loaded(load_model("bundled", bf16=bf16))
    ids: list[int] = []
    while len(ids) < tokens + 1:
        ids += w.encode(PROMPTS[2] + " ")
    cache = w.new_cache()
    w.forward(ids[:tokens], cache)
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        w.forward([ids[tokens]], cache)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        cache.crop(-1)
    logps = [torch.log_softmax(w.forward(w.encode(p), w.new_cache()).double(), -1) for p in PROMPTS]  # [n, V] each
    del w, cache
    gc.collect()
    return {"step_ms": round(1000 * statistics.median(wall), 2), "step_cpu_ms": round(1000 * statistics.median(cpu), 2)}, logps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    f32, lp32 = measure(False, args.tokens, args.runs)
    b16, lp16 = measure(True, args.tokens, args.runs)
    diffs = {prompt: round(float((a - b).abs().max()), 4) for prompt, a, b in zip(PROMPTS, lp32, lp16)}
    print(json.dumps({"tokens": args.tokens, "threads": 1, "native_bf16": _native_bf16(), "float32": f32,
                      "bfloat16": b16, "max_abs_delta_logp": diffs, "loadavg": list(os.getloadavg())}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
